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

Memory method (bench_common.PeakMemory): every figure in its own subprocess; the case
runs once as a warm-up (one-time kernel/thread-pool buffers), everything is freed, the
peak counter is reset and the baseline read -- *before* q/k/v are created -- so both
sides include the inputs (q/k/v), the output and all temporaries. On CPU: peak RSS with
glibc's mmap threshold at 128 KiB (freed tensors go back to the OS); with
``LOTTS_BENCH_DEVICE=gpu``: torch.cuda's peak allocated bytes (SDPA only). Goal:
capture / kernel <= 1.10.

    COMFYUI_PATH=~/ComfyUI ~/ComfyUI/.venv/bin/python benchmarks/b3_attention_memory.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import (GPU, MIB, PeakMemory, child_result, machine_line,  # noqa: E402
                          run_child, start_comfyui)

GOAL = 1.10

CASES = {
    "sdxl_self": "SDXL 1024^2 attn1 at latent/4: q/k/v (3, 1024, 20*64)",
    "sdxl_cross": "SDXL 1024^2 attn2 at latent/4: q (3, 1024, 20*64), k/v (3, 77, 20*64)",
    "flux_joint": "FLUX 1024^2 double block: q/k/v (3, 24, 512+4096, 128), skip_reshape; "
                  "image->text sliced from the joint softmax",
}


def case_dtype(case: str, choice: str):
    """The dtype of q/k/v: "auto" is what the model runs in on this device -- SDXL fp16 and
    FLUX bf16 on a GPU (ComfyUI's picks there), fp32 on a CPU."""
    import torch
    named = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if choice != "auto":
        return named[choice]
    if not GPU:
        return torch.float32
    return torch.bfloat16 if case == "flux_joint" else torch.float16


def child(case: str, side: str, kernel: str) -> dict:
    """Runs in the subprocess: peak memory above baseline of one (case, side, kernel)."""
    pack = start_comfyui(attention=kernel)  # the kernel is chosen when ComfyUI is imported
    import torch
    import comfy.ldm.modules.attention as attention
    import comfy.model_management as mm
    capture = sys.modules[pack.__name__ + ".nodes.attention_capture"]
    kernel_fn = attention.optimized_attention
    assert capture.optimized_attention is kernel_fn
    device = mm.get_torch_device()
    conds = [0, 1, 2]
    txt, heads = 77, 20
    weights = {c: (torch.arange(txt) < 8).float() for c in conds}  # 8 content tokens

    dtype = case_dtype(case, os.environ.get("LOTTS_B3_DTYPE", "auto"))

    def make_inputs(txt_f, img_f):
        g = torch.Generator().manual_seed(0)
        if case == "flux_joint":
            shape = (3, 24, txt_f + img_f, 128)
            return [torch.randn(shape, generator=g).to(device, dtype) for _ in range(3)]
        nk = 1024 if case == "sdxl_self" else 77
        return [torch.randn(3, 1024, heads * 64, generator=g).to(device, dtype),
                torch.randn(3, nk, heads * 64, generator=g).to(device, dtype),
                torch.randn(3, nk, heads * 64, generator=g).to(device, dtype)]

    def run(warm_up=False):
        if case == "flux_joint":
            # the warm-up runs the same code path at 1/4 of the tokens (it only has to
            # create one-time buffers; the full size costs a minute per run on 2 cores)
            txt_f, side_f = (128, 32) if warm_up else (512, 64)
            q, k, v = make_inputs(txt_f, side_f * side_f)
            options = {"cond_or_uncond": conds}
            rec = None
            if side == "capture":  # the recorder as LoTTS installs it on a FLUX clone
                w = {c: (torch.arange(txt_f) < 8).float() for c in conds}
                rec = capture.DiTRecorder(w, (side_f, side_f), 2, [])
                rec.active = (txt_f, side_f * side_f)  # what its double-block patch sets
                options["optimized_attention_override"] = rec.override(None)
            out = kernel_fn(q, k, v, 24, skip_reshape=True, transformer_options=options)
            return out, rec
        q, k, v = make_inputs(0, 0)
        extra = {"n_heads": heads, "cond_or_uncond": conds, "activations_shape": (3, 1280, 32, 32),
                 "attn_precision": None}
        if side == "kernel":
            return kernel_fn(q, k, v, heads, attn_precision=None), None
        rec = capture.UNetRecorder(weights, (32, 32), 4, [])
        fn = rec.attn1 if case == "sdxl_self" else rec.attn2
        return fn(q, k, v, extra), rec

    memory = PeakMemory()
    with torch.inference_mode():
        out, rec = run(warm_up=True)
        del out, rec
        memory.start()  # before q/k/v exist: both sides include inputs, output, temporaries
        t = time.perf_counter()
        out, rec = run()
        if GPU:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t
        peak = memory.peak()
        seen = rec.acc.layers_seen if rec is not None else None
        kept = 0
        if rec is not None:  # the accumulator's state: kept for the whole probe, not per layer
            kept = sum(t.numel() * t.element_size() for t in [*rec.acc._cross.values(), rec.acc._self]
                       if t is not None)
        assert out.shape[0] == 3
    return {"case": case, "side": side, "kernel": kernel, "peak": peak, "base": memory.base,
            "kept": kept, "seconds": seconds,
            "kernel_name": kernel_fn.__name__, "layers_seen": seen,
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "dtype": str(dtype).replace("torch.", "")}


def measure(case: str, side: str, kernel: str) -> dict:
    return run_child(__file__, ["--child", case, side, kernel])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=3, metavar=("CASE", "SIDE", "KERNEL"), help=argparse.SUPPRESS)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ",".join(CASES))
    ap.add_argument("--no-default-kernel", action="store_true",
                    help="skip the informative runs with ComfyUI's CPU default kernel")
    ap.add_argument("--dtype", choices=("auto", "fp32", "fp16", "bf16"), default="auto",
                    help="q/k/v dtype; auto: SDXL fp16 and FLUX bf16 on a GPU, fp32 on a CPU")
    a = ap.parse_args()
    os.environ["LOTTS_B3_DTYPE"] = a.dtype  # the subprocesses read it
    if a.child:
        child_result(child(*a.child))
        return

    print(f"B3 attention capture memory: peak {'GPU memory' if GPU else 'RSS'} above a baseline "
          "taken before q/k/v exist (inputs + output + temporaries), one subprocess per figure, "
          "peak counter reset after a warm-up run")
    print(f"machine: {machine_line()}")
    runs = [(c, "pytorch") for c in a.cases.split(",")]
    if not a.no_default_kernel and not GPU:
        runs += [(c, "default") for c in a.cases.split(",") if c.startswith("sdxl")]
    for case, kernel in runs:
        k = measure(case, "kernel", kernel)
        c = measure(case, "capture", kernel)
        ratio = c["peak"] / k["peak"]
        goal = f"goal <= {GOAL:.2f}" if kernel == "pytorch" else "info only: CPU default kernel"
        print(f"  {CASES[case]}; {k['dtype']}; kernel {k['kernel_name']}, {k['threads']} threads")
        print(f"    kernel alone: {k['peak'] / MIB:7.1f} MiB ({k['seconds']:.1f} s)   capture+reduction: "
              f"{c['peak'] / MIB:7.1f} MiB ({c['seconds']:.1f} s), of which the accumulator kept "
              f"for the whole probe: {c['kept'] / MIB:.1f} MiB   (layers folded: {c['layers_seen']})")
        print(f"{case}[{kernel}] capture/kernel peak memory: {ratio:.3f} ({goal})")


if __name__ == "__main__":
    main()
