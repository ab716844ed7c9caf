"""B3: peak memory of attention capture + reduction vs. the attention kernel alone.

At the real attention shapes of the layers the localizer captures, with random tensors
(no full-size model), batch 3 (the three conditionings of one probe), through the real
dispatch path: ComfyUI's ``optimized_attention`` with the pack's one capture
(``nodes/attention_capture.AttentionCapture``) installed as ``optimized_attention_override``
and its forward geometry set as its ``APPLY_MODEL`` wrapper sets it. The capture is made on
a tiny model of the family (ComfyUI's own classes): only its layout and block counts matter,
the shapes are the full-size ones below.

* SDXL 1024x1024 at the level the localizer captures (latent/4 = 32x32 = 1024 image
  tokens), 20 heads x 64: self-attention (1024 x 1024) and cross-attention (to 77 text
  tokens), token-major ``(B, L, heads*dim)`` as the U-Net passes them.
* FLUX 1024x1024: joint attention of 512 text + 4096 image tokens, 24 heads x 128, q/k/v as
  ``(B, heads, L, dim)`` with ``skip_reshape=True`` as FLUX passes them.
* Qwen-Image 1328x1328: joint attention of 256 text + 83x83 = 6889 image tokens, 24 heads x
  128, token-major ``(B, L, heads*dim)`` as Qwen-Image passes them.

q/k/v are in the model's dtype on the device (``--dtype auto``: SDXL fp16, FLUX and
Qwen-Image bf16 on a GPU, fp32 on a CPU).

"Kernel alone" = ComfyUI's ``comfy.ldm.modules.attention.optimized_attention`` on the same
q/k/v. Kernels: ``pytorch`` (SDPA, what ComfyUI picks on NVIDIA and with
--use-pytorch-cross-attention; the figure the goal is about) and ``default`` (what ComfyUI
picks on this CPU with no flag: split attention, which itself builds the full
probability matrix; SDXL only -- at DiT size it would take GBs).

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
    "sdxl_self": "SDXL 1024^2 self-attention at latent/4: q/k/v (3, 1024, 20*64)",
    "sdxl_cross": "SDXL 1024^2 cross-attention at latent/4: q (3, 1024, 20*64), k/v (3, 77, 20*64)",
    "flux_joint": "FLUX 1024^2 double block: q/k/v (3, 24, 512+4096, 128), skip_reshape; "
                  "image->text sliced from the joint softmax",
    "qwen_joint": "Qwen-Image 1328^2 block: q/k/v (3, 256+6889, 24*128); image->text sliced "
                  "from the joint softmax, image->image over the 83x83 image tokens",
}

# (tiny family model, latent (C, [1,] H, W) at full size, text tokens, heads, head dim,
#  q/k/v passed head-major with skip_reshape)
SHAPES = {
    "sdxl_self": ("sdxl", (4, 128, 128), 77, 20, 64, False),
    "sdxl_cross": ("sdxl", (4, 128, 128), 77, 20, 64, False),
    "flux_joint": ("flux", (16, 128, 128), 512, 24, 128, True),
    "qwen_joint": ("qwen_image", (16, 1, 166, 166), 256, 24, 128, False),
}


def _tiny(family):
    import tiny_backbones
    return tiny_backbones.model(family)


def case_dtype(case: str, choice: str):
    """The dtype of q/k/v: "auto" is what the model runs in on this device -- SDXL fp16 and
    FLUX bf16 on a GPU (ComfyUI's picks there), fp32 on a CPU."""
    import torch
    named = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if choice != "auto":
        return named[choice]
    if not GPU:
        return torch.float32
    return torch.bfloat16 if case in ("flux_joint", "qwen_joint") else torch.float16


def child(case: str, side: str, kernel: str) -> dict:
    """Runs in the subprocess: peak memory above baseline of one (case, side, kernel)."""
    pack = start_comfyui(attention=kernel)  # the kernel is chosen when ComfyUI is imported
    import torch
    import comfy.ldm.modules.attention as attention
    import comfy.model_management as mm
    capture_mod = sys.modules[pack.__name__ + ".nodes.attention_capture"]
    kernel_fn = attention.optimized_attention
    device = mm.get_torch_device()
    family, latent, txt, heads, dim, head_major = SHAPES[case]
    conds = [0, 1, 2]
    model = _tiny(family) if side == "capture" else None

    dtype = case_dtype(case, os.environ.get("LOTTS_B3_DTYPE", "auto"))

    def make_inputs(scale):
        """q/k/v at 1/scale of the image side (the warm-up) or full size."""
        lat = latent[:-2] + (latent[-2] // scale, latent[-1] // scale)
        g = torch.Generator().manual_seed(0)
        if case.startswith("sdxl"):
            n = (lat[-2] // 4) * (lat[-1] // 4)
            nk = n if case == "sdxl_self" else txt
            return lat, [torch.randn(3, n if i == 0 else nk, heads * dim, generator=g).to(device, dtype)
                         for i in range(3)]
        n = txt + -(-lat[-2] // 2) * -(-lat[-1] // 2)
        shape = (3, heads, n, dim) if head_major else (3, n, heads * dim)
        return lat, [torch.randn(shape, generator=g).to(device, dtype) for _ in range(3)]

    def run(warm_up=False):
        lat, (q, k, v) = make_inputs(2 if warm_up else 1)
        options = {"cond_or_uncond": conds}
        capture = None
        if side == "capture":  # the capture as the localizer installs it on a clone
            weights = {c: {"txt": (torch.arange(txt) < 8).float()} for c in conds}
            capture = capture_mod.AttentionCapture(model, weights, (1, *lat))
            x = torch.empty((3, *lat), device="meta")
            context = torch.empty((3, txt, 1), device="meta")
            fwd = capture._geometry(x, context, options, {})  # what its APPLY_MODEL wrapper sets
            if capture.read is not None:  # this call stands for the first block it reads
                fwd.counts["joint" if not case.startswith("sdxl") else "self"] = capture.read[0]
            fwd.expect_cross = case == "sdxl_cross"
            capture._forward = fwd
            options["optimized_attention_override"] = capture.override(None)
        out = kernel_fn(q, k, v, heads, skip_reshape=head_major, transformer_options=options)
        return out, capture

    memory = PeakMemory()
    with torch.inference_mode():
        out, cap = run(warm_up=True)
        del out, cap
        memory.start()  # before q/k/v exist: both sides include inputs, output, temporaries
        t = time.perf_counter()
        out, cap = run()
        if GPU:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t
        peak = memory.peak()
        seen = cap.acc.layers_seen if cap is not None else None
        kept = 0
        if cap is not None:  # the accumulator's state: kept for the whole probe, not per layer
            kept = sum(t.numel() * t.element_size() for t in [*cap.acc._cross.values(), cap.acc._self]
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
                    help="q/k/v dtype; auto: SDXL fp16, FLUX and Qwen-Image bf16 on a GPU, "
                         "fp32 on a CPU")
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
