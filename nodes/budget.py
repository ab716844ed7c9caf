"""Counting what a run really costs: denoiser evaluations (NFE) and seconds, per stage.

The count comes from the model itself -- a model-function wrapper on a clone sees every
batch the sampler sends and adds its batch size (one NFE per image per conditioning) --
so the report states what happened, and the tests compare it with the formula in
lotts/schedule.py.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict

from ..lotts.schedule import lotts_nfe, nfe_per_step

# Samplers known to evaluate the model exactly once per step (the formula's c assumes
# it); for others the report shows the counted NFE only.
SINGLE_CALL_SAMPLERS = frozenset({
    "euler", "euler_ancestral", "euler_cfg_pp", "euler_ancestral_cfg_pp", "lms", "ddim",
    "ddpm", "lcm", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
    "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ipndm", "ipndm_v", "deis", "res_multistep",
    "res_multistep_cfg_pp", "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp",
    "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde",
})

STAGES = ("candidates", "probes", "refinement", "harmonization")
TOTAL_RE = re.compile(r"NFE total:\s*(\d+)")


class Budget:
    """Per-stage NFE counter and stopwatch for one run.

    ``counting(model)`` returns a clone whose every model call is counted into the
    current stage; ``stage(name)`` is a context manager that sets the stage and times it.
    """

    def __init__(self):
        self.nfe = OrderedDict((s, 0) for s in STAGES)
        self.seconds = OrderedDict()
        self.current = None
        self.scored = 0

    def counting(self, model):
        counted = model.clone()
        previous = counted.model_options.get("model_function_wrapper")

        def wrapper(apply_model, args):
            if self.current is not None:
                self.nfe[self.current] = self.nfe.get(self.current, 0) + args["input"].shape[0]
            if previous is not None:
                return previous(apply_model, args)
            return apply_model(args["input"], args["timestep"], **args["c"])

        counted.set_model_unet_function_wrapper(wrapper)
        return counted

    class _Stage:
        def __init__(self, budget, name):
            self.budget, self.name = budget, name

        def __enter__(self):
            self.budget.current = self.name
            self.start = time.perf_counter()

        def __exit__(self, *exc):
            elapsed = time.perf_counter() - self.start
            self.budget.seconds[self.name] = self.budget.seconds.get(self.name, 0.0) + elapsed
            self.budget.current = None

    def stage(self, name):
        return Budget._Stage(self, name)

    @property
    def total(self) -> int:
        return sum(self.nfe.values())

    def table(self, formula: dict | None, title: str) -> str:
        """A fixed-width text table: stage, counted NFE, formula NFE, seconds."""
        rows = [title, f"{'stage':<15}{'NFE':>8}{'formula':>9}{'seconds':>9}"]
        names = list(self.nfe) + [s for s in self.seconds if s not in self.nfe]
        for name in names:
            if name in self.nfe and self.nfe[name] == 0 and name not in self.seconds:
                continue
            counted = f"{self.nfe[name]}" if name in self.nfe else "-"
            expected = f"{formula[name]}" if formula and name in formula else "-"
            rows.append(f"{name:<15}{counted:>8}{expected:>9}{self.seconds.get(name, 0.0):>9.2f}")
        expected = f"{formula['total']}" if formula else "n/a"
        rows.append(f"{'total':<15}{self.total:>8}{expected:>9}{sum(self.seconds.values()):>9.2f}")
        return "\n".join(rows)


def formula_for(sampler_name, **kw) -> dict | None:
    """lotts_nfe for this run, or None when the sampler's calls per step are not known."""
    if sampler_name not in SINGLE_CALL_SAMPLERS:
        return None
    return lotts_nfe(**kw)


def per_sample_nfe(steps: int, cfg: float) -> int:
    return steps * nfe_per_step(cfg)


def parse_budget(text: str) -> int:
    """An NFE budget from a LoTTS report ("NFE total: 252") or a plain integer."""
    text = (text or "").strip()
    match = TOTAL_RE.search(text)
    if match:
        return int(match.group(1))
    if text.isdigit():
        return int(text)
    raise ValueError("match_budget must be a LoTTS Sampler report (it ends with 'NFE total: N') "
                     f"or a whole number of NFE; got {text[:60]!r}.")
