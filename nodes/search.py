"""The LoTTS search: fan-out, then localize-and-refine rounds descending depth-first, every
sample scored by the verifier. LoTTS Sampler is this plus its inputs and outputs; Best-of-N
shares the pool, the scoring and the report.

    depth 1   the N candidates, each localized and refined k times (+ harmonized)
    depth L   the best of the samples depth L-1 produced, localized and refined k times

The paper's DFS: each level expands the best *child* of the level above -- even when no
child beat its parent -- and the search returns the best sample it saw anywhere (the
unrefined candidates compete too, so LoTTS never returns worse than its own Best-of-N
pool).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

import comfy.model_management

from ..lotts.schedule import Plan
from ..lotts.seeds import Stream, round_seeds, stage_seeds
from ..lotts.verifiers import rank
from .budget import Budget
from .fan_out import sample_candidates
from .harmonize import harmonize_latents
from .localizer import ProbeSettings, localize_candidates
from .masked_refine import refine_candidates
from .sampling import Progress, SamplingSettings
from .ui_previews import scores_ui
from .verifier_pick import score_images


@dataclass
class Sample:
    latent: torch.Tensor      # (1, C, H, W)
    lineage: str              # e.g. "candidate seed 12 -> ... refinement seed 17 ... (depth 1)"
    image: torch.Tensor | None = None
    score: float | None = None


class Pool:
    """Every sample scored so far; the best one is always available."""

    def __init__(self):
        self.samples: list[Sample] = []

    def add(self, latents: torch.Tensor, lineages: list[str]) -> list[Sample]:
        new = [Sample(latents[i:i + 1], lineages[i]) for i in range(latents.shape[0])]
        self.samples += new
        return new

    def score(self, new: list[Sample], vae, verifier, prompt: str) -> None:
        """Decode and score ``new`` (the verifier sees them together)."""
        latents = torch.cat([s.latent for s in new])
        images = vae.decode(latents)[..., :3]
        scores = score_images(verifier, images, prompt)
        for s, img, sc in zip(new, images, scores):
            s.image, s.score = img.unsqueeze(0), sc

    def ranked(self) -> list[Sample]:
        order = rank([s.score for s in self.samples])
        return [self.samples[i] for i in order]


def scores_payload(ranked: list[Sample], verifier_name: str, picked: int = 1,
                   images: torch.Tensor | None = None) -> dict:
    """UI payload for the js score badges (see ui_previews.scores_ui). ``images``: the
    ranked images already concatenated (the node's output), not copied again."""
    images = torch.cat([s.image for s in ranked]) if images is None else images
    return scores_ui(images, [s.score for s in ranked],
                     [s.lineage for s in ranked], verifier_name, picked)


@dataclass
class SearchResult:
    ranked: list[Sample]                 # every scored sample, best first
    budget: Budget                       # NFE and seconds per stage, as counted
    masks: torch.Tensor | None = None    # the last round's masks (one per localized sample)
    heatmaps: torch.Tensor | None = None
    localized: list[Sample] = field(default_factory=list)  # what the last round localized
    path: list[dict] = field(default_factory=list)         # per depth: what was expanded
    localizer: dict = field(default_factory=dict)          # what the localizer captured
    skipped: list[dict] = field(default_factory=list)      # per depth: samples not refined


def best_of(samples: list[Sample]) -> Sample:
    return samples[rank([s.score for s in samples])[0]]


def run_search(settings: SamplingSettings, plan: Plan, probe: ProbeSettings, *,
               latent_image: dict, seed: int, vae, verifier, progress: Progress | None = None,
               region: str = "full frame", context: int = 32, upscale_to: int = 0
               ) -> SearchResult:
    """Run the LoTTS search of ``plan`` (see the module's description).

    ``settings.model`` and ``probe.model`` are the user's MODEL; the search counts every
    model call on a clone of it (``SearchResult.budget``).
    """
    budget = Budget()
    counted = budget.counting(settings.model)
    settings, probe = settings.with_model(counted), probe.with_model(counted)
    progress = progress or Progress(counted, plan.units()["total"])
    pool, result = Pool(), SearchResult([], budget)
    k = plan.refinements
    # the user's inpainting mask follows every sample the search refines
    inpainting = ({"noise_mask": latent_image["noise_mask"]}
                  if isinstance(latent_image, dict) and "noise_mask" in latent_image else {})

    def score(new):
        with budget.stage("decode + verifier"):
            pool.score(new, vae, verifier, probe.prompt)

    def refine_round(parents: list[Sample], first_round: int, level: int) -> list[Sample]:
        """Localize ``parents`` and refine each k times; rounds first_round, first_round+1..."""
        seeds = [round_seeds(seed, first_round + i, k) for i in range(len(parents))]
        latents = {"samples": torch.cat([p.latent for p in parents]), **inpainting}
        info = {}
        with budget.stage("probes"):
            masks, heatmaps = localize_candidates(probe, latents, seeds=[s[0] for s in seeds],
                                                  progress=progress, info=info)
        result.masks, result.heatmaps, result.localized = masks, heatmaps, parents
        result.localizer = info
        live = [i for i in range(len(parents)) if masks[i].any()]
        if len(live) < len(parents):  # nothing to re-sample: inpainting mask, or a flat P
            flat = sum(1 for i, f in enumerate(info.get("flat") or []) if f and i not in live)
            result.skipped.append({"depth": level, "samples": len(parents) - len(live) - flat,
                                   "flat": flat})
            progress.advance((len(parents) - len(live)) * k * (plan.steps - plan.start_step))
        if not live:
            return []
        parents, seeds, masks = [parents[i] for i in live], [seeds[i] for i in live], masks[live]
        latents = {"samples": latents["samples"][live], **inpainting}
        with budget.stage("refinement"):
            refined = refine_candidates(settings, latents, masks,
                                        seeds=[r for s in seeds for r in s[1]], refinements=k,
                                        start_step=plan.start_step, end_step=plan.end_step,
                                        region=region, context=context, upscale_to=upscale_to,
                                        progress=progress)
        if plan.harmonize_steps:
            with budget.stage("harmonization"):
                refined = harmonize_latents(settings, refined,
                                            seeds=[h for s in seeds for h in s[2]],
                                            start_step=plan.end_step, add_noise=False,
                                            progress=progress)
        lineages = []
        for parent, (probe_seed, refine_seeds, harm_seeds) in zip(parents, seeds):
            for r, h in zip(refine_seeds, harm_seeds):
                step = f" -> probe seed {probe_seed} -> refinement seed {r}"
                if plan.harmonize_steps:
                    step += f" -> harmonization seed {h}"
                lineages.append(f"{parent.lineage}{step} (depth {level})")
        return pool.add(refined["samples"], lineages)

    with budget.stage("candidates"):
        cands = sample_candidates(settings, latent_image,
                                  seeds=stage_seeds(seed, Stream.CANDIDATES, plan.candidates),
                                  progress=progress)
    candidates = pool.add(cands["samples"], [f"candidate seed {s}" for s in
                                             stage_seeds(seed, Stream.CANDIDATES, plan.candidates)])
    frontier = []
    if k:
        frontier = refine_round(candidates, 0, 1)
        result.path.append({"depth": 1, "expanded": [c.lineage for c in candidates]})
    score(candidates + frontier)
    for level in range(2, plan.depth + 1 if k else 1):
        comfy.model_management.throw_exception_if_processing_interrupted()
        if not frontier:
            break  # nothing was refined at the level above
        parent = best_of(frontier)  # depth-first: the best child of the level above
        result.path.append({"depth": level, "expanded": [parent.lineage], "score": parent.score})
        frontier = refine_round([parent], plan.candidates + level - 2, level)
        if frontier:
            score(frontier)
    result.ranked = pool.ranked()
    return result
