"""LoTTSBestOfN: the baseline LoTTS is measured against -- M whole samples, the verifier
picks one -- with M chosen to match a LoTTS run's NFE when its report is connected."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from ..lotts.prompts import check_prompt
from ..lotts.schedule import SINGLE_CALL_SAMPLERS, Plan, match_best_of_n
from ..lotts.seeds import Stream, stage_seeds
from . import inputs, search_aliases
from .budget import Budget, cost_payload, parse_budget, report
from .checks import queue_time_check
from .fan_out import sample_candidates
from .sampling import Progress, SamplingSettings
from .search import Pool, scores_payload

MAX_SAMPLES = 1024


class LoTTSBestOfN(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LoTTSBestOfN", display_name="LoTTS Best-of-N (baseline)",
            **search_aliases.schema_field("LoTTSBestOfN"),
            category=inputs.CATEGORY,
            description="Best-of-N baseline: samples M images from seeds seed..seed+M-1 (like "
                        "KSampler), scores them with the verifier and returns the best. Connect "
                        "a LoTTS Sampler report to match_budget to pick M so both spend the "
                        "same NFE.",
            inputs=[
                inputs.model(), inputs.positive(), inputs.negative(), inputs.batch1_latent(),
                inputs.seed(), inputs.steps(), inputs.cfg(), inputs.sampler_name(),
                inputs.scheduler(),
                inputs.verifier("The verifier that picks the best sample."),
                inputs.prompt("The prompt text, for the verifier."), inputs.vae(),
                io.Int.Input("samples", default=8, min=1, max=MAX_SAMPLES,
                             tooltip="M: how many samples, when match_budget is empty."),
                io.String.Input("match_budget", default="", optional=True, force_input=False,
                                tooltip="A LoTTS Sampler report (or an NFE number): M is set so "
                                        "this run spends the same NFE (at most "
                                        f"{MAX_SAMPLES} samples)."),
                inputs.max_batch(),
            ],
            outputs=[
                io.Image.Output(display_name="best", tooltip="The best image."),
                io.Latent.Output(display_name="latent", tooltip="Its latent."),
                io.Image.Output(display_name="ranked",
                                tooltip="All M images, best first."),
                io.String.Output(display_name="report",
                                 tooltip="Cost report (same format as LoTTS Sampler's)."),
            ],
            is_output_node=True)

    @classmethod
    def validate_inputs(cls, steps, cfg, sampler_name, scheduler, match_budget=""):
        return queue_time_check(cls, locals(), lambda: match_budget.strip() and match_best_of_n(
            parse_budget(match_budget), steps, cfg, MAX_SAMPLES))

    @classmethod
    def execute(cls, *, model, positive, negative, latent_image, seed, steps, cfg, sampler_name,
                scheduler, verifier, prompt, vae, samples, match_budget="", max_batch=0):
        prompt = check_prompt(prompt, "the verifier scores images against the prompt.")
        target = parse_budget(match_budget) if match_budget and match_budget.strip() else None
        if target is not None:
            samples = match_best_of_n(target, steps, cfg, MAX_SAMPLES)
        settings = SamplingSettings(model, positive, negative, steps, cfg, sampler_name,
                                    scheduler, max_batch)
        budget = Budget()
        settings = settings.with_model(budget.counting(model))
        seeds = stage_seeds(seed, Stream.CANDIDATES, samples)
        with budget.stage("candidates"):
            latent = sample_candidates(settings, latent_image, seeds=seeds,
                                       progress=Progress(settings.model, samples * steps))
        pool = Pool()
        new = pool.add(latent["samples"], [f"sample seed {s}" for s in seeds])
        with budget.stage("decode + verifier"):
            pool.score(new, vae, verifier, prompt)
        ranked, name = pool.ranked(), getattr(verifier, "name", "verifier")
        formula = (Plan(samples, steps, refinements=0).nfe(cfg)
                   if sampler_name in SINGLE_CALL_SAMPLERS else None)
        notes = [] if target is None else [
            f"matched budget: {target} NFE -> M = {samples} "
            f"({Plan(1, steps, refinements=0).nfe(cfg)['total']} NFE per sample)"]
        text = report(budget, formula, f"Best-of-N report: M={samples} T={steps} cfg={cfg} "
                                       f"{sampler_name}/{scheduler}", notes, ranked, name)
        images = torch.cat([s.image for s in ranked])
        ui = {"text": [text], **scores_payload(ranked, name, images=images),
              "lotts_cost": [cost_payload(budget, formula, ranked, samples=samples,
                                          matched_budget=target)]}
        best = ranked[0]
        return io.NodeOutput(best.image, {"samples": best.latent}, images, text, ui=ui)
