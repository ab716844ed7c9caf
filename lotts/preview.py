"""Pictures of what the localizer decided: a heatmap of P and a mask overlay.

Images follow ComfyUI's IMAGE convention, ``(B, H, W, 3)`` floats in [0, 1], so previews
can go straight to a Preview/Save node; maps and masks are ``(B, H, W)``.
"""

from __future__ import annotations

import torch

# A perceptually ordered dark-to-bright ramp (black -> purple -> orange -> pale yellow),
# the 'inferno' colour map sampled at five points; dark = keep, bright = re-sample.
_RAMP = torch.tensor([
    [0.001, 0.000, 0.014],
    [0.341, 0.062, 0.429],
    [0.735, 0.216, 0.330],
    [0.978, 0.557, 0.035],
    [0.988, 0.998, 0.645],
])


def colorize(maps: torch.Tensor) -> torch.Tensor:
    """Map ``(B, H, W)`` values to RGB with the ramp above, per image min-max scaled."""
    from .localize import normalize
    v = normalize(maps).clamp(0, 1) * (len(_RAMP) - 1)
    lo = v.floor().long().clamp(max=len(_RAMP) - 2)
    frac = (v - lo).unsqueeze(-1)
    ramp = _RAMP.to(maps.device)
    return ramp[lo] * (1 - frac) + ramp[lo + 1] * frac


def overlay(images: torch.Tensor, layer: torch.Tensor, opacity: float = 0.5,
            color: tuple[float, float, float] = (1.0, 0.0, 0.0)) -> torch.Tensor:
    """Blend ``layer`` over ``images``: ``out = img * (1 - a) + layer_rgb * a``.

    ``layer`` is a mask ``(B, H, W)`` -- painted in ``color`` with per-pixel alpha
    ``opacity * mask`` -- or an RGB heatmap ``(B, H, W, 3)`` blended with alpha ``opacity``.
    A batch of 1 on either side broadcasts; sizes must match (resize first).
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    if layer.ndim == 3:
        alpha = layer.unsqueeze(-1).float() * opacity
        rgb = torch.tensor(color, dtype=images.dtype, device=images.device)
    else:
        alpha = torch.full_like(layer[..., :1], opacity)
        rgb = layer
    if images.shape[1:3] != layer.shape[1:3]:
        raise ValueError(f"image {tuple(images.shape[1:3])} and overlay {tuple(layer.shape[1:3])} "
                         "sizes differ")
    return (images * (1 - alpha) + rgb * alpha).clamp(0, 1)
