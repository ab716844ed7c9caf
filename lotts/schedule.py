"""Step arithmetic for localized refinement and what each stage costs (NFE), in one place.

Steps are indices into the sampler's schedule of ``steps`` steps, exactly like ComfyUI's
``start_at_step`` / ``end_at_step``: step s means "the latent at noise level sigmas[s]".

NFE convention (the paper's "matched NFE"): one NFE is one denoiser evaluation of one
image. Classifier-free guidance evaluates the model twice per step (cond + uncond), so a
CFG step costs 2 NFE -- except at cfg == 1, where ComfyUI skips the uncond pass and a step
costs 1. Batching does not change the count: a batch of 4 at CFG costs 8 NFE per step.
Samplers that evaluate the model more than once per step (Heun, DPM2, ...) multiply it by
``calls_per_step``.

The same arithmetic without the CFG factor is the run's *work* in image-steps (one
sampler step of one image; a probe counts its three evaluations): what the progress bar
counts, so the bar and the NFE report can never disagree about what a run does.
"""

from __future__ import annotations

from dataclasses import dataclass

PROBE_CONDITIONINGS = 3  # original, "high-quality" and "low-quality" prompts

# Samplers whose result for one image does not depend on the rest of the batch: no noise
# drawn during sampling (ancestral/SDE samplers draw it for the whole batch from one
# seed) and no batch-wide adaptive step size. These run batched; all others one image at
# a time, so that every item equals a stock KSampler run with its own seed.
BATCH_SAFE_SAMPLERS = frozenset({
    "euler", "euler_cfg_pp", "heun", "heunpp2", "dpm_2", "lms", "dpmpp_2m", "dpmpp_2m_cfg_pp",
    "ipndm", "ipndm_v", "deis", "ddim", "uni_pc", "uni_pc_bh2", "res_multistep",
    "res_multistep_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp",
})

# Samplers known to evaluate the model exactly once per step (the formula assumes it);
# for others a report can show the counted NFE only.
SINGLE_CALL_SAMPLERS = frozenset({
    "euler", "euler_ancestral", "euler_cfg_pp", "euler_ancestral_cfg_pp", "lms", "ddim",
    "ddpm", "lcm", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
    "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ipndm", "ipndm_v", "deis", "res_multistep",
    "res_multistep_cfg_pp", "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp",
    "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde",
})

STAGES = ("candidates", "probes", "refinement", "harmonization")


def nfe_per_step(cfg: float, calls_per_step: int = 1) -> int:
    """Denoiser evaluations per image per step: 1 at cfg == 1 (no uncond pass), else 2."""
    return (1 if float(cfg) == 1.0 else 2) * calls_per_step


def best_of_n_nfe(samples: int, steps: int, cfg: float, calls_per_step: int = 1) -> int:
    """Best-of-N: ``M * T`` steps."""
    return samples * steps * nfe_per_step(cfg, calls_per_step)


def match_best_of_n(budget: int, steps: int, cfg: float, max_samples: int) -> int:
    """The M whose Best-of-N spends ``budget`` NFE (the nearest whole sample, at least 1).

    Refused when M would exceed ``max_samples``: a budget is a number the user types, and
    nothing they type may make a node sample (and allocate) without bound.
    """
    per_sample = best_of_n_nfe(1, steps, cfg)
    samples = max(1, round(budget / per_sample))
    if samples > max_samples:
        raise ValueError(f"match_budget: {budget} NFE is {samples} samples of {per_sample} NFE "
                         f"({steps} steps at cfg {cfg}), more than the node's maximum of "
                         f"{max_samples} samples. Match a smaller LoTTS run, or raise steps.")
    return samples


@dataclass(frozen=True)
class RefineSteps:
    """A refinement's slice of the schedule: masked steps, then harmonization steps.

    ``[start_step, end_step)`` is denoised with the mask enforced (the unmasked region is
    pinned to the candidate re-noised to the current level); ``[end_step, steps)`` runs
    on the whole image with no mask (the paper's holistic consistency).
    """
    steps: int
    start_step: int
    end_step: int

    @property
    def masked_steps(self) -> int:
        return self.end_step - self.start_step

    @property
    def harmonize_steps(self) -> int:
        return self.steps - self.end_step


def refine_steps(steps: int, start_step: int, end_step: int | None = None) -> RefineSteps:
    """Validate a masked step window, named as Masked Refine's inputs are; ``end_step=None``
    means no harmonization."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    end_step = steps if end_step is None else end_step
    if end_step > steps:
        raise ValueError(f"end_step ({end_step}) is past the last step ({steps}): set "
                         f"end_step <= steps; end_step = steps means no harmonization.")
    if not 0 <= start_step < end_step:
        raise ValueError(f"start_step ({start_step}) must be >= 0 and < end_step ({end_step}): "
                         "the refinement re-noises to start_step and denoises up to end_step.")
    return RefineSteps(steps, start_step, end_step)


def harmonize_window(steps: int, start_step: int) -> int:
    """Validate Harmonize's window; returns how many steps it runs."""
    if not 0 <= start_step < steps:
        raise ValueError(f"start_step ({start_step}) must be >= 0 and < steps ({steps}): "
                         "harmonization runs steps start_step .. steps on the whole image.")
    return steps - start_step


@dataclass(frozen=True)
class Plan:
    """The shape of a LoTTS run: what it samples, localizes and refines.

    N ``candidates`` of ``steps`` steps; each localized and refined ``refinements`` (k)
    times from ``start_step`` (t0), the last ``harmonize_steps`` of each refinement without
    the mask; ``depth - 1`` further rounds each localize and refine one sample k times
    (the paper's depth-first search). ``refinements == 0`` is plain Best-of-N.
    Validated on construction, with messages that name the LoTTS Sampler's inputs.
    """
    candidates: int
    steps: int
    refinements: int = 2
    start_step: int = 0
    harmonize_steps: int = 0
    depth: int = 1

    def __post_init__(self):
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.refinements < 0:
            raise ValueError(f"refinements must be >= 0, got {self.refinements} (0 = plain "
                             "Best-of-N)")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")
        if self.harmonize_steps < 0:
            raise ValueError(f"harmonize_steps must be >= 0, got {self.harmonize_steps}")
        if self.refinements and not 0 <= self.start_step < self.steps:
            raise ValueError(f"start_step ({self.start_step}) must be >= 0 and < steps "
                             f"({self.steps}): refinements re-noise to start_step.")
        if self.refinements and self.start_step + self.harmonize_steps >= self.steps:
            raise ValueError(
                f"start_step ({self.start_step}) + harmonize_steps ({self.harmonize_steps}) "
                f"must be < steps ({self.steps}): a refinement needs at least one masked step "
                f"before the last harmonize_steps. Lower harmonize_steps (at most "
                f"{max(0, self.steps - self.start_step - 1)} here) or start_step.")

    @property
    def end_step(self) -> int:
        """The last masked step (where harmonization takes over)."""
        return self.steps - self.harmonize_steps

    @property
    def rounds(self) -> int:
        """Samples localized and refined: the N candidates, then one per extra level."""
        return self.candidates + (self.depth - 1) if self.refinements else 0

    @property
    def scored(self) -> int:
        """Samples the verifier scores: the candidates and every refinement."""
        return self.candidates + self.rounds * self.refinements

    def units(self) -> dict[str, int]:
        """Work per stage in image-steps (a probe: its three evaluations), and the total.

            candidates     N * T
            probes         rounds * 3
            refinement     rounds * k * (T - t0 - h)
            harmonization  rounds * k * h
        """
        k = self.refinements
        harmonize = self.harmonize_steps if k else 0
        out = {
            "candidates": self.candidates * self.steps,
            "probes": self.rounds * PROBE_CONDITIONINGS,
            "refinement": self.rounds * k * (self.steps - self.start_step - harmonize),
            "harmonization": self.rounds * k * harmonize,
        }
        out["total"] = sum(out.values())
        return out

    def nfe(self, cfg: float, calls_per_step: int = 1) -> dict[str, int]:
        """NFE per stage and the total: the sampling stages' work times
        :func:`nfe_per_step`; the probe pass is not guided (one evaluation per
        conditioning)."""
        c = nfe_per_step(cfg, calls_per_step)
        out = {s: n * (1 if s == "probes" else c) for s, n in self.units().items() if s != "total"}
        out["total"] = sum(out.values())
        return out


PROBE_FRACTION = 0.75  # the localizer's default probe step: 15 of 20


def probe_step_for(steps: int) -> int:
    """Where LoTTS Sampler probes: 3/4 through the schedule (little noise, so the probe
    sees the candidate's details), the localizer node's default."""
    return min(steps - 1, int(round(steps * PROBE_FRACTION)))
