"""Crop-to-mask refinement: re-sample only the masked region's bounding box (plus some
context), at the latent's own scale or upscaled toward the model's native resolution --
so a small defect on a large image costs what its area costs.

Every candidate gets one box around all of its masked regions (disjoint regions share
it: one model pass per refinement, and the context between them stays consistent). The
box is sampled with ComfyUI's own masked sampling, then pasted back: outside the mask
the latent is the candidate's, exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

import comfy.latent_formats
import comfy.utils

from .sampling import Progress, SamplingSettings, renoised, sample, seeded_noise

REGIONS = ("full frame", "crop to mask", "crop to mask, upscaled")
ALIGN = 8  # latent pixels: box sides are rounded up to this where the image allows


def native_side(model) -> int:
    """The model family's training resolution in pixels (upscaled crops aim for it)."""
    fmt = model.model.latent_format
    return 512 if type(fmt) is comfy.latent_formats.SD15 else 1024


def box_of(mask: torch.Tensor, context: int) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) in latent pixels around the nonzero part of a
    ``(H, W)`` latent mask, grown by ``context`` latent pixels on every side, rounded up
    to ALIGN where the image allows, clamped to the image; None for an empty mask."""
    ys, xs = torch.nonzero(mask > 0, as_tuple=True)
    if ys.numel() == 0:
        return None
    h, w = mask.shape

    def span(lo, hi, size):
        lo, hi = max(0, lo - context), min(size, hi + 1 + context)
        want = min(size, math.ceil((hi - lo) / ALIGN) * ALIGN)
        grow = want - (hi - lo)
        lo = max(0, lo - grow // 2)
        hi = min(size, lo + want)
        return max(0, hi - want), hi

    top, bottom = span(int(ys.min()), int(ys.max()), h)
    left, right = span(int(xs.min()), int(xs.max()), w)
    return top, bottom, left, right


def refine_in_boxes(settings: SamplingSettings, batch: torch.Tensor, masks: torch.Tensor, *,
                    seeds: list[int], start_step: int, end_step: int, region: str,
                    context: int, progress: Progress, target: int = 0) -> torch.Tensor:
    """Masked refinement of each item inside its mask's box (see the module).

    ``masks`` are latent-grid masks (one per item); ``context`` is in image pixels.
    ``crop to mask`` keeps the latent's scale and runs the masked steps
    [start_step, end_step) inside the box, with the item's own noise cropped from its
    full-frame noise, so the result is what full-frame masked sampling would leave where
    the box ends. ``crop to mask, upscaled`` samples the box enlarged toward ``target``
    pixels on its long side (0: the model's native size), through the last step, pastes
    the result back by the mask and -- when ``end_step < steps`` -- re-noises it to
    end_step for Harmonize.
    """
    out = batch.clone()
    margin = math.ceil(context / 8)
    side = (target or native_side(settings.model)) // 8
    finish = end_step == settings.steps
    for j in range(batch.shape[0]):
        box = box_of(masks[j], margin)
        if box is None:
            continue
        t, b, l, r = box
        crop, m = batch[j:j + 1, :, t:b, l:r], masks[j:j + 1, t:b, l:r]
        if region == "crop to mask":
            noise = seeded_noise(batch[j:j + 1], [seeds[j]])[..., t:b, l:r]
            done = sample(settings, crop, seeds=[seeds[j]], progress=progress,
                          start_step=start_step, last_step=end_step, force_full_denoise=finish,
                          noise_mask=m, noise=noise)
            if not finish:  # outside the box: the leftover noise masked sampling leaves
                out[j:j + 1] = renoised(settings, batch[j:j + 1], seeds=[seeds[j]], step=end_step)
            out[j:j + 1, :, t:b, l:r] = done.to(out.dtype)
            continue
        scale = max(1.0, side / max(b - t, r - l))
        size = (round((b - t) * scale), round((r - l) * scale))
        big = comfy.utils.common_upscale(crop, size[1], size[0], "bicubic", "disabled")
        big_mask = F.interpolate(m.unsqueeze(1), size=size, mode="bilinear").squeeze(1)
        done = sample(settings, big, seeds=[seeds[j]], progress=progress, start_step=start_step,
                      last_step=settings.steps, force_full_denoise=True, noise_mask=big_mask)
        small = comfy.utils.common_upscale(done, r - l, b - t, "area", "disabled").to(out.dtype)
        pasted = batch[j:j + 1].clone()
        pasted[..., t:b, l:r] = crop * (1 - m.unsqueeze(1)) + small * m.unsqueeze(1)
        out[j:j + 1] = pasted if finish else renoised(settings, pasted, seeds=[seeds[j]],
                                                      step=end_step)
    return out
