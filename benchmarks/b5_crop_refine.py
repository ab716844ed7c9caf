"""B5: LoTTS Masked Refine with ``region = "crop to mask"`` vs. ``"full frame"`` -- the wall
time of refining a small defect on a large image, side by side in one process.

The real SDXL base U-Net architecture (comfy/model_detection.py's SDXL config, 2.57 G
parameters) with random weights; conditioning tensors of SDXL's shapes (77 x 2048 context,
1280 pooled, size conditioning for the image); one candidate latent of ``--size`` pixels
(default 1024x1024 = latent 128x128) and a pixel mask that is one compact disc covering
``--mask-area`` (default 10 %) of the image. The node is the pack's own LoTTS Masked Refine,
run through ComfyUI's node API (``comfy_host.run_node``) with the same seed, steps and
window for both regions: default 1 masked step (t0 = 19 of 20, end_step 20) at cfg 1 (1
NFE per step: every step is the same model call, so more steps change the ratio only
through the node's fixed costs), k = 1, context 32 px. A warm-up (one cropped step) runs first; then the
regions alternate for ``--repeats`` rounds and the fastest of each is used.

Figure: refinement wall time cropped / full frame. Goal <= 0.30. Also printed: the latent
size each model call saw, and the same ratio for the time inside model calls only.

    COMFYUI_PATH=~/ComfyUI ~/ComfyUI/.venv/bin/python benchmarks/b5_crop_refine.py \
        [--size 1024] [--mask-area 0.10] [--context 32] [--start-step 19] [--end-step 20] \
        [--dtype auto] [--repeats 1]

``--dtype auto``: on a GPU what ComfyUI picks for SDXL there (fp16 on a recent NVIDIA GPU);
on a CPU fp32 weights (10.3 GB) when the machine has room for them, else fp16 weights
computed in fp32 (ComfyUI's manual cast): the same arithmetic and architecture, half the
memory, plus a cast of every weight at every call (a fixed cost per call, so it raises
the cropped / full ratio). On 2 shared CPU cores one full-frame 1024x1024 SDXL
evaluation takes many minutes: see benchmarks/README.md for the time per run.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import (DTYPES, GPU, ModelCalls, machine_line, run_node,  # noqa: E402
                          sdxl_unet, start_comfyui, unet_params)

FP32_BYTES = 2.57e9 * 4


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def model_dtype(choice: str) -> str:
    """"auto": on a GPU what ComfyUI picks for SDXL there; on a CPU fp32 weights when the
    machine has room for them, else fp16 weights computed in fp32."""
    if choice != "auto" or GPU:
        return choice
    return "fp32" if mem_available() > FP32_BYTES + 5e9 else "fp16-cast"


def disc_mask(size: int, area: float):
    """(1, size, size) pixel mask: one disc covering ``area`` of the image, centred off
    the middle (as a defect would be) but whole inside the image."""
    import torch
    r = math.sqrt(area / math.pi) * size
    cy, cx = 0.42 * size, 0.58 * size
    y = torch.arange(size).view(-1, 1).float() + 0.5
    x = torch.arange(size).view(1, -1).float() + 0.5
    return (((y - cy) ** 2 + (x - cx) ** 2) <= r * r).float().unsqueeze(0)


def sdxl_conditioning(size: int, seed: int):
    """CONDITIONING of SDXL's shapes (CLIP-L+G context, pooled output, size conditioning)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, 77, 2048, generator=g),
             {"pooled_output": torch.randn(1, 1280, generator=g), "width": size, "height": size,
              "target_width": size, "target_height": size, "crop_w": 0, "crop_h": 0}]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1024, help="image side in pixels (latent = size/8)")
    ap.add_argument("--mask-area", type=float, default=0.10, help="the disc's share of the image")
    ap.add_argument("--context", type=int, default=32, help="the crop's context in pixels")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--start-step", type=int, default=19, help="t0")
    ap.add_argument("--end-step", type=int, default=20)
    ap.add_argument("--cfg", type=float, default=1.0)
    ap.add_argument("--sampler", default="euler")
    ap.add_argument("--scheduler", default="normal")
    ap.add_argument("--dtype", choices=DTYPES, default="auto")
    ap.add_argument("--repeats", type=int, default=1, help="alternating rounds; fastest kept")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    start_comfyui()
    import torch

    t = time.perf_counter()
    model, dtype = sdxl_unet(dtype=model_dtype(a.dtype))
    build_s = time.perf_counter() - t
    calls = ModelCalls(model)
    pos, neg = sdxl_conditioning(a.size, 1), sdxl_conditioning(a.size, 2)
    g = torch.Generator().manual_seed(a.seed)
    candidate = {"samples": torch.randn(1, 4, a.size // 8, a.size // 8, generator=g)}
    mask = disc_mask(a.size, a.mask_area)

    def refine(region, start_step):
        calls.reset()
        t = time.perf_counter()
        out = run_node("LoTTSMaskedRefine", calls.model, pos, neg, candidate, mask, a.seed, 1,
                       a.steps, a.cfg, a.sampler, a.scheduler, start_step, a.end_step,
                       region=region, context=a.context).result[0]["samples"]
        return time.perf_counter() - t, calls.seconds, list(calls.shapes), out

    results = {"full frame": [], "crop to mask": []}
    with torch.inference_mode():
        t = time.perf_counter()
        refine("crop to mask", a.end_step - 1)  # warm-up: one cropped step
        warm_s = time.perf_counter() - t
        for _ in range(max(1, a.repeats)):
            for region in ("full frame", "crop to mask"):
                results[region].append(refine(region, a.start_step))

    full = min(results["full frame"], key=lambda r: r[0])
    crop = min(results["crop to mask"], key=lambda r: r[0])
    # outside the mask (one latent cell of margin for the mask's resizing) both keep the
    # candidate
    F = torch.nn.functional
    near = F.max_pool2d(F.interpolate(mask.unsqueeze(1), size=candidate["samples"].shape[-2:],
                                      mode="area"), 3, 1, 1) > 0
    outside = ~near.expand_as(crop[3])
    differ = max((r[3][outside] - candidate["samples"][outside]).abs().max().item()
                 for r in (full, crop))
    print("B5 crop-to-mask refinement vs full frame: LoTTS Masked Refine, in-process ComfyUI")
    print(f"machine: {machine_line()}")
    print(f"model: SDXL base U-Net (real architecture, {unet_params(model) / 1e9:.2f} G params, "
          f"random weights, {dtype}), built in {build_s:.0f} s; warm-up {warm_s:.0f} s")
    print(f"setup: {a.size}x{a.size} (latent {a.size // 8}x{a.size // 8}), one disc mask of "
          f"{100 * float(mask.mean()):.1f} % of the image, context {a.context} px; "
          f"{a.sampler}/{a.scheduler}, T={a.steps}, masked steps {a.start_step}..{a.end_step} "
          f"({a.end_step - a.start_step}), cfg {a.cfg}, k=1; fastest of {len(results['full frame'])} "
          f"round(s) each")
    for name, r in (("full frame", full), ("crop to mask", crop)):
        shapes = sorted(set(r[2]))
        print(f"  {name:13s} {r[0]:8.1f} s wall, {r[1]:8.1f} s in {len(r[2])} model call(s) "
              f"of latent {', '.join('x'.join(map(str, s[-2:])) for s in shapes)}")
    print(f"  outside the mask, largest change to the candidate (either region): {differ:.1e}")
    print(f"model-call time cropped / full frame: {crop[1] / full[1]:.3f}")
    print(f"refinement wall time cropped / full frame: {crop[0] / full[0]:.3f} (goal <= 0.30)")


if __name__ == "__main__":
    main()
