"""B6: does the Defect Localizer find defects? Measured on toy-world models we trained.

For every trained model (variant 16 / 32, training seeds 0-2, the fixed step counts of
toy_models.STEPS), ``--cases`` clean toy scenes per defect type get a planted defect
(noise: the trained one; blotch, smear: never seen in training) and are localized.
Scores against the planted defect's support, at latent resolution: hit rate (share of
the defect inside the mask) and IoU.

Rows:
- ``node defaults`` -- the pack's own ``localize_candidates`` (LoTTSDefectLocalizer's
  function with its defaults: prior_weight 0.5, default templates, propagation
  "always", all content tokens) at probe step 15 of 20 and r = 0.1, 0.2, 0.5;
- ``node (reproduced)`` -- the same computation from ONE capture per case and probe
  step made with the localizer's own recorder and probe (its masks are checked against
  the node's, and the count of differences is printed), at probe steps 1/2, 3/4, 9/10;
  from that capture: the paper's ablations (no contrast, no propagation, no prior,
  reversed contrast) and the candidate fixes (propagation "auto", the contrast on the
  tokens where the templates differ, the prior on the subject's words); the node run
  with propagation "auto" + "where the templates differ" is checked against its
  reproduction too;
- baselines: a random mask, a plain high-frequency (Laplacian energy) filter, the oracle
  ceiling of the 8x8 grid (the cells the defect covers most), and a diagnostic that
  needs the clean scene: how much the defect raised the raw contrast (does attention
  respond to this defect type at all?).

Also recorded per model: the blocks the localizer used, the self-attention row entropy
(share of its maximum) and CA_orig on the objects over the background. Results: a JSON
file of per-case rows, then tables (``--report FILE`` prints the tables of a run).

    COMFYUI_PATH=~/ComfyUI nice -n 10 ~/ComfyUI/.venv/bin/python benchmarks/toy/b6_localization.py
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time

import toy_env

toy_env.setup()

import torch  # noqa: E402

import adapter  # noqa: E402
import localization as L  # noqa: E402
import toy_models as tm  # noqa: E402
import toy_world as tw  # noqa: E402

STEPS = 20
PROBE_FRACTIONS = (0.5, 0.75, 0.9)
RATIOS = (0.1, 0.2, 0.5)
CASE_SEED_BASE = 5000  # cases differ per model seed: case seed = base + training seed


def parse_milestones(text: str) -> dict:
    """"16:4000,32:2000" -> {"16": 4000, "32": 2000}; "final" -> {} (unet_ema.safetensors)."""
    if not text or text == "final":
        return {}
    return {v: int(n) for v, n in (part.split(":") for part in text.split(","))}


def probe_steps(steps: int = STEPS) -> list[int]:
    return [min(steps - 1, int(round(f * steps))) for f in PROBE_FRACTIONS]


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default="16,32")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--defects", default=",".join(tw.DEFECTS))
    ap.add_argument("--cases", type=int, default=32)
    ap.add_argument("--milestone", default=",".join(f"{v}:{n}" for v, n in tm.STEPS.items()),
                    help="per variant, the EMA snapshot of this training step "
                         "(unet_ema_<N>.safetensors); default: the fixed step counts of "
                         "toy_models.STEPS; 'final' = the last weights of train.py")
    ap.add_argument("--no-node", action="store_true",
                    help="skip the node-function rows (capture-based rows only)")
    ap.add_argument("--out", default=None, help="JSON file (default: the toy cache)")
    ap.add_argument("--report", default=None, help="print the tables of an earlier JSON")
    ap.add_argument("--threads", type=int, default=1)
    return ap.parse_args()


FIXED = {"propagation": "auto", "contrast_tokens": "where the templates differ"}
FIXED_NAME = "differing tokens + auto"  # the same settings, reproduced from the capture


def run_model(variant: str, seed: int, defects, cases_n: int, milestone, with_node: bool,
              rows: list, meta: dict):
    model = tm.load_trained(variant, seed, tm.weights_path(variant, seed, milestone))
    clip = tm.toy_clip()
    size = tm.latent_size(variant)
    grid = adapter.attention_blocks(model, size)[2]
    default_probe = probe_steps()[1]
    entropies, prior_ratio, checks, info = [], [], {"defaults": [0, 0], "fixed": [0, 0]}, {}
    fixed_decision = ""
    settings = {"node (reproduced)": L.NODE, **L.ABLATIONS, **L.FIXES}
    for defect in defects:
        cases = tw.benchmark_cases(CASE_SEED_BASE + seed, cases_n, size, defect)
        for ci, case in enumerate(cases):
            latent = case.latent.unsqueeze(0)
            subject = L.subject_ids(clip, case.caption)
            key = dict(variant=variant, seed=seed, defect=defect, case=ci)
            for ps in probe_steps():
                rec = adapter.capture(model, clip, case.caption, latent, ps, STEPS, seed=ci)[0]
                ent = float(adapter.core("localize").self_attention_entropy(rec["sa"])[0])
                pmaps = {name: L.score_map(rec, st, subject) for name, st in settings.items()}
                at_default = ps == default_probe
                if at_default:
                    entropies.append(ent)
                    ratio_ = L.prior_on_objects(rec, case.support)
                    if ratio_ == ratio_:  # nan: the scene fills every cell or none
                        prior_ratio.append(ratio_)
                    clean = adapter.capture(model, clip, case.caption,
                                            tw.benchmark_scene(CASE_SEED_BASE + seed, ci, size).latent.unsqueeze(0), ps, STEPS,
                                            seed=ci)[0]
                    change = L.contrast_change(rec, clean)
                for r in RATIOS:
                    if with_node and at_default:
                        node_mask, _, info = adapter.localize_node(
                            model, clip, case.caption, latent, r, probe_step=ps, steps=STEPS,
                            seed=ci)
                        hit, iou = L.hit_iou(node_mask[0], case.defect_mask)
                        rows.append({**key, "probe": ps, "ratio": r, "method": "node defaults",
                                     "hit": hit, "iou": iou})
                        checks["defaults"][0] += 1
                        checks["defaults"][1] += int(not torch.equal(
                            L.grid_mask(pmaps["node (reproduced)"][0], r, size)[0] > 0.5,
                            node_mask[0] > 0.5))
                        if r == RATIOS[0]:
                            fixed_mask, _, fixed_info = adapter.localize_node(
                                model, clip, case.caption, latent, r, probe_step=ps,
                                steps=STEPS, seed=ci, **FIXED)
                            checks["fixed"][0] += 1
                            checks["fixed"][1] += int(not torch.equal(
                                L.grid_mask(pmaps[FIXED_NAME][0], r, size)[0] > 0.5,
                                fixed_mask[0] > 0.5))
                            fixed_decision = fixed_info["decisions"][0]
                    for name, (p, propagated) in pmaps.items():
                        hit, iou = L.hit_iou(L.grid_mask(p, r, size)[0], case.defect_mask)
                        rows.append({**key, "probe": ps, "ratio": r, "method": name, "hit": hit,
                                     "iou": iou, "entropy": ent, "propagated": propagated})
                    if at_default:
                        for name, scores in (
                                ("random mask", L.grid_scores_random(grid, 10_000 * seed + ci)),
                                ("high-pass filter", L.grid_scores_high_pass(case.latent, grid)),
                                ("oracle (8x8 grid)", L.grid_scores_oracle(case.defect_mask, grid)),
                                (CHANGE, change)):
                            hit, iou = L.hit_iou(L.grid_mask(scores, r, size)[0], case.defect_mask)
                            for p_ in probe_steps():  # baselines do not depend on the probe
                                rows.append({**key, "probe": p_, "ratio": r, "method": name,
                                             "hit": hit, "iou": iou})
    model_meta = {
        "variant": variant, "seed": seed, "milestone": milestone,
        "blocks": L.describe_blocks(info) if info else "",
        "self_attention_entropy": sum(entropies) / max(1, len(entropies)),
        "prior_object_ratio": sum(prior_ratio) / max(1, len(prior_ratio)),
        "node_vs_reproduced_mismatches": f"{checks['defaults'][1]}/{checks['defaults'][0]}",
        "fixed_node_vs_reproduced_mismatches": f"{checks['fixed'][1]}/{checks['fixed'][0]}",
        "fixed_decision_example": fixed_decision}
    meta.setdefault("models", []).append(model_meta)
    print(f"  {variant}/s{seed}: {model_meta['blocks']}; self-attention row entropy "
          f"{model_meta['self_attention_entropy']:.4f} of max; CA_orig objects/background "
          f"{model_meta['prior_object_ratio']:.2f}; node vs reproduced masks differ in "
          f"{model_meta['node_vs_reproduced_mismatches']} (defaults), "
          f"{model_meta['fixed_node_vs_reproduced_mismatches']} (auto + differing)", flush=True)


CHANGE = "contrast change vs clean (diagnostic)"


def mean_se(values):
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    m = sum(values) / n
    if n < 2:
        return m, float("nan")
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    return m, math.sqrt(var / n)


def select(rows, **kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def table(rows, variant, probe, metric="hit", methods=None, defects=None):
    defects = defects or sorted({r["defect"] for r in rows}, key=tw.DEFECTS.index)
    methods = methods or list(dict.fromkeys(r["method"] for r in rows))
    head = "| method | " + " | ".join(f"{d} r={r}" for d in defects for r in RATIOS) + " |"
    lines = [head, "|---|" + "---:|" * (len(defects) * len(RATIOS))]
    for m in methods:
        cells = []
        for d in defects:
            for r in RATIOS:
                vals = [x[metric] for x in select(rows, variant=variant, probe=probe, method=m,
                                                  defect=d, ratio=r)]
                mu, se = mean_se(vals)
                cells.append("–" if not vals else f"{mu:.2f} ± {se:.2f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seed_means(rows, method, **sel):
    """{seed: mean hit} of ``method`` under ``sel``."""
    seeds = sorted({r["seed"] for r in select(rows, method=method, **sel)})
    return {sd: mean_se([x["hit"] for x in select(rows, method=method, seed=sd, **sel)])[0]
            for sd in seeds}


def summary_table(rows, probe, ratio=0.1):
    """Per variant and defect, hit at ``ratio``: the node's defaults and the fixed
    settings against a random mask (means over seeds), the baselines and the ceiling."""
    methods = [m for m in ("node defaults", "node (reproduced)") if select(rows, method=m)][:1]
    node = methods[0]
    lines = ["| variant | defect | node defaults | random | defaults ÷ random | "
             f"{FIXED_NAME} | fixed ÷ random | high-pass | contrast change (diag.) | oracle |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for v in sorted({r["variant"] for r in rows}, key=int):
        for d in sorted({r["defect"] for r in rows}, key=tw.DEFECTS.index):
            sel = dict(variant=v, probe=probe, ratio=ratio, defect=d)
            mean = {m: mean_se([x["hit"] for x in select(rows, method=m, **sel)])[0]
                    for m in (node, "random mask", FIXED_NAME, "high-pass filter", CHANGE,
                              "oracle (8x8 grid)")}
            rnd = mean["random mask"]

            def times(x):
                return f"{x / rnd:.1f}x" if rnd > 0 else "–"
            lines.append(f"| {v} | {d}{'' if d in tw.TRAINED_DEFECTS else ' (unseen)'} | "
                         f"{mean[node]:.2f} | {rnd:.2f} | {times(mean[node])} | "
                         f"{mean[FIXED_NAME]:.2f} | {times(mean[FIXED_NAME])} | "
                         f"{mean['high-pass filter']:.2f} | {mean[CHANGE]:.2f} | "
                         f"{mean['oracle (8x8 grid)']:.2f} |")
    return "\n".join(lines)


def before_after_table(rows, probe, ratio=0.1):
    """Each candidate fix against the node's defaults (hit at ``ratio``), per variant and
    defect: mean over seeds and in how many seeds it is better -- the rule for a
    default change (>= 2 defect types, one unseen, every seed, both latent sizes)."""
    node = "node defaults" if select(rows, method="node defaults") else "node (reproduced)"
    variants = sorted({r["variant"] for r in rows}, key=int)
    defects = sorted({r["defect"] for r in rows}, key=tw.DEFECTS.index)
    cols = [(v, d) for v in variants for d in defects]
    lines = ["| setting | " + " | ".join(f"{v}: {d}" for v, d in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for m in [node, *L.FIXES]:
        cells = []
        for v, d in cols:
            sel = dict(variant=v, probe=probe, ratio=ratio, defect=d)
            after, before = seed_means(rows, m, **sel), seed_means(rows, node, **sel)
            mu = sum(after.values()) / max(1, len(after))
            if m == node:
                cells.append(f"{mu:.2f}")
            else:
                wins = sum(after[sd] > before[sd] for sd in after)
                cells.append(f"{mu:.2f} ({wins}/{len(after)} seeds better)")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_seed_table(rows, variant, probe, ratio, methods):
    """Mean hit per seed and defect of ``methods`` against the random mask."""
    defects = sorted({r["defect"] for r in rows}, key=tw.DEFECTS.index)
    seeds = sorted({r["seed"] for r in rows if r["variant"] == variant})
    lines = ["| seed | method | " + " | ".join(defects) + " |",
             "|---|---|" + "---:|" * len(defects)]
    for sd in seeds + ["mean"]:
        for m in methods:
            cells = []
            for d in defects:
                sel = dict(variant=variant, probe=probe, ratio=ratio, defect=d)
                if sd != "mean":
                    sel["seed"] = sd
                a = mean_se([x["hit"] for x in select(rows, method=m, **sel)])[0]
                b = mean_se([x["hit"] for x in select(rows, method="random mask", **sel)])[0]
                cells.append(f"{a:.2f} / {b:.2f} = {a / b:.1f}x" if b > 0 else f"{a:.2f}")
            lines.append(f"| {sd} | {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(data):
    rows, meta = data["rows"], data["meta"]
    out = [f"B6 toy-world localization -- {meta['date']}, {meta['machine']}, "
           f"{meta['seconds']:.0f} s ({meta.get('per_model', '')})", ""]
    for m in meta["models"]:
        out.append(f"- model {m['variant']}/s{m['seed']}"
                   f"{' @' + str(m['milestone']) if m['milestone'] else ''}: {m['blocks']}; "
                   f"self-attention row entropy {m['self_attention_entropy']:.4f} of max; "
                   f"CA_orig objects/background {m.get('prior_object_ratio', float('nan')):.2f}; "
                   f"node vs reproduced masks differ in {m['node_vs_reproduced_mismatches']} "
                   f"(defaults), {m.get('fixed_node_vs_reproduced_mismatches', '-')} "
                   f"(auto + differing; e.g. \"{m.get('fixed_decision_example', '')}\")")
    default_probe = probe_steps()[1]
    out += ["", f"### Summary: hit rate at r = 0.1, probe step {default_probe}/{STEPS} (mean "
                "over cases and seeds)", "", summary_table(rows, default_probe)]
    out += ["", f"### Before / after: hit rate at r = 0.1, probe {default_probe}/{STEPS} "
                "(mean over seeds; seeds where the setting beats the node's defaults)", "",
            before_after_table(rows, default_probe)]
    node = "node defaults" if select(rows, method="node defaults") else "node (reproduced)"
    base = [node, "node (reproduced)", *L.ABLATIONS, *L.FIXES, "random mask",
            "high-pass filter", CHANGE, "oracle (8x8 grid)"]
    for v in sorted({r["variant"] for r in rows}, key=int):
        have = [m for m in dict.fromkeys(base) if select(rows, variant=v, method=m)]
        out += ["", f"### variant {v}x{v}, probe step {default_probe}/{STEPS}: hit rate "
                    "(mean ± s.e. over cases x seeds)", "", table(rows, v, default_probe, "hit", have)]
        out += ["", f"IoU, variant {v}, probe {default_probe}/{STEPS}", "",
                table(rows, v, default_probe, "iou", have)]
        for ps in probe_steps():
            if ps == default_probe:
                continue
            out += ["", f"variant {v}, probe step {ps}/{STEPS}: hit rate", "",
                    table(rows, v, ps, "hit", ["node (reproduced)", "no propagation",
                                               *L.FIXES, "random mask"])]
        out += ["", f"variant {v}: hit ÷ random mask at r = 0.1, probe {default_probe}, "
                    "per training seed", "",
                per_seed_table(rows, v, default_probe, 0.1, [node, FIXED_NAME])]
    return "\n".join(out)


def main():
    a = parse()
    if a.report:
        with open(a.report) as f:
            print(report(json.load(f)))
        return
    torch.set_num_threads(a.threads)
    rows, meta = [], {"date": datetime.date.today().isoformat(),
                      "machine": f"{platform.machine()} {os.cpu_count()} cores, torch "
                                 f"{torch.__version__}, {a.threads} thread(s)",
                      "args": vars(a)}
    t0, per_model = time.time(), {}
    milestones = parse_milestones(a.milestone)
    with torch.inference_mode():
        for v in a.variants.split(","):
            for s in (int(x) for x in a.seeds.split(",")):
                t1 = time.time()
                run_model(v, s, a.defects.split(","), a.cases, milestones.get(v), not a.no_node,
                          rows, meta)
                took = time.time() - t1
                per_model.setdefault(v, []).append(took)
                print(f"  {v}/s{s} took {took:.0f} s", flush=True)
    meta["seconds"] = time.time() - t0
    meta["per_model"] = ", ".join(f"variant {v}: {sum(t) / len(t):.0f} s per model"
                                  for v, t in per_model.items())
    out = a.out or os.path.join(tm.cache_root(), "results", "b6.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"rows": rows, "meta": meta}, f)
    print(f"wrote {out}")
    print(report({"rows": rows, "meta": meta}))


if __name__ == "__main__":
    sys.exit(main())
