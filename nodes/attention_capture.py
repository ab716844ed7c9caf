"""Capturing a model's attention during one probe pass -- one capture for every backbone.

Everything is set on a ``model.clone()`` (never on the user's MODEL):

* an ``APPLY_MODEL`` wrapper sees each forward's inputs and sets its geometry -- image
  tokens from the latent and the patch size, text tokens from the conditioning,
  reference tokens from the reference latents, which batch chunk is which conditioning
  (``cond_or_uncond``);
* ComfyUI's ``optimized_attention_override`` (comfy/ldm/modules/attention.py,
  ``wrap_attn``) sees every attention call of the forward with its q/k after RoPE, q/k-norm
  and head expansion, and its mask. It runs the kernel (chaining an override another node
  set), so the model's output is unchanged, classifies the call by token accounting and,
  for the calls the method reads, folds the attention into a
  :class:`lotts.attention.AttentionAccumulator` -- a running reduction, nothing is kept per
  layer or per head.

Which token is what in each family's calls is data (lotts/layouts.py); which layers are
read is a method choice (lotts/blocks.py). Maps are kept on the grid of one cell per 32
image pixels (latent/4 for the 8x VAEs) for every backbone. After each forward the calls
seen are checked against the layout: a model whose calls do not match (another node
skipping blocks, a ComfyUI change) is refused with its class named, never read wrongly.
"""

from __future__ import annotations

import torch

import comfy.patcher_extension
import comfy.samplers
from comfy.ldm.modules.attention import BasicTransformerBlock, SpatialTransformer
from comfy.ldm.modules.diffusionmodules.openaimodel import Downsample, Upsample

from ..lotts.attention import AttentionAccumulator, kernel_mask, normalized_weights, pooled_size
from ..lotts.attention import repeated_key_weights
from ..lotts.blocks import choose_unet_blocks
from ..lotts.layouts import (Layout, classify, fit_weights, layout_for, pad_lengths, read_range,
                             segment_ranges, supported_families, token_grid)

WRAPPER_KEY = "lotts_attention_capture"


def is_unet(diffusion_model) -> bool:
    return all(hasattr(diffusion_model, a) for a in ("input_blocks", "middle_block", "output_blocks"))


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


def model_layout(model) -> Layout:
    """The attention layout of ``model`` (a ModelPatcher), or a refusal naming its class."""
    inner = model.model
    dm = model.get_model_object("diffusion_model")
    names = [c.__name__ for c in type(inner).__mro__]
    layout = layout_for(names, type(dm).__name__)
    what = f"{type(inner).__name__} (diffusion model {type(dm).__name__})"
    if layout is None:
        raise ValueError(f"LoTTS Defect Localizer cannot read the attention of this MODEL, a "
                         f"{what}: it has no attention layout for it. Supported: "
                         f"{'; '.join(supported_families())}.")
    if layout.refused:
        raise ValueError(f"LoTTS Defect Localizer cannot localize {layout.family} ({what}): "
                         f"{layout.refused}.")
    return layout


def _heads(args, kwargs) -> tuple:
    """(q, k, heads, mask) of an attention kernel call, q and k as (B, heads, N, dim)
    views whichever layout the model passed (``skip_reshape``)."""
    q, k = args[0], args[1]
    heads = args[3] if len(args) > 3 else kwargs.get("heads", kwargs.get("num_heads"))
    mask = args[4] if len(args) > 4 else kwargs.get("mask")
    skip = args[6] if len(args) > 6 else kwargs.get("skip_reshape", False)
    if not skip:  # (B, N, heads*dim) -> (B, heads, N, dim), a view
        q = q.view(q.shape[0], q.shape[1], heads, -1).transpose(1, 2)
        k = k.view(k.shape[0], k.shape[1], heads, -1).transpose(1, 2)
    return q, k, heads, mask


class Forward:
    """One model forward: its geometry and what its attention calls were."""

    def __init__(self, conds, lengths: dict, grid: tuple[int, int], full: bool):
        self.conds, self.lengths, self.grid, self.full = list(conds), lengths, grid, full
        self.counts = {"joint": 0, "self": 0, "cross": 0, "other": 0}
        self.unknown: list[tuple[int, int]] = []
        self.seen = 0
        self.expect_cross = False
        self.replaced: list[str] = []  # kinds of replace patches other nodes set


class AttentionCapture:
    """Reads the attention of one probe on any supported backbone (see the module doc).

    ``token_weights[c]``: per conditioning c (its index among the probe's conditionings,
    which ComfyUI reports per batch chunk in ``cond_or_uncond``) the content-token weights
    of each text segment of the layout, ``{segment: (tokens,) tensor}`` (a tensor alone is
    the ``txt`` segment). Self-attention is kept for conditioning 0 (the user's prompt)
    only: it describes the image's own structure, which is what propagation needs.

    ``factor``: latent pixels per kept grid cell; the kept grid covers the latent padded
    up to ``grid * factor`` (lotts.localize.grid_to_latent crops it). A forward whose
    latent is not the whole probe latent (an area-restricted conditioning entry: ComfyUI
    crops the latent to the area) is counted but not read: its positions are not the
    image's.
    """

    def __init__(self, model, token_weights: dict, latent_shape):
        self.layout = layout = model_layout(model)
        self.model_class = type(model.model).__name__
        dm = model.get_model_object("diffusion_model")
        self.token_weights = {c: w if isinstance(w, dict) else {"txt": w}
                              for c, w in token_weights.items()}
        self.latent_hw = tuple(int(s) for s in latent_shape[-2:])
        self.attention = "joint" if layout.attention == "joint" else "cross"
        # the multiple this model pads its token runs to (Z-Image's NextDiT: 32; Lumina 2's,
        # and any ComfyUI without the attribute: none)
        self.pad_multiple = int(getattr(dm, layout.pad_multiple, None) or 0) \
            if layout.pad_multiple else 0
        self.unet = layout.read is None and is_unet(dm)
        if self.unet:
            chosen, self.level = choose_unet_blocks(unet_attention_blocks(dm))
            self.blocks = [f"{name} {idx}" for name, idx in chosen]
            self.grid = downsampled(self.latent_hw, self.level)
            pool = 1
            self.factor = self.level
            self.expected = sum(isinstance(m, BasicTransformerBlock)
                                for name, idx in chosen for m in _unet_block(dm, name, idx).modules())
            self.read = None
        else:
            self.grid = token_grid(self.latent_hw, layout.patch)
            pool = layout.pool
            self.factor = layout.patch * pool
            counts = {name: len(getattr(dm, name)) for name in layout.blocks}
            self.expected = sum(counts.values())
            self.read = read_range(counts, layout)
            first = self.read[0] - (self.read[1] - counts[layout.read])
            self.blocks = [f"{layout.read} {i}" for i in range(first, counts[layout.read])]
        self.acc = AttentionAccumulator(pooled_size(self.grid, pool))
        self.calls_seen = 0
        self._forward: Forward | None = None

    # --- wiring -------------------------------------------------------------------------

    def patch(self, model_clone, blocks=None) -> None:
        """Install the capture on ``model_clone`` (chaining an attention override that is
        already set there). ``blocks`` is accepted for the callers of the per-family
        recorders this replaced; the layout decides what is read."""
        # in the options (not the patcher's own wrappers), so the options alone carry the
        # whole capture; a closure, not a bound method: ModelPatcher.clone() deep-copies
        # the options, which would copy this capture with a bound method
        comfy.patcher_extension.add_wrapper_with_key(
            comfy.patcher_extension.WrappersMP.APPLY_MODEL, WRAPPER_KEY,
            lambda executor, *args, **kwargs: self.apply_model(executor, *args, **kwargs),
            model_clone.model_options, is_model_options=True)
        options = model_clone.model_options.setdefault("transformer_options", {})
        options["optimized_attention_override"] = self.override(
            options.get("optimized_attention_override"))

    def apply_model(self, executor, *args, **kwargs):
        """APPLY_MODEL wrapper, called as BaseModel.apply_model is: ``(x, t, c_concat,
        c_crossattn, control, transformer_options, **extra_conds)``. Sets the forward's
        geometry while it runs, then checks its calls."""
        names = ("x", "t", "c_concat", "c_crossattn", "control", "transformer_options")
        given = dict(zip(names, args))
        extra = {k: v for k, v in kwargs.items() if k not in names}
        fwd = self._geometry(given.get("x", kwargs.get("x")),
                             given.get("c_crossattn", kwargs.get("c_crossattn")),
                             given.get("transformer_options", kwargs.get("transformer_options")) or {},
                             extra)
        self._forward = fwd
        try:
            out = executor(*args, **kwargs)
        finally:
            self._forward = None
            self.calls_seen += fwd.seen
        self._check(fwd)
        return out

    def override(self, previous):
        """optimized_attention_override: the kernel's output, unchanged; the call read."""
        def attention(func, *args, **kwargs):
            out = previous(func, *args, **kwargs) if previous is not None else func(*args, **kwargs)
            if self._forward is not None:
                self._call(self._forward, func, args, kwargs)
            return out
        return attention

    # --- geometry -------------------------------------------------------------------------

    def _geometry(self, x, context, transformer_options, kwargs) -> Forward:
        layout, hw = self.layout, tuple(int(s) for s in x.shape[-2:])
        lengths = {}
        for seg in layout.text:
            src = context if seg.source == "c_crossattn" else kwargs.get(seg.source)
            if src is None:
                lengths[seg.name] = 0
            elif seg.dim is None:
                lengths[seg.name] = int(src.item() if isinstance(src, torch.Tensor) else src)
            else:
                lengths[seg.name] = int(src.shape[seg.dim])
        if self.unet:
            grid = downsampled(hw, self.level)
        else:
            grid = token_grid(hw, layout.patch)
        lengths["img"] = grid[0] * grid[1]
        lengths["reg"] = layout.registers
        lengths.update(pad_lengths(layout.order, lengths, self.pad_multiple))
        refs = kwargs.get(layout.refs) if layout.refs else None
        lengths["ref"] = sum(a * b for a, b in (token_grid(tuple(r.shape[-2:]), layout.patch)
                                                for r in refs or ()))
        conds = transformer_options.get("cond_or_uncond") or [0]
        fwd = Forward(conds, lengths, grid, hw == self.latent_hw)
        fwd.replaced = sorted(str(k) for k, v in
                              (transformer_options.get("patches_replace") or {}).items() if v)
        return fwd

    # --- one call -------------------------------------------------------------------------

    def _call(self, fwd: Forward, func, args, kwargs) -> None:
        q, k, heads, mask = _heads(args, kwargs)
        fwd.seen += 1
        nq, nk = q.shape[2], k.shape[2]
        kind = classify(self.layout, nq, nk, fwd.lengths, fwd.expect_cross)
        if kind == "unknown":
            fwd.unknown.append((nq, nk))
            return
        index = fwd.counts[kind]
        fwd.counts[kind] += 1
        if kind in ("self", "cross"):
            fwd.expect_cross = kind == "self"
        if not fwd.full or kind == "other":
            return
        if self.read is not None and not self.read[0] <= index < self.read[1]:
            return
        mask = kernel_mask(mask, per_key_bool=getattr(func, "__name__", "") == "attention_basic")
        n = len(fwd.conds)
        if q.shape[0] % n:
            raise RuntimeError(f"attention batch {q.shape[0]} does not split into the "
                               f"{n} conditionings {fwd.conds}")
        size = q.shape[0] // n
        for i, c in enumerate(fwd.conds):
            part = slice(i * size, (i + 1) * size)
            qc, kc = q[part], k[part]
            mc = mask if mask is None or mask.shape[0] == 1 else mask[part]
            if kind == "self":
                if c == 0:
                    self.acc.add_call(None, qc, kc, heads, grid=fwd.grid, mask=mc, with_self=True)
            elif kind == "cross":
                # a text the model pads itself (Anima's, to 512) is fitted to the call; a
                # U-Net's may be repeated whole to a longer prompt's length in a batch
                seg = self.layout.text[0]
                txt = self._fitted(c, seg, fwd.lengths["txt"]) if seg.padded else \
                    self._weights(c, "txt")
                w = repeated_key_weights(normalized_weights(txt), nk)
                self.acc.add_call(c, qc, kc, heads, grid=fwd.grid, key_weights=w, mask=mc)
            else:
                ranges = segment_ranges(self.layout.order, fwd.lengths)
                img = ranges["img"]
                self.acc.add_call(c, qc, kc, heads, grid=fwd.grid, query_rows=img,
                                  key_weights=self._joint_weights(c, ranges, nk),
                                  self_keys=img, mask=mc, with_self=c == 0)

    def _weights(self, c, segment: str) -> torch.Tensor:
        try:
            return self.token_weights[c][segment]
        except KeyError:
            raise RuntimeError(f"no token weights for conditioning {c}, text segment "
                               f"{segment!r}") from None

    def _joint_weights(self, c, ranges: dict, nk: int) -> torch.Tensor:
        """Conditioning c's content tokens over the keys of a joint call, summing to 1."""
        w = torch.zeros(nk)
        for seg in self.layout.text:
            a, b = ranges[seg.name]
            if not seg.content or b == a:
                continue
            w[a:b] = self._fitted(c, seg, b - a)
        return normalized_weights(w)

    def _fitted(self, c, seg, n: int) -> torch.Tensor:
        """Conditioning c's weights of text segment ``seg`` over the ``n`` tokens the call
        holds of it (the model's own text padding, if any, weighted 0)."""
        ws = self._weights(c, seg.name).float()
        fitted = fit_weights(ws, n, seg.padded)
        if fitted is None:
            raise RuntimeError(f"conditioning {c} has {n} {seg.name} tokens in the "
                               f"attention but its prompt tokenized to {ws.shape[0]}")
        return fitted

    # --- the check after each forward -----------------------------------------------------

    def _check(self, fwd: Forward) -> None:
        layout, c = self.layout, fwd.counts
        problem = None
        if fwd.unknown:
            problem = (f"{len(fwd.unknown)} attention call(s) of shapes (queries, keys) "
                       f"{sorted(set(fwd.unknown))[:4]} match none of its segments "
                       f"{ {k: v for k, v in fwd.lengths.items() if v} }")
        elif layout.attention == "joint" and c["joint"] != self.expected:
            problem = f"{c['joint']} joint attention calls, expected {self.expected}"
        elif layout.attention == "separate" and not c["self"] == c["cross"] == self.expected:
            problem = (f"{c['self']} self- and {c['cross']} cross-attention calls at the read "
                       f"level, expected {self.expected} of each")
        if problem:
            patched = (f" This MODEL carries replace patches ({', '.join(fwd.replaced)}) from "
                       "another node (an IP-Adapter, a cache, a block swap...): they can run "
                       "attention without ComfyUI's override or skip it -- try the localizer "
                       "on the model without them." if fwd.replaced else "")
            raise ValueError(
                f"LoTTS Defect Localizer: the attention calls of this {self.model_class} do "
                f"not match the layout of {layout.family}: {problem} in one model call. "
                "Another node's patch may skip or replace attention blocks, or this ComfyUI's "
                "model differs from the one the layout was made for; the localizer refuses "
                f"rather than read the wrong tokens.{patched}")


def _unet_block(dm, name: str, idx: int):
    return {"input": lambda: dm.input_blocks[idx], "middle": lambda: dm.middle_block,
            "output": lambda: dm.output_blocks[idx]}[name]()


def make_recorder(model, token_weights: dict, latent_shape):
    """The capture for ``model`` and the blocks it reads: ``(capture, blocks)``; call
    ``capture.patch(model.clone())``. (The name is the per-family recorders' it replaced.)"""
    capture = AttentionCapture(model, token_weights, latent_shape)
    return capture, capture.blocks


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
