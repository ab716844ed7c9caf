"""Eval runner end to end against a stand-in ComfyUI API on 127.0.0.1 (a real
http.server, bounded, no network): spreading over servers, resume, dead servers.

``FakeComfy`` answers the few routes the runner uses, with outputs shaped like the pack's
nodes' (the ``lotts_cost`` and ``lotts_scores`` payloads); the NFE
comes from lotts.schedule, as the real nodes count it for single-call samplers.
``die_after=n`` drops every connection after n accepted prompts (a server that died
mid-run). The real server is exercised by tests/e2e/test_eval_runner.py.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lotts_eval import EvalError, Settings, expected_bon_samples, parse_verifiers, run_eval
from lotts_eval.cli import main
from lotts_eval.runner import load_rows
from lotts.schedule import Plan, best_of_n_nfe


def _score(prompt: str, method: str, n: int) -> float:
    return round(0.01 * len(prompt) + (0.2 if method == "lotts" else 0.1) * n, 4)


def outputs_for(graph: dict) -> dict:
    main = graph["20"]
    i = main["inputs"]
    prompt = i["prompt"]
    m = None
    if main["class_type"] == "LoTTSSampler":
        nfe = Plan(i["candidates"], i["steps"], i["refinements"], i["start_step"],
                   i["harmonize_steps"], i["depth"]).nfe(i["cfg"])["total"]
        report = f"LoTTS report: N={i['candidates']} k={i['refinements']}\nNFE total: {nfe}"
        score = _score(prompt, "lotts", i["candidates"])
    else:
        m = expected_bon_samples(int(i["match_budget"]), i["steps"], i["cfg"])
        nfe = best_of_n_nfe(m, i["steps"], i["cfg"])
        report = f"Best-of-N report: M={m} T={i['steps']}\nNFE total: {nfe}"
        score = _score(prompt, "bon", m)
    out = {"20": {"text": [report], "lotts_cost": [{"nfe_total": nfe, "samples": m}],
                  "lotts_scores": [{"verifier": "x", "scores": [score, score - 1]}]}}
    for nid, n in graph.items():
        if n["class_type"] == "LoTTSVerifierPick":
            out[nid] = {"lotts_scores": [{"verifier": "y", "scores": [score / 2]}]}
    return out


class FakeComfy:
    def __init__(self, ckpts=("tiny.safetensors",), die_after: int | None = None,
                 fail_node: bool = False):
        self.ckpts, self.die_after, self.fail_node = list(ckpts), die_after, fail_node
        self.graphs: list[dict] = []
        self.history: dict = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, obj, code=200):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if fake.dead:
                    self.close_connection = True
                    return  # no response: the client sees the connection dropped
                if self.path == "/system_stats":
                    return self._send({"system": {}, "devices": []})
                if self.path == "/object_info/LoTTSSampler":
                    return self._send({"LoTTSSampler": {"input": {}}})
                if self.path == "/object_info/CheckpointLoaderSimple":
                    return self._send({"CheckpointLoaderSimple": {"input": {"required": {
                        "ckpt_name": [fake.ckpts, {}]}}}})
                if self.path.startswith("/history/"):
                    pid = self.path.split("/")[-1]
                    with fake.lock:
                        entry = fake.history.get(pid)
                    return self._send({pid: entry} if entry else {})
                self._send({}, 404)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if fake.dead:
                    self.close_connection = True
                    return
                if self.path != "/prompt":
                    return self._send({})
                pid = uuid.uuid4().hex
                graph = body["prompt"]
                with fake.lock:
                    fake.graphs.append(graph)
                    if fake.fail_node:
                        fake.history[pid] = {"outputs": {}, "status": {
                            "status_str": "error", "completed": False, "messages": [
                                ["execution_error", {"node_id": "100", "node_type": "LoTTSVerifierLoader",
                                                     "exception_type": "ValueError",
                                                     "exception_message": "weights not found"}]]}}
                    else:
                        fake.history[pid] = {"outputs": outputs_for(graph),
                                             "status": {"status_str": "success", "completed": True}}
                    if fake.die_after is not None and len(fake.graphs) >= fake.die_after:
                        fake._dead = True
                self._send({"prompt_id": pid, "number": len(fake.graphs), "node_errors": {}})

        self._dead = False
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def dead(self) -> bool:
        return self._dead

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)



PROMPTS = ["a red cat", "a blue dog, running", 'the "moon"', "a tree"]


def settings(**kw):
    kw.setdefault("verifiers", parse_verifiers(["ImageReward", "HPSv2.1"]))
    return Settings(ckpt="tiny.safetensors", budgets=(1, 2), steps=4, start_step=2,
                    harmonize_steps=1, width=64, height=64, **kw)


def dead_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: connection refused


def test_runs_every_row_matched_and_resumes(tmp_path):
    s = settings()
    with FakeComfy() as srv:
        out = run_eval(PROMPTS, [srv.url], s, str(tmp_path), log=lambda m: None, poll=0.01, retries=0)
        assert out.written == 16 and out.skipped == 0
        rows = load_rows(str(tmp_path / "results.csv"))
        assert len(rows) == 16
        by = {(r["prompt"], r["method"], r["budget"]): r for r in rows}
        for p in PROMPTS:
            for n in ("1", "2"):
                lt, bon = by[(p, "lotts", n)], by[(p, "best_of_n", n)]
                # Best-of-N was queued with the NFE LoTTS reported
                bon_graphs = [g for g in srv.graphs if g["20"]["class_type"] == "LoTTSBestOfN"
                              and g["20"]["inputs"]["prompt"] == p
                              and g["20"]["inputs"]["match_budget"] == lt["nfe"]]
                assert len(bon_graphs) == 1
                assert abs(int(bon["nfe"]) - int(lt["nfe"])) <= 4  # within half a sample (T*c/2)
                assert bon["score_HPSv2.1"] and lt["score_ImageReward"]
        queued = len(srv.graphs)
        again = run_eval(PROMPTS, [srv.url], s, str(tmp_path), log=lambda m: None, poll=0.01, retries=0)
        assert again.written == 0 and again.skipped == 16 and len(srv.graphs) == queued
        # a new prompt: only its rows run
        more = run_eval(PROMPTS + ["new one"], [srv.url], s, str(tmp_path), log=lambda m: None,
                        poll=0.01, retries=0)
        assert more.written == 4 and len(srv.graphs) == queued + 4


def test_lotts_row_done_bon_missing_reuses_its_nfe(tmp_path):
    s = settings()
    with FakeComfy() as srv:
        run_eval(PROMPTS[:1], [srv.url], s, str(tmp_path), log=lambda m: None, poll=0.01, retries=0)
        path = tmp_path / "results.csv"
        lines = path.read_text().splitlines(keepends=True)
        # drop the Best-of-N rows: a rerun must queue only Best-of-N, at LoTTS's NFE
        path.write_text("".join(l for l in lines if ",best_of_n," not in l))
        n = len(srv.graphs)
        out = run_eval(PROMPTS[:1], [srv.url], s, str(tmp_path), log=lambda m: None, poll=0.01, retries=0)
        assert out.written == 2
        assert [g["20"]["class_type"] for g in srv.graphs[n:]] == ["LoTTSBestOfN"] * 2


def test_prompts_are_spread_over_servers(tmp_path):
    s = settings()
    with FakeComfy() as a, FakeComfy() as b:
        out = run_eval(PROMPTS, [a.url, b.url + "/"], s, str(tmp_path), log=lambda m: None,
                       poll=0.01, retries=0)
        assert out.written == 16
        assert a.graphs and b.graphs and len(a.graphs) + len(b.graphs) == 16
        servers = {r["server"] for r in load_rows(str(tmp_path / "results.csv"))}
        assert servers == {a.url, b.url}


def test_dead_address_is_named_and_rows_survive(tmp_path, capsys):
    s = settings()
    with FakeComfy() as srv:
        run_eval(PROMPTS[:2], [srv.url], s, str(tmp_path), log=lambda m: None, poll=0.01, retries=0)
    before = (tmp_path / "results.csv").read_bytes()
    dead = dead_url()
    with pytest.raises(EvalError, match=f"{dead} is unreachable"):
        run_eval(PROMPTS, [dead], s, str(tmp_path), log=lambda m: None, retries=0)
    assert (tmp_path / "results.csv").read_bytes() == before
    # the CLI: exit code 2 and one clear line naming the address
    rc = main(["--prompts", _write(tmp_path, PROMPTS), "--server", dead, "--ckpt", "tiny.safetensors",
               "--verifier", "ImageReward", "--verifier", "HPSv2.1", "--budgets", "1,2",
               "--steps", "4", "--start-step", "2", "--harmonize-steps", "1", "--width", "64",
               "--height", "64", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and f"error: ComfyUI server {dead} is unreachable" in err
    assert (tmp_path / "results.csv").read_bytes() == before


def test_server_dying_mid_run_keeps_finished_rows_and_rerun_completes(tmp_path):
    s = settings()
    with FakeComfy(die_after=3) as dying:
        with pytest.raises(EvalError) as e:
            run_eval(PROMPTS, [dying.url], s, str(tmp_path), log=lambda m: None, poll=0.01, retries=0)
    msg = str(e.value)
    assert f"{dying.url} is unreachable" in msg and "2 new rows were written" in msg
    assert "rerun the same command to resume" in msg
    assert len(load_rows(str(tmp_path / "results.csv"))) == 2
    with FakeComfy() as srv:
        out = run_eval(PROMPTS, [srv.url], s, str(tmp_path), log=lambda m: None, poll=0.01, retries=0)
    assert out.skipped == 2 and out.written == 14
    assert len(load_rows(str(tmp_path / "results.csv"))) == 16


def test_one_dead_server_among_live_ones_hands_its_work_over(tmp_path):
    s = settings()
    with FakeComfy() as live, FakeComfy(die_after=1) as dying:
        with pytest.raises(EvalError, match=f"{dying.url} is unreachable") as e:
            run_eval(PROMPTS, [live.url, dying.url], s, str(tmp_path), log=lambda m: None, poll=0.01, retries=0)
    assert "0 (prompt, budget) units are left" in str(e.value)
    assert len(load_rows(str(tmp_path / "results.csv"))) == 16


def test_node_failure_and_missing_checkpoint_are_clear(tmp_path):
    s = settings()
    with FakeComfy(fail_node=True) as srv:
        with pytest.raises(EvalError, match="LoTTSVerifierLoader.*weights not found"):
            run_eval(PROMPTS, [srv.url], s, str(tmp_path), log=lambda m: None, poll=0.01, retries=0)
    with FakeComfy(ckpts=["other.safetensors"]) as srv:
        with pytest.raises(EvalError, match="no checkpoint 'tiny.safetensors'.*other.safetensors"):
            run_eval(PROMPTS, [srv.url], s, str(tmp_path / "b"), log=lambda m: None, retries=0)
    assert not os.path.exists(tmp_path / "b" / "results.csv")


def _write(tmp_path, prompts):
    p = tmp_path / "prompts.txt"
    p.write_text("\n".join(prompts) + "\n")
    return str(p)
