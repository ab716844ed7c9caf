"""Crop-to-mask refinement: re-sample only the masked region's bounding box (plus some
context), at the latent's own scale or upscaled toward the model's native resolution --
so a small defect on a large image costs what its area costs.

Every candidate gets one box around all of its masked regions (disjoint regions share
it: one model pass per refinement, and the context between them stays consistent). The
boxes of one call are sampled together, as one batch, at a common size -- each box grown
(about its centre, inside the image) to the largest one's height and width: more
context, never less, and the same batch a full-frame refinement would get instead of one
small model call per item. The boxes are sampled with ComfyUI's own masked sampling,
then pasted back: outside the mask the latent is the candidate's, exactly.
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


def fit_box(box: tuple[int, int, int, int], height: int, width: int,
            size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` (top, bottom, left, right) grown to ``height`` x ``width`` about its centre,
    shifted to stay inside an image of ``size`` (which holds it: the sides are at most the
    image's)."""
    def span(lo, hi, want, limit):
        lo = max(0, min(limit - want, lo - (want - (hi - lo)) // 2))
        return lo, lo + want
    t, b, l, r = box
    return (*span(t, b, height, size[0]), *span(l, r, width, size[1]))


def refine_in_boxes(settings: SamplingSettings, batch: torch.Tensor, masks: torch.Tensor, *,
                    seeds: list[int], start_step: int, end_step: int, region: str,
                    context: int, progress: Progress, target: int = 0) -> torch.Tensor:
    """Masked refinement of each item inside its mask's box (see the module): all items in
    one sampling call, their boxes at a common size.

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
    finish = end_step == settings.steps
    boxes = {j: box_of(masks[j], margin) for j in range(batch.shape[0])}
    live = [j for j, box in boxes.items() if box is not None]
    if not live:
        return out
    height = max(boxes[j][1] - boxes[j][0] for j in live)
    width = max(boxes[j][3] - boxes[j][2] for j in live)
    boxes = {j: fit_box(boxes[j], height, width, tuple(batch.shape[-2:])) for j in live}
    item_seeds = [seeds[j] for j in live]
    crops = torch.cat([batch[j:j + 1, :, t:b, l:r] for j, (t, b, l, r) in boxes.items()])
    crop_masks = torch.cat([masks[j:j + 1, t:b, l:r] for j, (t, b, l, r) in boxes.items()])
    if region == "crop to mask":
        noise = torch.cat([seeded_noise(batch[j:j + 1], [seeds[j]])[..., t:b, l:r]
                           for j, (t, b, l, r) in boxes.items()])
        done = sample(settings, crops, seeds=item_seeds, progress=progress,
                      start_step=start_step, last_step=end_step, force_full_denoise=finish,
                      noise_mask=crop_masks, noise=noise).to(out.dtype)
        if not finish:  # outside the box: the leftover noise masked sampling leaves
            out[live] = renoised(settings, batch[live], seeds=item_seeds, step=end_step)
        for i, (j, (t, b, l, r)) in enumerate(boxes.items()):
            out[j, :, t:b, l:r] = done[i]
        return out
    side = (target or native_side(settings.model)) // 8
    scale = max(1.0, side / max(height, width))
    size = (round(height * scale), round(width * scale))
    big = comfy.utils.common_upscale(crops, size[1], size[0], "bicubic", "disabled")
    big_mask = F.interpolate(crop_masks.unsqueeze(1), size=size, mode="bilinear").squeeze(1)
    done = sample(settings, big, seeds=item_seeds, progress=progress, start_step=start_step,
                  last_step=settings.steps, force_full_denoise=True, noise_mask=big_mask)
    small = comfy.utils.common_upscale(done, width, height, "area", "disabled").to(out.dtype)
    pasted = batch[live].clone()
    m = crop_masks.unsqueeze(1)
    for i, (t, b, l, r) in enumerate(boxes.values()):
        pasted[i, :, t:b, l:r] = crops[i] * (1 - m[i]) + small[i] * m[i]
    out[live] = pasted if finish else renoised(settings, pasted, seeds=item_seeds, step=end_step)
    return out
