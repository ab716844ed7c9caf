"""LoTTS nodes inside subgraphs, in the real frontend (headless Chromium, both frontends).

The workflow of test_browser.py plus a LoTTS Best-of-N whose match_budget reads the LoTTS
Sampler's report is loaded, then converted in the UI as a user does it ("Convert Selection
to Subgraph"): the staged pipeline (fan-out -> localizer -> refine -> decode -> Verifier
Pick) into one subgraph, the Sampler into a subgraph that goes, with the Best-of-N, into
another (a nested subgraph). After a run through the UI:

* the server ran the inner nodes under execution ids such as ``12:5:3`` and the frontend
  handed each its UI payload: the localizer's viewer, the Verifier Pick's and the
  Sampler's badges, the Sampler's viewer, each shown when its subgraph is opened;
* the Sampler's report reached the Best-of-N across the subgraph boundary: it matched
  its M to the report's NFE total;
* after a page reload the views are back, inside each subgraph.

Frontend 1.58.1 runs this with the Vue node renderer on (and switches it off after the
reload); 1.27.10 with its canvas (its Vue mode mounts no DOM widget: test_browser.py).
"""

from __future__ import annotations

import json
import os
import re

import browser_driver
from test_browser import K, N, VERIFIER_WEIGHTS, lotts_workflow

# Another prompt than test_browser.py's: the server's cache must not answer the staged
# nodes (a cached node that is not an output node sends no UI payload again).
PROMPT = "a watercolor of a blue bird on a branch"
STAGED = [5, 6, 7, 8, 9, 10, 12]  # fan-out, localizer, refine, 2 decodes, batch, pick
SAMPLER, BEST_OF_N = 14, 15


def subgraph_workflow(ckpt: str, weights: str) -> dict:
    wf = json.loads(json.dumps(lotts_workflow(ckpt, weights)).replace(
        "a photo of a red cat on a house", PROMPT))
    wf[str(BEST_OF_N)] = {"class_type": "LoTTSBestOfN", "inputs": {
        "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
        "seed": 0, "steps": 4, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
        "verifier": ["11", 0], "prompt": PROMPT, "vae": ["1", 2], "samples": 2,
        "match_budget": [str(SAMPLER), 4], "max_batch": 0}}
    return wf


def _one(state: dict, node_type: str) -> tuple[str, dict]:
    found = [(k, v) for k, v in state.items() if v["type"] == node_type]
    assert len(found) == 1, f"{node_type}: {found}"
    return found[0]


def _nfe_total(text: str) -> int:
    m = re.search(r"NFE total: (\d+)", text)
    assert m, text
    return int(m.group(1))


def test_views_inside_subgraphs(ui_comfy, tiny_ckpt_name, browser_tools, tmp_path):
    vue = ui_comfy.frontend == "newest"
    timeout = float(os.environ.get("LOTTS_E2E_WORKFLOW_TIMEOUT", "600"))
    shots = {k: str(tmp_path / f"subgraph_{k}{'_vue' if vue else ''}.png") for k in ("staged", "nested")}
    cfg = {"url": ui_comfy.url, "workflow": subgraph_workflow(tiny_ckpt_name, VERIFIER_WEIGHTS),
           "timeout_s": timeout, "vue": vue, "staged": STAGED, "sampler": SAMPLER,
           "bestOfN": BEST_OF_N, "screenshots": shots}
    res = browser_driver.run(browser_tools, "subgraphs.mjs", cfg, tmp_path, timeout=timeout + 300)
    print(f"frontend {res.get('frontendVersion')} ({ui_comfy.frontend}), vue={res.get('vue')}; "
          f"result: {tmp_path / 'subgraphs.mjs.result.json'}; screenshots: {shots}")
    assert not res.get("fatal"), f"driver stopped at {res['steps'][-1:]}: {res['fatal']}\n{res['stderr']}"
    assert not res.get("runError"), f"the workflow failed: {res['runError']}"
    assert res["vue"] == vue and res.get("vueAfterReload", vue) == vue
    staged, inner, outer = res["ids"]["staged"], res["ids"]["inner"], res["ids"]["outer"]

    # Where the nodes went: execution ids through one and two subgraph levels.
    ids = {v["type"]: k for k, v in res["afterRun"].items()}
    assert ids["LoTTSDefectLocalizer"] == f"{staged}:6" and ids["LoTTSVerifierPick"] == f"{staged}:12"
    assert ids["LoTTSSampler"] == f"{outer}:{inner}:{SAMPLER}" and ids["LoTTSBestOfN"] == f"{outer}:{BEST_OF_N}"
    executed = {e["display_node"]: e for e in res["executed"]}
    for node_id in (ids["LoTTSDefectLocalizer"], ids["LoTTSVerifierPick"], ids["LoTTSSampler"],
                    ids["LoTTSBestOfN"]):
        assert node_id in executed, f"no UI payload for {node_id}: {sorted(executed)}"

    # The Sampler's report crossed the inner subgraph's boundary into the Best-of-N.
    budget = _nfe_total(executed[ids["LoTTSSampler"]]["text"][0])
    bon = executed[ids["LoTTSBestOfN"]]["text"][0]
    assert f"matched budget: {budget} NFE" in bon, bon

    def check(state: dict, where: str, opened: str | None) -> None:
        _, loc = _one(state, "LoTTSDefectLocalizer")
        _, pick = _one(state, "LoTTSVerifierPick")
        _, smp = _one(state, "LoTTSSampler")
        _, best = _one(state, "LoTTSBestOfN")
        for name, v, count in (("localizer viewer", loc["viewer"], N),
                               ("pick badges", pick["scores"], N * K + N),
                               ("sampler viewer", smp["viewer"], N),
                               ("sampler badges", smp["scores"], N * K + N)):
            assert v and v["count"] == count, (where, name, v)
            if "ready" in v:
                assert v["ready"], (where, name, v)
            else:
                assert len(v["badges"]) == count and v["picked"] >= 1, (where, name, v)
        assert best["scores"] and best["scores"]["count"] >= 1, (where, best)
        if opened is None:
            return
        views = {"staged": [loc["viewer"], pick["scores"]],
                 "nested": [smp["viewer"], smp["scores"]]}[opened]
        for v in views:
            assert v["inDom"] and v["shown"] and v["vueNode"] == vue_now, (where, v)

    vue_now = vue
    check(res["afterRun"], "after the run", None)
    for phase in ("openAfterRun", "openAfterReload"):
        for which in ("staged", "nested"):
            opened = res[phase][which]
            assert opened["open"], (phase, which)
            check(opened["state"], f"{phase}/{which}", which)
    check(res["afterReload"], "after the reload", None)
    if vue:
        vue_now = False
        assert res["openVueOff"]["on"] is False
        for which in ("staged", "nested"):
            check(res["openVueOff"][which]["state"], f"Vue off/{which}", which)
    for path in shots.values():
        assert os.path.isfile(path) and os.path.getsize(path) > 10_000

    errors = browser_driver.extension_errors(res)
    assert not errors, "errors from the extension:\n" + "\n".join(errors)


BLUEPRINT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "subgraphs")
# Small settings for the blueprint's stages (it ships with SD1.5-sized ones: 30 steps...).
QUICK = {"LoTTSSeedFanOut": {"candidates": N, "steps": 4},
         "LoTTSDefectLocalizer": {"steps": 4, "probe_step": 2},
         "LoTTSMaskedRefine": {"refinements": K, "steps": 4, "start_step": 2, "end_step": 3},
         "LoTTSHarmonize": {"steps": 4, "start_step": 3}}


def test_subgraph_blueprint_opens_and_runs(ui_comfy, tiny_ckpt_name, browser_tools, tmp_path):
    """The shipped blueprint (subgraphs/, served as a node by hosts that serve blueprints)
    opens as a workflow in both frontends as one subgraph node with the sockets and the
    prompt box it promises; linked to a checkpoint, conditioning, a latent and a verifier it
    runs, and its inner localizer and Verifier Pick show their views."""
    (name,) = [f for f in os.listdir(BLUEPRINT_DIR) if f.endswith(".json")]
    with open(os.path.join(BLUEPRINT_DIR, name)) as f:
        blueprint = json.load(f)
    shot = str(tmp_path / "blueprint_inside.png")
    timeout = float(os.environ.get("LOTTS_E2E_WORKFLOW_TIMEOUT", "600"))
    cfg = {"url": ui_comfy.url, "timeout_s": timeout, "vue": ui_comfy.frontend == "newest",
           "blueprint": blueprint, "name": name, "ckpt": tiny_ckpt_name,
           "weights": VERIFIER_WEIGHTS, "prompt": "a red fox in fresh snow", "inner": QUICK,
           "screenshot": shot}
    res = browser_driver.run(browser_tools, "blueprint.mjs", cfg, tmp_path, timeout=timeout + 300)
    print(f"frontend {res.get('frontendVersion')}: {json.dumps(res.get('wired'))}; screenshot {shot}")
    assert not res.get("fatal"), f"driver stopped at {res['steps'][-1:]}: {res['fatal']}\n{res['stderr']}"
    assert not res.get("runError"), f"the blueprint failed: {res['runError']}"
    wired = res["wired"]
    assert wired["title"] == name[:-len(".json")] and wired["promptBox"], wired
    assert [s for s, _ in wired["inputs"]] == ["model", "clip", "vae", "positive", "negative",
                                               "latent_image", "verifier", "prompt"]
    assert wired["outputs"] == [["best", "IMAGE"], ["best_latent", "LATENT"],
                                ["ranked", "IMAGE"], ["mask", "MASK"]]
    executed = {e["display_node"]: e for e in res["executed"]}
    sub = wired["id"]
    inner = {t: i for i, t in wired["inner"].items()}
    for node_type in ("LoTTSDefectLocalizer", "LoTTSVerifierPick"):
        assert f"{sub}:{inner[node_type]}" in executed, (node_type, sorted(executed))
    assert any("images" in e["keys"] for k, e in executed.items() if ":" not in k), \
        "the preview of the blueprint's best image got nothing"
    _, loc = _one(res["inside"], "LoTTSDefectLocalizer")
    _, pick = _one(res["inside"], "LoTTSVerifierPick")
    assert loc["viewer"]["count"] == N and loc["viewer"]["ready"] and loc["viewer"]["shown"], loc
    assert pick["scores"]["count"] == N * K + N and pick["scores"]["shown"], pick
    errors = browser_driver.extension_errors(res)
    assert not errors, "errors from the extension:\n" + "\n".join(errors)
