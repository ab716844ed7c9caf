"""Defect localization: from three attention maps to a binary mask (the paper's ①-④).

Maps are ``(B, h, w)`` on the attention token grid, one per image; the self-attention
matrix is ``(B, h*w, h*w)`` with rows that sum to 1. Every function is batch-wise: each
image gets its own map and its own mask.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# ② is the paper's ("always"); "auto" skips it per image when self-attention carries no
# structure; "off" is the ablation.
PROPAGATION_MODES = ("always", "auto", "off")
# Rows whose mean entropy is above this share of log(N) attend to almost everything
# alike: exp(0.98 log N) is 92 % of the positions at N = 64 and 90 % at N = 256 -- SA @ CA
# is then the map's global mean plus rounding, and min-max scaling ranks by the rounding.
# A trained toy U-Net (benchmarks/toy, B6) sits at 0.99; local attention (3x3 rows) at 0.5.
STRUCTURELESS_ENTROPY = 0.98
# A map whose spread is this small against its magnitude is float rounding: no ranking.
FLAT_TOLERANCE = 1e-5


def check_mask_ratio(ratio: float) -> None:
    """r, the share of the image re-sampled, is in (0, 1]."""
    if not (0.0 < float(ratio) <= 1.0):
        raise ValueError(f"mask_ratio must be in (0, 1], got {ratio}: it is the share of "
                         "the image that is re-sampled (the paper's best is 0.5)")


def check_prior_weight(prior_weight: float) -> None:
    """lambda, the weight of the prompt's own attention, is >= 0."""
    if prior_weight < 0:
        raise ValueError(f"prior_weight must be >= 0, got {prior_weight}: it weighs the "
                         "prompt's own attention (0 = contrast only)")


def contrast(ca_neg: torch.Tensor, ca_pos: torch.Tensor) -> torch.Tensor:
    """① Prompt-driven discrimination: ``CA_diff = CA_neg - CA_pos``.

    Large where the image answers the "low-quality" prompt more than the "high-quality"
    one: the candidate's weak regions.
    """
    if ca_neg.shape != ca_pos.shape:
        raise ValueError(f"CA_neg {tuple(ca_neg.shape)} and CA_pos {tuple(ca_pos.shape)} differ in shape")
    return ca_neg - ca_pos


def propagate(sa: torch.Tensor, ca: torch.Tensor) -> torch.Tensor:
    """② Context-aware propagation: ``CA' = SA @ CA``.

    Each position takes the attention-weighted average of the map over the positions it
    attends to, which turns the speckled difference map into coherent regions. With the
    identity as ``sa`` it is a no-op.
    """
    b, h, w = ca.shape
    if sa.shape != (b, h * w, h * w):
        raise ValueError(f"self-attention {tuple(sa.shape)} does not match maps {tuple(ca.shape)}: "
                         f"expected {(b, h * w, h * w)}")
    return torch.bmm(sa.float(), ca.reshape(b, h * w, 1).float()).view(b, h, w)


def self_attention_entropy(sa: torch.Tensor) -> torch.Tensor:
    """Mean row entropy of ``sa`` (B, N, N) as a share of its maximum log N: ``(B,)``.

    1: every row is uniform (self-attention says nothing about the image's structure);
    the identity gives 0.
    """
    n = sa.shape[-1]
    if n < 2:
        return torch.zeros(sa.shape[0])
    p = sa.float().clamp_min(0)
    p = p / p.sum(-1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny)
    h = -(p * p.clamp_min(torch.finfo(p.dtype).tiny).log()).sum(-1)
    return h.mean(-1) / math.log(n)


def flat_maps(maps: torch.Tensor, allowed: torch.Tensor | None = None,
              rel_tol: float = FLAT_TOLERANCE) -> torch.Tensor:
    """``(B,)`` bool: the map carries no ranking -- its spread (over the ``allowed``
    positions, default all) is within ``rel_tol`` of its magnitude, i.e. float rounding.
    """
    flat = maps.reshape(maps.shape[0], -1).float()
    ok = torch.ones_like(flat, dtype=torch.bool) if allowed is None else allowed.reshape(flat.shape) > 0
    hi = flat.masked_fill(~ok, float("-inf")).max(1).values
    lo = flat.masked_fill(~ok, float("inf")).min(1).values
    scale = flat.abs().masked_fill(~ok, 0).max(1).values
    return ~ok.any(1) | (hi - lo <= rel_tol * scale)


def normalize(maps: torch.Tensor) -> torch.Tensor:
    """Min-max scale each image's map to [0, 1]; a flat map (constant, or varying only by
    float rounding: :func:`flat_maps`) becomes all zeros rather than amplified rounding.

    The two maps added in ③ live on different scales (a difference of probabilities vs.
    a probability); this puts them on a common one so ``prior_weight`` means the same
    thing for every model and prompt.
    """
    flat = maps.reshape(maps.shape[0], -1).float()
    lo = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - lo
    keep = (span > 0) & ~flat_maps(maps).view(-1, 1)
    out = torch.where(keep, (flat - lo) / span.clamp_min(torch.finfo(flat.dtype).tiny),
                      torch.zeros_like(flat))
    return out.view_as(maps)


def reweight(ca_diff: torch.Tensor, ca_orig: torch.Tensor, prior_weight: float) -> torch.Tensor:
    """③ Semantic-guided reweighting: ``P = norm(CA'_diff) + lambda * norm(CA'_orig)``.

    The original prompt's attention is a foreground prior: defects that matter sit on
    the subject, not in the empty background.
    """
    check_prior_weight(prior_weight)
    return normalize(ca_diff) + prior_weight * normalize(ca_orig)


def top_ratio_mask(p: torch.Tensor, ratio: float, allowed: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """④ Quality-aware mask: ``M = 1[P > Perc(P, 1 - r)]``, exactly ``round(r*h*w)`` ones.

    Implemented as "the k highest positions" with k = round(r * positions), at least 1,
    so the area is exact whatever the ties. Ties (and constant maps) are broken
    deterministically by raster order: the earlier position wins.

    ``allowed`` (same shape, 0/1): only those positions may be chosen and r is the share
    *of them* (an inpainting mask: LoTTS only re-samples where the user allowed). An
    image with no allowed position gets an empty mask.
    """
    check_mask_ratio(ratio)
    b = p.shape[0]
    flat = p.reshape(b, -1).float()
    n = flat.shape[1]
    if allowed is None:
        ok = torch.ones_like(flat, dtype=torch.bool)
    else:
        ok = allowed.reshape(b, -1) > 0
        flat = flat.masked_fill(~ok, float("-inf"))
    mask = torch.zeros_like(flat)
    # A stable descending sort keeps equal values in raster order.
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    for i in range(b):
        count = int(ok[i].sum())
        keep = min(count, max(1, int(round(float(ratio) * count)))) if count else 0
        mask[i, order[i, :keep]] = 1.0
    return mask.view_as(p)


def check_propagation(mode: str) -> None:
    if mode not in PROPAGATION_MODES:
        raise ValueError(f"propagation must be one of {', '.join(PROPAGATION_MODES)}; got "
                         f"{mode!r}")


def propagate_guarded(sa: torch.Tensor | None, maps: list[torch.Tensor], mode: str = "always",
                      max_entropy: float = STRUCTURELESS_ENTROPY
                      ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor | None]:
    """② on every map of ``maps`` (one batch), per ``mode``:

    - "always": ``SA @ CA`` whatever SA is (the paper);
    - "auto": per image, only where SA's mean normalised row entropy
      (:func:`self_attention_entropy`) is at most ``max_entropy`` -- near-uniform rows
      would wash a good map out to its mean -- else the map is kept as it is;
    - "off": no propagation (the ablation; ``sa`` may be None).

    Returns ``(maps, propagated (B,) bool, entropy (B,) or None without SA)``.
    """
    check_propagation(mode)
    b = maps[0].shape[0]
    entropy = None if sa is None else self_attention_entropy(sa)
    if mode == "off":
        return [m.float() for m in maps], torch.zeros(b, dtype=torch.bool), entropy
    if sa is None:
        raise ValueError("propagation needs the self-attention matrix")
    use = torch.ones(b, dtype=torch.bool) if mode == "always" else entropy <= max_entropy
    keep = use.view(-1, 1, 1).to(maps[0].device)
    return [torch.where(keep, propagate(sa, m), m.float()) for m in maps], use, entropy


def uninformative(p: torch.Tensor, ratio: float, allowed: torch.Tensor | None = None
                  ) -> torch.Tensor:
    """``(B,)`` bool: P is flat where the mask would need its ranking (fewer than all
    allowed positions kept) -- its top-r mask would be the first positions in raster
    order, a top-left block that looks like a finding."""
    flat = flat_maps(p, allowed)
    counts = (torch.ones_like(p) if allowed is None else (allowed > 0).float()).reshape(
        p.shape[0], -1).sum(1)
    keep = torch.clamp(torch.round(float(ratio) * counts), min=1)
    return flat & (counts > 0) & (torch.minimum(counts, keep) < counts)


def check_informative(p: torch.Tensor, ratio: float, allowed: torch.Tensor | None = None,
                      first_index: int = 0) -> None:
    """Refuse a flat P (:func:`uninformative`); candidates are numbered from
    ``first_index`` in the message."""
    bad = uninformative(p, ratio, allowed)
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise ValueError(
            f"candidate {first_index + i}: the defect score P is flat -- the attention "
            "maps carry no ranking here, so a top-r mask would be an arbitrary "
            "(raster-order) block. Try another probe_step, check that the prompt "
            "describes this image, or set mask_ratio to 1.0 to re-sample it whole.")


def localize(ca_orig: torch.Tensor, ca_pos: torch.Tensor, ca_neg: torch.Tensor,
             sa: torch.Tensor | None, ratio: float, prior_weight: float,
             *, use_propagation: bool = True, use_contrast: bool = True,
             allowed: torch.Tensor | None = None, propagation: str = "always",
             report: dict | None = None, first_index: int = 0, on_flat: str = "refuse"
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole localization: ① contrast, ② propagate, ③ reweight, ④ top-r mask.

    Returns ``(mask, P)``, both ``(B, h, w)``. ``use_propagation`` / ``use_contrast`` turn
    stages off for the paper's ablations (``use_propagation=False`` is
    ``propagation="off"``); ``sa`` may be None only without propagation. ``propagation``:
    see :func:`propagate_guarded`. ``allowed`` restricts the mask (see
    :func:`top_ratio_mask`). A flat P is refused (:func:`check_informative`, candidates
    numbered from ``first_index``), or with ``on_flat="empty"`` gets an empty mask (a
    search skips it and says so). ``report`` (a dict), when given, receives per image
    ``propagated`` (bool), ``self_attention_entropy`` (None without SA) and ``flat``
    (bool: its P carried no ranking).
    """
    diff = contrast(ca_neg, ca_pos) if use_contrast else torch.zeros_like(ca_orig)
    mode = propagation if use_propagation else "off"
    (diff, orig), used, entropy = propagate_guarded(sa, [diff, ca_orig], mode)
    p = reweight(diff, orig, prior_weight)
    if on_flat == "refuse":
        check_informative(p, ratio, allowed, first_index)
        flat = torch.zeros(p.shape[0], dtype=torch.bool)
    elif on_flat == "empty":
        flat = uninformative(p, ratio, allowed)
    else:
        raise ValueError(f"on_flat must be 'refuse' or 'empty'; got {on_flat!r}")
    mask = top_ratio_mask(p, ratio, allowed)
    mask = torch.where(flat.view(-1, 1, 1).to(mask.device), torch.zeros_like(mask), mask)
    if report is not None:
        report["propagated"] = used.tolist()
        report["self_attention_entropy"] = None if entropy is None else entropy.tolist()
        report["flat"] = flat.tolist()
    return mask, p


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of ``(B, h, w)`` masks to ``size`` (stays binary).

    Works for any aspect ratio: a non-square grid maps to a non-square image.
    """
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask.float()
    return F.interpolate(mask.unsqueeze(1).float(), size=tuple(size), mode="nearest-exact").squeeze(1)


def grow_mask(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Dilate ``(B, H, W)`` masks by ``pixels`` (square structuring element)."""
    if pixels <= 0:
        return mask
    k = 2 * pixels + 1
    return F.max_pool2d(mask.unsqueeze(1).float(), k, stride=1, padding=pixels).squeeze(1)


def feather_mask(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Soften mask edges with a separable Gaussian of radius ``pixels`` (sigma = pixels/2).

    Inside/outside values far from an edge stay exactly 1/0; only a band of ``pixels``
    around the edge becomes fractional. Edges of the image are replicate-padded so a mask
    touching the border does not fade there.
    """
    if pixels <= 0:
        return mask
    sigma = pixels / 2.0
    x = torch.arange(-pixels, pixels + 1, dtype=torch.float32, device=mask.device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    m = mask.unsqueeze(1).float()
    m = F.pad(m, (pixels, pixels, pixels, pixels), mode="replicate")
    m = F.conv2d(m, kernel.view(1, 1, 1, -1))
    m = F.conv2d(m, kernel.view(1, 1, -1, 1))
    return m.squeeze(1).clamp(0.0, 1.0)


def grid_to_latent(maps: torch.Tensor, factor: int, latent_hw: tuple[int, int], *,
                   smooth: bool = False) -> torch.Tensor:
    """``(B, h, w)`` maps on an attention grid brought onto the latent's own grid.

    Cell ``(i, j)`` covers latent pixels ``[i*factor, (i+1)*factor)`` (and likewise for
    j): the grid spans the latent padded up to ``grid * factor`` -- a DiT pads the
    latent to its patch size, a U-Net's stride-2 convolutions round odd sides up -- so
    the padded cells are cropped, never stretched over the image. ``smooth`` upsamples
    bilinearly (heatmaps); otherwise each cell is repeated (masks stay binary).
    """
    h, w = latent_hw
    gh, gw = maps.shape[-2:]
    if not (gh * factor >= h > (gh - 1) * factor and gw * factor >= w > (gw - 1) * factor):
        raise ValueError(f"a {gh}x{gw} grid at {factor} latent pixels per cell does not "
                         f"cover a {h}x{w} latent")
    if smooth:
        up = F.interpolate(maps.unsqueeze(1).float(), size=(gh * factor, gw * factor),
                           mode="bilinear", align_corners=False).squeeze(1)
    else:
        up = maps.float().repeat_interleave(factor, -2).repeat_interleave(factor, -1)
    return up[..., :h, :w]


def latent_to_grid(mask: torch.Tensor, factor: int, grid: tuple[int, int]) -> torch.Tensor:
    """A ``(B, H, W)`` latent-grid mask brought onto an attention grid of ``factor``
    latent pixels per cell (the inverse of :func:`grid_to_latent`): a cell is 1 where any
    of its latent pixels is (padded cells past the latent's edge hold none)."""
    gh, gw = grid
    padded = F.pad(mask.float(), (0, gw * factor - mask.shape[-1], 0, gh * factor - mask.shape[-2]))
    return F.max_pool2d(padded.unsqueeze(1), factor).squeeze(1)
