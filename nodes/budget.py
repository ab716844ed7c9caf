"""What a run really costs -- denoiser evaluations (NFE) and seconds, per stage -- and the
report and structured cost payload that LoTTS Sampler and Best-of-N both give.

The count comes from the model itself: a model-function wrapper on a clone sees every
batch the sampler sends and adds its batch size (one NFE per image per conditioning), so
the report states what happened; the formula beside it comes from lotts/schedule.py.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from contextlib import contextmanager

from ..lotts.schedule import STAGES

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

    @contextmanager
    def stage(self, name):
        self.current, start = name, time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            self.current = None

    @property
    def total(self) -> int:
        return sum(self.nfe.values())

    def table(self, formula: dict | None) -> list[str]:
        """Fixed-width rows: stage, counted NFE, formula NFE, seconds."""
        rows = [f"{'stage':<15}{'NFE':>8}{'formula':>9}{'seconds':>9}"]
        names = list(self.nfe) + [s for s in self.seconds if s not in self.nfe]
        for name in names:
            if name in self.nfe and self.nfe[name] == 0 and name not in self.seconds:
                continue
            counted = f"{self.nfe[name]}" if name in self.nfe else "-"
            expected = f"{formula[name]}" if formula and name in formula else "-"
            rows.append(f"{name:<15}{counted:>8}{expected:>9}{self.seconds.get(name, 0.0):>9.2f}")
        expected = f"{formula['total']}" if formula else "n/a"
        rows.append(f"{'total':<15}{self.total:>8}{expected:>9}{sum(self.seconds.values()):>9.2f}")
        return rows


def report(budget: Budget, formula: dict | None, title: str, notes: list[str],
           ranked: list, verifier_name: str) -> str:
    """The text report of a LoTTS or Best-of-N run (its last line is ``NFE total: N``,
    which LoTTS Best-of-N's match_budget reads)."""
    best = ranked[0]
    return "\n".join([
        title, *budget.table(formula),
        "(NFE = denoiser evaluations of one image; a CFG step costs 2, cfg 1 costs 1)",
        *notes,
        f"verifier: {verifier_name} scored {len(ranked)} images",
        f"best: score {best.score:.4f} -- {best.lineage}",
        f"NFE total: {budget.total}",
    ])


def cost_payload(budget: Budget, formula: dict | None, ranked: list, **extra) -> dict:
    """The run's cost as data, for the UI payload key ``lotts_cost`` (read by the
    evaluation runner and the tests instead of the report's text)."""
    return {
        "nfe": dict(budget.nfe), "nfe_total": budget.total, "formula": formula,
        "seconds": {k: round(v, 4) for k, v in budget.seconds.items()},
        "scored": len(ranked),
        "scores": [s.score for s in ranked], "lineage": [s.lineage for s in ranked],
        **extra,
    }


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
