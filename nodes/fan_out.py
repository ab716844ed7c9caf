"""LoTTSSeedFanOut: N candidates from N seeds, as one LATENT batch (the paper's step 1)."""

from __future__ import annotations

from comfy_api.latest import io

from ..lotts.seeds import Stream, stage_seeds
from . import inputs, search_aliases
from .checks import check_latent, latent_out, queue_time_check, user_mask
from .sampling import Progress, SamplingSettings, sample


class LoTTSSeedFanOut(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LoTTSSeedFanOut", display_name="LoTTS Seed Fan-Out",
            **search_aliases.schema_field("LoTTSSeedFanOut"),
            category=inputs.CATEGORY,
            description="Samples N candidate images from seeds seed, seed+1, ..., seed+N-1 "
                        "and returns them as one latent batch. Candidate i is exactly what a "
                        "KSampler with seed + i gives on the same (batch-1) latent -- "
                        "inside its noise mask when the latent has one (Set Latent Noise Mask): "
                        "the candidates keep the mask, so LoTTS never re-samples outside it.",
            inputs=[inputs.model(), inputs.positive(), inputs.negative(),
                    inputs.batch1_latent(), inputs.seed(),
                    inputs.candidate_count(), inputs.steps(), inputs.cfg(),
                    inputs.sampler_name(), inputs.scheduler(), inputs.max_batch()],
            outputs=[io.Latent.Output(display_name="candidates",
                                      tooltip="N candidate latents, candidate i made with "
                                              "seed + i.")])

    @classmethod
    def validate_inputs(cls, sampler_name, scheduler):
        return queue_time_check(cls, locals())

    @classmethod
    def execute(cls, *, model, positive, negative, latent_image, seed, candidates, steps, cfg,
                sampler_name, scheduler, max_batch=0):
        settings = SamplingSettings(model, positive, negative, steps, cfg, sampler_name,
                                    scheduler, max_batch)
        return io.NodeOutput(sample_candidates(
            settings, latent_image, seeds=stage_seeds(seed, Stream.CANDIDATES, candidates)))


def sample_candidates(settings: SamplingSettings, latent_image: dict, *, seeds: list[int],
                      progress: Progress | None = None) -> dict:
    """The fan-out: candidate i sampled from ``seeds[i]`` (see the node's description)."""
    samples = check_latent(settings.model, latent_image, "latent_image")
    if samples.shape[0] != 1:
        raise ValueError(f"latent_image has a batch of {samples.shape[0]}; the fan-out makes "
                         "the batch itself: give a batch-1 latent and set candidates.")
    batch = samples.expand(len(seeds), *samples.shape[1:]).contiguous()
    allowed = user_mask(latent_image, batch)  # an inpainting mask: honoured as KSampler does
    progress = progress or Progress(settings.model, len(seeds) * settings.steps)
    out = sample(settings, batch, seeds=seeds, progress=progress, noise_mask=allowed)
    return latent_out(latent_image, out, noise_mask=allowed)
