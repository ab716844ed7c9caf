"""The pack's frontend extension (js/lotts.js) in the real ComfyUI frontend, in headless Chromium.

A small LoTTS workflow (tiny SD1.5 checkpoint, tiny random ImageReward verifier, 64 px,
N=2 candidates, k=2 refinements) is loaded into the page through the frontend
(``app.loadApiJson``), queued through the UI (``app.queuePrompt``), and after it finished:

* the defect viewer sits on the localizer (and the one-node sampler) with N candidates,
  and its controls work (prev/next wrap, opacity, heatmap/mask toggle);
* the score gallery on Verifier Pick (N*k refined + N candidates) and on the sampler shows
  N*k + N numeric badges, the picked one highlighted;
* after a page reload and reloading the saved workflow, the viewer comes back (payload
  kept in node.properties); a workflow without payloads, or an executed message without
  one, gives no widget and no error;
* the extension logs no console error and raises no page error in any phase.

A screenshot is saved to the test's tmp dir (and, with LOTTS_UPDATE_SCREENSHOT=1, to
docs/images/lotts_ui_tiny_checkpoint.png, the README's picture).

Needs: ComfyUI + its python (see conftest.py), the frontend package, Chromium
(``LOTTS_CHROMIUM`` or ``chromium`` on PATH), node and playwright-core (``LOTTS_NODE_MODULES``,
a folder holding ``playwright-core``; else NODE_PATH or tests/e2e/browser/node_modules).
Skips with a one-line reason when one is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
DRIVER = os.path.join(HERE, "browser", "drive.mjs")
SCREENSHOT = os.path.join(REPO_ROOT, "docs", "images", "lotts_ui_tiny_checkpoint.png")
N, K = 2, 2
PROMPT = "a photo of a red cat on a house"
EXTENSION_FILES = ("lotts.js", "lotts_logic.js", "comfyui_lotts")


def _chromium() -> str | None:
    for c in (os.environ.get("LOTTS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if c and shutil.which(c):
            return shutil.which(c)
    return None


def _node_modules(node: str) -> str | None:
    """A folder that holds playwright-core (what the driver's require() will search)."""
    cands = [os.environ.get("LOTTS_NODE_MODULES"), os.path.join(HERE, "browser", "node_modules")]
    cands += os.environ.get("NODE_PATH", "").split(os.pathsep)
    for c in filter(None, cands):
        if os.path.isfile(os.path.join(c, "playwright-core", "package.json")):
            return c
    try:  # globally installed?
        r = subprocess.run([node, "-p", "require.resolve('playwright-core/package.json')"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            return os.path.dirname(os.path.dirname(r.stdout.strip()))
    except (OSError, subprocess.TimeoutExpired):
        pass
    return None


@pytest.fixture(scope="module")
def browser_tools():
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium (apt-get install chromium, or set LOTTS_CHROMIUM)")
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node on PATH (needed to drive Chromium with playwright-core)")
    mods = _node_modules(node)
    if mods is None:
        pytest.skip("playwright-core not found (npm install playwright-core; set LOTTS_NODE_MODULES "
                    "to its node_modules folder)")
    return chromium, node, mods


@pytest.fixture(scope="module")
def verifier_weights(comfy, comfy_env):
    """Tiny random ImageReward weights in the server's models/lotts_verifiers/ (the names the
    loader lists are re-read from disk on every prompt)."""
    _, python, _ = comfy_env
    folder = os.path.join(comfy.base_dir, "models", "lotts_verifiers", "ImageReward")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import verifier_fixtures as vf; "
            "vf.make_imagereward(sys.argv[2])")
    r = subprocess.run([python, "-c", code, os.path.join(REPO_ROOT, "tests", "core"), folder],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.fail("building the tiny verifier failed:\n" + r.stderr[-3000:], pytrace=False)
    return "ImageReward/ImageReward.pt"


def lotts_workflow(ckpt: str, weights: str) -> dict:
    """API prompt: fan-out -> localizer -> masked refine -> Verifier Pick over the N*k refined
    plus the N candidates; and the one-node LoTTS Sampler with the same N, k."""
    steps, sampler = 4, {"cfg": 7.0, "sampler_name": "euler", "scheduler": "normal"}
    m, clip, vae, pos, neg, lat = ["1", 0], ["1", 1], ["1", 2], ["2", 0], ["3", 0], ["4", 0]
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": clip, "text": PROMPT}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": clip, "text": "blurry"}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {"class_type": "LoTTSSeedFanOut", "inputs": {
            "model": m, "positive": pos, "negative": neg, "latent_image": lat, "seed": 0,
            "candidates": N, "steps": steps, **sampler}},
        "6": {"class_type": "LoTTSDefectLocalizer", "inputs": {
            "model": m, "clip": clip, "prompt": PROMPT, "candidates": ["5", 0], "mask_ratio": 0.5,
            "prior_weight": 0.5, "probe_step": 2, "positive_template": "A high-quality image of {p}",
            "negative_template": "A low-quality image of {p}", "seed": 0, "steps": steps,
            "scheduler": "normal", "grow": 0, "feather": 0, "vae": vae}},
        "7": {"class_type": "LoTTSMaskedRefine", "inputs": {
            "model": m, "positive": pos, "negative": neg, "candidates": ["5", 0], "mask": ["6", 0],
            "seed": 100, "refinements": K, "steps": steps, **sampler, "start_step": 2,
            "end_step": steps}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": vae}},
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": vae}},
        "10": {"class_type": "ImageBatch", "inputs": {"image1": ["8", 0], "image2": ["9", 0]}},
        "11": {"class_type": "LoTTSVerifierLoader", "inputs": {
            "verifier": "ImageReward", "weights": weights, "precision": "fp32"}},
        "12": {"class_type": "LoTTSVerifierPick", "inputs": {
            "verifier": ["11", 0], "images": ["10", 0], "prompt": PROMPT, "top_k": 1}},
        "13": {"class_type": "PreviewImage", "inputs": {"images": ["12", 0]}},
        "14": {"class_type": "LoTTSSampler", "inputs": {
            "model": m, "clip": clip, "vae": vae, "positive": pos, "negative": neg,
            "prompt": PROMPT, "verifier": ["11", 0], "latent_image": lat, "seed": 0,
            "candidates": N, "refinements": K, "depth": 1, "steps": steps, **sampler,
            "start_step": 2, "harmonize_steps": 1, "mask_ratio": 0.5, "prior_weight": 0.5}},
    }


def _extension_errors(res: dict) -> list[str]:
    bad = []
    for m in res.get("console", []):
        if m["type"] == "error" and any(f in (m["url"] + m["text"]) for f in EXTENSION_FILES):
            bad.append(f"[{m['phase']}] console.error {m['url']}: {m['text']}")
    for e in res.get("pageerrors", []):  # uncaught exceptions whose stack is in our files
        if any(f in e["text"] for f in EXTENSION_FILES):
            bad.append(f"[{e['phase']}] page error: {e['text']}")
    return bad


def _by_type(state: dict, node_type: str) -> dict:
    found = [v for v in state.values() if v["type"] == node_type]
    assert found, f"no {node_type} node in the page: {state}"
    return found[0]


def test_views_in_real_browser(comfy, comfy_env, tiny_ckpt_name, browser_tools, verifier_weights,
                               tmp_path):
    chromium, node, mods = browser_tools
    workflow = lotts_workflow(tiny_ckpt_name, verifier_weights)
    shot = str(tmp_path / "lotts_ui_tiny_checkpoint.png")
    cfg = {"url": comfy.url, "workflow": workflow, "chromium": chromium,
           "timeout_s": float(os.environ.get("LOTTS_E2E_WORKFLOW_TIMEOUT", "600")),
           "screenshots": [shot]}
    cfg_path = tmp_path / "drive.json"
    cfg_path.write_text(json.dumps(cfg))
    env = dict(os.environ, NODE_PATH=mods)
    r = subprocess.run([node, DRIVER, str(cfg_path)], capture_output=True, text=True,
                       timeout=cfg["timeout_s"] + 300, env=env, cwd=str(tmp_path))
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("LOTTS_BROWSER_JSON ")), None)
    assert line, f"browser driver failed (rc {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    res = json.loads(line[len("LOTTS_BROWSER_JSON "):])
    (tmp_path / "browser_result.json").write_text(json.dumps(res, indent=1))
    noise = [m for m in res["console"] if m["type"] in ("error", "warning")]
    print(f"browser result: {tmp_path / 'browser_result.json'}; console errors/warnings seen: "
          + json.dumps(noise, indent=1)[:4000])
    assert not res.get("fatal"), f"driver stopped at {res['steps'][-1:]}: {res['fatal']}\n{r.stderr[-2000:]}"
    assert not res.get("runError"), f"the workflow failed: {res['runError']}"

    # Never run: no widgets.
    assert not any(v["viewer"] or v["scores"] for v in res["beforeRun"].values()), res["beforeRun"]

    after = res["afterRun"]
    for t in ("LoTTSDefectLocalizer", "LoTTSSampler"):
        v = _by_type(after, t)["viewer"]
        assert v and v["count"] == N and v["ready"] and v["inDom"], (t, v)
    for t in ("LoTTSVerifierPick", "LoTTSSampler"):
        s = _by_type(after, t)["scores"]
        assert s and s["inDom"], (t, s)
        assert s["count"] == N * K + N and len(s["badges"]) == N * K + N, (t, s)
        assert all(isinstance(x, (int, float)) for x in s["values"]), s
        assert s["values"] == sorted(s["values"], reverse=True), f"{t}: not best first: {s['values']}"
        assert s["picked"] == 1, s

    c = res["controls"]
    assert (c["start"], c["afterNext"], c["afterNext2"], c["afterPrev"]) == (0, 1, 0, 1), c
    assert c["opacityChangesPixels"] and c["modeAfterToggle"] == "heatmap", c

    assert os.path.isfile(shot) and os.path.getsize(shot) > 10_000
    if os.environ.get("LOTTS_UPDATE_SCREENSHOT"):  # refresh the README's picture on request only
        os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

    # The frontend's own workflow persistence restores the views on a page reload...
    restored = res["afterReloadRestored"]
    v = _by_type(restored, "LoTTSDefectLocalizer")["viewer"]
    assert v and v["count"] == N and v["ready"], f"viewer not restored by page reload: {restored}"
    # ...and so does loading the saved workflow.
    back = res["afterReload"]
    v = _by_type(back, "LoTTSDefectLocalizer")["viewer"]
    assert v and v["count"] == N and v["ready"], f"viewer not back after reload: {back}"
    s = _by_type(back, "LoTTSVerifierPick")["scores"]
    assert s and len(s["badges"]) == N * K + N, s

    assert not any(v["viewer"] or v["scores"] for v in res["noPayload"].values()), res["noPayload"]
    assert res["emptyExecuted"] == {"errs": [], "widgets": 0}, res["emptyExecuted"]

    errors = _extension_errors(res)
    assert not errors, "errors from the extension:\n" + "\n".join(errors)
