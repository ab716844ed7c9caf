"""LoTTSSampler: the whole LoTTS pipeline in one node, built from the same functions as
the separate nodes (no second implementation).

    fan-out N -> localize -> refine k (masked) -> harmonize -> decode -> verifier picks
    depth > 1: localize and refine the best so far again (the paper's depth search)

The verifier scores the unrefined candidates too, so LoTTS never returns worse than its
own Best-of-N pool, and the report gives the NFE each stage really spent.
"""

from __future__ import annotations

import torch

import comfy.model_management

from ..lotts.prompts import DEFAULT_NEGATIVE_TEMPLATE, DEFAULT_POSITIVE_TEMPLATE
from .budget import Budget, formula_for
from .common import (CATEGORY, CFG_INPUT, MODEL_INPUT, NEGATIVE_INPUT, POSITIVE_INPUT,
                     SEED_INPUT, STEPS_INPUT, Progress, check_steps, sampler_input,
                     scheduler_input)
from .fan_out import fan_out_passes, sample_candidates
from .harmonize import harmonize_latents
from .localizer import localize_candidates
from .masked_refine import refine_candidates
from .search import Pool, scores_payload
from .ui_previews import localizer_viewer

PROBE_FRACTION = 0.75  # probe at 3/4 of the schedule, the localizer node's default


def probe_step_for(steps: int) -> int:
    return min(steps - 1, int(round(steps * PROBE_FRACTION)))


class LoTTSSampler:
    DESCRIPTION = ("LoTTS in one node: samples N candidates, finds each one's weak regions "
                   "from the model's attention, re-samples only there k times, harmonizes, "
                   "and returns the sample the verifier scores best (the unrefined "
                   "candidates compete too). depth > 1 refines the best again. The report "
                   "lists the NFE each stage spent, for a fair comparison with Best-of-N.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "LATENT", "IMAGE", "MASK", "STRING")
    RETURN_NAMES = ("image", "latent", "all_images", "masks", "report")
    OUTPUT_TOOLTIPS = ("The best image.", "The best image's latent.",
                       "Every scored sample, best first.",
                       "The defect masks of the last round (one per refined sample).",
                       "Cost and lineage report (connect it to LoTTS Best-of-N's match_budget "
                       "for an equal-NFE baseline).")
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": MODEL_INPUT,
            "clip": ("CLIP", {"tooltip": "The checkpoint's text encoder (for the quality prompts)."}),
            "vae": ("VAE", {"tooltip": "The checkpoint's VAE: samples are decoded for the verifier."}),
            "positive": POSITIVE_INPUT,
            "negative": NEGATIVE_INPUT,
            "prompt": ("STRING", {"multiline": True, "default": "",
                                  "tooltip": "The prompt text (same as the positive conditioning): "
                                             "used by the localizer and the verifier."}),
            "verifier": ("LOTTS_VERIFIER", {"tooltip": "A verifier from LoTTS Verifier Loader."}),
            "latent_image": ("LATENT", {"tooltip": "A batch-1 latent, e.g. Empty Latent Image."}),
            "seed": SEED_INPUT,
            "candidates": ("INT", {"default": 4, "min": 1, "max": 256,
                                   "tooltip": "N: candidates sampled from seeds seed..seed+N-1."}),
            "refinements": ("INT", {"default": 2, "min": 0, "max": 64,
                                    "tooltip": "k: localized re-samplings per candidate (0 = plain "
                                               "Best-of-N). The paper's best is 2."}),
            "depth": ("INT", {"default": 1, "min": 1, "max": 16,
                              "tooltip": "Search rounds: each extra round localizes and refines "
                                         "the best sample so far k more times."}),
            "steps": STEPS_INPUT,
            "cfg": CFG_INPUT,
            "sampler_name": sampler_input(),
            "scheduler": scheduler_input(),
            "start_step": ("INT", {"default": 10, "min": 0, "max": 10000,
                                   "tooltip": "t0: refinements re-noise to this step (SD1.5 ~ "
                                              "half the steps, SDXL ~ 30%, FLUX ~ 20%)."}),
            "harmonize_steps": ("INT", {"default": 3, "min": 0, "max": 10000,
                                        "tooltip": "The last steps of each refinement run on the "
                                                   "whole image without the mask."}),
            "mask_ratio": ("FLOAT", {"default": 0.5, "min": 0.01, "max": 1.0, "step": 0.01,
                                     "tooltip": "r: share of each image re-sampled."}),
            "prior_weight": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 10.0, "step": 0.05,
                                       "tooltip": "lambda: weight of the prompt's attention prior."}),
        }}

    def run(self, model, clip, vae, positive, negative, prompt, verifier, latent_image, seed,
            candidates, refinements, depth, steps, cfg, sampler_name, scheduler, start_step,
            harmonize_steps, mask_ratio, prior_weight):
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt is empty: the localizer and the verifier need the prompt text.")
        if candidates < 1 or refinements < 0 or depth < 1 or harmonize_steps < 0:
            raise ValueError("candidates >= 1, refinements >= 0, depth >= 1 and "
                             "harmonize_steps >= 0 are required.")
        end_step = steps - harmonize_steps
        if refinements:
            check_steps(steps, start_step, end_step)
        depth = depth if refinements else 1
        refine_units = (end_step - start_step) + harmonize_steps
        units = fan_out_passes(candidates, sampler_name) * steps
        if refinements:
            units += candidates + refine_units + (depth - 1) * (1 + refine_units)
        progress = Progress(model, units)

        budget = Budget()
        counted = budget.counting(model)
        pool = Pool()
        with budget.stage("candidates"):
            cands = sample_candidates(counted, positive, negative, latent_image, seed, candidates,
                                      steps, cfg, sampler_name, scheduler, progress)
        new = pool.add(cands["samples"], [f"candidate seed {seed + i}" for i in range(candidates)], 0)
        masks = heatmaps = None
        localized = []  # the samples the last round localized (for the viewer)

        def refine_round(latent, parents, round_depth, refine_seed, probe_seed):
            nonlocal masks, heatmaps
            with budget.stage("probes"):
                masks, heatmaps = localize_candidates(
                    counted, clip, prompt, latent, mask_ratio, prior_weight,
                    probe_step_for(steps), DEFAULT_POSITIVE_TEMPLATE, DEFAULT_NEGATIVE_TEMPLATE,
                    probe_seed, steps, scheduler, progress=progress)
            with budget.stage("refinement"):
                refined = refine_candidates(counted, positive, negative, latent, masks, refine_seed,
                                            refinements, steps, cfg, sampler_name, scheduler,
                                            start_step, end_step, progress)
            if harmonize_steps:
                with budget.stage("harmonization"):
                    refined = harmonize_latents(counted, positive, negative, refined, 0, steps,
                                                cfg, sampler_name, scheduler, end_step, False,
                                                progress)
            lineages = [f"{parents[j // refinements]} -> refinement seed {refine_seed + j} "
                        f"(depth {round_depth})" for j in range(refined["samples"].shape[0])]
            return pool.add(refined["samples"], lineages, round_depth)

        if refinements:
            localized = list(new)
            new += refine_round(cands, [s.lineage for s in new], 1, seed + candidates, seed)
        with budget.stage("decode + verifier"):
            pool.score(new, vae, verifier, prompt)
            budget.scored += len(new)
        for level in range(2, depth + 1):
            comfy.model_management.throw_exception_if_processing_interrupted()
            best = pool.best()
            localized = [best]
            base = seed + candidates * (1 + refinements) + (level - 2) * refinements
            new = refine_round({"samples": best.latent}, [best.lineage], level, base, base)
            with budget.stage("decode + verifier"):
                pool.score(new, vae, verifier, prompt)
                budget.scored += len(new)

        ranked = pool.ranked()
        best = ranked[0]
        formula = formula_for(sampler_name, candidates=candidates, steps=steps, cfg=cfg,
                              refinements=refinements, start_step=start_step,
                              harmonize_steps=harmonize_steps if refinements else 0, depth=depth)
        report = "\n".join([
            budget.table(formula, f"LoTTS report: N={candidates} k={refinements} depth={depth} "
                                  f"T={steps} t0={start_step} harmonize={harmonize_steps} "
                                  f"cfg={cfg} {sampler_name}/{scheduler}"),
            "(NFE = denoiser evaluations of one image; a CFG step costs 2, cfg 1 costs 1)",
            f"verifier: {getattr(verifier, 'name', 'verifier')} scored {budget.scored} images",
            f"best: score {best.score:.4f} -- {best.lineage}",
            f"NFE total: {budget.total}",
        ])
        all_images = torch.cat([s.image for s in ranked])
        ui = {"text": [report], **scores_payload(ranked, getattr(verifier, "name", "verifier"))}
        if masks is None:  # refinements = 0: nothing was re-sampled anywhere
            masks = torch.zeros(candidates, *all_images.shape[1:3])
        else:
            ui.update(localizer_viewer(torch.cat([s.image for s in localized]), masks, heatmaps,
                                       mask_ratio))
        return {"ui": ui, "result": (best.image, {"samples": best.latent}, all_images, masks,
                                     report)}


NODE_CLASS_MAPPINGS = {"LoTTSSampler": LoTTSSampler}
NODE_DISPLAY_NAME_MAPPINGS = {"LoTTSSampler": "LoTTS Sampler (one node)"}
