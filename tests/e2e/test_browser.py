"""The pack's frontend extension (js/lotts.js) in the real ComfyUI frontend, in headless Chromium.

A small LoTTS workflow (tiny SD1.5 checkpoint, tiny random ImageReward verifier, 64 px,
N=2 candidates, k=2 refinements) is loaded into the page through the frontend
(``app.loadApiJson``), queued through the UI (``app.queuePrompt``), and after it finished:

* the defect viewer sits on the localizer (and the one-node sampler) with N candidates,
  and its controls work (prev/next wrap, opacity, heatmap/mask toggle);
* the score gallery on Verifier Pick (N*k refined + N candidates) and on the sampler shows
  N*k + N numeric badges, the picked one highlighted;
* with the Vue node renderer ("Nodes 2.0") switched on, and after a page reload with it on,
  the same views sit inside the Vue nodes and their controls answer real clicks (frontend
  1.58.1); frontend 1.27.10's hidden, experimental Vue mode mounts no DOM widget (its own
  prompt boxes neither): there the payload is kept and the views are back when it is off;
* after a page reload and reloading the saved workflow, the viewer comes back (payload
  kept in node.properties); a workflow without payloads, or an executed message without
  one, gives no widget and no error;
* the extension logs no console error and raises no page error in any phase.

Runs once per frontend (frontends.py: the pinned one and the newest). A screenshot is
saved to the test's tmp dir (and, with LOTTS_UPDATE_SCREENSHOT=1, from the pinned frontend
to js/docs/images/lotts_ui_tiny_checkpoint.png, the README's picture).

Needs: ComfyUI + its python (see conftest.py), the frontend package(s), Chromium, node and
playwright-core (browser_driver.py). Skips with a one-line reason when one is absent.
"""

from __future__ import annotations

import json
import os
import shutil

import browser_driver

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
SCREENSHOT = os.path.join(REPO_ROOT, "js", "docs", "images", "lotts_ui_tiny_checkpoint.png")
N, K = 2, 2
PROMPT = "a photo of a red cat on a house"


# make_base_dir puts tiny random ImageReward weights here on every e2e server.
VERIFIER_WEIGHTS = "ImageReward/ImageReward.pt"


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


def _by_type(state: dict, node_type: str) -> dict:
    found = [v for v in state.values() if v["type"] == node_type]
    assert found, f"no {node_type} node in the page: {state}"
    return found[0]


def test_views_in_real_browser(ui_comfy, tiny_ckpt_name, browser_tools, tmp_path):
    workflow = lotts_workflow(tiny_ckpt_name, VERIFIER_WEIGHTS)
    shot = str(tmp_path / "lotts_ui_tiny_checkpoint.png")
    vue_shot = str(tmp_path / "lotts_ui_vue_nodes.png")
    timeout = float(os.environ.get("LOTTS_E2E_WORKFLOW_TIMEOUT", "600"))
    cfg = {"url": ui_comfy.url, "workflow": workflow, "timeout_s": timeout, "screenshots": [shot],
           "vueScreenshots": [vue_shot]}
    res = browser_driver.run(browser_tools, "drive.mjs", cfg, tmp_path, timeout=timeout + 300)
    print(f"frontend {res.get('frontendVersion')} ({ui_comfy.frontend})")
    noise = [m for m in res["console"] if m["type"] in ("error", "warning")]
    print(f"browser result: {tmp_path / 'drive.mjs.result.json'}; console errors/warnings seen: "
          + json.dumps(noise, indent=1)[:4000])
    assert not res.get("fatal"), f"driver stopped at {res['steps'][-1:]}: {res['fatal']}\n{res['stderr']}"
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
    if os.environ.get("LOTTS_UPDATE_SCREENSHOT") and ui_comfy.frontend == "pinned":  # refresh the README's picture on request only
        os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

    _check_vue_mode(res, ui_comfy.frontend, vue_shot)

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

    errors = browser_driver.extension_errors(res)
    assert not errors, "errors from the extension:\n" + "\n".join(errors)


def _check_vue_mode(res: dict, frontend: str, shot: str) -> None:
    """The views with the Vue node renderer on (switched live, then after a reload with it
    on) and off again."""
    for phase in ("vueOn", "vueReloaded"):
        on, state = res[phase]["on"], res[phase]["state"]
        assert on, f"{phase}: the Vue renderer did not switch on"
        views = [(t, _by_type(state, t)["viewer"]) for t in ("LoTTSDefectLocalizer", "LoTTSSampler")]
        views += [(t, _by_type(state, t)["scores"]) for t in ("LoTTSVerifierPick", "LoTTSSampler")]
        for t, v in views:
            assert v and v["count"] in (N, N * K + N), (phase, t, v)
            assert f"lotts_{'viewer' if 'ready' in v else 'scores'}" in _by_type(state, t)["saved"]
            if frontend == "newest":  # mounted inside the Vue node, and big enough to see
                assert v["inDom"] and v["shown"] and v["vueNode"], (phase, t, v)
                if "ready" in v:
                    assert v["ready"] and v["stage"] >= 150, (phase, t, v)
            else:  # 1.27.10: its Vue mode mounts no DOM widget (documented in js/lotts.js)
                assert not v["shown"], (phase, t, v)
    if frontend == "newest":
        c = res["vueControls"]
        assert (c["index0"], c["index1"], c["mode"]) == ("0", "1", "heatmap"), c
        assert os.path.isfile(shot) and os.path.getsize(shot) > 10_000
    off, state = res["vueOff"]["on"], res["vueOff"]["state"]
    assert not off
    for t in ("LoTTSDefectLocalizer", "LoTTSSampler"):
        v = _by_type(state, t)["viewer"]
        assert v and v["ready"] and v["inDom"] and v["shown"] and not v["vueNode"], ("vueOff", t, v)
    s = _by_type(state, "LoTTSVerifierPick")["scores"]
    assert s and s["shown"] and len(s["badges"]) == N * K + N, ("vueOff", s)
