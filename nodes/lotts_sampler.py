"""LoTTSSampler: the whole LoTTS pipeline in one node, built from the same stage functions
as the separate nodes (no second implementation; the search is nodes/search.py).

    fan-out N -> localize -> refine k (masked) -> harmonize -> decode -> verifier picks
    depth > 1: localize and refine the best child of the level above (depth-first)

The verifier scores the unrefined candidates too, so LoTTS never returns worse than its
own Best-of-N pool, and the report gives the NFE each stage really spent.
"""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..lotts.prompts import check_prompt
from ..lotts.schedule import SINGLE_CALL_SAMPLERS, Plan, probe_step_for
from . import inputs, search_aliases
from .budget import cost_payload, report
from .checks import queue_time_check
from .localizer import ProbeSettings, method_inputs
from .masked_refine import region_inputs
from .sampling import SamplingSettings
from .search import run_search, scores_payload
from .ui_previews import localizer_viewer

def localizer_lines(info: dict) -> list[str]:
    """What the localizer of the last round (the deepest level searched) read and decided,
    for the report."""
    if not info:
        return []
    lines = [f"localizer (last round): {info['attention']} attention of {', '.join(info['blocks'])} "
             f"({info['grid'][0]}x{info['grid'][1]} tokens); contrast on "
             f"{info['contrast_tokens']}; prior on "
             f"{repr(info['prior_words']) if info.get('prior_words') else 'all the prompt words'}; "
             f"propagation {info['propagation']}"]
    entropy, used = info.get("self_attention_entropy") or [], info.get("propagated") or []
    if entropy:
        lines.append(f"  self-attention row entropy {min(entropy):.3f}-{max(entropy):.3f} of "
                     f"max; propagated for {sum(used)} of {len(used)} sample(s)" +
                     ("" if all(used) or info["propagation"] == "off" else
                      " (skipped where self-attention is near uniform: it would wash the "
                      "contrast out)"))
    return lines


def skipped_lines(skipped: list[dict]) -> list[str]:
    """The report's lines for samples the search did not refine (no NFE spent)."""
    lines = []
    for s in skipped:
        if s["samples"]:
            lines.append(f"depth {s['depth']}: {s['samples']} sample(s) had an empty mask inside "
                         "the latent's inpainting mask: not refined (no NFE spent)")
        if s.get("flat"):
            lines.append(f"depth {s['depth']}: {s['flat']} sample(s) had a flat defect score (the "
                         "attention maps carry no ranking): not refined (no NFE spent)")
    return lines


class LoTTSSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LoTTSSampler", display_name="LoTTS Sampler (one node)",
            **search_aliases.schema_field("LoTTSSampler"),
            category=inputs.CATEGORY,
            description="LoTTS in one node: samples N candidates, finds each one's weak "
                        "regions from the model's attention, re-samples only there k times, "
                        "harmonizes, and returns the sample the verifier scores best (the "
                        "unrefined candidates compete too). depth > 1 refines the best result "
                        "of the previous round again (depth-first). The report lists the NFE "
                        "each stage spent, for a fair comparison with Best-of-N.",
            inputs=[
                inputs.model(), inputs.clip(),
                inputs.vae(), inputs.positive(), inputs.negative(),
                inputs.prompt("The prompt text (same as the positive conditioning): used by the "
                              "localizer and the verifier."),
                inputs.verifier(), inputs.batch1_latent(), inputs.seed(),
                inputs.candidate_count(), inputs.refinement_count(minimum=0),
                io.Int.Input("depth", default=1, min=1, max=16,
                             tooltip="Search depth: each extra level localizes and refines the "
                                     "best sample the level above produced, k more times."),
                inputs.steps(), inputs.cfg(), inputs.sampler_name(), inputs.scheduler(),
                inputs.start_step(10, "t0: refinements re-noise to this step (SD1.5 ~ half the "
                                      "steps, SDXL ~ 30%, FLUX ~ 20%)."),
                io.Int.Input("harmonize_steps", default=3, min=0, max=inputs.STEP_MAX,
                             tooltip="The last steps of each refinement run on the whole image "
                                     "without the mask (start_step + harmonize_steps < steps)."),
                inputs.mask_ratio(), inputs.prior_weight(), inputs.max_batch(),
                *region_inputs(), *method_inputs(),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="The best image."),
                io.Latent.Output(display_name="latent",
                                 tooltip="The best image's latent."),
                io.Image.Output(display_name="all_images",
                                tooltip="Every scored sample, best first."),
                io.Mask.Output(display_name="masks",
                               tooltip="The defect masks of the last round (one per localized "
                                       "sample)."),
                io.String.Output(display_name="report",
                                 tooltip="Cost and lineage report (connect it to LoTTS "
                                         "Best-of-N's match_budget for an equal-NFE baseline)."),
            ],
            is_output_node=True)

    @classmethod
    def validate_inputs(cls, steps, sampler_name, scheduler, refinements, start_step,
                        harmonize_steps, region="full frame", propagation="always",
                        contrast_tokens="all content tokens"):
        # candidates and depth only have ranges, which ComfyUI checks itself
        return queue_time_check(cls, locals(), lambda: Plan(1, steps, refinements, start_step,
                                                              harmonize_steps))

    @classmethod
    def execute(cls, *, model, clip, vae, positive, negative, prompt, verifier, latent_image,
                seed, candidates, refinements, depth, steps, cfg, sampler_name, scheduler,
                start_step, harmonize_steps, mask_ratio, prior_weight, max_batch=0,
                region="full frame", context=32, upscale_to=0, propagation="always",
                contrast_tokens="all content tokens", prior_words=""):
        prompt = check_prompt(prompt, "the localizer and the verifier need the prompt text.")
        plan = Plan(candidates, steps, refinements, start_step, harmonize_steps, depth)
        settings = SamplingSettings(model, positive, negative, steps, cfg, sampler_name,
                                    scheduler, max_batch)
        probe = ProbeSettings(model, clip, prompt, steps, scheduler, mask_ratio, prior_weight,
                              probe_step_for(steps), positive=positive,
                              max_batch=max_batch, propagation=propagation,
                              contrast_tokens=contrast_tokens, prior_words=prior_words,
                              on_flat="empty")
        result = run_search(settings, plan, probe, latent_image=latent_image, seed=seed,
                            vae=vae, verifier=verifier, region=region, context=context,
                            upscale_to=upscale_to)
        ranked, name = result.ranked, getattr(verifier, "name", "verifier")
        formula = plan.nfe(cfg) if sampler_name in SINGLE_CALL_SAMPLERS else None
        path = [f"depth {p['depth']}: refined " + (
            f"all {len(p['expanded'])} candidates" if p["depth"] == 1 else
            f"{p['expanded'][0]} (score {p['score']:.4f})") for p in result.path]
        text = report(result.budget, formula,
                      f"LoTTS report: N={candidates} k={refinements} depth={plan.depth if refinements else 1} "
                      f"T={steps} t0={start_step} harmonize={harmonize_steps} cfg={cfg} "
                      f"{sampler_name}/{scheduler}",
                      (["search path:"] + [f"  {line}" for line in path] if path else []) +
                      localizer_lines(result.localizer) + skipped_lines(result.skipped),
                      ranked, name)
        all_images = torch.cat([s.image for s in ranked])
        ui = {"text": [text], **scores_payload(ranked, name, images=all_images),
              "lotts_cost": [cost_payload(result.budget, formula, ranked, path=result.path,
                                          localizer=result.localizer, skipped=result.skipped)]}
        if result.masks is None:  # refinements = 0: nothing was re-sampled anywhere
            masks = torch.zeros(candidates, *all_images.shape[1:3])
        else:
            masks = result.masks
            # the localized samples are among the ranked ones: their thumbnails are reused
            thumbs, at = ui["lotts_scores"][0]["images"], {id(s): i for i, s in enumerate(ranked)}
            ui.update(localizer_viewer(None, masks, result.heatmaps, mask_ratio,
                                       candidate_refs=[thumbs[at[id(s)]] for s in result.localized]))
            ui["lotts_localizer"] = [result.localizer]  # the viewer's line under each sample
        best = ranked[0]
        return io.NodeOutput(best.image, {"samples": best.latent}, all_images, masks, text, ui=ui)
