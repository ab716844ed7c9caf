"""The example workflows look right in the real frontend: nothing overlaps, every widget
and every note's text shows, and missing models are offered for download.

Each example_workflows/*.json is loaded at its saved view in headless Chromium, once per
frontend (frontends.py: the pinned one and the newest), and the frontend's own geometry
is read back (browser/workflow_layout.mjs):

* no node was made bigger than the workflow saved it (the generator's size model,
  scripts/make_example_workflows.py min_size, holds in this frontend), so the boxes are
  where the generator put them, and no two of them (title bars included) overlap;
* every widget lies inside its node; the view opens at a zoom where widgets are drawn;
* every note's rendered text fits its box;
* for a workflow whose checkpoint (or split diffusion model) the server lacks, the frontend
  names the file and offers its download (properties.models).

Screenshots (the saved view, the whole graph, the missing-model offer) go to the test's
tmp folder, or to LOTTS_LAYOUT_SCREENSHOTS=<dir>.
"""

from __future__ import annotations

import glob
import json
import os

import pytest

import browser_driver

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
WORKFLOWS = sorted(glob.glob(os.path.join(REPO_ROOT, "example_workflows", "*.json")))
NAMES = [os.path.basename(p)[:-len(".json")] for p in WORKFLOWS]
TITLE_H = 30
LOW_QUALITY_SCALE = 0.6  # below it the frontend draws nodes without their widgets


def _read(name):
    with open(os.path.join(REPO_ROOT, "example_workflows", name + ".json")) as f:
        return json.load(f)


MODEL_LOADERS = {"CheckpointLoaderSimple": "ckpt_name", "UNETLoader": "unet_name"}


def _ckpt(wf):
    """(loader type, file) of the workflow's model: its checkpoint, or for a backbone loaded
    from split files its diffusion model."""
    return next(((n["type"], n["widgets_values"][0]) for n in wf["nodes"]
                 if n["type"] in MODEL_LOADERS), (None, None))


_seen: dict = {}


def layout(ui_comfy, browser_tools, tmp_path_factory):
    """The driver's result for every example workflow, once per frontend."""
    if ui_comfy.frontend not in _seen:
        shots = os.environ.get("LOTTS_LAYOUT_SCREENSHOTS")
        work = tmp_path_factory.mktemp(f"layout_{ui_comfy.frontend}")
        shots = os.path.join(shots, ui_comfy.frontend) if shots else str(work)
        os.makedirs(shots, exist_ok=True)
        # fresh: tests that ran before may have linked checkpoints into the server since
        info = ui_comfy.object_info(refresh=True)
        present = {t: set(info[t]["input"]["required"][w][0]) for t, w in MODEL_LOADERS.items()}
        workflows = {n: _read(n) for n in NAMES}
        cfg = {"url": ui_comfy.url, "workflows": workflows, "screenshot_dir": shots,
               "missing_models": [n for n, wf in workflows.items()
                                  if _ckpt(wf)[0] and _ckpt(wf)[1] not in present[_ckpt(wf)[0]]]}
        res = browser_driver.run(browser_tools, "workflow_layout.mjs", cfg, work, timeout=900)
        assert not res.get("fatal"), f"driver stopped at {res['steps'][-1:]}: {res['fatal']}"
        print(f"frontend {res.get('frontendVersion')}: screenshots in {shots}")
        _seen[ui_comfy.frontend] = res
    return _seen[ui_comfy.frontend]


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.parametrize("name", NAMES)
def test_layout_in_the_frontend(name, ui_comfy, browser_tools, tmp_path_factory):
    res = layout(ui_comfy, browser_tools, tmp_path_factory)
    seen = res["workflows"][name]
    saved = {str(n["id"]): n for n in _read(name)["nodes"]}
    problems = []
    for n in seen["nodes"]:
        s = saved[str(n["id"])]
        want = [s["pos"][0], s["pos"][1] - TITLE_H, s["size"][0], s["size"][1] + TITLE_H]
        if any(abs(a - b) > 0.5 for a, b in zip(n["rect"], want)):
            problems.append(f"node {n['id']} ({n['type']}): the frontend made it {n['rect']} "
                            f"(x, y, w, h with title), the workflow saved {want}; min {n['min']}")
        for w in n["widgets"]:
            if w["y"] is not None and w["y"] + w["height"] > n["rect"][3] - TITLE_H + 0.5:
                problems.append(f"node {n['id']} ({n['type']}): widget {w['name']} ends at "
                                f"{w['y'] + w['height']:.0f}, below the node ({n['rect'][3] - TITLE_H})")
    boxes = [(n["id"], n["type"], n["rect"]) for n in seen["nodes"]] + \
            [(g["title"], "group", g["rect"]) for g in seen["groups"]]
    for i, (ida, ta, ra) in enumerate(boxes):
        for idb, tb, rb in boxes[i + 1:]:
            if _overlap(ra, rb):
                problems.append(f"{ta} {ida} {ra} overlaps {tb} {idb} {rb}")
    for note in seen["notes"]:
        if not note["shown"]:
            problems.append(f"note {note['id']}: its text box was not shown")
        elif note["content"] > note["box"] + 1:
            problems.append(f"note {note['id']}: its text needs {note['content']} px, the box "
                            f"has {note['box']}")
    if seen["view"]["scale"] < LOW_QUALITY_SCALE:
        problems.append(f"opens at zoom {seen['view']['scale']}: widgets are not drawn")
    assert not problems, (f"frontend {res.get('frontendVersion')}, {name}:\n" + "\n".join(problems))


@pytest.mark.parametrize("name", NAMES)
def test_missing_checkpoint_is_offered(name, ui_comfy, browser_tools, tmp_path_factory):
    res = layout(ui_comfy, browser_tools, tmp_path_factory)
    if name not in res["missingModels"]:
        pytest.skip(f"the test server has {_ckpt(_read(name))[1]} (another test linked it)")
    text = res["missingModels"][name]
    ckpt = _ckpt(_read(name))[1]
    assert ckpt in text and "Download" in text, (
        f"frontend {res.get('frontendVersion')} does not offer {ckpt} for download:\n{text[-2000:]}")
