"""LoTTSBestOfN: the baseline LoTTS is measured against -- M whole samples, the verifier
picks one -- with M chosen to match a LoTTS run's NFE when its report is connected."""

from __future__ import annotations

import torch

from ..lotts.schedule import best_of_n_nfe
from .budget import Budget, SINGLE_CALL_SAMPLERS, parse_budget, per_sample_nfe
from .common import (CATEGORY, CFG_INPUT, MODEL_INPUT, NEGATIVE_INPUT, POSITIVE_INPUT,
                     SEED_INPUT, STEPS_INPUT, Progress, sampler_input, scheduler_input)
from .fan_out import fan_out_passes, sample_candidates
from .search import Pool, scores_payload


class LoTTSBestOfN:
    DESCRIPTION = ("Best-of-N baseline: samples M images from seeds seed..seed+M-1 (like "
                   "KSampler), scores them with the verifier and returns the best. Connect a "
                   "LoTTS Sampler report to match_budget to pick M so both spend the same NFE.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "LATENT", "IMAGE", "STRING")
    RETURN_NAMES = ("best", "latent", "ranked", "report")
    OUTPUT_TOOLTIPS = ("The best image.", "Its latent.", "All M images, best first.",
                       "Cost report (same format as LoTTS Sampler's).")
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": MODEL_INPUT,
            "positive": POSITIVE_INPUT,
            "negative": NEGATIVE_INPUT,
            "latent_image": ("LATENT", {"tooltip": "A batch-1 latent, e.g. Empty Latent Image."}),
            "seed": SEED_INPUT,
            "steps": STEPS_INPUT,
            "cfg": CFG_INPUT,
            "sampler_name": sampler_input(),
            "scheduler": scheduler_input(),
            "verifier": ("LOTTS_VERIFIER", {"tooltip": "The verifier that picks the best sample."}),
            "prompt": ("STRING", {"multiline": True, "default": "",
                                  "tooltip": "The prompt text, for the verifier."}),
            "vae": ("VAE", {"tooltip": "The checkpoint's VAE: samples are decoded for the verifier."}),
            "samples": ("INT", {"default": 8, "min": 1, "max": 1024,
                                "tooltip": "M: how many samples, when match_budget is empty."}),
        }, "optional": {
            "match_budget": ("STRING", {"default": "", "forceInput": False,
                                        "tooltip": "A LoTTS Sampler report (or an NFE number): M is "
                                                   "set so this run spends the same NFE."}),
        }}

    def run(self, model, positive, negative, latent_image, seed, steps, cfg, sampler_name,
            scheduler, verifier, prompt, vae, samples, match_budget=""):
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt is empty: the verifier scores images against the prompt.")
        target = None
        if match_budget and match_budget.strip():
            target = parse_budget(match_budget)
            samples = max(1, round(target / per_sample_nfe(steps, cfg)))
        budget = Budget()
        counted = budget.counting(model)
        progress = Progress(model, fan_out_passes(samples, sampler_name) * steps)
        with budget.stage("candidates"):
            latent = sample_candidates(counted, positive, negative, latent_image, seed, samples,
                                       steps, cfg, sampler_name, scheduler, progress)
        pool = Pool()
        new = pool.add(latent["samples"], [f"sample seed {seed + i}" for i in range(samples)], 0)
        with budget.stage("decode + verifier"):
            pool.score(new, vae, verifier, prompt)
            budget.scored = len(new)
        ranked = pool.ranked()
        best = ranked[0]
        formula = None
        if sampler_name in SINGLE_CALL_SAMPLERS:
            n = best_of_n_nfe(samples, steps, cfg)
            formula = {"candidates": n, "total": n}
        lines = [budget.table(formula, f"Best-of-N report: M={samples} T={steps} cfg={cfg} "
                                       f"{sampler_name}/{scheduler}")]
        if target is not None:
            lines.append(f"matched budget: {target} NFE -> M = {samples} "
                         f"({per_sample_nfe(steps, cfg)} NFE per sample)")
        lines += [f"verifier: {getattr(verifier, 'name', 'verifier')} scored {budget.scored} images",
                  f"best: score {best.score:.4f} -- {best.lineage}",
                  f"NFE total: {budget.total}"]
        report = "\n".join(lines)
        ui = {"text": [report], **scores_payload(ranked, getattr(verifier, "name", "verifier"))}
        return {"ui": ui, "result": (best.image, {"samples": best.latent},
                                     torch.cat([s.image for s in ranked]), report)}


NODE_CLASS_MAPPINGS = {"LoTTSBestOfN": LoTTSBestOfN}
NODE_DISPLAY_NAME_MAPPINGS = {"LoTTSBestOfN": "LoTTS Best-of-N (baseline)"}
