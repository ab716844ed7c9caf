"""B2: what the LoTTS Defect Localizer costs, on a real-architecture SD1.5 U-Net.

The U-Net is SD1.5's own (``unet_config`` of ``comfy/model_detection.py``: model_channels
320, channel_mult 1-2-4-4, 8 heads, context 768; 860 M parameters), built from ComfyUI's
classes with random weights, fp32. The CLIP is ComfyUI's SD1 CLIP object (real tokenizer)
whose text model is 768 wide but 1 layer deep, so the U-Net's cross-attention sees real
77 x 768 context. All nodes are the pack's, loaded with ComfyUI's custom-node loader and
run through ``comfy_host.run_node`` inside ``torch.inference_mode()`` as the server does.
The localizer probes all candidates together (two conditionings per model call, a CFG
step's batch: ``ProbeGuider.GROUP``).

Figures (printed as "name: value (goal ...)"):

(a) NFE-equivalents per candidate: localize time per candidate / time of one denoiser
    evaluation of one image at the same batch -- N=1: a stock KSampler step at cfg 1,
    batch 1; N=``--batch``: the localizer on that many candidates / a cfg-1 KSampler
    step of that batch. Goal <= 3. Also the model calls and images the localizer makes,
    counted by a ``set_model_unet_function_wrapper`` on a clone: calls per candidate
    goal <= 3/(2N) + 1, images 3 per candidate.
(b) The localizer's share of a whole LoTTS pipeline: Seed Fan-Out (N=4, T=20) -> Defect
    Localizer -> Masked Refine (k=2, t0=10, end_step=17) -> Harmonize (17..20), cfg 7,
    euler/normal. Goal <= 5 %.
(c) Peak memory of the localizer / peak memory of plain sampling (a stock KSampler run at
    cfg 7, 2 steps, same batch), for 1 candidate and for ``--batch`` candidates, each in
    its own subprocess (bench_common.PeakMemory: activations and temporaries above a
    post-warm-up baseline; weights excluded). Goal <= 1.10.

Sizes are options: ``--size`` for (a) and (c) (default 256 = latent 32x32, the localizer's
attention level 8x8), ``--pipeline-size`` for (b) (default 64; ``--parts ac`` skips it).

    COMFYUI_PATH=~/ComfyUI ~/ComfyUI/.venv/bin/python benchmarks/b2_localizer_cost.py \
        [--size 256] [--pipeline-size 64] [--parts abc] [--batch 4] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import (DTYPES, MIB, ModelCalls, PeakMemory, child_result,  # noqa: E402
                          clip_768, encode, machine_line, run_child, run_node, sd15_unet,
                          start_comfyui, unet_params)

PROMPT = "a photo of a cat sitting on a wooden chair"
NEGATIVE = "blurry, ugly"
POS_T, NEG_T = "A high-quality image of {p}", "A low-quality image of {p}"
N, K, T, T0, END, CFG, PROBE_STEP = 4, 2, 20, 10, 17, 7.0, 15
CLIP_LAYERS = 1


def latent(size, batch=1, seed=0):
    import torch
    g = torch.Generator().manual_seed(seed)
    return {"samples": torch.randn(batch, 4, size // 8, size // 8, generator=g)}


def ksampler(model, pos, neg, lat, steps, cfg, seed=0):
    import nodes as comfy_nodes
    return comfy_nodes.KSampler().sample(model, seed, steps, cfg, "euler", "normal", pos, neg,
                                         lat)[0]


def localize(model, clip, cands, seed=0):
    return run_node("LoTTSDefectLocalizer", model, clip, PROMPT, cands, 0.5, 0.5, PROBE_STEP,
                    POS_T, NEG_T, seed, steps=T).result


# --- (c) memory, in a subprocess -----------------------------------------------------

def child_memory(what: str, size: int, batch: int, dtype: str) -> dict:
    import torch
    start_comfyui()
    model, _ = sd15_unet(dtype=dtype)
    clip = clip_768(CLIP_LAYERS, 1)
    pos, neg = encode(clip, PROMPT), encode(clip, NEGATIVE)
    cands = latent(size, batch)
    counter = ModelCalls(model)

    def run():
        if what == "localizer":
            return localize(counter.model, clip, cands)
        return ksampler(counter.model, pos, neg, latent(size, batch), 2, CFG)

    memory = PeakMemory()
    with torch.inference_mode():
        out = run()  # warm-up
        del out
        memory.start()
        counter.reset()
        out = run()
        peak = memory.peak()
    return {"peak": peak, "base": memory.base, "calls": counter.calls, "images": counter.images}


def part_c(size, batch, dtype):
    print(f"  (c) size {size}x{size}; peak memory above the post-warm-up baseline, own "
          f"subprocess each")
    for n in sorted({1, batch}):
        loc = run_child(__file__, ["--child-memory", "localizer", "--size", str(size),
                                   "--batch", str(n), "--dtype", dtype])
        ks = run_child(__file__, ["--child-memory", "ksampler", "--size", str(size),
                                  "--batch", str(n), "--dtype", dtype])
        print(f"      KSampler cfg {CFG}, batch {n}, 2 steps: {ks['peak'] / MIB:.0f} MiB above "
              f"{ks['base'] / MIB:.0f} MiB ({ks['images']} images in {ks['calls']} calls)")
        print(f"      localizer, {n} candidate(s): {loc['peak'] / MIB:.0f} MiB above "
              f"{loc['base'] / MIB:.0f} MiB ({loc['images']} images in {loc['calls']} calls)")
        print(f"localizer peak memory / plain sampling peak memory, {n} candidate(s): "
              f"{loc['peak'] / ks['peak']:.3f} (goal <= 1.10)")


# --- (a), (b) --------------------------------------------------------------------------

def part_a(counter, clip, pos, neg, size, batch, repeats, steps):
    """Per-candidate localize time over the per-image time of a cfg-1 step of the same
    batch, for 1 and ``batch`` candidates, interleaved rounds after a warm-up."""
    sizes = sorted({1, batch})
    cands = {n: latent(size, n, seed=1) for n in sizes}
    times = {n: {"step": [], "loc": [], "model": [], "calls": 0, "images": 0} for n in sizes}
    ksampler(counter.model, pos, neg, latent(size), 1, 1.0)  # warm-up
    localize(counter.model, clip, cands[1])
    for _ in range(repeats):
        for n in sizes:
            t = time.perf_counter()
            ksampler(counter.model, pos, neg, latent(size, n), steps, 1.0)
            times[n]["step"].append((time.perf_counter() - t) / steps)
            counter.reset()
            t = time.perf_counter()
            localize(counter.model, clip, cands[n])
            times[n]["loc"].append(time.perf_counter() - t)
            times[n]["model"].append(counter.seconds)
            times[n]["calls"], times[n]["images"] = counter.calls, counter.images
    print(f"  (a) size {size}x{size} (latent {size // 8}x{size // 8}), fastest of {repeats} "
          f"interleaved round(s) after a warm-up")
    for n in sizes:
        r = times[n]
        step, loc = min(r["step"]), min(r["loc"])
        model_s = r["model"][r["loc"].index(loc)]
        print(f"      {n} candidate(s): KSampler cfg 1 batch {n}: {step:.2f} s/step; localize "
              f"{loc:.2f} s ({model_s:.2f} s in model calls), {r['images']} images in "
              f"{r['calls']} calls")
        print(f"localizer model calls per candidate, {n} candidate(s): {r['calls'] / n:.3f} "
              f"(goal <= {3 / (2 * n) + 1:.3f}); images per candidate {r['images'] / n:.0f} "
              f"(expected 3)")
        print(f"localizer NFE-equivalents per candidate, {n} candidate(s): "
              f"{loc / step:.2f} (goal <= 3)")
    return min(times[1]["loc"]) / min(times[1]["step"])


def part_b(counter, clip, pos, neg, size):
    import torch
    empty = {"samples": torch.zeros(1, 4, size // 8, size // 8)}
    ksampler(counter.model, pos, neg, empty, 1, CFG)  # warm-up at this size
    stages = []

    def stage(name, fn):
        counter.reset()
        t = time.perf_counter()
        out = fn()
        stages.append((name, time.perf_counter() - t, counter.images, counter.calls))
        return out

    m = counter.model
    cands = stage(f"fan-out N={N} x T={T}", lambda: run_node(
        "LoTTSSeedFanOut", m, pos, neg, empty, 0, N, T, CFG, "euler", "normal").result[0])
    mask = stage(f"localize N={N}", lambda: localize(m, clip, cands)[0])
    refined = stage(f"refine N*k={N * K} x ({END}-{T0})", lambda: run_node(
        "LoTTSMaskedRefine", m, pos, neg, cands, mask, 0, K, T, CFG, "euler", "normal", T0,
        END).result[0])
    stage(f"harmonize {N * K} x ({T}-{END})", lambda: run_node(
        "LoTTSHarmonize", m, pos, neg, refined, 0, T, CFG, "euler", "normal", END, False))
    total = sum(s[1] for s in stages)
    print(f"  (b) size {size}x{size} (latent {size // 8}x{size // 8}), cfg {CFG}, euler/normal, "
          f"probe_step {PROBE_STEP}")
    for name, secs, images, calls in stages:
        print(f"      {name:24s} {secs:8.1f} s  {100 * secs / total:5.1f} %   NFE (images "
              f"through the model) {images:4d} in {calls} calls, {secs / images:.3f} s/NFE")
    nfe = sum(s[2] for s in stages)
    print(f"      pipeline NFE {nfe} (Best-of-N at the same N: {N * T * 2}; cfg counts 2 per image)")
    print(f"localizer share of the LoTTS pipeline time: {100 * stages[1][1] / total:.1f} % "
          f"(goal <= 5 %)")
    return stages


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child-memory", choices=("localizer", "ksampler"), help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=256, help="image side for (a) and (c)")
    ap.add_argument("--pipeline-size", type=int, default=64, help="image side for (b)")
    ap.add_argument("--parts", default="abc", help="which figures: any of a, b, c")
    ap.add_argument("--batch", type=int, default=N, help="(a), (c): candidates probed together")
    ap.add_argument("--repeats", type=int, default=1, help="(a): timed rounds after the warm-up")
    ap.add_argument("--steps", type=int, default=2, help="(a): steps of the cfg-1 KSampler run")
    ap.add_argument("--dtype", choices=DTYPES, default="auto",
                    help="auto: what ComfyUI picks for SD1.5 on this device")
    a = ap.parse_args()
    if a.child_memory:
        child_result(child_memory(a.child_memory, a.size, a.batch, a.dtype))
        return

    start_comfyui()
    import torch
    import comfy.ldm.modules.attention as attention
    print(f"B2 localizer cost: SD1.5 U-Net (real config, random weights, --dtype {a.dtype}), "
          f"CLIP 768 wide x {CLIP_LAYERS} layer, prompt {PROMPT!r}")
    print(f"machine: {machine_line()}; ComfyUI attention {attention.optimized_attention.__name__}")
    print(f"sizes: (a)/(c) {a.size}x{a.size}, (b) {a.pipeline_size}x{a.pipeline_size}; pipeline "
          f"N={N}, k={K}, T={T}, t0={T0}, end_step={END}, cfg {CFG}, mask_ratio 0.5, "
          f"probe_step {PROBE_STEP}")
    t_start = time.perf_counter()
    if "c" in a.parts:  # first, so its subprocesses do not sit beside this process's model
        part_c(a.size, a.batch, a.dtype)
    if "a" in a.parts or "b" in a.parts:
        t = time.perf_counter()
        model, dtype_label = sd15_unet(dtype=a.dtype)
        clip = clip_768(CLIP_LAYERS, 1)
        print(f"  built U-Net ({unet_params(model) / 1e6:.0f} M params, {dtype_label}) and CLIP "
              f"in {time.perf_counter() - t:.0f} s")
        pos, neg = encode(clip, PROMPT), encode(clip, NEGATIVE)
        counter = ModelCalls(model)
        with torch.inference_mode():
            nfe_eq = None
            if "a" in a.parts:
                nfe_eq = part_a(counter, clip, pos, neg, a.size, a.batch, a.repeats, a.steps)
            if "b" in a.parts:
                stages = part_b(counter, clip, pos, neg, a.pipeline_size)
                if nfe_eq is not None:  # the same share, from (a)'s cost and (b)'s NFE counts
                    rest = sum(s[2] for s in stages) - stages[1][2]
                    print(f"      cross-check at {a.size}x{a.size}: N x (a) = {N * nfe_eq:.1f} "
                          f"NFE-equivalents vs {rest} NFE of sampling -> "
                          f"{100 * N * nfe_eq / (N * nfe_eq + rest):.1f} % (assumes batched "
                          f"sampling costs the same per image as batch-1)")
    print(f"  (benchmark wall time {time.perf_counter() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
