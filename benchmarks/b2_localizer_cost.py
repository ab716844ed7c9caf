"""B2: what the LoTTS Defect Localizer costs, on a real-architecture SD1.5 U-Net.

The U-Net is SD1.5's own (``unet_config`` of ``comfy/model_detection.py``: model_channels
320, channel_mult 1-2-4-4, 8 heads, context 768; 860 M parameters), built from ComfyUI's
classes with random weights, fp32 on CPU. The CLIP is ComfyUI's SD1 CLIP object (real
tokenizer) whose text model is 768 wide but 1 layer deep, so the U-Net's cross-attention
sees real 77 x 768 context. All nodes are the pack's, loaded with ComfyUI's custom-node
loader and called inside ``torch.inference_mode()`` as the server does.

Figures (printed as "name: value (goal ...)"):

(a) NFE-equivalents per candidate = wall time of ``LoTTSDefectLocalizer.localize`` per
    candidate / wall time of ONE denoiser evaluation of one image (the per-step time of a
    stock KSampler run, cfg 1.0, batch 1, euler). Runs are interleaved, best of
    ``--repeats`` after a warm-up. Also the model evaluations the localizer makes, counted
    by a ``set_model_unet_function_wrapper`` on a clone (images per call summed; expected 3
    per candidate). Goal <= 3.
(b) The localizer's share of a whole LoTTS pipeline: Seed Fan-Out (N=4, T=20) -> Defect
    Localizer -> Masked Refine (k=2, t0=10, end_step=17) -> Harmonize (17..20), cfg 7,
    euler/normal. Goal <= 5 %.
(c) Peak memory of the localizer (1 candidate) / peak memory of plain sampling (a stock
    KSampler run of one image at cfg 7, 2 steps), each in its own subprocess: glibc's mmap
    threshold is fixed at 128 KiB (``MALLOC_MMAP_THRESHOLD_``) so freed tensors go back to
    the OS; the model is built, the operation runs once as a warm-up, memory is trimmed,
    the kernel's peak-RSS counter is reset (``/proc/self/clear_refs``, also resets
    ru_maxrss) and the baseline RSS read; the figure is peak RSS during a second run minus
    that baseline (activations and temporaries; weights excluded). Goal <= 1.10.

A 512x512 run of the whole pipeline does not fit in minutes on 2 CPU cores, so the sizes
are options: ``--size`` for (a) and (c) (default 256 = latent 32x32, the localizer's
attention level 8x8), ``--pipeline-size`` for (b) (default 64: 332 image evaluations of
an 860 M U-Net take 2-5 min at 64 px and ~11 min at 128 px on 2 shared cores;
``--parts ac`` skips it). The share depends on how much cheaper per image the sampling
stages' large batches (8, 16) are than the probes' batch 3, which varies with size and
machine: compare the printed per-stage seconds and NFE.

    COMFYUI_PATH=~/ComfyUI ~/ComfyUI/.venv/bin/python benchmarks/b2_localizer_cost.py
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "host")]

from bench_common import clip_768, cpu_model, sd15_unet  # noqa: E402

MIB = 1 << 20
PROMPT = "a photo of a cat sitting on a wooden chair"
NEGATIVE = "blurry, ugly"
POS_T, NEG_T = "A high-quality image of {p}", "A low-quality image of {p}"
N, K, T, T0, END, CFG, PROBE_STEP = 4, 2, 20, 10, 17, 7.0, 15
CLIP_LAYERS = 1

# --- setup ---------------------------------------------------------------------------

def host():
    from comfy_host import load_pack, require_comfyui
    require_comfyui()
    return load_pack()


def build_models(seed: int = 0):
    """(ModelPatcher of the SD1.5 U-Net, CLIP with a 1-layer 768-wide text model)."""
    return sd15_unet(seed), clip_768(CLIP_LAYERS, seed + 1)


def encode(clip, text):
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))


class Counter:
    """Counts and times the model evaluations of a clone (images per call summed)."""

    def __init__(self, model):
        counter = self

        def wrapper(apply_model, args):
            # a plain function, not a bound method: ModelPatcher.clone() deep-copies
            # model_options, and deepcopy would copy a bound method's instance with it
            t = time.perf_counter()
            out = apply_model(args["input"], args["timestep"], **args["c"])
            counter.seconds += time.perf_counter() - t
            counter.calls += 1
            counter.images += args["input"].shape[0]
            return out

        self.model = model.clone()
        self.model.set_model_unet_function_wrapper(wrapper)
        self.reset()

    def reset(self):
        self.calls, self.images, self.seconds = 0, 0, 0.0


def latent(size, batch=1, seed=0):
    import torch
    g = torch.Generator().manual_seed(seed)
    return {"samples": torch.randn(batch, 4, size // 8, size // 8, generator=g)}


def ksampler(model, pos, neg, lat, steps, cfg, seed=0):
    import nodes as comfy_nodes
    return comfy_nodes.KSampler().sample(model, seed, steps, cfg, "euler", "normal", pos, neg,
                                         lat)[0]


def localize(pack, model, clip, cands, seed=0):
    return pack.NODE_CLASS_MAPPINGS["LoTTSDefectLocalizer"]().localize(
        model, clip, PROMPT, cands, 0.5, 0.5, PROBE_STEP, POS_T, NEG_T, seed, steps=T)["result"]


# --- (c) memory, in a subprocess -----------------------------------------------------

def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _trim():
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def child_memory(what: str, size: int) -> dict:
    import torch
    pack = host()
    model, clip = build_models()
    pos, neg = encode(clip, PROMPT), encode(clip, NEGATIVE)
    cands = latent(size)
    counter = Counter(model)

    def run():
        if what == "localizer":
            return localize(pack, counter.model, clip, cands)
        return ksampler(counter.model, pos, neg, latent(size), 2, CFG)

    with torch.inference_mode():
        out = run()  # warm-up
        del out
        _trim()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = _status("VmRSS")
        counter.reset()
        out = run()
        peak = _status("VmHWM") - base
    return {"what": what, "peak": peak, "base": base, "total_peak": peak + base,
            "calls": counter.calls, "images": counter.images}


def measure_memory(what: str, size: int) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(128 * 1024), PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child-memory", what,
                           "--size", str(size)], env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"memory child {what} failed ({proc.returncode})")
    return json.loads(lines[-1][len("RESULT "):])


# --- main ----------------------------------------------------------------------------

def part_a(pack, counter, clip, pos, neg, size, repeats, steps):
    import torch
    cands = latent(size, batch=1, seed=1)
    step_times, loc_times, loc_model = [], [], []
    for r in range(repeats + 1):  # round 0 is the warm-up
        counter.reset()
        t = time.perf_counter()
        ksampler(counter.model, pos, neg, latent(size), steps, 1.0)
        step_times.append((time.perf_counter() - t) / steps)
        ks_calls, ks_images = counter.calls, counter.images
        counter.reset()
        t = time.perf_counter()
        localize(pack, counter.model, clip, cands)
        loc_times.append(time.perf_counter() - t)
        loc_model.append(counter.seconds)
        loc_calls, loc_images = counter.calls, counter.images
    step, loc = min(step_times[1:]), min(loc_times[1:])
    best = loc_times.index(loc)
    print(f"  (a) size {size}x{size} (latent {size // 8}x{size // 8}), 1 candidate, best of "
          f"{repeats} interleaved rounds after a warm-up round")
    print(f"      KSampler cfg 1.0, batch 1, {steps} steps: {step:.2f} s/step "
          f"({ks_calls} model calls, {ks_images} images; all rounds: "
          f"{', '.join(f'{x:.2f}' for x in step_times[1:])})")
    print(f"      localize: {loc:.2f} s per candidate, of which {loc_model[best]:.2f} s inside "
          f"the model call (all rounds: {', '.join(f'{x:.2f}' for x in loc_times[1:])})")
    print(f"localizer model evaluations per candidate: {loc_images} images in {loc_calls} "
          f"call(s) (expected 3)")
    print(f"localizer NFE-equivalents per candidate: {loc / step:.2f} (goal <= 3)")
    return loc / step


def part_b(pack, counter, clip, pos, neg, size):
    import torch
    m = pack.NODE_CLASS_MAPPINGS
    empty = {"samples": torch.zeros(1, 4, size // 8, size // 8)}
    # warm-up at this size: one cfg-7 step of each batch the pipeline uses
    ksampler(counter.model, pos, neg, empty, 1, CFG)
    stages = []

    def stage(name, fn):
        counter.reset()
        t = time.perf_counter()
        out = fn()
        stages.append((name, time.perf_counter() - t, counter.images, counter.calls))
        return out

    seed = 0
    cands = stage(f"fan-out N={N} x T={T}", lambda: m["LoTTSSeedFanOut"]().fan_out(
        counter.model, pos, neg, empty, seed, N, T, CFG, "euler", "normal")[0])
    mask = stage(f"localize N={N}", lambda: localize(pack, counter.model, clip, cands, seed)[0])
    refined = stage(f"refine N*k={N * K} x ({END}-{T0})", lambda: m["LoTTSMaskedRefine"]().refine(
        counter.model, pos, neg, cands, mask, seed, K, T, CFG, "euler", "normal", T0, END)[0])
    stage(f"harmonize {N * K} x ({T}-{END})", lambda: m["LoTTSHarmonize"]().harmonize(
        counter.model, pos, neg, refined, seed, T, CFG, "euler", "normal", END, False))
    total = sum(s[1] for s in stages)
    print(f"  (b) size {size}x{size} (latent {size // 8}x{size // 8}), cfg {CFG}, euler/normal, "
          f"probe_step {PROBE_STEP}")
    for name, secs, images, calls in stages:
        print(f"      {name:24s} {secs:8.1f} s  {100 * secs / total:5.1f} %   NFE (images "
              f"through the model) {images:4d} in {calls} calls")
    loc = stages[1][1]
    nfe = sum(s[2] for s in stages)
    print(f"      pipeline NFE {nfe} (Best-of-N at the same N: {N * T * 2}; cfg counts 2 per image)")
    print(f"localizer share of the LoTTS pipeline time: {100 * loc / total:.1f} % (goal <= 5 %)")
    return stages


def part_c(size):
    loc = measure_memory("localizer", size)
    ks = measure_memory("ksampler", size)
    print(f"  (c) size {size}x{size}; peak RSS above the post-warm-up baseline, own subprocess each")
    print(f"      KSampler cfg {CFG}, 1 image, 2 steps: {ks['peak'] / MIB:.0f} MiB above a "
          f"{ks['base'] / MIB:.0f} MiB baseline ({ks['images']} images in {ks['calls']} calls)")
    print(f"      localizer, 1 candidate: {loc['peak'] / MIB:.0f} MiB above a "
          f"{loc['base'] / MIB:.0f} MiB baseline ({loc['images']} images in {loc['calls']} calls)")
    print(f"      whole-process peak (weights included): localizer / KSampler = "
          f"{loc['total_peak'] / ks['total_peak']:.3f}")
    print(f"localizer peak memory / plain sampling peak memory: {loc['peak'] / ks['peak']:.3f} "
          f"(goal <= 1.10)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child-memory", choices=("localizer", "ksampler"), help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=256, help="image side for (a) and (c)")
    ap.add_argument("--pipeline-size", type=int, default=64, help="image side for (b)")
    ap.add_argument("--parts", default="abc", help="which figures: any of a, b, c")
    ap.add_argument("--repeats", type=int, default=2, help="(a): timed rounds after the warm-up")
    ap.add_argument("--steps", type=int, default=2, help="(a): steps of the cfg-1 KSampler run")
    a = ap.parse_args()
    if a.child_memory:
        print("RESULT " + json.dumps(child_memory(a.child_memory, a.size)), flush=True)
        return

    import torch
    pack = host()
    import comfy.ldm.modules.attention as attention
    print(f"B2 localizer cost: SD1.5 U-Net (real config, random weights, fp32, CPU), CLIP "
          f"768 wide x {CLIP_LAYERS} layer, prompt {PROMPT!r}")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch "
          f"threads, torch {torch.__version__}, python {platform.python_version()}, "
          f"ComfyUI attention {attention.optimized_attention.__name__}, "
          f"{datetime.date.today().isoformat()}")
    print(f"sizes: (a)/(c) {a.size}x{a.size}, (b) {a.pipeline_size}x{a.pipeline_size}; pipeline "
          f"N={N}, k={K}, T={T}, t0={T0}, end_step={END}, cfg {CFG}, mask_ratio 0.5, "
          f"probe_step {PROBE_STEP}")
    t_start = time.perf_counter()
    if "c" in a.parts:  # first, so its subprocesses do not sit beside this process's model
        part_c(a.size)
    if "a" in a.parts or "b" in a.parts:
        t = time.perf_counter()
        model, clip = build_models()
        params = sum(p.numel() for p in model.model.diffusion_model.parameters())
        print(f"  built U-Net ({params / 1e6:.0f} M params) and CLIP in "
              f"{time.perf_counter() - t:.0f} s")
        pos, neg = encode(clip, PROMPT), encode(clip, NEGATIVE)
        counter = Counter(model)
        with torch.inference_mode():
            nfe_eq = None
            if "a" in a.parts:
                nfe_eq = part_a(pack, counter, clip, pos, neg, a.size, a.repeats, a.steps)
            if "b" in a.parts:
                stages = part_b(pack, counter, clip, pos, neg, a.pipeline_size)
                if nfe_eq is not None:  # the same share, from (a)'s cost and (b)'s NFE counts
                    rest = sum(s[2] for s in stages) - stages[1][2]
                    print(f"      cross-check at {a.size}x{a.size}: N x (a) = {N * nfe_eq:.1f} "
                          f"NFE-equivalents vs {rest} NFE of sampling -> "
                          f"{100 * N * nfe_eq / (N * nfe_eq + rest):.1f} % (assumes batched "
                          f"sampling costs the same per image as batch-1)")
    print(f"  (benchmark wall time {time.perf_counter() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
