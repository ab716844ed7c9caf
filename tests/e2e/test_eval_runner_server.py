"""The evaluation runner (``python -m lotts_eval``) against a real ComfyUI server on the
tiny checkpoint: a 3-prompt file, two budgets, two verifiers (the second an identical copy
of the first, so it must give the chosen image the same score), CSV rows and the PNG;
a rerun skips every done row; a dead server address is a clear error that loses no row.
"""

import csv
import importlib.util
import math
import os
import socket
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.append(REPO_ROOT)

from lotts_eval import expected_bon_samples  # noqa: E402
from lotts.schedule import Plan  # noqa: E402

PROMPTS = ["a red fox in the snow", "two cups of coffee, one blue", 'a "glass" bottle with a ship']
BUDGETS, STEPS, T0, H, K = (1, 2), 4, 2, 1, 2
IR_COPY = "ImageReward_eval"  # a second verifier: the same tiny weights under another name


def dead_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def run_cli(servers, out_dir, prompts_file, ckpt, timeout=900):
    cmd = [sys.executable, "-m", "lotts_eval", "--prompts", prompts_file, "--ckpt", ckpt,
           "--verifier", "ImageReward", "--verifier", f"ImageReward:{IR_COPY}/ImageReward.pt",
           "--budgets", ",".join(map(str, BUDGETS)), "--k", str(K), "--steps", str(STEPS),
           "--start-step", str(T0), "--harmonize-steps", str(H), "--width", "64", "--height", "64",
           "--precision", "fp32", "--seed", "3", "--out", out_dir]
    for s in servers:
        cmd += ["--server", s]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


@pytest.fixture
def verifier_copy(comfy):
    folder = os.path.join(comfy.base_dir, "models", "lotts_verifiers")
    link = os.path.join(folder, IR_COPY)
    os.symlink(os.path.join(folder, "ImageReward"), link)
    yield
    os.unlink(link)


def test_eval_runner_end_to_end(comfy, tiny_ckpt_name, tmp_path, verifier_copy):
    prompts_file = tmp_path / "prompts.txt"
    prompts_file.write_text("# three prompts\n" + "\n".join(PROMPTS) + "\n")
    out_dir = tmp_path / "out"
    csv_path = out_dir / "results.csv"

    r = run_cli([comfy.url], str(out_dir), str(prompts_file), tiny_ckpt_name)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = list(csv.DictReader(open(csv_path, newline="")))
    assert len(rows) == len(PROMPTS) * len(BUDGETS) * 2
    cols = [f"score_ImageReward:ImageReward/ImageReward.pt", f"score_ImageReward:{IR_COPY}/ImageReward.pt"]
    by = {(row["prompt"], row["method"], int(row["budget"])): row for row in rows}
    for p in PROMPTS:
        for n in BUDGETS:
            lt, bon = by[(p, "lotts", n)], by[(p, "best_of_n", n)]
            want = Plan(n, STEPS, K, T0, H).nfe(7.0)["total"]
            assert int(lt["nfe"]) == want  # counted by the server = the formula
            m = expected_bon_samples(want, STEPS, 7.0)
            assert int(bon["samples"]) == m and int(bon["nfe"]) == m * STEPS * 2
            for row in (lt, bon):
                a, b = float(row[cols[0]]), float(row[cols[1]])
                assert math.isfinite(a) and abs(a - b) <= 1e-4 * max(1.0, abs(a)), row
                assert row["server"] == comfy.url and row["ckpt"] == tiny_ckpt_name
    if importlib.util.find_spec("matplotlib") is not None:
        png = (out_dir / "score_vs_nfe.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    else:
        assert "pip install matplotlib" in r.stderr

    # resume: nothing is queued again, the CSV is untouched
    done = open(csv_path, "rb").read()
    n_history = len(comfy.history())
    r = run_cli([comfy.url], str(out_dir), str(prompts_file), tiny_ckpt_name)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "12 finished rows" in r.stdout and "nothing to do" in r.stdout
    assert open(csv_path, "rb").read() == done and len(comfy.history()) == n_history

    # lose the last prompt's rows, then point at a dead address: clear error, no row lost
    lines = done.decode().splitlines(keepends=True)
    kept = "".join(line for line in lines if not line.startswith('"a ""glass"" bottle'))
    assert kept.count("\n") == 1 + 8
    csv_path.write_text(kept)
    dead = dead_url()
    for servers in ([dead], [comfy.url, dead]):
        r = run_cli(servers, str(out_dir), str(prompts_file), tiny_ckpt_name, timeout=120)
        assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
        assert f"ComfyUI server {dead} is unreachable" in r.stderr
        assert "Traceback" not in r.stderr
        assert csv_path.read_text() == kept

    # the live server alone completes the missing rows; the kept ones stay as they were
    r = run_cli([comfy.url], str(out_dir), str(prompts_file), tiny_ckpt_name)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "done: 4 new rows, 8 skipped" in r.stdout
    final = csv_path.read_text()
    assert final.startswith(kept) and final.count("\n") == 1 + 12
