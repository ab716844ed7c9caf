"""Masks from captured attention under every setting the benchmarks compare, the
baselines (random, high-pass filter, the grid's oracle) and the scores against a
planted defect. Pure torch on top of the pack's core (lotts.localize, lotts.prompts,
lotts.attention), loaded through the adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

import adapter
import toy_world as tw


@dataclass(frozen=True)
class Settings:
    """One way of turning captured attention into a mask.

    ``contrast_tokens``: "content" (the node's "all content tokens", the paper's
    reading) or "differing" (its "where the templates differ"). ``prior_tokens``:
    "content" or "subject" (the tokens of the scene's colour and shape words -- what a
    user would name as the subject; the node has no such input). ``propagation``: a mode
    of lotts.localize.propagate_guarded. ``contrast``: +1 (neg - pos), -1 (reversed),
    0 (none).
    """
    contrast: int = 1
    contrast_tokens: str = "content"
    prior_weight: float = 0.5
    prior_tokens: str = "content"
    propagation: str = "always"


NODE = Settings()
ABLATIONS = {
    "no contrast (prior only)": replace(NODE, contrast=0),
    "no propagation": replace(NODE, propagation="off"),
    "no prior (lambda 0)": replace(NODE, prior_weight=0.0),
    "reversed contrast": replace(NODE, contrast=-1),
}
FIXES = {
    "contrast on differing tokens": replace(NODE, contrast_tokens="differing"),
    "propagation auto (entropy guard)": replace(NODE, propagation="auto"),
    "prior on subject words": replace(NODE, prior_tokens="subject"),
    "differing tokens + auto": replace(NODE, contrast_tokens="differing", propagation="auto"),
    "differing tokens, no prior": replace(NODE, contrast_tokens="differing", prior_weight=0.0),
    "differing tokens, no propagation": replace(NODE, contrast_tokens="differing",
                                                 propagation="off"),
}


def subject_ids(clip, caption: str) -> set[int]:
    """Token ids of the caption's colour and shape words (the toy's subject words)."""
    words = [w for w in caption.split() if w in tw.COLOURS or w in tw.SHAPES]
    return {t for w in words for t in adapter.token_ids(clip, w)[1:-1] if t != 49407}


def maps(rec: dict, s: Settings, subject: set[int] | None = None):
    """(CA_diff, CA_orig) on the token grid, before propagation, for settings ``s``."""
    att, prompts = adapter.core("attention"), adapter.core("prompts")
    h, w = rec["grid"]
    wts, ids, tok = rec["weights"], rec["ids"], rec["tokens"]
    if s.contrast_tokens == "differing":
        w_pos = torch.tensor(prompts.differing_tokens(ids[1], wts[1], ids[2], wts[2]))
        w_neg = torch.tensor(prompts.differing_tokens(ids[2], wts[2], ids[1], wts[1]))
    else:
        w_pos, w_neg = wts[1], wts[2]
    ca_pos = att.cross_attention_map(tok[1], w_pos).view(-1, h, w)
    ca_neg = att.cross_attention_map(tok[2], w_neg).view(-1, h, w)
    w_orig = select_tokens(ids[0], wts[0], subject) if s.prior_tokens == "subject" else wts[0]
    ca_orig = att.cross_attention_map(tok[0], w_orig).view(-1, h, w)
    diff = (ca_neg - ca_pos) * s.contrast
    return diff, ca_orig


def select_tokens(ids: list[int], content: torch.Tensor, wanted: set[int]) -> torch.Tensor:
    """1 on the content tokens whose id is in ``wanted``, else 0; the content mask itself
    if none matches."""
    out = torch.tensor([1.0 if (w > 0 and t in wanted) else 0.0
                        for t, w in zip(ids, content.tolist())])
    return out if out.sum() > 0 else content.float()


def score_map(rec: dict, s: Settings, subject: set[int] | None = None):
    """P for settings ``s`` and whether it was propagated."""
    loc = adapter.core("localize")
    diff, orig = maps(rec, s, subject)
    (diff, orig), used, _ = loc.propagate_guarded(rec["sa"], [diff, orig], s.propagation)
    return loc.reweight(diff, orig, s.prior_weight), bool(used[0])


def describe_blocks(info: dict) -> str:
    """The localizer's blocks as its ``lotts_localizer`` payload names them."""
    return (f"attention blocks {', '.join(info['blocks'])} ({info['grid'][0]}x{info['grid'][1]} "
            "tokens)")


def grid_mask(p: torch.Tensor, ratio: float, size: int) -> torch.Tensor:
    """Top-r mask of grid scores ``p`` (1, h, w), at latent resolution (1, S, S)."""
    loc = adapter.core("localize")
    return loc.resize_mask(loc.top_ratio_mask(p, ratio), (size, size))


def grid_scores_random(grid, seed: int) -> torch.Tensor:
    return torch.rand(1, *grid, generator=torch.Generator().manual_seed(seed))


def grid_scores_high_pass(latent: torch.Tensor, grid) -> torch.Tensor:
    """Mean Laplacian energy of each grid cell: the plain high-frequency filter."""
    e = tw.high_frequency_energy(latent.unsqueeze(0))
    return F.adaptive_avg_pool2d(e.unsqueeze(1), grid).squeeze(1)


def grid_scores_oracle(defect: torch.Tensor, grid) -> torch.Tensor:
    """Share of each grid cell the defect covers: the best any grid mask can do."""
    return F.adaptive_avg_pool2d(defect.float()[None, None], grid).squeeze(1)


def hit_iou(mask: torch.Tensor, defect: torch.Tensor) -> tuple[float, float]:
    """(share of the defect inside the mask, intersection over union), latent resolution."""
    m, d = mask.reshape(-1) > 0.5, defect.reshape(-1)
    inter = float((m & d).sum())
    return inter / max(1.0, float(d.sum())), inter / max(1.0, float((m | d).sum()))


def contrast_change(rec: dict, clean: dict) -> torch.Tensor:
    """How much the planted defect raised the raw contrast (node's tokens, before
    propagation) against the same scene without it: (1, h, w). A diagnostic, not a
    method -- it needs the clean image -- that says whether attention responds to a
    defect type at all."""
    return maps(rec, NODE)[0] - maps(clean, NODE)[0]


def prior_on_objects(rec: dict, support: torch.Tensor) -> float:
    """Mean CA_orig (content tokens, before propagation) on the grid cells the objects
    cover over its mean on the background: > 1 is a foreground prior."""
    orig = maps(rec, NODE)[1][0]
    cover = F.adaptive_avg_pool2d(support.float()[None, None], orig.shape).squeeze()
    on, off = orig[cover > 0.5], orig[cover <= 0.5]
    if on.numel() == 0 or off.numel() == 0:
        return float("nan")
    return float(on.mean() / off.mean())
