"""LoTTSMaskedRefine: re-noise each candidate to t0 and re-denoise only inside its mask,
k times with fresh noise (the paper's localized resampling with temporal and spatial
consistency).

Spatial consistency comes from the host: ComfyUI's masked sampling replaces the latent
outside the mask, at every model call, by the candidate re-noised to the current noise
level, and blends the prediction the same way -- the whole latent sits at one noise
level, only the masked region is free to change, and there is no seam.
"""

from .common import (CATEGORY, CFG_INPUT, MODEL_INPUT, NEGATIVE_INPUT, POSITIVE_INPUT,
                     SEED_INPUT, STEPS_INPUT, Progress, check_conditioning, check_latent,
                     check_steps, prepare_mask, sample, sampler_input, scheduler_input)


class LoTTSMaskedRefine:
    DESCRIPTION = ("Re-samples only the masked (weak) regions of each candidate: re-noises it "
                   "to start_step (t0) and denoises to end_step with the mask enforced, k "
                   "times with different noise. Output is N x k latents, candidate-major. "
                   "With end_step < steps the latents keep their leftover noise for "
                   "LoTTS Harmonize.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("refined",)
    OUTPUT_TOOLTIPS = ("N x k refined latents: all k refinements of candidate 0 first. "
                       "Refinement j of the batch (j = i*k + r) used seed + j.",)
    FUNCTION = "refine"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": MODEL_INPUT,
            "positive": POSITIVE_INPUT,
            "negative": NEGATIVE_INPUT,
            "candidates": ("LATENT", {"tooltip": "The N candidate latents (from LoTTS Seed Fan-Out)."}),
            "mask": ("MASK", {"tooltip": "Where to re-sample: one mask per candidate (from LoTTS "
                                         "Defect Localizer) or one for all, at the image's pixel size."}),
            "seed": SEED_INPUT,
            "refinements": ("INT", {"default": 2, "min": 1, "max": 64,
                                    "tooltip": "k: refinements per candidate (the paper's best is 2)."}),
            "steps": STEPS_INPUT,
            "cfg": CFG_INPUT,
            "sampler_name": sampler_input(),
            "scheduler": scheduler_input(),
            "start_step": ("INT", {"default": 10, "min": 0, "max": 10000,
                                   "tooltip": "t0: the step the candidate is re-noised to. Lower = "
                                              "more change. Paper: SD2.1 ~25/50, SDXL ~15/50."}),
            "end_step": ("INT", {"default": 20, "min": 1, "max": 10000,
                                 "tooltip": "Last masked step. Equal to steps: fully denoised, no "
                                            "harmonization. Smaller: leave the remaining steps to "
                                            "LoTTS Harmonize (add_noise off)."}),
        }}

    def refine(self, model, positive, negative, candidates, mask, seed, refinements, steps, cfg,
               sampler_name, scheduler, start_step, end_step):
        return (refine_candidates(model, positive, negative, candidates, mask, seed, refinements,
                                  steps, cfg, sampler_name, scheduler, start_step, end_step),)


def refine_candidates(model, positive, negative, candidates, mask, seed, refinements, steps,
                      cfg, sampler_name, scheduler, start_step, end_step, progress=None) -> dict:
    """Masked refinement of every candidate, k times (see the node's description)."""
    samples = check_latent(model, candidates, "candidates")
    check_conditioning(model, positive, "positive")
    check_conditioning(model, negative, "negative")
    if refinements < 1:
        raise ValueError(f"refinements must be >= 1, got {refinements}: k is how many "
                         "re-samplings each candidate gets.")
    check_steps(steps, start_step, end_step)
    n = samples.shape[0]
    masks = prepare_mask(mask, n, samples)
    batch = samples.repeat_interleave(refinements, dim=0)
    masks = masks.repeat_interleave(refinements, dim=0)
    seeds = [seed + j for j in range(n * refinements)]
    progress = progress or Progress(model, end_step - start_step)
    out = sample(model, batch, seeds, steps, cfg, sampler_name, scheduler, positive, negative,
                 progress, start_step=start_step, last_step=end_step,
                 force_full_denoise=end_step == steps, noise_mask=masks)
    # The result carries no noise_mask: a mask left on the LATENT would make the
    # harmonization steps (and any later sampler) masked too.
    result = {k: v for k, v in candidates.items() if k not in ("samples", "noise_mask", "batch_index")}
    result["samples"] = out
    return result


NODE_CLASS_MAPPINGS = {"LoTTSMaskedRefine": LoTTSMaskedRefine}
NODE_DISPLAY_NAME_MAPPINGS = {"LoTTSMaskedRefine": "LoTTS Masked Refine"}
