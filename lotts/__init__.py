"""LoTTS core: localized test-time scaling for diffusion models, in pure torch.

This package holds the method's math (arXiv:2511.19917) and nothing of the host: it never
imports ComfyUI, so it is tested everywhere and usable from any diffusion code. The
ComfyUI nodes in ``nodes/`` are a thin layer over it.

Stages, one module each:
    prompts    quality-prompt templates ("A high-quality image of {p}" / "A low-quality ...")
    attention  running reductions of captured attention into maps (never per layer/head)
    localize   contrast -> propagation -> reweighting -> top-r mask, and mask resizing
    schedule   step arithmetic for refinement and the NFE each stage costs
    preview    heatmap colouriser and mask overlay for previews
    verifiers  ImageReward, HPSv2, PickScore, CLIP score, aesthetic (torch + transformers)
    eval       the score-vs-NFE evaluation runner (talks to ComfyUI servers over HTTP)

The torch-based names are imported only when torch is installed, so ``python -m
lotts.eval`` (stdlib + HTTP) and ``lotts.schedule`` work on a machine without torch.
"""

from .prompts import DEFAULT_NEGATIVE_TEMPLATE, DEFAULT_POSITIVE_TEMPLATE, quality_prompts
from .schedule import RefineSteps, best_of_n_nfe, lotts_nfe, nfe_per_step, refine_steps

try:
    import torch  # noqa: F401
except ImportError:  # the evaluation runner needs no torch
    torch = None

if torch is not None:
    from .attention import AttentionAccumulator, cross_attention_map, head_mean_attention
    from .localize import (contrast, propagate, normalize, reweight, top_ratio_mask,
                           localize, resize_mask, grow_mask, feather_mask)
    from .preview import colorize, overlay

__all__ = [
    "DEFAULT_NEGATIVE_TEMPLATE", "DEFAULT_POSITIVE_TEMPLATE", "quality_prompts",
    "AttentionAccumulator", "cross_attention_map", "head_mean_attention",
    "contrast", "propagate", "normalize", "reweight", "top_ratio_mask", "localize",
    "resize_mask", "grow_mask", "feather_mask",
    "RefineSteps", "refine_steps", "nfe_per_step", "lotts_nfe", "best_of_n_nfe",
    "colorize", "overlay",
]
