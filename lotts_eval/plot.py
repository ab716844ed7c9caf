"""Mean score vs NFE per method (the paper's Fig. 8) from the results CSV.

matplotlib is optional and imported only here, only when a plot is drawn; without it the
summary table is still printed and :class:`PlotUnavailable` says how to get the PNG.
"""

from __future__ import annotations

from collections import defaultdict

METHOD_LABELS = {"lotts": "LoTTS", "best_of_n": "Best-of-N (matched NFE)"}


class PlotUnavailable(RuntimeError):
    pass


def summarize(rows: list[dict]) -> dict:
    """{verifier label: {method: [(budget, mean NFE, mean score, count), ...] by NFE}}."""
    score_cols = [c for c in (rows[0] if rows else {}) if c.startswith("score_")]
    out = {}
    for col in score_cols:
        groups = defaultdict(list)
        for r in rows:
            if r.get(col) not in (None, ""):
                groups[(r["method"], int(r["budget"]))].append((float(r["nfe"]), float(r[col])))
        per_method = defaultdict(list)
        for (method, budget), vals in groups.items():
            nfe = sum(v[0] for v in vals) / len(vals)
            score = sum(v[1] for v in vals) / len(vals)
            per_method[method].append((budget, nfe, score, len(vals)))
        out[col[len("score_"):]] = {m: sorted(v, key=lambda t: (t[1], t[0]))
                                    for m, v in sorted(per_method.items())}
    return out


def summary_text(summary: dict) -> str:
    lines = [f"{'verifier':<16}{'method':<12}{'N':>4}{'mean NFE':>10}{'mean score':>12}{'prompts':>9}"]
    for verifier, methods in summary.items():
        for method, points in methods.items():
            for budget, nfe, score, count in points:
                lines.append(f"{verifier:<16}{method:<12}{budget:>4}{nfe:>10.1f}{score:>12.4f}{count:>9}")
    return "\n".join(lines)


def plot_results(rows: list[dict], path: str, title: str = "") -> str:
    """Write the PNG (one panel per verifier); return its path."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable("matplotlib is not installed, so no PNG was drawn (the CSV is "
                              "complete): `pip install matplotlib`, then redraw with "
                              "`python -m lotts_eval --plot-only --out DIR`") from None
    summary = summarize(rows)
    if not summary:
        raise PlotUnavailable("no rows to plot")
    fig, axes = plt.subplots(1, len(summary), figsize=(5.5 * len(summary), 4.2), squeeze=False)
    for ax, (verifier, methods) in zip(axes[0], summary.items()):
        for method, points in methods.items():
            xs = [p[1] for p in points]
            ys = [p[2] for p in points]
            ax.plot(xs, ys, marker="o", label=METHOD_LABELS.get(method, method))
            for budget, x, y, _ in points:
                ax.annotate(f"N={budget}", (x, y), textcoords="offset points", xytext=(4, 4),
                            fontsize=7)
        ax.set_xlabel("NFE per image (denoiser evaluations)")
        ax.set_ylabel(f"mean {verifier} score")
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
