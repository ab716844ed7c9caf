"""LoTTSHarmonize: the last steps on the whole image, no mask (the paper's holistic
consistency), so style and structure agree across the re-sampled boundary."""

from __future__ import annotations

from comfy_api.latest import io

from ..lotts.schedule import harmonize_window
from ..lotts.seeds import Stream, stage_seeds
from . import inputs, search_aliases
from .checks import SOURCE_KEY, check_latent, latent_out, queue_time_check, user_mask
from .sampling import Progress, SamplingSettings, continuation_noise, sample


class LoTTSHarmonize(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LoTTSHarmonize", display_name="LoTTS Harmonize", category=inputs.CATEGORY,
            **search_aliases.schema_field("LoTTSHarmonize"),
            description="Runs steps start_step..steps on the whole image with no mask. With "
                        "add_noise off it finishes latents that LoTTS Masked Refine left noisy "
                        "(start_step = its end_step); with add_noise on it re-noises clean "
                        "latents to start_step first. A latent with an inpainting mask is only "
                        "changed inside it.",
            inputs=[
                inputs.model(), inputs.positive(), inputs.negative(),
                io.Latent.Input("latent", tooltip="Latents to harmonize, e.g. LoTTS Masked "
                                                  "Refine's output."),
                inputs.seed(), inputs.steps(), inputs.cfg(), inputs.sampler_name(),
                inputs.scheduler(),
                inputs.start_step(17, "First harmonization step: Masked Refine's end_step (the "
                                      "paper uses the last few steps)."),
                io.Boolean.Input("add_noise", default=False,
                                 tooltip="Off: the latent already holds the noise of start_step "
                                         "(from Masked Refine). On: re-noise a clean latent to "
                                         "start_step first."),
                inputs.max_batch(),
            ],
            outputs=[io.Latent.Output(display_name="latent",
                                      tooltip="The harmonized, fully denoised latents (same "
                                              "batch).")])

    @classmethod
    def validate_inputs(cls, steps, sampler_name, scheduler, start_step):
        return queue_time_check(cls, locals(), lambda: harmonize_window(steps, start_step))

    @classmethod
    def execute(cls, *, model, positive, negative, latent, seed, steps, cfg, sampler_name,
                scheduler, start_step, add_noise, max_batch=0):
        settings = SamplingSettings(model, positive, negative, steps, cfg, sampler_name,
                                    scheduler, max_batch)
        n = check_latent(model, latent, "latent").shape[0]
        return io.NodeOutput(harmonize_latents(
            settings, latent, seeds=stage_seeds(seed, Stream.HARMONIZATION, n),
            start_step=start_step, add_noise=add_noise))


def harmonize_latents(settings: SamplingSettings, latent: dict, *, seeds: list[int],
                      start_step: int, add_noise: bool, progress: Progress | None = None) -> dict:
    """Steps [start_step, steps] on the whole image, no mask; item i's noise (added noise,
    or an ancestral/SDE sampler's) from ``seeds[i]``."""
    samples = check_latent(settings.model, latent, "latent")
    n_steps = harmonize_window(settings.steps, start_step)
    progress = progress or Progress(settings.model, samples.shape[0] * n_steps)
    allowed, source = user_mask(latent, samples), latent.get(SOURCE_KEY)
    if allowed is not None and source is not None and not add_noise:
        # Masked Refine's leftover noise, inside the user's inpainting mask: continue from
        # it with the region outside pinned to the clean source (global otherwise)
        noise = continuation_noise(settings, samples, source, start_step)
        out = sample(settings, source, seeds=seeds, progress=progress, start_step=start_step,
                     last_step=settings.steps, force_full_denoise=True, noise_mask=allowed,
                     noise=noise)
    else:  # global; an inpainting mask is honoured as KSampler honours it
        out = sample(settings, samples, seeds=seeds, progress=progress, start_step=start_step,
                     last_step=settings.steps, force_full_denoise=True, add_noise=add_noise,
                     noise_mask=allowed)
    return latent_out(latent, out, noise_mask=allowed)
