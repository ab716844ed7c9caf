"""Capturing a U-Net's attention during one probe pass, through ComfyUI's patch API.

Patches are set on a ``model.clone()`` (never on the user's MODEL) as attn1/attn2
*replace* patches: the patch receives the projected q/k/v, returns the ordinary attention
output computed by ComfyUI's own kernel (so the model's behaviour is unchanged) and
folds the attention probabilities into an :class:`lotts.attention.AttentionAccumulator`.

Which layers: the U-Net's attention blocks at 1/4 of the latent's resolution (the
"16x16 at 512px" level of SD1.5/SD2.x, input 7-8 and output 3-5; the 32x32-at-1024px
level of SDXL, input 7-8, middle and output 0-2). That level is the one the
attention-map literature (Prompt-to-Prompt, DAAM) finds most semantic: finer levels
attend to texture, coarser ones are too blurred to place a hand or a face. Its
self-attention is also small enough to keep (N^2 with N = latent_pixels / 16). Models
without attention at 1/4 use their coarsest level below it.
"""

from __future__ import annotations

import torch

import comfy.samplers
from comfy.ldm.modules.attention import SpatialTransformer, optimized_attention
from comfy.ldm.modules.diffusionmodules.openaimodel import Downsample, Upsample

from ..lotts.attention import AttentionAccumulator

TARGET_FACTOR = 4


def unet_attention_blocks(diffusion_model) -> list[tuple[str, int, int]]:
    """(block name, index, down-sampling factor) of every U-Net block with attention."""
    if not all(hasattr(diffusion_model, a) for a in ("input_blocks", "middle_block", "output_blocks")):
        raise ValueError("LoTTS Defect Localizer supports U-Net models (SD1.x, SD2.x, SDXL) "
                         f"for now; this MODEL is a {type(diffusion_model).__name__}.")

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


def choose_blocks(blocks: list[tuple[str, int, int]], target: int = TARGET_FACTOR):
    """The blocks at ``target`` factor, else at the coarsest factor below it."""
    factors = sorted({f for _, _, f in blocks if f <= target})
    if not factors:
        raise ValueError("this U-Net has no attention at or above 1/4 of the latent resolution")
    chosen = factors[-1]
    return [(name, idx) for name, idx, f in blocks if f == chosen], chosen


class AttentionRecorder:
    """Receives attn1 (self) and attn2 (cross) calls of the chosen blocks.

    ``token_weights[c]`` is the content-token mask of conditioning c (c indexes the list
    of conditionings given to the probe, which ComfyUI reports per batch chunk in
    ``cond_or_uncond``). Self-attention is kept for conditioning 0 (the user's prompt)
    only: it describes the image's own structure, which is what propagation needs.
    """

    def __init__(self, token_weights: dict[int, torch.Tensor]):
        self.token_weights = token_weights
        self.acc: AttentionAccumulator | None = None

    def _chunks(self, q, k, extra_options):
        conds = extra_options["cond_or_uncond"]
        grid = tuple(extra_options["activations_shape"][-2:])
        if self.acc is None:
            self.acc = AttentionAccumulator(grid)
        return conds, grid, q.chunk(len(conds)), k.chunk(len(conds))

    def attn1(self, q, k, v, extra_options):
        out = optimized_attention(q, k, v, extra_options["n_heads"],
                                  attn_precision=extra_options.get("attn_precision"))
        conds, grid, qs, ks = self._chunks(q, k, extra_options)
        for c, qc, kc in zip(conds, qs, ks):
            if c == 0:
                self.acc.add_self(qc, kc, extra_options["n_heads"], grid)
        return out

    def attn2(self, q, k, v, extra_options):
        out = optimized_attention(q, k, v, extra_options["n_heads"],
                                  attn_precision=extra_options.get("attn_precision"))
        conds, grid, qs, ks = self._chunks(q, k, extra_options)
        for c, qc, kc in zip(conds, qs, ks):
            w = self.token_weights[c]
            if w.shape[0] != kc.shape[1]:
                raise RuntimeError(f"conditioning {c} has {kc.shape[1]} text tokens at the "
                                   f"cross-attention but its prompt tokenized to {w.shape[0]}")
            self.acc.add_cross(c, qc, kc, extra_options["n_heads"], w, grid)
        return out

    def patch(self, model_clone, blocks) -> None:
        for name, idx in blocks:
            model_clone.set_model_attn1_replace(self.attn1, name, idx)
            model_clone.set_model_attn2_replace(self.attn2, name, idx)


class ProbeGuider(comfy.samplers.CFGGuider):
    """A guider that evaluates the model once per conditioning, batched where ComfyUI can.

    ComfyUI's own conditioning pipeline (areas, SDXL size conditioning, hooks, model
    loading) prepares the conditionings, so the probe sees the model exactly as a
    sampler would.
    """

    def __init__(self, model_patcher, conds: list):
        super().__init__(model_patcher)
        self.count = len(conds)
        self.inner_set_conds({str(i): c for i, c in enumerate(conds)})

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        conds = [self.conds[str(i)] for i in range(self.count)]
        return comfy.samplers.calc_cond_batch(self.inner_model, conds, x, timestep, model_options)[0]


def _single_evaluation(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """A 'sampler' that evaluates the model once at sigmas[0] and changes nothing."""
    model(x, sigmas[0] * x.new_ones([x.shape[0]]), **(extra_args or {}))
    return x


def probe(model_clone, conds: list, latent: torch.Tensor, noise: torch.Tensor, sigma: float,
          seed: int) -> None:
    """Re-noise ``latent`` to ``sigma`` with ``noise`` and evaluate the model once under
    each conditioning (the patches on ``model_clone`` record the attention)."""
    guider = ProbeGuider(model_clone, conds)
    sampler = comfy.samplers.KSAMPLER(_single_evaluation)
    sigmas = torch.tensor([float(sigma), 0.0])
    guider.sample(noise, latent, sampler, sigmas, seed=seed, disable_pbar=True)
