"""LoTTSSeedFanOut: N candidates from N seeds, as one LATENT batch (the paper's step 1)."""

from .common import (CATEGORY, CFG_INPUT, MODEL_INPUT, NEGATIVE_INPUT, POSITIVE_INPUT,
                     SEED_INPUT, STEPS_INPUT, BATCH_SAFE_SAMPLERS, Progress,
                     check_conditioning, check_latent, sample, sampler_input,
                     scheduler_input)


class LoTTSSeedFanOut:
    DESCRIPTION = ("Samples N candidate images from seeds seed, seed+1, ..., seed+N-1 and "
                   "returns them as one latent batch. Candidate i is exactly what a KSampler "
                   "with seed + i gives on the same (batch-1) latent.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("candidates",)
    OUTPUT_TOOLTIPS = ("N candidate latents, candidate i made with seed + i.",)
    FUNCTION = "fan_out"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": MODEL_INPUT,
            "positive": POSITIVE_INPUT,
            "negative": NEGATIVE_INPUT,
            "latent_image": ("LATENT", {"tooltip": "A single latent (batch 1), e.g. from Empty "
                                                   "Latent Image: every candidate starts from it."}),
            "seed": SEED_INPUT,
            "candidates": ("INT", {"default": 4, "min": 1, "max": 256,
                                   "tooltip": "N: how many candidates to sample (the paper's N)."}),
            "steps": STEPS_INPUT,
            "cfg": CFG_INPUT,
            "sampler_name": sampler_input(),
            "scheduler": scheduler_input(),
        }}

    def fan_out(self, model, positive, negative, latent_image, seed, candidates, steps, cfg,
                sampler_name, scheduler):
        return (sample_candidates(model, positive, negative, latent_image, seed, candidates,
                                  steps, cfg, sampler_name, scheduler),)


def fan_out_passes(candidates: int, sampler_name: str) -> int:
    """Sampling passes the fan-out makes (for progress bars): 1 batched, or N."""
    return 1 if sampler_name in BATCH_SAFE_SAMPLERS else candidates


def sample_candidates(model, positive, negative, latent_image, seed, candidates, steps, cfg,
                      sampler_name, scheduler, progress=None) -> dict:
    """The fan-out: candidate i sampled with seed + i (see the node's description)."""
    samples = check_latent(model, latent_image, "latent_image")
    check_conditioning(model, positive, "positive")
    check_conditioning(model, negative, "negative")
    if samples.shape[0] != 1:
        raise ValueError(f"latent_image has a batch of {samples.shape[0]}; the fan-out makes "
                         "the batch itself: give a batch-1 latent and set candidates.")
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1, got {candidates}.")
    batch = samples.expand(candidates, -1, -1, -1).contiguous()
    seeds = [seed + i for i in range(candidates)]
    passes = fan_out_passes(candidates, sampler_name)
    progress = progress or Progress(model, passes * steps)
    out = sample(model, batch, seeds, steps, cfg, sampler_name, scheduler, positive,
                 negative, progress, one_by_one=passes > 1)
    result = {k: v for k, v in latent_image.items()
              if k not in ("samples", "noise_mask", "batch_index")}
    result["samples"] = out
    return result


NODE_CLASS_MAPPINGS = {"LoTTSSeedFanOut": LoTTSSeedFanOut}
NODE_DISPLAY_NAME_MAPPINGS = {"LoTTSSeedFanOut": "LoTTS Seed Fan-Out"}
