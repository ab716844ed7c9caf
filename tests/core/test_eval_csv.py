"""Eval runner: the results CSV -- one fsync'd row at a time, resume keys, damage and
mismatched settings."""

import csv

import pytest

from lotts_eval import EvalError, ResultsCSV, Settings
from lotts_eval.plot import PlotUnavailable, plot_results, summarize, summary_text
from lotts_eval.runner import load_rows

IR = (("ImageReward", "ImageReward", "ImageReward/ImageReward.pt"),)


def settings(**kw):
    kw.setdefault("verifiers", IR)
    return Settings(ckpt="tiny.safetensors", **kw)


def row(prompt, method, budget, nfe, score, s):
    return {"prompt": prompt, "method": method, "budget": budget, "samples": budget, "nfe": nfe,
            "score_ImageReward": score, "seconds": "1.00", "server": "http://x", **s.row_settings()}


def test_rows_are_on_disk_at_once_and_resume_by_key(tmp_path):
    s = settings()
    path = str(tmp_path / "results.csv")
    store = ResultsCSV(path, s)
    tricky = 'a "cat", on a chair'
    store.append(row(tricky, "lotts", 2, 166, 0.5, s))
    # readable by another process right away (no buffering until close)
    rows = list(csv.DictReader(open(path, newline="")))
    assert rows[0]["prompt"] == tricky and rows[0]["nfe"] == "166"
    store.append(row(tricky, "best_of_n", 2, 160, 0.25, s))
    again = ResultsCSV(path, s)
    assert again.done(tricky, "lotts", 2) and again.done(tricky, "best_of_n", "2")
    assert not again.done(tricky, "lotts", 4)
    assert again.get(tricky, "lotts", 2)["nfe"] == "166"
    assert open(path).read().count("prompt,method") == 1  # one header


def test_a_half_written_last_line_is_dropped(tmp_path):
    s = settings()
    path = tmp_path / "results.csv"
    store = ResultsCSV(str(path), s)
    store.append(row("a", "lotts", 1, 83, 0.5, s))
    with open(path, "a") as f:
        f.write('"b",lotts,1,1,8')  # crash mid-write: no newline
    store = ResultsCSV(str(path), s)
    assert not store.done("b", "lotts", 1)
    store.append(row("b", "lotts", 1, 83, 0.7, s))
    rows = load_rows(str(path))
    assert [(r["prompt"], r["score_ImageReward"]) for r in rows] == [("a", "0.5"), ("b", "0.7")]


def test_other_settings_or_verifiers_are_refused(tmp_path):
    s = settings()
    path = str(tmp_path / "results.csv")
    ResultsCSV(path, s).append(row("a", "lotts", 1, 83, 0.5, s))
    with pytest.raises(EvalError, match=r"other settings: steps 20 \(now 10\)"):
        ResultsCSV(path, settings(steps=10, start_step=5))
    two = (IR[0], ("HPSv2.1", "HPSv2.1", "HPS_v2.1_compressed.pt"))
    with pytest.raises(EvalError, match="other verifiers"):
        ResultsCSV(path, settings(verifiers=two))


def test_summary_means_per_method_and_budget():
    s = settings()
    rows = [row("a", "lotts", 1, 83, 1.0, s), row("b", "lotts", 1, 85, 2.0, s),
            row("a", "best_of_n", 1, 80, 0.0, s), row("a", "lotts", 2, 166, 3.0, s)]
    rows = [{k: str(v) for k, v in r.items()} for r in rows]
    summ = summarize(rows)
    assert summ["ImageReward"]["lotts"] == [(1, 84.0, 1.5, 2), (2, 166.0, 3.0, 1)]
    assert summ["ImageReward"]["best_of_n"] == [(1, 80.0, 0.0, 1)]
    assert "lotts" in summary_text(summ)


def test_plot_without_matplotlib_says_how(tmp_path, monkeypatch):
    import builtins
    real = builtins.__import__

    def no_mpl(name, *a, **kw):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib here")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    s = settings()
    rows = [{k: str(v) for k, v in row("a", "lotts", 1, 83, 1.0, s).items()}]
    with pytest.raises(PlotUnavailable, match="pip install matplotlib"):
        plot_results(rows, str(tmp_path / "p.png"))
    assert not (tmp_path / "p.png").exists()
