"""Capturing a model's attention during one probe pass, through ComfyUI's patch API.

All patches are set on a ``model.clone()`` (never on the user's MODEL). Every patch
returns the ordinary attention output computed by ComfyUI's own kernel (the model's
behaviour is unchanged) and folds the attention probabilities into an
:class:`lotts.attention.AttentionAccumulator` -- a running reduction, so nothing is kept
per layer or per head. Maps are kept on the latent/4 grid for every backbone.

U-Net (SD1.x, SD2.x, SDXL) -- attn1/attn2 *replace* patches on the chosen blocks.
DiT (FLUX, SD3/3.5) -- text and image tokens share one joint attention ([txt, img]).
A "dit" double-block replace patch marks which block is running (and how many text and
image tokens it has); an ``optimized_attention_override`` sees that block's q/k and
slices image->text (cross) and image->image (self) attention out of it.
Which blocks is a method choice: lotts/blocks.py. Self-attention at the DiT's latent/2
token grid is pooled 2x2 on the fly onto the latent/4 grid: 4096 image tokens at 1024px
become a 1024 x 1024 matrix.
"""

from __future__ import annotations

import torch

import comfy.samplers
from comfy.ldm.modules.attention import SpatialTransformer, optimized_attention
from comfy.ldm.modules.diffusionmodules.openaimodel import Downsample, Upsample

from ..lotts.attention import AttentionAccumulator, pooled_size
from ..lotts.blocks import choose_unet_blocks, dit_capture_blocks


def is_unet(diffusion_model) -> bool:
    return all(hasattr(diffusion_model, a) for a in ("input_blocks", "middle_block", "output_blocks"))


def dit_blocks(diffusion_model) -> list[int] | None:
    """Indices of the joint-attention blocks to capture on a DiT, or None if not a DiT."""
    blocks = getattr(diffusion_model, "double_blocks", None)  # FLUX
    if blocks is None:
        blocks = getattr(diffusion_model, "joint_blocks", None)  # SD3 / SD3.5 (MMDiT)
    if blocks is None or len(blocks) == 0:
        return None
    if any(getattr(b, "flipped_img_txt", False) for b in blocks):
        raise ValueError("this DiT orders image tokens before text tokens; the localizer "
                         "supports FLUX and SD3-style [text, image] joint attention.")
    return dit_capture_blocks(len(blocks))


def unet_attention_blocks(diffusion_model) -> list[tuple[str, int, int]]:
    """(block name, index, down-sampling factor) of every U-Net block with attention."""
    if not is_unet(diffusion_model):
        raise ValueError(f"not a U-Net: {type(diffusion_model).__name__}")

    def has(block, cls):
        return any(isinstance(m, cls) for m in block.modules())

    found, level = [], 0
    for i, block in enumerate(diffusion_model.input_blocks):
        if has(block, Downsample):
            level += 1
        if has(block, SpatialTransformer):
            found.append(("input", i, 2 ** level))
    if diffusion_model.middle_block is not None and has(diffusion_model.middle_block, SpatialTransformer):
        found.append(("middle", 0, 2 ** level))
    for i, block in enumerate(diffusion_model.output_blocks):
        if has(block, SpatialTransformer):
            found.append(("output", i, 2 ** level))
        if has(block, Upsample):
            level -= 1
    return found


def downsampled(size: tuple[int, int], factor: int) -> tuple[int, int]:
    """A latent side after log2(factor) stride-2 down-samplings, each rounding up
    (a U-Net's padded 3x3 convolutions; a DiT's patchify of a padded latent)."""
    h, w = size
    while factor > 1:
        h, w, factor = -(-h // 2), -(-w // 2), factor // 2
    return h, w


class UNetRecorder:
    """Receives attn1 (self) and attn2 (cross) calls of the chosen U-Net blocks.

    ``token_weights[c]`` is the content-token mask of conditioning c (c indexes the list
    of conditionings given to the probe, which ComfyUI reports per batch chunk in
    ``cond_or_uncond``). Self-attention is kept for conditioning 0 (the user's prompt)
    only: it describes the image's own structure, which is what propagation needs.

    ``grid`` is the chosen level's token grid for the whole latent. A call at another
    grid comes from an area-restricted conditioning entry (ComfyUI crops the latent to
    the area): it is not recorded, since its positions are not the image's.
    """

    attention = "cross"

    def __init__(self, token_weights: dict[int, torch.Tensor], grid: tuple[int, int],
                 factor: int, blocks: list[tuple[str, int]]):
        self.token_weights = token_weights
        self.grid, self.factor = tuple(grid), factor
        self.blocks = [f"{name} {idx}" for name, idx in blocks]
        self.acc = AttentionAccumulator(self.grid)

    def _chunks(self, q, k, extra_options):
        conds = extra_options["cond_or_uncond"]
        if tuple(extra_options["activations_shape"][-2:]) != self.grid:
            return []
        return list(zip(conds, q.chunk(len(conds)), k.chunk(len(conds))))

    def attn1(self, q, k, v, extra_options):
        out = optimized_attention(q, k, v, extra_options["n_heads"],
                                  attn_precision=extra_options.get("attn_precision"))
        for c, qc, kc in self._chunks(q, k, extra_options):
            if c == 0:
                self.acc.add_self(qc, kc, extra_options["n_heads"], self.grid)
        return out

    def attn2(self, q, k, v, extra_options):
        out = optimized_attention(q, k, v, extra_options["n_heads"],
                                  attn_precision=extra_options.get("attn_precision"))
        for c, qc, kc in self._chunks(q, k, extra_options):
            self.acc.add_cross(c, qc, kc, extra_options["n_heads"], self.token_weights[c],
                               self.grid)
        return out

    def patch(self, model_clone, blocks) -> None:
        for name, idx in blocks:
            model_clone.set_model_attn1_replace(self.attn1, name, idx)
            model_clone.set_model_attn2_replace(self.attn2, name, idx)


class DiTRecorder:
    """Slices image->text and image->image attention out of a DiT's joint attention.

    ``image_grid`` is the DiT's token grid (latent/2: patch size 2, padded up); maps are
    kept on it pooled by 2 (ceil), the latent/4 grid every backbone localizes on.
    Image->text comes from the joint softmax over [text, image] keys, as the model
    computes it; image->image is renormalised over the image keys
    (lotts.attention.joint_attention_maps says why).
    """

    attention = "joint"

    def __init__(self, token_weights: dict[int, torch.Tensor], image_grid: tuple[int, int],
                 patch: int = 2, blocks: list[int] = ()):
        self.token_weights = token_weights
        self.image_grid = tuple(image_grid)
        self.acc = AttentionAccumulator(pooled_size(self.image_grid, 2))
        self.factor = 2 * patch
        self.blocks = [f"joint {i}" for i in blocks]
        self.active: tuple[int, int] | None = None

    def block(self, args, extra):
        """dit double-block replace: mark the block as captured while it runs."""
        self.active = (args["txt"].shape[1], args["img"].shape[1])
        try:
            return extra["original_block"](args)
        finally:
            self.active = None

    def override(self, previous):
        """optimized_attention_override: keep the output (chaining any earlier override)."""
        def attention(func, *args, **kwargs):
            out = previous(func, *args, **kwargs) if previous is not None else func(*args, **kwargs)
            if self.active is not None:
                self._capture(*args, **kwargs)
            return out
        return attention

    def _capture(self, q, k, v, heads=None, *rest, skip_reshape=False, transformer_options=None, **kw):
        heads = heads if heads is not None else kw.get("heads")
        txt, img = self.active
        q4 = q if skip_reshape else q.view(q.shape[0], q.shape[1], heads, -1).transpose(1, 2)
        k4 = k if skip_reshape else k.view(k.shape[0], k.shape[1], heads, -1).transpose(1, 2)
        if q4.shape[2] != txt + img:
            return  # not the joint attention (e.g. SD3.5's extra image-only attention)
        if img != self.image_grid[0] * self.image_grid[1]:
            return  # an area-restricted conditioning entry: not the whole image
        conds = (transformer_options or {}).get("cond_or_uncond", [0])
        for c, qc, kc in zip(conds, q4.chunk(len(conds)), k4.chunk(len(conds))):
            w = self.token_weights[c]
            if w.shape[0] != txt:
                raise RuntimeError(f"conditioning {c} has {txt} text tokens in the joint "
                                   f"attention but its prompt tokenized to {w.shape[0]}")
            self.acc.add_joint(c, qc[:, :, txt:], kc, txt, heads=heads, token_weights=w,
                               grid=self.image_grid, with_self=c == 0)

    def patch(self, model_clone, blocks) -> None:
        for i in blocks:
            model_clone.set_model_patch_replace(self.block, "dit", "double_block", i)
        options = model_clone.model_options.setdefault("transformer_options", {})
        options["optimized_attention_override"] = self.override(
            options.get("optimized_attention_override"))


def make_recorder(model, token_weights: dict[int, torch.Tensor], latent_shape):
    """The recorder for ``model``'s backbone and the blocks it patches.

    Returns ``(recorder, blocks)``; call ``recorder.patch(model.clone(), blocks)``.
    ``recorder.factor`` is the latent pixels per kept grid cell: the kept grid covers
    the latent padded up to ``grid * factor`` (lotts.localize.grid_to_latent crops it).
    """
    dm = model.get_model_object("diffusion_model")
    latent_hw = tuple(latent_shape[-2:])
    if is_unet(dm):
        blocks, factor = choose_unet_blocks(unet_attention_blocks(dm))
        return UNetRecorder(token_weights, downsampled(latent_hw, factor), factor, blocks), blocks
    blocks = dit_blocks(dm)
    if blocks is None:
        raise ValueError(f"LoTTS Defect Localizer supports U-Nets (SD1.x, SD2.x, SDXL) and "
                         f"joint-attention DiTs (FLUX, SD3/3.5); this MODEL is a "
                         f"{type(dm).__name__}.")
    h, w = latent_hw
    patch = getattr(dm, "patch_size", None)  # FLUX
    if patch is None:  # SD3: on its patch embedder, as a tuple
        patch = getattr(getattr(dm, "x_embedder", None), "patch_size", (2, 2))[0]
    grid = (-(-h // patch), -(-w // patch))  # the DiT pads the latent up to the patch size
    return DiTRecorder(token_weights, grid, patch, blocks), blocks


class ProbeGuider(comfy.samplers.CFGGuider):
    """A guider that evaluates the model once per conditioning.

    ComfyUI's own conditioning pipeline (areas, SDXL size conditioning, hooks, model
    loading) prepares the conditionings, so the probe sees the model exactly as a
    sampler would. The conditionings go at most two at a time -- the batch of an
    ordinary CFG step -- so the probe never needs more memory than sampling does
    (three at once cost 1.5x: benchmarks/b2_localizer_cost.py).
    """

    GROUP = 2

    def __init__(self, model_patcher, conds: list):
        super().__init__(model_patcher)
        self.count = len(conds)
        self.inner_set_conds({str(i): c for i, c in enumerate(conds)})

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        conds = [self.conds[str(i)] for i in range(self.count)]
        out = None
        for start in range(0, self.count, self.GROUP):
            # None entries keep each conditioning's index (what cond_or_uncond reports)
            group = [c if start <= i < start + self.GROUP else None for i, c in enumerate(conds)]
            result = comfy.samplers.calc_cond_batch(self.inner_model, group, x, timestep,
                                                    model_options)
            out = result[0] if out is None else out
        return out


def _single_evaluation(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """A 'sampler' that evaluates the model once at sigmas[0] and changes nothing."""
    model(x, sigmas[0] * x.new_ones([x.shape[0]]), **(extra_args or {}))
    return x


def probe(model_clone, conds: list, latent: torch.Tensor, noise: torch.Tensor, sigma: float,
          seed: int, *, model_options: dict | None = None) -> None:
    """Re-noise ``latent`` to ``sigma`` with ``noise`` and evaluate the model once under
    each conditioning (the patches on ``model_clone`` record the attention).

    ``model_options``: evaluate ``model_clone`` (then the model the sampling stages load)
    with these options instead of its own -- a patched clone's -- so ComfyUI keeps the
    model it has loaded rather than loading (and later collecting) a clone per probe."""
    guider = ProbeGuider(model_clone, conds)
    if model_options is not None:
        guider.model_options = model_options
    sampler = comfy.samplers.KSAMPLER(_single_evaluation)
    sigmas = torch.tensor([float(sigma), 0.0])
    guider.sample(noise, latent, sampler, sigmas, seed=seed, disable_pbar=True)
