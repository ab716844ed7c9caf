"""Shared fixtures-in-functions for the U-Net node tests."""

from __future__ import annotations

import functools

import torch

from comfy_host import load_pack, require_comfyui

require_comfyui()

import nodes as comfy_nodes  # noqa: E402

from tiny_models import encode, tiny_clip, tiny_sdxl_clip, tiny_unet  # noqa: E402

PROMPT = "a photo of a cat"


from comfy_host import run_node  # noqa: E402,F401  (the tests' way to execute a node)


@functools.lru_cache(maxsize=None)
def models(kind="sd15"):
    """(model, clip, positive, negative); SDXL gets its two-encoder CLIP (L + G)."""
    model, clip = tiny_unet(kind), (tiny_sdxl_clip() if kind == "sdxl" else tiny_clip())
    return model, clip, encode(clip, PROMPT), encode(clip, "blurry, ugly")


def empty_latent(h=16, w=16):
    return {"samples": torch.zeros(1, 4, h, w)}


def stock_ksampler(model, pos, neg, latent, seed, steps=4, cfg=7.0, sampler="euler",
                   scheduler="normal", denoise=1.0):
    return comfy_nodes.KSampler().sample(model, seed, steps, cfg, sampler, scheduler, pos, neg,
                                         latent, denoise=denoise)[0]["samples"]


def freeze(obj):
    """A comparable snapshot of a nested options dict; callables compared by identity."""
    if isinstance(obj, dict):
        return {k: freeze(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(freeze(v) for v in obj)
    if isinstance(obj, torch.Tensor):
        return ("tensor", obj.data_ptr(), tuple(obj.shape))
    if callable(obj):
        return ("callable", id(obj))
    return obj


def model_state(model):
    return (freeze(model.model_options), freeze(model.patches), freeze(model.object_patches),
            model.patches_uuid)


def pack_module(name: str):
    """A module of the pack as ComfyUI loaded it, e.g. pack_module("nodes.localizer")."""
    import sys
    return sys.modules[f"{load_pack().__name__}.{name}"]
