"""Sampling as every LoTTS stage does it: the shared settings, per-item seeds, one
progress bar with previews across passes, memory-aware batches, and Cancel.

Everything that is method math lives in ``lotts/``; this module only speaks ComfyUI.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

import comfy.model_management
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview

from ..lotts.schedule import BATCH_SAFE_SAMPLERS
from .checks import check_conditioning

# ComfyUI's own margin when it decides how much to batch (comfy/samplers.py).
MEMORY_MARGIN = 1.5


@dataclass(frozen=True)
class SamplingSettings:
    """What every sampling stage of a run shares, validated once.

    ``max_batch`` caps the images per model call (0 = as many as fit in free memory).
    """
    model: object
    positive: list
    negative: list
    steps: int
    cfg: float
    sampler_name: str
    scheduler: str
    max_batch: int = 0

    def __post_init__(self):
        check_conditioning(self.model, self.positive, "positive")
        check_conditioning(self.model, self.negative, "negative")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.sampler_name not in comfy.samplers.KSampler.SAMPLERS:
            raise ValueError(f"sampler_name {self.sampler_name!r} is not one of ComfyUI's "
                             "samplers.")
        if self.max_batch < 0:
            raise ValueError(f"max_batch must be >= 0 (0 = automatic), got {self.max_batch}")

    @property
    def one_by_one(self) -> bool:
        """Whether items must be sampled alone to equal a stock KSampler run with their
        seed (the sampler draws noise per batch, or adapts its steps to the batch)."""
        return self.sampler_name not in BATCH_SAFE_SAMPLERS

    def with_model(self, model) -> "SamplingSettings":
        return replace(self, model=model)


def free_memory(device) -> int:
    """Free memory on ``device`` (ComfyUI's estimate); tests replace it to force chunks."""
    return comfy.model_management.get_free_memory(device)


def batch_limit(model, shape, max_batch: int = 0, evaluations: int = 2) -> int:
    """How many latents of ``shape`` (C, H, W, ...) one model call may take.

    ``max_batch`` when set; otherwise the largest batch whose ComfyUI estimate
    (``memory_required`` for ``evaluations`` conditionings per image, with ComfyUI's own
    1.5 margin) fits in free memory -- at least 1.
    """
    if max_batch:
        return max_batch
    # weights not yet on the device will take their share of it when sampling loads them
    budget = free_memory(model.load_device) - (model.model_size() - model.loaded_size())
    per_image = model.model.memory_required([evaluations, *shape]) * MEMORY_MARGIN
    return max(1, int(budget // max(1, per_image)))


def seeded_noise(samples: torch.Tensor, seeds: list[int]) -> torch.Tensor:
    """Noise for each batch item from its own seed, exactly as KSampler draws it for a
    batch-1 latent (ComfyUI draws a whole batch from one generator, so item i of a
    batched run would not match a single run with its seed)."""
    one = samples[:1]
    return torch.cat([comfy.sample.prepare_noise(one, int(s)) for s in seeds], dim=0)


class Progress:
    """One progress bar (with latent previews) across every pass of a node's work.

    Counted in image-steps (lotts.schedule.Plan.units): a pass over b images advances
    b per sampler step, whatever the batching. In the server each update also checks
    Cancel.
    """

    def __init__(self, model, total: int):
        self.total = max(1, int(total))
        self.done = 0
        self.pbar = comfy.utils.ProgressBar(self.total)
        self.previewer = latent_preview.get_previewer(model.load_device, model.model.latent_format)

    def callback(self, images: int):
        """A sampler callback for one pass over ``images`` images."""
        start = self.done

        def cb(step, x0, x, total_steps):
            preview = None
            if self.previewer is not None:
                preview = self.previewer.decode_latent_to_preview_image("JPEG", x0)
            self.pbar.update_absolute(min(self.total, start + (step + 1) * images), self.total,
                                      preview)
        return cb

    def advance(self, n: int):
        self.done += n
        self.pbar.update_absolute(min(self.total, self.done), self.total)


def passes(settings: SamplingSettings, samples: torch.Tensor) -> list[tuple[int, int]]:
    """(first, last) item of each sampling pass: every item alone for samplers that need
    it, else batches that fit the device's memory."""
    n = samples.shape[0]
    size = 1 if settings.one_by_one else batch_limit(settings.model, samples.shape[1:],
                                                     settings.max_batch)
    return [(a, min(n, a + size)) for a in range(0, n, size)]


def sample(settings: SamplingSettings, samples: torch.Tensor, *, seeds: list[int],
           progress: Progress, start_step: int | None = None, last_step: int | None = None,
           force_full_denoise: bool = True, noise_mask: torch.Tensor | None = None,
           add_noise: bool = True, noise: torch.Tensor | None = None) -> torch.Tensor:
    """KSampler-equivalent sampling of a batch where item i has its own seed ``seeds[i]``.

    Items go through in :func:`passes`; each pass is a stock ComfyUI sampler call, so
    every item equals a KSampler run with its seed (bit for bit when run alone).
    ``noise`` replaces the seeded noise (a continuation, see :func:`continuation_noise`;
    ancestral/SDE samplers still draw theirs from the seeds). Checks Cancel between passes.
    """
    s = settings
    n_steps = (last_step if last_step is not None else s.steps) - (start_step or 0)
    outs = []
    for a, b in passes(s, samples):
        comfy.model_management.throw_exception_if_processing_interrupted()
        part, part_seeds = samples[a:b], seeds[a:b]
        mask_part = noise_mask[a:b] if noise_mask is not None else None
        if noise is not None:
            part_noise = noise[a:b]
        elif add_noise:
            part_noise = seeded_noise(part, part_seeds)
        else:
            part_noise = torch.zeros_like(part, device="cpu")
        out = comfy.sample.sample(
            s.model, part_noise, s.steps, s.cfg, s.sampler_name, s.scheduler, s.positive,
            s.negative, part, denoise=1.0, disable_noise=noise is None and not add_noise,
            start_step=start_step,
            last_step=last_step, force_full_denoise=force_full_denoise, noise_mask=mask_part,
            callback=progress.callback(b - a), disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED,
            seed=int(part_seeds[0]))
        outs.append(out)
        progress.advance((b - a) * n_steps)
    comfy.model_management.throw_exception_if_processing_interrupted()
    return torch.cat(outs, dim=0)


def renoised(settings: SamplingSettings, samples: torch.Tensor, *, seeds: list[int],
             step: int) -> torch.Tensor:
    """``samples`` noised to ``step`` of the schedule with each item's seed, as a sampler
    leaves the region it may not change when it stops at ``step`` -- what an item that
    needs no model call (an empty mask) hands to the next stage."""
    ms, sigma = _sigma(settings, step)
    inner = settings.model.model
    latent = inner.process_latent_in(samples.float())
    x = ms.noise_scaling(sigma, seeded_noise(samples, seeds).float(), latent)
    return inner.process_latent_out(ms.inverse_noise_scaling(sigma, x)).to(samples.dtype)


def _sigma(settings: SamplingSettings, step: int):
    ms = settings.model.get_model_object("model_sampling")
    return ms, comfy.samplers.calculate_sigmas(ms, settings.scheduler, settings.steps)[step].float()


def continuation_noise(settings: SamplingSettings, noisy: torch.Tensor, source: torch.Tensor,
                       step: int) -> torch.Tensor:
    """The noise that makes a sampler started at ``step`` on the clean ``source`` begin
    exactly at ``noisy`` (a latent a sampler left at ``step``, as LoTTS Masked Refine
    does).

    ComfyUI starts from ``noise_scaling(sigma, noise, source)`` and, under a noise mask,
    pins the region outside it to ``source`` re-noised with the same noise -- so solving
    for the noise continues the refinement with the user's region kept exactly.
    """
    ms, sigma = _sigma(settings, step)
    inner = settings.model.model
    start = ms.noise_scaling(sigma, torch.zeros_like(noisy, dtype=torch.float32),
                             inner.process_latent_in(noisy.float()))
    base = ms.noise_scaling(sigma, torch.zeros_like(noisy, dtype=torch.float32),
                            inner.process_latent_in(source.float()))
    unit = ms.noise_scaling(sigma, torch.ones_like(noisy, dtype=torch.float32),
                            torch.zeros_like(noisy, dtype=torch.float32))
    return (start - base) / unit
