"""B7: LoTTS vs NFE-matched Best-of-N in miniature (the paper's score-vs-NFE figure), on
toy-world models we trained, with the toy verifier (toy_world.verify: prompt correctness
minus defect-like texture, computed from the latent).

Both run through the pack's own search (nodes/search.run_search, what LoTTS Sampler
executes, with its settings objects, seed streams and NFE counter): Best-of-N is the
search with refinements = 0 (M candidates, the verifier picks), LoTTS fans out N
candidates (the same seeds, so the same images as Best-of-N's first N), localizes each
at the sampler's probe step, refines it k times from t0 to T - h, harmonizes the last h
steps, and the verifier picks among candidates and refinements. Per budget: the mean
over prompts and models of the best score, against the NFE the search counted.
The "VAE" of the search passes the latent through to the verifier losslessly
(adapter.LatentImageVAE); nothing else is stood in for.

    COMFYUI_PATH=~/ComfyUI nice -n 10 ~/ComfyUI/.venv/bin/python benchmarks/toy/b7_lotts_vs_best_of_n.py
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
import toy_models as tm  # noqa: E402
import toy_world as tw  # noqa: E402

PROMPTS = ["a red square", "a blue circle", "a green square", "a yellow circle",
           "a red circle and a blue square", "a green circle and a yellow square",
           "a blue square and a red circle", "a yellow circle and a green circle",
           "a red square and a yellow square", "a blue circle and a green square",
           "a green circle", "a yellow square and a blue circle"]


LOCALIZERS = {"defaults": {},
              "auto + differing": {"propagation": "auto",
                                   "contrast_tokens": "where the templates differ"}}


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default="16,32")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--prompts", default="16:12,32:6",
                    help="prompts per variant (the first ones of PROMPTS)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cfg", type=float, default=4.0)
    ap.add_argument("--best-of", default="1,2,3,4,6,8,12,16,24,32")
    ap.add_argument("--lotts-n", default="1,2,4,8")
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--t0", type=int, default=10)
    ap.add_argument("--harmonize", type=int, default=3)
    ap.add_argument("--ratio", type=float, default=0.5, help="mask_ratio (the node's default)")
    ap.add_argument("--localizers", default=",".join(LOCALIZERS))
    ap.add_argument("--milestone", default=",".join(f"{v}:{n}" for v, n in tm.STEPS.items()))
    ap.add_argument("--out", default=None)
    ap.add_argument("--report", default=None)
    ap.add_argument("--threads", type=int, default=1)
    return ap.parse_args()


def candidate_index(lineage: str) -> int:
    """Which candidate a Best-of-N sample is (its lineage: "candidate seed <s>")."""
    return int(lineage.split()[2])


def run_prompt(model, clip, prompt, a, rows, key):
    size = key["size"]
    budgets = [int(x) for x in a.best_of.split(",")]
    common = dict(seed=0, steps=a.steps, cfg=a.cfg, start_step=a.t0,
                  harmonize_steps=a.harmonize, mask_ratio=a.ratio)
    ranked, nfe, _ = adapter.run_search(model, clip, prompt, size, candidates=max(budgets),
                                        refinements=0, **common)
    per_sample = nfe // max(budgets)
    by_index = {candidate_index(lineage): (score, x) for x, score, lineage in ranked}
    for m in budgets:
        best = max(range(m), key=lambda i: by_index[i][0])
        rows.append({**key, "method": "best-of-n", "n": m, "nfe": m * per_sample,
                     "score": by_index[best][0],
                     "defect_free": float(tw.verify(by_index[best][1], prompt)["defect"] == 0)})
    for name in a.localizers.split(","):
        for n in (int(x) for x in a.lotts_n.split(",")):
            ranked, nfe, info = adapter.run_search(model, clip, prompt, size, candidates=n,
                                                   refinements=a.k, **LOCALIZERS[name], **common)
            x, score, lineage = ranked[0]
            cands = [sc for _, sc, ln in ranked if "->" not in ln]
            refined = [sc for _, sc, ln in ranked if "->" in ln]
            rows.append({**key, "method": f"lotts ({name})", "n": n, "nfe": nfe,
                         "score": score, "picked_refined": "->" in lineage,
                         "defect_free": float(tw.verify(x, prompt)["defect"] == 0),
                         "refine_gain": max(refined) - max(cands),
                         "propagated": sum(info.get("propagated", [])) / max(1, n)})


def curves(rows):
    """{method: [(n, nfe, mean score, s.e.)]} over prompts x models."""
    out = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        pts = []
        for n in sorted({r["n"] for r in rows if r["method"] == method}):
            sel = [r for r in rows if r["method"] == method and r["n"] == n]
            vals = [r["score"] for r in sel]
            mu = sum(vals) / len(vals)
            se = math.sqrt(sum((v - mu) ** 2 for v in vals) / max(1, len(vals) - 1) / len(vals))
            free = sum(r["defect_free"] for r in sel) / len(sel)
            pts.append((n, sel[0]["nfe"], mu, se, free))
        out[method] = pts
    return out


def report(data):
    rows, meta = data["rows"], data["meta"]
    lines = [f"B7 toy-world LoTTS vs Best-of-N -- {meta['date']}, {meta['machine']}, "
             f"{meta['seconds']:.0f} s ({meta.get('per_model', '')}); {meta['setting']}", ""]
    for variant in sorted({r["variant"] for r in rows}, key=int):
        sub = [r for r in rows if r["variant"] == variant]
        cs = curves(sub)
        lines += [f"### variant {variant}x{variant} ({len({(r['seed'], r['prompt']) for r in sub if r['method'] == 'best-of-n' and r['n'] == 1})} "
                  "prompt x model runs)", "",
                  "| method | N | NFE | mean best score ± s.e. | defect-free pick |",
                  "|---|---:|---:|---:|---:|"]
        for method, pts in cs.items():
            for n, nfe, mu, se, free in pts:
                lines.append(f"| {method} | {n} | {nfe} | {mu:.3f} ± {se:.3f} | {free:.0%} |")
        bon = cs["best-of-n"]
        best_nfe, best = max(((nfe, mu) for _, nfe, mu, _, _ in bon), key=lambda t: t[1])
        lines += ["", f"Best-of-N's best score: {best:.3f} (at {best_nfe} NFE; largest budget "
                      f"{bon[-1][1]} NFE)"]
        for method, pts in cs.items():
            if method == "best-of-n":
                continue
            reach = [nfe for _, nfe, mu, _, _ in pts if mu >= best]
            if reach:
                lines.append(f"- {method}: reaches it at {reach[0]} NFE = "
                             f"{reach[0] / best_nfe:.2f} x Best-of-N's NFE")
            else:
                lines.append(f"- {method}: does not reach it within {pts[-1][1]} NFE (best "
                             f"{max(mu for _, _, mu, _, _ in pts):.3f})")
            # Best-of-N at LoTTS's own budgets: the matched-NFE comparison
            matched = []
            for n, nfe, mu, _, _ in pts:
                below = [b for b in bon if b[1] <= nfe]
                if below:
                    matched.append(f"N={n} ({nfe} NFE): {mu:.3f} vs Best-of-{below[-1][0]} "
                                   f"{below[-1][2]:.3f}")
            lines.append("  at matched NFE: " + "; ".join(matched))
            sel = [r for r in sub if r["method"] == method]
            picked = sum(r["picked_refined"] for r in sel) / len(sel)
            gain = sum(r["refine_gain"] for r in sel) / len(sel)
            lines.append(f"  a refinement was picked in {picked:.0%} of runs; mean (best refined "
                         f"- best candidate) {gain:+.3f}")
        lines.append("")
    return "\n".join(lines)


def plot(data, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cs = curves(data["rows"])
    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=110)
    for method, pts in cs.items():
        ax.errorbar([p[1] for p in pts], [p[2] for p in pts], yerr=[p[3] for p in pts],
                    marker="o", ms=3, capsize=2, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("NFE per prompt")
    ax.set_ylabel("mean best toy-verifier score")
    ax.set_title("Toy world (not a real checkpoint): LoTTS vs Best-of-N", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def main():
    a = parse()
    if a.report:
        with open(a.report) as f:
            data = json.load(f)
        print(report(data))
        return
    torch.set_num_threads(a.threads)
    rows, per_model = [], {}
    milestones = dict(part.split(":") for part in a.milestone.split(",")) if a.milestone != "final" else {}
    prompts = dict(part.split(":") for part in a.prompts.split(","))
    t0 = time.time()
    with torch.inference_mode():
        for v in a.variants.split(","):
            for s in (int(x) for x in a.seeds.split(",")):
                steps = int(milestones[v]) if v in milestones else None
                model = tm.load_trained(v, s, tm.weights_path(v, s, steps))
                t1 = time.time()
                for pi, prompt in enumerate(PROMPTS[:int(prompts[v])]):
                    run_prompt(model, tm.toy_clip(), prompt, a, rows,
                               {"variant": v, "seed": s, "prompt": pi, "size": tm.latent_size(v)})
                took = time.time() - t1
                per_model.setdefault(v, []).append(took)
                print(f"  {v}/s{s}: {took:.0f} s", flush=True)
    meta = {"date": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, "
                       f"{a.threads} thread(s)",
            "seconds": time.time() - t0,
            "per_model": ", ".join(f"variant {v}: {sum(t) / len(t):.0f} s per model"
                                   for v, t in per_model.items()),
            "setting": (f"T={a.steps} euler/normal cfg {a.cfg}, k={a.k}, t0={a.t0}, harmonize "
                        f"{a.harmonize}, r={a.ratio}, probe {adapter.sampler_probe_step(a.steps)}, "
                        f"prior 0.5, prompts {a.prompts} x seeds {a.seeds}, weights {a.milestone}"),
            "args": vars(a)}
    data = {"rows": rows, "meta": meta}
    out = a.out or os.path.join(tm.cache_root(), "results", "b7.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(data, f)
    print(f"wrote {out}")
    print(report(data))


if __name__ == "__main__":
    sys.exit(main())
