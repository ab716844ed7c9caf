"""LoTTSMaskedRefine: re-noise each candidate to t0 and re-denoise only inside its mask,
k times with fresh noise (the paper's localized resampling with temporal and spatial
consistency).

Spatial consistency comes from the host: ComfyUI's masked sampling replaces the latent
outside the mask, at every model call, by the candidate re-noised to the current noise
level, and blends the prediction the same way -- the whole latent sits at one noise
level, only the masked region is free to change, and there is no seam.
"""

from __future__ import annotations

from comfy_api.latest import io

from ..lotts.schedule import refine_steps
from ..lotts.seeds import Stream, stage_seeds
from . import inputs, search_aliases
from .checks import check_latent, latent_mask, latent_out, prepare_mask, queue_time_check, user_mask
from .crop import REGIONS, refine_in_boxes
from .sampling import Progress, SamplingSettings, renoised, sample


class LoTTSMaskedRefine(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LoTTSMaskedRefine", display_name="LoTTS Masked Refine",
            **search_aliases.schema_field("LoTTSMaskedRefine"),
            category=inputs.CATEGORY,
            description="Re-samples only the masked (weak) regions of each candidate: "
                        "re-noises it to start_step (t0) and denoises to end_step with the mask "
                        "enforced, k times with different noise. Output is N x k latents, "
                        "candidate-major. With end_step < steps the latents keep their leftover "
                        "noise for LoTTS Harmonize. A candidate whose mask is empty costs "
                        "nothing: it is passed on unchanged (re-noised to end_step when "
                        "end_step < steps), without a model call.",
            inputs=[
                inputs.model(), inputs.positive(), inputs.negative(), inputs.candidates_latent(),
                io.Mask.Input("mask", tooltip="Where to re-sample: one mask per candidate (from "
                                              "LoTTS Defect Localizer) or one for all, at the "
                                              "image's pixel size."),
                inputs.seed(), inputs.refinement_count(minimum=1), inputs.steps(), inputs.cfg(),
                inputs.sampler_name(), inputs.scheduler(),
                inputs.start_step(10, "t0: the step the candidate is re-noised to. Lower = more "
                                      "change. Paper: SD2.1 ~25/50, SDXL ~15/50."),
                io.Int.Input("end_step", default=20, min=1, max=inputs.STEP_MAX,
                             tooltip="Last masked step. Equal to steps: fully denoised, no "
                                     "harmonization. Smaller: leave the remaining steps to "
                                     "LoTTS Harmonize (add_noise off)."),
                inputs.max_batch(), *region_inputs(),
            ],
            outputs=[io.Latent.Output(display_name="refined",
                                      tooltip="N x k refined latents: all k refinements of "
                                              "candidate 0 first.")])

    @classmethod
    def validate_inputs(cls, steps, sampler_name, scheduler, start_step, end_step,
                        region="full frame"):
        return queue_time_check(cls, locals(), lambda: refine_steps(steps, start_step, end_step))

    @classmethod
    def execute(cls, *, model, positive, negative, candidates, mask, seed, refinements, steps,
                cfg, sampler_name, scheduler, start_step, end_step, max_batch=0,
                region="full frame", context=32, upscale_to=0):
        settings = SamplingSettings(model, positive, negative, steps, cfg, sampler_name,
                                    scheduler, max_batch)
        n = check_latent(model, candidates, "candidates").shape[0]
        seeds = stage_seeds(seed, Stream.REFINEMENT, n * refinements)
        return io.NodeOutput(refine_candidates(settings, candidates, mask, seeds=seeds,
                                               refinements=refinements, start_step=start_step,
                                               end_step=end_step, region=region, context=context,
                                               upscale_to=upscale_to))


def region_inputs():
    """Where a refinement samples: the whole frame (the paper), or only the mask's box."""
    return [
        io.Combo.Input("region", options=list(REGIONS), default="full frame", optional=True,
                       tooltip="full frame: every step sees the whole image (the paper). crop "
                               "to mask: only the box around the mask (plus context) is "
                               "sampled -- cost follows the defect's area; outside the mask "
                               "nothing changes. upscaled: the box is enlarged toward the "
                               "model's native resolution first (like a detailer, for small "
                               "defects) and finished there."),
        io.Int.Input("context", default=32, min=0, max=1024, step=8, optional=True,
                     tooltip="Pixels of surrounding image around the mask's box that a crop "
                             "sees (clamped at the image's border). All masked regions of a "
                             "candidate share one box."),
        io.Int.Input("upscale_to", default=0, min=0, max=4096, step=64, optional=True,
                     tooltip="For 'crop to mask, upscaled': the long side, in pixels, the box "
                             "is enlarged to (never shrunk). 0 = the model's native size "
                             "(512 for SD1.x/2.x, 1024 otherwise)."),
    ]


def refine_candidates(settings: SamplingSettings, candidates: dict, mask, *, seeds: list[int],
                      refinements: int, start_step: int, end_step: int,
                      region: str = "full frame", context: int = 32, upscale_to: int = 0,
                      progress: Progress | None = None) -> dict:
    """Masked refinement of every candidate, k times, refinement j from ``seeds[j]``
    (see the node's description). Items whose mask is empty make no model call."""
    samples = check_latent(settings.model, candidates, "candidates")
    if refinements < 1:
        raise ValueError(f"refinements must be >= 1, got {refinements}: k is how many "
                         "re-samplings each candidate gets.")
    window = refine_steps(settings.steps, start_step, end_step)
    n = samples.shape[0]
    masks = latent_mask(prepare_mask(mask, n, samples), samples)
    allowed = user_mask(candidates, samples)
    if allowed is not None:  # the user's inpainting mask is law: only inside it
        masks = masks * allowed
    masks = masks.repeat_interleave(refinements, dim=0)
    batch = samples.repeat_interleave(refinements, dim=0)
    progress = progress or Progress(settings.model, n * refinements * window.masked_steps)
    live = [j for j in range(batch.shape[0]) if masks[j].any()]
    idle = [j for j in range(batch.shape[0]) if not masks[j].any()]
    out = batch.clone()
    if live and region != "full frame":
        out[live] = refine_in_boxes(settings, batch[live], masks[live],
                                    seeds=[seeds[j] for j in live], start_step=start_step,
                                    end_step=end_step, region=region, context=context,
                                    progress=progress, target=upscale_to)
    elif live:
        out[live] = sample(settings, batch[live], seeds=[seeds[j] for j in live],
                           progress=progress, start_step=start_step, last_step=end_step,
                           force_full_denoise=window.harmonize_steps == 0,
                           noise_mask=masks[live]).to(out.dtype)
    if idle and window.harmonize_steps:  # leftover noise, as the sampler leaves it outside a mask
        out[idle] = renoised(settings, batch[idle], seeds=[seeds[j] for j in idle],
                             step=end_step)
    progress.advance(len(idle) * window.masked_steps)
    # The result carries no defect mask: a mask left on the LATENT would make the
    # harmonization steps masked too. The user's inpainting mask stays, with the clean
    # candidates, so Harmonize keeps the region outside it exactly.
    if allowed is None:
        return latent_out(candidates, out)
    return latent_out(candidates, out, noise_mask=allowed.repeat_interleave(refinements, dim=0),
                      source=batch)
