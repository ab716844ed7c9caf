"""Workflows users saved with an earlier release still load, convert and run.

``tests/e2e/fixtures/workflows_<version>/`` keeps the example workflows exactly as that
release shipped them (``<name>.json``, the bytes users have on disk), with what the real
frontend made of them when they were current, recorded once:

* ``<name>.api.json``      the API prompt ``app.graphToPrompt()`` produced;
* ``<name>.widgets.json``  every node's widgets (name, value) after ``app.loadGraphData``.

Against the current pack, in headless Chromium, once per frontend (frontends.py: the
pinned one and the newest), every fixture must load with no node reported missing, no
node flagged, no error from the pack, and convert to the recorded prompt: the same node
ids, class_type, input values and links. The only differences allowed are inputs added
since (optional, at their default value), which keep the old behaviour. Each converted
prompt is then queued, shrunk for CPU (example_runs.for_cpu), and must run. The checkpoints
the workflows name exist on the test servers as links to the tiny checkpoint.

Recording (only when adding the fixtures of a release, on that release's code):
``LOTTS_RECORD_SAVED_WORKFLOWS=1`` writes the ``.api.json`` / ``.widgets.json`` files from
the pinned frontend instead of comparing.
"""

from __future__ import annotations

import glob
import json
import os

import pytest

import browser_driver
import comfy_server
from example_runs import for_cpu, run_and_check
from tiny_checkpoint import family_for

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
RECORD = bool(os.environ.get("LOTTS_RECORD_SAVED_WORKFLOWS"))
SUFFIXES = (".api.json", ".widgets.json")


def _saved() -> list[tuple[str, str]]:
    """(set, name) for every fixtures/workflows_<version>/<name>.json."""
    out = []
    for d in sorted(glob.glob(os.path.join(FIXTURES, "workflows_*"))):
        for p in sorted(glob.glob(os.path.join(d, "*.json"))):
            if not p.endswith(SUFFIXES):
                out.append((os.path.basename(d), os.path.basename(p)[:-len(".json")]))
    return out


SAVED = _saved()
PARAMS = [pytest.param(s, n, id=f"{s}/{n}") for s, n in SAVED]


def _path(set_, name, suffix=".json"):
    return os.path.join(FIXTURES, set_, name + suffix)


def _read(set_, name, suffix=".json"):
    with open(_path(set_, name, suffix), encoding="utf-8") as f:
        return json.load(f)


_loaded: dict = {}  # frontend kind -> the driver's result for every saved workflow


def _provide_checkpoints(comfy) -> None:
    """Every checkpoint a saved workflow names, as a link to the tiny checkpoint, so the
    frontend finds them (1.58.1 flags a loader whose model is missing) and loading shows
    only what the pack's nodes make of the workflow."""
    folder = os.path.join(comfy.base_dir, "models", "checkpoints")
    tiny = os.path.join(folder, comfy_server.TINY_CKPT_NAME)
    for s, n in SAVED:
        for node in _read(s, n)["nodes"]:
            if node["type"] == "CheckpointLoaderSimple":
                link = os.path.join(folder, node["widgets_values"][0])
                if not os.path.lexists(link):
                    os.symlink(os.path.realpath(tiny), link)


def loaded(ui_comfy, browser_tools, tmp_path_factory, set_, name) -> dict:
    """What the frontend made of one saved workflow (all are loaded in one browser
    session per frontend, on first use)."""
    if ui_comfy.frontend not in _loaded:
        _provide_checkpoints(ui_comfy)
        work = tmp_path_factory.mktemp(f"saved_{ui_comfy.frontend}")
        cfg = {"url": ui_comfy.url,
               "workflows": {f"{s}/{n}": _read(s, n) for s, n in SAVED}}
        res = browser_driver.run(browser_tools, "load_workflows.mjs", cfg, work, timeout=900)
        assert not res.get("fatal"), f"driver stopped at {res['steps'][-1:]}: {res['fatal']}"
        print(f"frontend {res.get('frontendVersion')} ({ui_comfy.frontend}); driver result: "
              f"{work}/load_workflows.mjs.result.json")
        _loaded[ui_comfy.frontend] = res
    res = _loaded[ui_comfy.frontend]
    return res, res["workflows"][f"{set_}/{name}"]


def _added_at_default(class_type: str, name: str, value, object_info: dict) -> bool:
    """Is ``name`` an optional input of ``class_type`` whose value is its default (an input
    added after the workflow was saved, which keeps the old behaviour)?"""
    spec = (object_info.get(class_type, {}).get("input", {}).get("optional") or {}).get(name)
    if not isinstance(spec, (list, tuple)) or not spec:
        return False
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if "default" in opts:
        return value == opts["default"]
    kind = spec[0]
    if kind == "COMBO":
        kind = opts.get("options") or []
    return isinstance(kind, list) and bool(kind) and value == kind[0]


def prompt_differences(recorded: dict, now: dict, object_info: dict) -> list[str]:
    """Every way ``now`` (an API prompt) differs from ``recorded`` beyond added inputs at
    their defaults; node titles (_meta) are not compared."""
    diffs = []
    if sorted(recorded) != sorted(now):
        diffs.append(f"node ids {sorted(recorded)} became {sorted(now)}")
    for nid in sorted(set(recorded) & set(now), key=int):
        r, n = recorded[nid], now[nid]
        if r["class_type"] != n["class_type"]:
            diffs.append(f"node {nid}: class_type {r['class_type']} became {n['class_type']}")
            continue
        t = r["class_type"]
        for k, v in r["inputs"].items():
            if k not in n["inputs"]:
                diffs.append(f"node {nid} ({t}): input {k!r} (was {v!r}) is gone")
            elif n["inputs"][k] != v:
                diffs.append(f"node {nid} ({t}): input {k!r} was {v!r}, now {n['inputs'][k]!r}")
        for k in sorted(set(n["inputs"]) - set(r["inputs"])):
            if not _added_at_default(t, k, n["inputs"][k], object_info):
                diffs.append(f"node {nid} ({t}): new input {k!r} = {n['inputs'][k]!r} is not "
                             "an optional input at its default")
    return diffs


def widget_differences(recorded: dict, now: dict, object_info: dict) -> list[str]:
    """The same for the widgets each node shows ({id: {type, widgets: [[name, value]]}})."""
    diffs = []
    if sorted(recorded) != sorted(now):
        diffs.append(f"nodes {sorted(recorded)} became {sorted(now)}")
    for nid in sorted(set(recorded) & set(now), key=int):
        r, n = recorded[nid], now[nid]
        t = r["type"]
        rw, nw = dict(map(tuple, r["widgets"])), dict(map(tuple, n["widgets"]))
        for k, v in rw.items():
            if k not in nw:
                diffs.append(f"node {nid} ({t}): widget {k!r} (was {v!r}) is gone")
            elif nw[k] != v:
                diffs.append(f"node {nid} ({t}): widget {k!r} showed {v!r}, now {nw[k]!r}")
        for k in [k for k, _ in n["widgets"] if k not in rw]:
            if not _added_at_default(t, k, nw[k], object_info):
                diffs.append(f"node {nid} ({t}): new widget {k!r} = {nw[k]!r} is not an "
                             "optional input at its default")
    return diffs


def _write(set_, name, suffix, data):
    with open(_path(set_, name, suffix), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")


@pytest.mark.parametrize("set_, name", PARAMS)
def test_saved_workflow_loads_cleanly(set_, name, ui_comfy, browser_tools, tmp_path_factory):
    res, wf = loaded(ui_comfy, browser_tools, tmp_path_factory, set_, name)
    assert wf["loadError"] is None, f"loadGraphData raised: {wf['loadError']}"
    assert wf["missing"] == [], f"the frontend reports missing node types {wf['missing']}"
    assert wf["errored"] == [], f"the frontend flagged nodes {wf['errored']} after loading"
    shipped = _read(set_, name)
    assert len(wf["widgets"]) == len(shipped["nodes"]), (sorted(wf["widgets"]), shipped["nodes"])
    errors = browser_driver.extension_errors(res, f"load {set_}/{name}")
    errors += [f"page error: {e['text']}" for e in res["pageerrors"]
               if e["phase"] == f"load {set_}/{name}"]
    assert not errors, "errors while loading:\n" + "\n".join(errors)


@pytest.mark.parametrize("set_, name", PARAMS)
def test_saved_workflow_converts_as_recorded(set_, name, ui_comfy, browser_tools,
                                             tmp_path_factory):
    _, wf = loaded(ui_comfy, browser_tools, tmp_path_factory, set_, name)
    if RECORD:
        if ui_comfy.frontend != "pinned":
            pytest.skip("recording uses the pinned frontend")
        _write(set_, name, ".api.json", wf["prompt"])
        _write(set_, name, ".widgets.json", wf["widgets"])
    info = ui_comfy.object_info()
    diffs = prompt_differences(_read(set_, name, ".api.json"), wf["prompt"], info)
    assert not diffs, (f"frontend {ui_comfy.frontend_version}: {set_}/{name} no longer "
                       "converts to the recorded prompt:\n" + "\n".join(diffs))
    diffs = widget_differences(_read(set_, name, ".widgets.json"), wf["widgets"], info)
    assert not diffs, (f"frontend {ui_comfy.frontend_version}: {set_}/{name} shows other "
                       "widgets than recorded:\n" + "\n".join(diffs))


@pytest.mark.parametrize("set_, name", PARAMS)
def test_saved_workflow_runs(set_, name, ui_comfy_pinned, browser_tools, tmp_path_factory,
                             tiny_ckpt_for):
    """The prompt the pinned frontend converts the saved workflow to runs (shrunk for CPU);
    once, not per frontend: the conversion test shows both frontends give this prompt."""
    _, wf = loaded(ui_comfy_pinned, browser_tools, tmp_path_factory, set_, name)
    run_and_check(ui_comfy_pinned, for_cpu(wf["prompt"], lambda ckpt: tiny_ckpt_for(family_for(ckpt))),
                  f"{set_}/{name}")
