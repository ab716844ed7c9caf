"""Small preview images for the node UI (the js viewer in js/lotts.js shows them).

Previews are written to ComfyUI's temp folder the standard way (PreviewImage), down-
scaled so a node never ships full-size tensors to the browser.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import nodes as comfy_nodes  # ComfyUI's nodes.py

MAX_SIDE = 384


def downscale(images: torch.Tensor, max_side: int = MAX_SIDE) -> torch.Tensor:
    """``(B, H, W, C)`` images shrunk (area filter) so the longer side is <= ``max_side``."""
    h, w = images.shape[1:3]
    scale = max_side / max(h, w)
    if scale >= 1:
        return images
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(images.movedim(-1, 1).float(), size=size, mode="area").movedim(1, -1)


def save_temp(images: torch.Tensor, prefix: str) -> list[dict]:
    """Write ``(B, H, W, 3)`` images to the temp folder; return the UI image references."""
    saver = comfy_nodes.PreviewImage()
    return saver.save_images(downscale(images.detach()).clamp(0, 1), filename_prefix=prefix)["ui"]["images"]


def latent_to_rgb(model, samples: torch.Tensor, scale: int = 8) -> torch.Tensor:
    """A cheap approximate RGB of latents (the sampler-preview projection), pixel-sized
    (``scale`` pixels per latent pixel).

    Used for the viewer when no VAE is connected: it shows where things are, not detail.
    """
    fmt = model.get_model_object("latent_format")
    factors = getattr(fmt, "latent_rgb_factors", None)
    samples = samples.reshape(samples.shape[0], samples.shape[1], *samples.shape[-2:])  # one frame
    if factors is None:
        rgb = samples.new_full((samples.shape[0], samples.shape[2], samples.shape[3], 3), 0.5)
    else:
        weight = torch.tensor(factors, dtype=torch.float32).t()
        bias = getattr(fmt, "latent_rgb_factors_bias", None)
        bias = torch.tensor(bias, dtype=torch.float32) if bias is not None else None
        rgb = F.linear(samples.float().movedim(1, -1), weight, bias)
        rgb = ((rgb + 1) / 2).clamp(0, 1)
    return F.interpolate(rgb.movedim(-1, 1), scale_factor=scale, mode="bilinear",
                         align_corners=False).movedim(1, -1).clamp(0, 1)


def mask_to_rgb(mask: torch.Tensor) -> torch.Tensor:
    return mask.float().unsqueeze(-1).expand(-1, -1, -1, 3)


def localizer_viewer(candidates: torch.Tensor | None, mask: torch.Tensor, heatmap: torch.Tensor,
                     mask_ratio: float, candidate_refs: list[dict] | None = None) -> dict:
    """The UI payload of the localizer: per-candidate image, mask and heatmap previews.

    Keys (each a list, as ComfyUI's UI outputs are): ``lotts_candidates``,
    ``lotts_masks``, ``lotts_heatmaps`` -- image references in candidate order -- and
    ``lotts_mask_ratio``. ``candidate_refs``: previews of the candidates already written
    (LoTTS Sampler's ranked thumbnails), used instead of writing ``candidates`` again.
    """
    return {
        "lotts_candidates": (candidate_refs if candidate_refs is not None
                             else save_temp(candidates, "LoTTS_candidate")),
        "lotts_masks": save_temp(mask_to_rgb(mask), "LoTTS_mask"),
        "lotts_heatmaps": save_temp(heatmap, "LoTTS_heatmap"),
        "lotts_mask_ratio": [float(mask_ratio)],
    }


def scores_ui(ranked_images: torch.Tensor, scores: list[float], labels: list[str],
              verifier_name: str, picked: int = 1) -> dict:
    """The UI payload of the score badges (js/lotts.js): ranked thumbnails with their
    score and lineage. Key ``lotts_scores``: a one-element list holding
    ``{verifier, scores, labels, picked, images}``, every list best first; the first
    ``picked`` images are the ones the node returned as best."""
    return {"lotts_scores": [{
        "verifier": verifier_name,
        "scores": [float(s) for s in scores],
        "labels": list(labels),
        "picked": int(picked),
        "images": save_temp(ranked_images, "LoTTS_ranked"),
    }]}
