"""Step arithmetic for localized refinement and the compute (NFE) each stage costs.

Steps are indices into the sampler's schedule of ``steps`` steps, exactly like ComfyUI's
``start_at_step`` / ``end_at_step``: step s means "the latent at noise level sigmas[s]".

NFE convention (the paper's "matched NFE"): one NFE is one denoiser evaluation of one
image. Classifier-free guidance evaluates the model twice per step (cond + uncond), so a
CFG step costs 2 NFE -- except at cfg == 1, where ComfyUI skips the uncond pass and a step
costs 1. Batching does not change the count: a batch of 4 at CFG costs 8 NFE per step.
Samplers that evaluate the model more than once per step (Heun, DPM2, ...) multiply it by
``calls_per_step``.
"""

from __future__ import annotations

from dataclasses import dataclass

PROBE_CONDITIONINGS = 3  # original, "high-quality" and "low-quality" prompts


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
    """Validate and return the split; ``end_step=None`` means no harmonization."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if end_step is None:
        end_step = steps
    if end_step > steps:
        raise ValueError(f"end_step ({end_step}) is past the last step ({steps}): set "
                         f"end_step <= steps; end_step = steps means no harmonization.")
    if not 0 <= start_step < end_step:
        raise ValueError(f"start_step ({start_step}) must be >= 0 and < end_step ({end_step}): "
                         "the refinement re-noises to start_step and denoises up to end_step.")
    return RefineSteps(steps, start_step, end_step)


def nfe_per_step(cfg: float, calls_per_step: int = 1) -> int:
    """Denoiser evaluations per image per step: 1 at cfg == 1 (no uncond pass), else 2."""
    return (1 if float(cfg) == 1.0 else 2) * calls_per_step


def best_of_n_nfe(samples: int, steps: int, cfg: float, calls_per_step: int = 1) -> int:
    """Best-of-N: ``N * T`` steps."""
    return samples * steps * nfe_per_step(cfg, calls_per_step)


def lotts_nfe(candidates: int, steps: int, cfg: float, refinements: int, start_step: int,
              harmonize_steps: int = 0, depth: int = 1, calls_per_step: int = 1,
              probe_conditionings: int = PROBE_CONDITIONINGS) -> dict[str, int]:
    """NFE of a LoTTS run, per stage, and the total.

        candidates     N * T * c
        probes         N * 3                        (one probe pass, three conditionings)
        refinement     N * k * (T - t0 - h) * c     (masked steps)
        harmonization  N * k * h * c                (the last h steps, unmasked)
        per extra depth level, on the current best: 3 probes + k * (T - t0) * c

    ``c`` is :func:`nfe_per_step`. The probe pass is not guided, so it costs one
    evaluation per conditioning. With ``refinements == 0`` LoTTS is plain Best-of-N: no
    probes, no refinement.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if not 0 <= harmonize_steps <= steps - start_step - 1 and refinements:
        raise ValueError(f"harmonize_steps ({harmonize_steps}) must leave at least one masked "
                         f"step between start_step ({start_step}) and steps ({steps})")
    c = nfe_per_step(cfg, calls_per_step)
    masked = steps - start_step - harmonize_steps
    rounds = candidates + (depth - 1) if refinements else 0  # samples localized and refined
    out = {
        "candidates": candidates * steps * c,
        "probes": rounds * probe_conditionings,
        "refinement": rounds * refinements * masked * c,
        "harmonization": rounds * refinements * harmonize_steps * c,
    }
    out["total"] = sum(out.values())
    return out
