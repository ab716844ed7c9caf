"""B3: peak memory of attention capture + reduction vs. the attention kernel alone.

At the real attention shapes of the layers the localizer captures, with random tensors
(no model), batch 3 (the three conditionings of one probe):

* SDXL 1024x1024 at the level the localizer captures (latent/4 = 32x32 = 1024 image
  tokens), 20 heads x 64: self-attention (attn1, 1024 x 1024) and cross-attention (attn2,
  to 77 text tokens). "Capture" = the pack's ``UNetRecorder.attn1`` / ``attn2`` (the replace
  patch the localizer installs: it runs the kernel, then folds the attention into its
  accumulator).
* FLUX 1024x1024: joint attention of 512 text + 4096 image tokens, 24 heads x 128, q/k/v as
  ``(B, heads, L, dim)`` with ``skip_reshape=True`` as FLUX passes them. "Capture" = the
  same ComfyUI attention call with the pack's ``DiTRecorder`` installed as
  ``optimized_attention_override`` (block marked active), i.e. the real dispatch path.

"Kernel alone" = ComfyUI's ``comfy.ldm.modules.attention.optimized_attention`` on the same
q/k/v. Kernels: ``pytorch`` (SDPA, what ComfyUI picks on NVIDIA and with
--use-pytorch-cross-attention; the figure the goal is about) and ``default`` (what ComfyUI
picks on this CPU with no flag: split attention, which itself builds the full
probability matrix; SDXL only -- at FLUX size it would take GBs).

Memory method: every case runs in its own subprocess with glibc's mmap threshold fixed at
128 KiB (``MALLOC_MMAP_THRESHOLD_``), so every tensor above 128 KiB is its own mapping and
is returned to the OS when freed (RSS follows live tensors). The case runs once as a
warm-up (one-time kernel/thread-pool buffers), everything is freed, ``malloc_trim(0)``,
then the kernel's peak-RSS counter is reset (``echo 5 > /proc/self/clear_refs``, which
also resets ``ru_maxrss``) and the baseline RSS is read -- *before* q/k/v are created.
Figure = VmHWM (peak RSS) during the measured run minus that baseline, so both sides
include the inputs (q/k/v), the output and all temporaries. Goal: capture / kernel <= 1.10.

    COMFYUI_PATH=~/ComfyUI ~/ComfyUI/.venv/bin/python benchmarks/b3_attention_memory.py
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

from bench_common import cpu_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests")]

MIB = 1 << 20
GOAL = 1.10

CASES = {
    "sdxl_self": "SDXL 1024^2 attn1 at latent/4: q/k/v (3, 1024, 20*64)",
    "sdxl_cross": "SDXL 1024^2 attn2 at latent/4: q (3, 1024, 20*64), k/v (3, 77, 20*64)",
    "flux_joint": "FLUX 1024^2 double block: q/k/v (3, 24, 512+4096, 128), skip_reshape",
}


def _status(field: str) -> int:
    """A /proc/self/status memory field in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def child(case: str, side: str, kernel: str) -> dict:
    """Runs in the subprocess: peak RSS above baseline of one (case, side, kernel)."""
    from comfy_host import find_comfyui, load_pack, require_comfyui
    sys.path.insert(0, find_comfyui() or "")
    from comfy.cli_args import args  # the kernel is chosen when ComfyUI is imported
    args.cpu = True
    args.use_pytorch_cross_attention = kernel == "pytorch"
    require_comfyui()
    import torch
    import comfy.ldm.modules.attention as attention  # noqa: F401  (after the flag: picks the kernel)
    pack = load_pack()
    capture = sys.modules[pack.__name__ + ".nodes.attention_capture"]
    kernel_fn = attention.optimized_attention
    assert capture.optimized_attention is kernel_fn
    conds = [0, 1, 2]
    txt, heads = 77, 20
    weights = {c: (torch.arange(txt) < 8).float() for c in conds}  # 8 content tokens

    def make_inputs(txt_f, img_f):
        g = torch.Generator().manual_seed(0)
        if case == "flux_joint":
            shape = (3, 24, txt_f + img_f, 128)
            return [torch.randn(shape, generator=g) for _ in range(3)]
        nk = 1024 if case == "sdxl_self" else 77
        return [torch.randn(3, 1024, heads * 64, generator=g),
                torch.randn(3, nk, heads * 64, generator=g),
                torch.randn(3, nk, heads * 64, generator=g)]

    def run(warm_up=False):
        if case == "flux_joint":
            # the warm-up runs the same code path at 1/4 of the tokens (it only has to
            # create one-time buffers; the full size costs a minute per run on 2 cores)
            txt_f, side_f = (128, 32) if warm_up else (512, 64)
            q, k, v = make_inputs(txt_f, side_f * side_f)
            options = {"cond_or_uncond": conds}
            rec = None
            if side == "capture":
                w = {c: (torch.arange(txt_f) < 8).float() for c in conds}
                rec = capture.DiTRecorder(w, (side_f, side_f))
                rec.active = (txt_f, side_f * side_f)
                options["optimized_attention_override"] = rec.override(None)
            out = kernel_fn(q, k, v, 24, skip_reshape=True, transformer_options=options)
            return out, rec
        q, k, v = make_inputs(0, 0)
        extra = {"n_heads": heads, "cond_or_uncond": conds, "activations_shape": (3, 1280, 32, 32),
                 "attn_precision": None}
        if side == "kernel":
            return kernel_fn(q, k, v, heads, attn_precision=None), None
        rec = capture.UNetRecorder(weights)
        fn = rec.attn1 if case == "sdxl_self" else rec.attn2
        return fn(q, k, v, extra), rec

    with torch.inference_mode():
        out, rec = run(warm_up=True)
        del out, rec
        _trim()
        _reset_peak()
        base = _status("VmRSS")
        t = time.perf_counter()
        out, rec = run()
        seconds = time.perf_counter() - t
        peak = _status("VmHWM") - base
        seen = rec.acc.layers_seen if rec is not None else None
        kept = 0
        if rec is not None:  # the accumulator's state: kept for the whole probe, not per layer
            kept = sum(t.numel() * t.element_size() for t in [*rec.acc._cross.values(), rec.acc._self]
                       if t is not None)
        assert out.shape[0] == 3
    return {"case": case, "side": side, "kernel": kernel, "peak": peak, "base": base,
            "kept": kept, "seconds": seconds,
            "kernel_name": kernel_fn.__name__, "layers_seen": seen,
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def measure(case: str, side: str, kernel: str) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(128 * 1024), PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", case, side, kernel],
                          env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"child {case}/{side}/{kernel} failed ({proc.returncode})")
    return json.loads(lines[-1][len("RESULT "):])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=3, metavar=("CASE", "SIDE", "KERNEL"), help=argparse.SUPPRESS)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ",".join(CASES))
    ap.add_argument("--no-default-kernel", action="store_true",
                    help="skip the informative runs with ComfyUI's CPU default kernel")
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(child(*a.child)), flush=True)
        return

    import torch
    print("B3 attention capture memory: peak RSS above a baseline taken before q/k/v exist "
          "(inputs + output + temporaries), one subprocess per figure, glibc mmap threshold "
          "128 KiB, peak counter reset via /proc/self/clear_refs after a warm-up run")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"python {platform.python_version()}, {datetime.date.today().isoformat()}")
    runs = [(c, "pytorch") for c in a.cases.split(",")]
    if not a.no_default_kernel:
        runs += [(c, "default") for c in a.cases.split(",") if c.startswith("sdxl")]
    for case, kernel in runs:
        k = measure(case, "kernel", kernel)
        c = measure(case, "capture", kernel)
        ratio = c["peak"] / k["peak"]
        goal = f"goal <= {GOAL:.2f}" if kernel == "pytorch" else "info only: CPU default kernel"
        print(f"  {CASES[case]}; kernel {k['kernel_name']}, {k['threads']} threads")
        print(f"    kernel alone: {k['peak'] / MIB:7.1f} MiB ({k['seconds']:.1f} s)   capture+reduction: "
              f"{c['peak'] / MIB:7.1f} MiB ({c['seconds']:.1f} s), of which the accumulator kept "
              f"for the whole probe: {c['kept'] / MIB:.1f} MiB   (layers folded: {c['layers_seen']})")
        print(f"{case}[{kernel}] capture/kernel peak memory: {ratio:.3f} ({goal})")


if __name__ == "__main__":
    main()
