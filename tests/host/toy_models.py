"""The toy world's models: a small SD1.5-family U-Net trained on toy_world scenes, and
the tiny frozen random CLIP of the host tests (tiny_models.tiny_clip, seed 0).

Two variants, both with attention only on an 8x8 token grid:

- ``16``: 16x16 latents, channel_mult [1, 2], attention at 1/2 (the U-Net's coarsest
  level; the localizer's choose_blocks takes it since nothing sits at 1/4);
- ``32``: 32x32 latents, channel_mult [1, 2, 2], attention at 1/4 only -- the level
  the localizer targets on a real SD1.5.

Weights are trained by benchmarks/toy/train.py and cached outside the repo
(``$LOTTS_TOY_CACHE``, default ~/.cache/lotts_toy/<variant>_s<seed>/).
"""

from __future__ import annotations

import functools
import os

import torch

from comfy_host import require_comfyui

require_comfyui()

import comfy.model_management as mm  # noqa: E402
import comfy.model_patcher  # noqa: E402
import comfy.supported_models  # noqa: E402
import comfy.utils  # noqa: E402

from tiny_models import CONTEXT, init_weights, tiny_clip  # noqa: E402

CLIP_SEED = 0
VARIANTS = ("16", "32")
TRAIN_SEEDS = (0, 1, 2)
# Training steps of the models the benchmarks use: what three seeds per variant reach in
# about an hour and a half on the 2 shared CPU cores these benchmarks were made on (16x16:
# ~0.25 step/s, 32x32: ~0.11 step/s with six runs side by side). Fixed counts, not
# wall-clock stops: the weights at step s are exactly what `train.py --steps s` trains.
STEPS = {"16": 4000, "32": 2000}


def unet_config(variant: str) -> dict:
    base = dict(use_checkpoint=False, image_size=32, out_channels=4, use_spatial_transformer=True,
                legacy=False, in_channels=4, model_channels=32, context_dim=CONTEXT,
                use_temporal_attention=False, use_temporal_resblock=False,
                adm_in_channels=None, num_heads=2, use_linear_in_transformer=False,
                transformer_depth_middle=1)
    if variant == "16":
        base.update(channel_mult=[1, 2], num_res_blocks=[1, 1], transformer_depth=[0, 1],
                    transformer_depth_output=[0, 0, 1, 1])
    elif variant == "32":
        base.update(channel_mult=[1, 2, 2], num_res_blocks=[1, 1, 1], transformer_depth=[0, 0, 1],
                    transformer_depth_output=[0, 0, 0, 0, 1, 1])
    else:
        raise ValueError(f"unknown toy variant {variant!r}; expected one of {VARIANTS}")
    return base


def latent_size(variant: str) -> int:
    return int(variant)


def build_unet(variant: str, init_seed: int = 0):
    """A fresh ModelPatcher (fp32, CPU) with seeded random weights."""
    cfg = comfy.supported_models.SD15(unet_config(variant))
    cfg.set_inference_dtype(torch.float32, None)
    model = cfg.get_model({}, "", device=torch.device("cpu"))
    init_weights(model.diffusion_model, init_seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


def cache_root() -> str:
    return os.environ.get("LOTTS_TOY_CACHE", os.path.expanduser("~/.cache/lotts_toy"))


def run_dir(variant: str, seed: int) -> str:
    return os.path.join(cache_root(), f"{variant}_s{seed}")


def weights_path(variant: str, seed: int, steps: int | None = None) -> str:
    """The EMA weights after ``steps`` training steps (a milestone snapshot of train.py),
    or the last ones it saved (None)."""
    name = "unet_ema.safetensors" if steps is None else f"unet_ema_{steps}.safetensors"
    return os.path.join(run_dir(variant, seed), name)


def load_trained(variant: str, seed: int, path: str | None = None):
    """The trained toy U-Net (EMA weights) as a ModelPatcher; a clear error if absent."""
    path = path or weights_path(variant, seed)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"no trained toy model at {path}: run "
            f"`COMFYUI_PATH=~/ComfyUI nice -n 10 ~/ComfyUI/.venv/bin/python benchmarks/toy/train.py "
            f"--variant {variant} --seed {seed}` first (benchmarks/README.md, B6).")
    mp = build_unet(variant)
    sd = comfy.utils.load_torch_file(path, safe_load=True)
    mp.model.diffusion_model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return mp


@functools.lru_cache(maxsize=1)
def toy_clip():
    """The frozen text encoder every toy model was trained with."""
    return tiny_clip(CLIP_SEED)


def encode_captions(clip, captions: list[str]) -> torch.Tensor:
    """(len, 77, CONTEXT) cross-attention contexts, as CLIPTextEncode makes them."""
    out = []
    for c in captions:
        cond = clip.encode_from_tokens_scheduled(clip.tokenize(c))
        out.append(cond[0][0][0])
    return torch.stack(out)
