"""The runner: prompt files, API graphs, the ComfyUI HTTP client, the resumable CSV and the
worker threads that spread (prompt, budget) units over servers.

Pure python: stdlib plus :mod:`lotts.schedule` (NFE arithmetic). ComfyUI is only ever
reached over HTTP.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import queue
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field

from lotts.schedule import Plan, best_of_n_nfe, match_best_of_n

CSV_NAME = "results.csv"
PLOT_NAME = "score_vs_nfe.png"
METHODS = ("lotts", "best_of_n")
SAMPLER_NODE = "20"        # the LoTTSSampler / LoTTSBestOfN node id in every graph
BON_MAX_SAMPLES = 1024    # LoTTS Best-of-N's samples maximum (its schema)
# Settings stored in every row: a rerun with different ones refuses to mix them in one CSV.
SETTING_COLUMNS = ("ckpt", "steps", "cfg", "sampler", "scheduler", "k", "depth", "start_step",
                   "harmonize_steps", "width", "height", "seed")
BASE_COLUMNS = ("prompt", "method", "budget", "samples", "nfe")
TAIL_COLUMNS = ("seconds", "server") + SETTING_COLUMNS


class EvalError(RuntimeError):
    """A problem the user can fix (bad file, bad option, server refused, ...)."""


class ServerUnreachable(EvalError):
    """The server did not answer (refused, reset, timed out): the address is in the message."""


class PromptFailed(EvalError):
    """The server answered but refused or failed the graph (a node error)."""


# ----------------------------------------------------------------------------- inputs
def read_prompts(path: str) -> list[str]:
    """One prompt per line; blank lines and lines starting with ``#`` are skipped;
    duplicates are dropped (a prompt is a row key)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise EvalError(f"cannot read the prompt file {path}: {e.strerror or e}") from None
    prompts, seen = [], set()
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#") or text in seen:
            continue
        seen.add(text)
        prompts.append(text)
    if not prompts:
        raise EvalError(f"the prompt file {path} has no prompts (one per line; # starts a comment)")
    return prompts


def parse_budgets(text: str) -> tuple[int, ...]:
    """``"1,2,4"`` -> (1, 2, 4): LoTTS candidate counts N, one curve point each."""
    try:
        values = [int(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError:
        raise EvalError(f"--budgets must be whole numbers separated by commas, e.g. 1,2,4; "
                        f"got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise EvalError(f"--budgets needs at least one candidate count >= 1; got {text!r}")
    return tuple(sorted(set(values)))


def default_weights(name: str) -> str:
    from lotts.verifiers.specs import SPECS  # pure data: no torch needed
    if name not in SPECS:
        raise EvalError(f"unknown verifier {name!r}; known: {', '.join(SPECS)}")
    return SPECS[name].default_weights


def parse_verifiers(specs: list[str]) -> tuple[tuple[str, str, str], ...]:
    """``NAME[:weights]`` each -> ((column label, name, weights), ...). The first selects.

    The label is the verifier name, or ``NAME:weights`` when one name is given twice."""
    if not specs:
        raise EvalError("give at least one --verifier NAME[:weights] (the first one selects)")
    parsed = []
    for spec in specs:
        name, _, weights = spec.partition(":")
        name, weights = name.strip(), weights.strip()
        parsed.append((name, weights or default_weights(name)))
    names = [n for n, _ in parsed]
    out = []
    for name, weights in parsed:
        label = name if names.count(name) == 1 else f"{name}:{weights}"
        if any(label == o[0] for o in out):
            raise EvalError(f"--verifier {label} is given twice")
        out.append((label, name, weights))
    return tuple(out)


@dataclass(frozen=True)
class Settings:
    ckpt: str
    verifiers: tuple          # ((label, name, weights), ...): the first selects
    budgets: tuple = (1, 2, 4)
    k: int = 2
    depth: int = 1
    steps: int = 20
    cfg: float = 7.0
    sampler: str = "euler"
    scheduler: str = "normal"
    start_step: int = 10
    harmonize_steps: int = 3
    width: int = 512
    height: int = 512
    seed: int = 0
    negative: str = "blurry, low quality, distorted"
    precision: str = "auto"
    mask_ratio: float = 0.5
    prior_weight: float = 0.5

    def __post_init__(self):
        if self.steps < 1:
            raise EvalError(f"--steps must be >= 1; got {self.steps}")
        if self.k and not 0 <= self.start_step < self.steps - self.harmonize_steps:
            raise EvalError(f"--start-step ({self.start_step}) must be >= 0 and leave at least one "
                            f"masked step before the {self.harmonize_steps} harmonization steps "
                            f"(--steps {self.steps})")
        if self.width % 8 or self.height % 8:
            raise EvalError(f"--width/--height must be multiples of 8; got {self.width}x{self.height}")

    def row_settings(self) -> dict:
        d = asdict(self)
        return {c: _fmt(d[c]) for c in SETTING_COLUMNS}

    @property
    def score_columns(self) -> list[str]:
        return [f"score_{label}" for label, _, _ in self.verifiers]

    @property
    def columns(self) -> list[str]:
        return list(BASE_COLUMNS) + self.score_columns + list(TAIL_COLUMNS)


def _fmt(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)


# ----------------------------------------------------------------------------- budgets
def expected_bon_samples(nfe: int, steps: int, cfg: float) -> int:
    """The M that LoTTS Best-of-N picks for ``match_budget = nfe`` (the same rule)."""
    return match_best_of_n(nfe, steps, cfg, BON_MAX_SAMPLES)


def plan(s: Settings) -> list[dict]:
    """Per budget N: the formula NFE of LoTTS and the Best-of-N M / NFE matched to it
    (single-call samplers; the server's counted NFE is what the CSV records)."""
    out = []
    for n in s.budgets:
        lt = Plan(n, s.steps, s.k, s.start_step, s.harmonize_steps, s.depth).nfe(s.cfg)["total"]
        m = expected_bon_samples(lt, s.steps, s.cfg)
        out.append({"budget": n, "lotts_nfe": lt, "bon_samples": m,
                    "bon_nfe": best_of_n_nfe(m, s.steps, s.cfg)})
    return out


# ----------------------------------------------------------------------------- graphs
def _common(prompt: str, s: Settings) -> dict:
    g = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": s.ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": s.negative, "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage",
              "inputs": {"width": s.width, "height": s.height, "batch_size": 1}},
    }
    for i, (_, name, weights) in enumerate(s.verifiers):
        g[str(100 + i)] = {"class_type": "LoTTSVerifierLoader",
                           "inputs": {"verifier": name, "weights": weights, "precision": s.precision}}
        if i:  # extra verifiers score the chosen image; PreviewAny makes them run
            g[str(200 + i)] = {"class_type": "LoTTSVerifierPick",
                               "inputs": {"verifier": [str(100 + i), 0],
                                          "images": [SAMPLER_NODE, 0], "prompt": prompt,
                                          "top_k": 1}}
            g[str(300 + i)] = {"class_type": "PreviewAny",
                               "inputs": {"source": [str(200 + i), 3]}}
    return g


def lotts_graph(prompt: str, s: Settings, budget: int) -> dict:
    """API-format graph: LoTTS Sampler with ``budget`` candidates, scored by every verifier."""
    g = _common(prompt, s)
    g[SAMPLER_NODE] = {"class_type": "LoTTSSampler", "inputs": {
        "model": ["1", 0], "clip": ["1", 1], "vae": ["1", 2], "positive": ["2", 0],
        "negative": ["3", 0], "prompt": prompt, "verifier": ["100", 0], "latent_image": ["4", 0],
        "seed": s.seed, "candidates": budget, "refinements": s.k, "depth": s.depth,
        "steps": s.steps, "cfg": s.cfg, "sampler_name": s.sampler, "scheduler": s.scheduler,
        "start_step": s.start_step, "harmonize_steps": s.harmonize_steps,
        "mask_ratio": s.mask_ratio, "prior_weight": s.prior_weight}}
    return g


def bon_graph(prompt: str, s: Settings, nfe: int) -> dict:
    """API-format graph: LoTTS Best-of-N matched to ``nfe`` (same seeds, model, sampler)."""
    g = _common(prompt, s)
    g[SAMPLER_NODE] = {"class_type": "LoTTSBestOfN", "inputs": {
        "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
        "seed": s.seed, "steps": s.steps, "cfg": s.cfg, "sampler_name": s.sampler,
        "scheduler": s.scheduler, "verifier": ["100", 0], "prompt": prompt, "vae": ["1", 2],
        "samples": 1, "match_budget": str(int(nfe))}}
    return g


def read_outputs(entry: dict, s: Settings) -> dict:
    """NFE, Best-of-N's M and the chosen image's score per verifier from a /history entry:
    the nodes' structured payloads (``lotts_cost``, ``lotts_scores``), never report text."""
    outputs = entry.get("outputs") or {}
    main = outputs.get(SAMPLER_NODE) or {}
    try:
        cost = main["lotts_cost"][0]
        out = {"nfe": int(cost["nfe_total"]), "samples": cost.get("samples"),
               "report": "".join(main.get("text") or [])}
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise PromptFailed(f"the run finished but its outputs carry no cost ('lotts_cost': "
                           f"{type(e).__name__}: {e}); is the pack on the server current?") from None
    scores = {}
    try:
        scores[s.verifiers[0][0]] = float(main["lotts_scores"][0]["scores"][0])
        for i, (label, _, _) in enumerate(s.verifiers[1:], start=1):
            scores[label] = float(outputs[str(200 + i)]["lotts_scores"][0]["scores"][0])
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise PromptFailed(f"the run finished but a score is missing from its outputs "
                           f"({type(e).__name__}: {e})") from None
    out["scores"] = scores
    return out


# ----------------------------------------------------------------------------- server
def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://", url):
        url = "http://" + url
    return url


class Server:
    """One ComfyUI server over its HTTP API (stdlib only). The e2e tests' client
    (tests/e2e/comfy_server.py) is this class too, with their server's lifecycle added."""

    def __init__(self, url: str, timeout: float = 60, poll: float = 0.5, retries: int = 2):
        self.url = normalize_url(url)
        self.timeout, self.poll, self.retries = timeout, poll, retries
        self.client_id = uuid.uuid4().hex

    def alive(self) -> bool:
        """Whether the server can still answer (a client that owns the process knows)."""
        return True

    def raw(self, method: str, path: str, data: bytes | None = None,
            headers: dict | None = None, timeout: float | None = None) -> bytes:
        """One HTTP request; the response body. GETs are retried on connection errors."""
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=headers or {})
        attempts = self.retries + 1 if method == "GET" else 1
        for attempt in range(attempts):
            try:
                with urllib.request.urlopen(req, timeout=timeout or self.timeout) as r:
                    return r.read()
            except urllib.error.HTTPError:
                raise
            except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
                reason = getattr(e, "reason", None) or e
                if attempt + 1 < attempts:
                    time.sleep(1.0)
                    continue
                raise ServerUnreachable(f"ComfyUI server {self.url} is unreachable ({method} {path}: "
                                        f"{reason}). Is it running, and is the address right?") from None

    def _request(self, method: str, path: str, body=None, timeout: float | None = None):
        data = json.dumps(body).encode() if body is not None else None
        raw = self.raw(method, path, data, {"Content-Type": "application/json"} if data else {},
                       timeout)
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            raise PromptFailed(f"{self.url}{path} did not answer JSON: is {self.url} a "
                               "ComfyUI server?") from None

    def get(self, path: str):
        try:
            return self._request("GET", path)
        except urllib.error.HTTPError as e:
            raise PromptFailed(f"{self.url}{path} answered HTTP {e.code}: is {self.url} a "
                               "ComfyUI server?") from None

    def check(self, s: Settings) -> None:
        """Reachable, has the pack and the checkpoint; clear errors otherwise."""
        self.get("/system_stats")
        info = self.get("/object_info/LoTTSSampler") or {}
        if "LoTTSSampler" not in info:
            raise PromptFailed(f"ComfyUI server {self.url} has no LoTTSSampler node: install the "
                               "LoTTS pack in its custom_nodes and restart it")
        ck = self.get("/object_info/CheckpointLoaderSimple") or {}
        try:
            names = ck["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
        except (KeyError, IndexError, TypeError):
            names = None
        if isinstance(names, list) and s.ckpt not in names:
            raise PromptFailed(f"ComfyUI server {self.url} has no checkpoint {s.ckpt!r} in "
                               f"models/checkpoints (it has: {', '.join(names[:10]) or 'none'})")

    def queue(self, graph: dict) -> str:
        try:
            out = self._request("POST", "/prompt", {"prompt": graph, "client_id": self.client_id})
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            try:
                detail = format_validation_error(json.loads(detail))
            except ValueError:
                pass
            raise PromptFailed(f"ComfyUI server {self.url} refused the graph (HTTP {e.code}): "
                               f"{detail}") from None
        if not isinstance(out, dict) or "prompt_id" not in out:
            raise PromptFailed(f"ComfyUI server {self.url} answered /prompt without a prompt_id: "
                               f"{str(out)[:300]}")
        if out.get("node_errors"):
            raise PromptFailed(f"ComfyUI server {self.url} refused nodes: "
                               + format_validation_error(out))
        return out["prompt_id"]

    def wait(self, prompt_id: str, timeout: float | None = None) -> dict:
        """Poll /history until the prompt finishes; its history entry. A failed or
        interrupted prompt, a dead server or a timeout (the prompt is interrupted) raise
        PromptFailed with the reason (the node's error and traceback tail)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            entry = (self.get(f"/history/{prompt_id}") or {}).get(prompt_id)
            if entry is not None:
                status = entry.get("status") or {}
                if status.get("status_str") == "success" or status.get("completed"):
                    return entry
                raise PromptFailed(f"on {self.url}: " + format_execution_error(entry))
            if not self.alive():
                raise PromptFailed(f"the ComfyUI server {self.url} died while running the prompt")
            if deadline is not None and time.monotonic() > deadline:
                try:
                    self.interrupt()
                except EvalError:
                    pass
                raise PromptFailed(f"prompt {prompt_id} did not finish on {self.url} within "
                                   f"{timeout:.0f}s (interrupted)")
            time.sleep(self.poll)

    def interrupt(self) -> None:
        self._request("POST", "/interrupt", {})

    def run(self, graph: dict, timeout: float | None = None) -> dict:
        return self.wait(self.queue(graph), timeout)


def format_validation_error(resp: dict) -> str:
    lines = []
    err = resp.get("error")
    if isinstance(err, dict):
        lines.append(f"{err.get('type')}: {err.get('message')} {err.get('details') or ''}".strip())
    elif err:
        lines.append(str(err))
    for node_id, ne in (resp.get("node_errors") or {}).items():
        for e in ne.get("errors", []):
            lines.append(f"node {node_id} ({ne.get('class_type')}): {e.get('message')}: "
                         f"{e.get('details')}")
    return "; ".join(lines) or json.dumps(resp)[:1000]


def format_execution_error(entry: dict) -> str:
    status = entry.get("status") or {}
    for event, data in status.get("messages") or []:
        if event == "execution_error":
            tb = "".join(data.get("traceback") or [])[-3000:]
            return (f"node {data.get('node_id')} ({data.get('node_type')}) raised "
                    f"{data.get('exception_type')}: {data.get('exception_message')}"
                    + (f"\n{tb}" if tb else ""))
        if event == "execution_interrupted":
            return f"the prompt was interrupted at node {data.get('node_id')} ({data.get('node_type')})"
    return "the prompt failed: " + json.dumps(status)[:1000]


# ----------------------------------------------------------------------------- CSV
class ResultsCSV:
    """The results file: rows keyed by (prompt, method, budget), appended and fsync'd one
    at a time, so a crash or a dead server never loses a finished row."""

    def __init__(self, path: str, s: Settings):
        self.path, self.columns = path, s.columns
        self.lock = threading.Lock()
        self.rows: dict[tuple, dict] = {}
        self._repair_tail()
        if os.path.exists(path) and os.path.getsize(path):
            self._load(s)

    @staticmethod
    def key(prompt: str, method: str, budget) -> tuple:
        return (prompt, method, int(budget))

    def _repair_tail(self):
        """Drop a half-written last line (a crash mid-write) so appends start clean."""
        if not os.path.exists(self.path):
            return
        with open(self.path, "rb") as f:
            data = f.read()
        if data and not data.endswith(b"\n"):
            keep = data[:data.rfind(b"\n") + 1]
            with open(self.path, "wb") as f:
                f.write(keep)
                f.flush()
                os.fsync(f.fileno())

    def _load(self, s: Settings):
        with open(self.path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            if header != self.columns:
                raise EvalError(
                    f"{self.path} has columns {','.join(header)} but this run writes "
                    f"{','.join(self.columns)} (other verifiers?): use another --out or the "
                    "same --verifier list")
            want = s.row_settings()
            for row in reader:
                if any(row.get(c) is None for c in self.columns):
                    continue  # a short (damaged) line: that row is simply redone
                diff = [f"{c} {row[c]} (now {want[c]})" for c in SETTING_COLUMNS if row[c] != want[c]]
                if diff:
                    raise EvalError(f"{self.path} holds rows made with other settings: "
                                    f"{', '.join(diff)}. Use another --out to keep both, or the "
                                    "same settings to resume.")
                self.rows[self.key(row["prompt"], row["method"], row["budget"])] = row

    def done(self, prompt, method, budget) -> bool:
        return self.key(prompt, method, budget) in self.rows

    def get(self, prompt, method, budget) -> dict | None:
        return self.rows.get(self.key(prompt, method, budget))

    def append(self, row: dict) -> None:
        row = {c: _fmt(row.get(c, "")) for c in self.columns}
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
        with self.lock:
            new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
            if new:
                w.writeheader()
            w.writerow(row)
            with open(self.path, "a", newline="", encoding="utf-8") as f:
                f.write(buf.getvalue())
                f.flush()
                os.fsync(f.fileno())
            self.rows[self.key(row["prompt"], row["method"], row["budget"])] = row


def load_rows(path: str) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if None not in r.values()]


# ----------------------------------------------------------------------------- running
@dataclass
class Outcome:
    written: int = 0
    skipped: int = 0
    errors: list = field(default_factory=list)
    remaining: int = 0


def _units(prompts, s: Settings, store: ResultsCSV):
    units, skipped = [], 0
    for i, p in enumerate(prompts):
        for n in s.budgets:
            todo = [m for m in METHODS if not store.done(p, m, n)]
            skipped += len(METHODS) - len(todo)
            if todo:
                units.append((i, p, n))
    return units, skipped


def _run_unit(server: Server, unit, s: Settings, store: ResultsCSV, timeout, log) -> int:
    i, prompt, n = unit
    written = 0
    for method in METHODS:
        if store.done(prompt, method, n):
            continue
        if method == "lotts":
            graph = lotts_graph(prompt, s, n)
        else:
            nfe = int(store.get(prompt, "lotts", n)["nfe"])
            graph = bon_graph(prompt, s, nfe)
        t = time.perf_counter()
        out = read_outputs(server.run(graph, timeout), s)
        seconds = time.perf_counter() - t
        samples = n if method == "lotts" else (out["samples"] or "")
        row = {"prompt": prompt, "method": method, "budget": n, "samples": samples,
               "nfe": out["nfe"], "seconds": f"{seconds:.2f}", "server": server.url,
               **{f"score_{k}": f"{v:.6g}" for k, v in out["scores"].items()},
               **s.row_settings()}
        store.append(row)
        written += 1
        scores = ", ".join(f"{k} {v:.4f}" for k, v in out["scores"].items())
        log(f"[{server.url}] prompt {i + 1} N={n} {method}: NFE {out['nfe']}"
            f"{'' if method == 'lotts' else f' (M={samples})'}, {scores} ({seconds:.1f} s)")
    return written


def run_eval(prompts: list[str], servers: list[str], s: Settings, out_dir: str, *,
             timeout: float | None = None, log=print, check: bool = True,
             poll: float = 0.5, retries: int = 2) -> Outcome:
    """Run every missing (prompt, method, budget) row; return what happened.

    Raises :class:`EvalError` (after every finished row is on disk) when a server is
    unreachable or a run failed; the message names the server address."""
    if not servers:
        raise EvalError("give at least one --server URL")
    os.makedirs(out_dir, exist_ok=True)
    store = ResultsCSV(os.path.join(out_dir, CSV_NAME), s)
    units, skipped = _units(prompts, s, store)
    outcome = Outcome(skipped=skipped)
    if skipped:
        log(f"resuming: {skipped} finished rows in {store.path} are skipped")
    if not units:
        log("nothing to do: every row is already in the CSV")
        return outcome
    clients = [Server(u, poll=poll, retries=retries) for u in dict.fromkeys(normalize_url(u) for u in servers)]
    if check:
        for c in clients:
            c.check(s)  # fail before any work: a dead or wrong address names itself
    work: queue.Queue = queue.Queue()
    for u in units:
        work.put(u)
    lock = threading.Lock()
    stop = threading.Event()
    say_lock = threading.Lock()

    def say(msg):
        with say_lock:
            log(msg)

    pending = [len(units)]  # units not finished yet (queued or in flight on some server)

    def worker(client: Server):
        while not stop.is_set():
            try:
                unit = work.get(timeout=0.2)
            except queue.Empty:
                with lock:
                    if pending[0] == 0:
                        return
                continue  # a unit is in flight elsewhere: its server may die and hand it back
            try:
                n = _run_unit(client, unit, s, store, timeout, say)
                with lock:
                    outcome.written += n
                    pending[0] -= 1
            except ServerUnreachable as e:
                work.put(unit)  # another server may take it; its finished rows are on disk
                with lock:
                    outcome.errors.append(str(e))
                say(f"error: {e}")
                return
            except EvalError as e:  # the graph or a node failed: the same would fail everywhere
                work.put(unit)
                with lock:
                    outcome.errors.append(str(e))
                stop.set()
                return
            except Exception as e:  # never lose the reason
                work.put(unit)
                with lock:
                    outcome.errors.append(f"on {client.url}: {type(e).__name__}: {e}")
                stop.set()
                return

    threads = [threading.Thread(target=worker, args=(c,), name=f"lotts-eval {c.url}", daemon=True)
               for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcome.remaining = work.qsize()
    if outcome.errors:
        raise EvalError("; ".join(dict.fromkeys(outcome.errors))
                        + f". {outcome.written} new rows were written to {store.path} "
                          f"({len(store.rows)} in all); {outcome.remaining} (prompt, budget) units "
                          "are left: rerun the same command to resume.")
    return outcome
