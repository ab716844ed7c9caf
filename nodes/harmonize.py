"""LoTTSHarmonize: the last steps on the whole image, no mask (the paper's holistic
consistency), so style and structure agree across the re-sampled boundary."""

from .common import (CATEGORY, CFG_INPUT, MODEL_INPUT, NEGATIVE_INPUT, POSITIVE_INPUT,
                     SEED_INPUT, STEPS_INPUT, Progress, check_conditioning, check_latent,
                     check_steps, sample, sampler_input, scheduler_input)


class LoTTSHarmonize:
    DESCRIPTION = ("Runs steps start_step..steps on the whole image with no mask. With "
                   "add_noise off it finishes latents that LoTTS Masked Refine left noisy "
                   "(start_step = its end_step); with add_noise on it re-noises clean latents "
                   "to start_step first.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The harmonized, fully denoised latents (same batch).",)
    FUNCTION = "harmonize"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": MODEL_INPUT,
            "positive": POSITIVE_INPUT,
            "negative": NEGATIVE_INPUT,
            "latent": ("LATENT", {"tooltip": "Latents to harmonize, e.g. LoTTS Masked Refine's output."}),
            "seed": SEED_INPUT,
            "steps": STEPS_INPUT,
            "cfg": CFG_INPUT,
            "sampler_name": sampler_input(),
            "scheduler": scheduler_input(),
            "start_step": ("INT", {"default": 17, "min": 0, "max": 10000,
                                   "tooltip": "First harmonization step: Masked Refine's end_step "
                                              "(the paper uses the last few steps)."}),
            "add_noise": ("BOOLEAN", {"default": False,
                                      "tooltip": "Off: the latent already holds the noise of "
                                                 "start_step (from Masked Refine). On: re-noise a "
                                                 "clean latent to start_step first (item i: seed + i)."}),
        }}

    def harmonize(self, model, positive, negative, latent, seed, steps, cfg, sampler_name,
                  scheduler, start_step, add_noise):
        return (harmonize_latents(model, positive, negative, latent, seed, steps, cfg,
                                  sampler_name, scheduler, start_step, add_noise),)


def harmonize_latents(model, positive, negative, latent, seed, steps, cfg, sampler_name,
                      scheduler, start_step, add_noise, progress=None) -> dict:
    """Steps [start_step, steps] on the whole image, no mask (see the node's description)."""
    samples = check_latent(model, latent, "latent")
    check_conditioning(model, positive, "positive")
    check_conditioning(model, negative, "negative")
    check_steps(steps, start_step, steps)
    seeds = [seed + i for i in range(samples.shape[0])]
    progress = progress or Progress(model, steps - start_step)
    # noise_mask is dropped on purpose: harmonization is global.
    out = sample(model, samples, seeds, steps, cfg, sampler_name, scheduler, positive,
                 negative, progress, start_step=start_step, last_step=steps,
                 force_full_denoise=True, add_noise=add_noise)
    result = {k: v for k, v in latent.items() if k not in ("samples", "noise_mask", "batch_index")}
    result["samples"] = out
    return result


NODE_CLASS_MAPPINGS = {"LoTTSHarmonize": LoTTSHarmonize}
NODE_DISPLAY_NAME_MAPPINGS = {"LoTTSHarmonize": "LoTTS Harmonize"}
