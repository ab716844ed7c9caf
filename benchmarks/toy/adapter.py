"""The one place the toy benchmarks call the pack: its stage functions as the nodes call
them (settings objects, per-stage seed streams), the search LoTTS Sampler runs, and an
attention capture that reuses the localizer's own recorder and probe.

When the pack's signatures change, this file is the only one to rewire.

Latents: the pack works on ComfyUI LATENTs (raw VAE space); the toy world lives in the
model's space. ``to_raw`` / ``to_model`` convert with the SD1.5 latent scale factor.
"""

from __future__ import annotations

import functools
import sys
from importlib import import_module

import torch
import torch.nn.functional as F

from comfy_host import load_pack

import toy_world as tw

SAMPLER, SCHEDULER = "euler", "normal"


@functools.lru_cache(maxsize=1)
def pack():
    return load_pack()


def _mod(name):
    pack()
    return sys.modules[f"{pack().__name__}.{name}"]


def core(name):
    """A module of the pack's pure core (``lotts.<name>``), as loaded with the pack."""
    return import_module(f"{pack().__name__}.lotts.{name}")


def scale_factor(model) -> float:
    return float(model.get_model_object("latent_format").scale_factor)


def to_raw(model, latents: torch.Tensor) -> dict:
    return {"samples": latents / scale_factor(model)}


def to_model(model, latent: dict) -> torch.Tensor:
    return latent["samples"] * scale_factor(model)


def encode(clip, text: str):
    """CONDITIONING for ``text`` exactly as the localizer encodes it."""
    return _mod("nodes.localizer").encode(clip, text)[0]


def token_ids(clip, text: str) -> list[int]:
    """The SD1 token ids the model sees for ``text`` (77, start/end/padding included)."""
    return [t[0] for chunk in clip.tokenize(text)["l"] for t in chunk]


def probe_seeds(seed: int, n: int) -> list[int]:
    """The probe noise seeds LoTTS Defect Localizer uses for ``n`` candidates."""
    seeds = core("seeds")
    return seeds.stage_seeds(seed, seeds.Stream.PROBE, n)


def sampling(model, positive, negative, steps, cfg):
    return _mod("nodes.sampling").SamplingSettings(model, positive, negative, steps, cfg,
                                                   SAMPLER, SCHEDULER)


# --- the node's own functions ------------------------------------------------------

def localize_node(model, clip, prompt, latents, ratio, prior_weight=0.5, probe_step=15,
                  steps=20, seed=0, **options):
    """LoTTSDefectLocalizer's function (``options``: its optional method inputs, e.g.
    propagation, contrast_tokens); returns (masks at latent resolution (B, S, S),
    heatmap, the node's ``lotts_localizer`` info)."""
    loc = _mod("nodes.localizer")
    settings = loc.ProbeSettings(model, clip, prompt, steps, SCHEDULER, ratio, prior_weight,
                                 probe_step, **options)
    info = {}
    mask, heatmap = loc.localize_candidates(settings, to_raw(model, latents), info=info,
                                            seeds=probe_seeds(seed, latents.shape[0]))
    return F.avg_pool2d(mask.unsqueeze(1), 8).squeeze(1), heatmap, info


def refine(model, positive, negative, latents, masks, seed, k, steps, cfg, start_step,
           end_step) -> torch.Tensor:
    """LoTTSMaskedRefine's function; ``masks`` at latent resolution; model-space out."""
    seeds = core("seeds")
    pixel = masks.float().repeat_interleave(8, -1).repeat_interleave(8, -2)
    out = _mod("nodes.masked_refine").refine_candidates(
        sampling(model, positive, negative, steps, cfg), to_raw(model, latents), pixel,
        seeds=seeds.stage_seeds(seed, seeds.Stream.REFINEMENT, latents.shape[0] * k),
        refinements=k, start_step=start_step, end_step=end_step)
    return to_model(model, out)


def harmonize(model, positive, negative, latents, seed, steps, cfg, start_step) -> torch.Tensor:
    """LoTTSHarmonize's function with add_noise off (after Masked Refine)."""
    seeds = core("seeds")
    out = _mod("nodes.harmonize").harmonize_latents(
        sampling(model, positive, negative, steps, cfg), to_raw(model, latents),
        seeds=seeds.stage_seeds(seed, seeds.Stream.HARMONIZATION, latents.shape[0]),
        start_step=start_step, add_noise=False)
    return to_model(model, out)


def sampler_probe_step(steps: int) -> int:
    """The probe step LoTTS Sampler uses for a schedule of ``steps``."""
    return core("schedule").probe_step_for(steps)


# --- the search, as LoTTS Sampler runs it ------------------------------------------

class LatentImageVAE:
    """The VAE slot of the search: 'decodes' a LATENT into an IMAGE that carries the
    model-space latent losslessly (its 4 channels stacked along the height, grey), so the
    toy verifier can read the latent back. Nothing else is stood in for."""

    def __init__(self, model):
        self.scale = scale_factor(model)

    def decode(self, samples: torch.Tensor) -> torch.Tensor:
        x = samples.float() * self.scale
        b, c, h, w = x.shape
        return x.reshape(b, c * h, w, 1).expand(-1, -1, -1, 3).contiguous()


def unpack_image(images: torch.Tensor, channels: int = tw.CHANNELS) -> torch.Tensor:
    b, ch, w, _ = images.shape
    return images[..., 0].reshape(b, channels, ch // channels, w)


class ToyVerifier:
    """A LOTTS_VERIFIER for the toy world: toy_world.verify on each image's latent."""

    name = "toy verifier"

    def score(self, images: torch.Tensor, prompt: str, batch_size=None) -> torch.Tensor:
        return torch.tensor([tw.verify(x, prompt)["score"] for x in unpack_image(images)])


def run_search(model, clip, prompt, size, *, seed, candidates, refinements, steps, cfg,
               start_step, harmonize_steps, mask_ratio, prior_weight=0.5, **probe_options):
    """LoTTS Sampler's search (nodes/search.run_search, the node's settings objects and
    seeds) on an empty toy latent; refinements = 0 is its Best-of-N. Returns
    (ranked [(model-space latent, score, lineage)], counted NFE, the localizer info)."""
    loc, search = _mod("nodes.localizer"), _mod("nodes.search")
    positive, negative = encode(clip, prompt), encode(clip, "")
    settings = sampling(model, positive, negative, steps, cfg)
    plan = core("schedule").Plan(candidates, steps, refinements, start_step, harmonize_steps)
    probe = loc.ProbeSettings(model, clip, prompt, steps, SCHEDULER, mask_ratio, prior_weight,
                              sampler_probe_step(steps), positive=positive, **probe_options)
    result = search.run_search(settings, plan, probe,
                               latent_image={"samples": torch.zeros(1, 4, size, size)},
                               seed=seed, vae=LatentImageVAE(model), verifier=ToyVerifier())
    ranked = [(s.latent[0] * scale_factor(model), s.score, s.lineage) for s in result.ranked]
    return ranked, result.budget.total, result.localizer


# --- attention capture for the ablations -----------------------------------------

class TokenAccumulator:
    """Stands in for the recorder's AttentionAccumulator: keeps the cross-attention per
    text token (B, positions, 77), summed over layers, so any token set can be averaged
    later; self-attention goes to a real AttentionAccumulator."""

    def __init__(self, grid):
        self.grid = tuple(grid)
        self.inner = core("attention").AttentionAccumulator(grid)
        self.cross: dict[int, torch.Tensor] = {}
        self.n: dict[int, int] = {}

    def add_call(self, key, q, k, heads, *, grid, key_weights=None, with_self=False,
                 mask=None, **where):
        """The capture's one entry point (nodes/attention_capture.py): U-Net self-attention
        into the real accumulator, cross-attention kept per token."""
        if with_self:
            self.inner.add_call(None, q, k, heads, grid=grid, with_self=True, mask=mask)
        if key_weights is None:
            return
        if tuple(grid) != self.grid:
            raise RuntimeError(f"cross-attention at {grid}, expected {self.grid}")
        probs = core("attention").head_mean_attention(q, k, heads)
        self.cross[key] = self.cross.get(key, 0) + probs
        self.n[key] = self.n.get(key, 0) + 1

    def token_maps(self, key) -> torch.Tensor:
        return self.cross[key] / self.n[key]


def attention_blocks(model, size: int):
    """(blocks the localizer patches, their down-sampling factor, the token grid)."""
    cap = _mod("nodes.attention_capture")
    recorder, blocks = cap.make_recorder(model, {}, (1, 4, size, size))
    return blocks, recorder.factor, recorder.grid


def capture(model, clip, prompt, latents, probe_step, steps=20, seed=0,
            positive_template=None, negative_template=None) -> list[dict]:
    """One probe pass per latent, exactly as the localizer makes it (same recorder, same
    blocks, same noise: the probe seeds of ``seed``), keeping per-token cross-attention.

    Returns per latent: ``tokens`` {0: orig, 1: pos, 2: neg} -> (1, N, 77) maps,
    ``weights`` {c: content-token mask}, ``ids`` {c: token ids}, ``sa`` (1, N, N), ``grid``.
    """
    loc = _mod("nodes.localizer")
    cap = _mod("nodes.attention_capture")
    smp = _mod("nodes.sampling")
    prompts = core("prompts")
    import comfy.samplers
    pos_t = positive_template or prompts.DEFAULT_POSITIVE_TEMPLATE
    neg_t = negative_template or prompts.DEFAULT_NEGATIVE_TEMPLATE
    texts = (prompt.strip(), *prompts.quality_prompts(prompt, pos_t, neg_t))
    encoded = [loc.encode(clip, t) for t in texts]
    conds, weights = [e[0] for e in encoded], [e[1] for e in encoded]
    ids = {c: token_ids(clip, t) for c, t in enumerate(texts)}
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"),
                                             SCHEDULER, steps)
    sigma = float(sigmas[probe_step])
    raw = to_raw(model, latents)["samples"]
    seeds = probe_seeds(seed, raw.shape[0])
    out = []
    for i in range(raw.shape[0]):
        recorder, blocks = cap.make_recorder(model, dict(enumerate(weights)), raw.shape)
        recorder.acc = TokenAccumulator(recorder.grid)
        patched = model.clone()
        recorder.patch(patched, blocks)
        one = raw[i:i + 1]
        cap.probe(patched, conds, one, smp.seeded_noise(one, [seeds[i]]), sigma, seeds[i])
        acc = recorder.acc
        out.append({"tokens": {c: acc.token_maps(c) for c in range(3)},
                    "weights": dict(enumerate(weights)), "ids": ids,
                    "sa": acc.inner.self_matrix(), "grid": recorder.grid,
                    "layers": acc.inner.layers_seen})
    return out
