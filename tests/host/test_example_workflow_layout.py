"""The shipped example workflows are laid out so that nothing overlaps and every widget
shows, and their loaders say where to download missing models.

Each node's box is its saved position and size plus the title bar above it and the room
a run adds below it (the on-node views, image previews: make_example_workflows.AFTER_RUN).
The saved size must be at least what the frontend computes for the node
(make_example_workflows.min_size, checked against the real frontends by
tests/e2e/test_workflow_layout.py), so the frontend never grows a node into another.
"""

import json
import os

import pytest

from comfy_host import require_comfyui
from test_example_workflows_current import load_generator

require_comfyui()

gen = load_generator()
NAMES = sorted(f for f in os.listdir(gen.OUT_DIR) if f.endswith(".json"))


@pytest.fixture(scope="module")
def info():
    return gen.load_schemas()


def _load(name):
    with open(os.path.join(gen.OUT_DIR, name)) as f:
        return json.load(f)


def box(node):
    x, y = node["pos"]
    w, h = node["size"]
    return [x, y - gen.TITLE_H, w, gen.TITLE_H + h + gen.AFTER_RUN.get(node["type"], 0)]


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.parametrize("name", NAMES)
def test_no_node_grows_or_overlaps(name, info):
    wf = _load(name)
    problems = []
    for n in wf["nodes"]:
        need = gen.min_size(n, info)
        if n["size"][0] < need[0] or n["size"][1] < need[1]:
            problems.append(f"node {n['id']} ({n['type']}) saved at {n['size']}, the frontend "
                            f"makes it at least {need}")
    boxes = [(f"node {n['id']} ({n['type']})", box(n)) for n in wf["nodes"]]
    boxes += [(f"group {g.get('title')!r}", list(g["bounding"])) for g in wf.get("groups") or []]
    for i, (a, ra) in enumerate(boxes):
        for b, rb in boxes[i + 1:]:
            if _overlap(ra, rb):
                problems.append(f"{a} {ra} overlaps {b} {rb}")
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_the_size_model_sees_linked_widgets(info):
    """A linked multiline prompt takes one row on a LoTTS node (js/lotts.js), a full text
    box on a stock node; every widget row and the control_after_generate row count."""
    g = gen.Graph(info)
    prompt = g.node("PrimitiveStringMultiline")
    loc = g.node("LoTTSDefectLocalizer")
    enc = g.node("CLIPTextEncode")
    rows = lambda n: [h for _, h in gen.widget_rows(n, info)]  # noqa: E731
    before = rows(loc)
    g.link(prompt, "STRING", loc, "prompt")
    g.link(prompt, "STRING", enc, "text")
    assert before[0] == gen.TEXT_BOX and rows(loc)[0] == gen.LINKED_TEXT_BOX
    assert rows(enc) == [gen.TEXT_BOX]
    names = [n for n, _ in gen.widget_rows(loc, info)]
    assert names.count("control_after_generate") == 1 and "seed" in names
    assert len(names) == len(loc["widgets_values"])  # one row per stored widget value


@pytest.mark.parametrize("name", NAMES)
def test_loaders_carry_model_download_metadata(name, info):
    """properties.models names the file a loader's widget selects, with an https URL and
    a models folder ComfyUI knows; every node names its source pack and version."""
    import folder_paths
    wf = _load(name)
    sources = gen.node_sources()
    loaders = [n for n in wf["nodes"] if n["type"] in ("CheckpointLoaderSimple", "UNETLoader",
                                                      "CLIPLoader", "VAELoader", "LoTTSVerifierLoader")]
    assert loaders
    for n in loaders:
        models = n["properties"].get("models") or []
        selected = [v for v in n["widgets_values"] if any(m["name"] == v for m in models)]
        assert len(selected) == 1, f"{name}: {n['type']} has no model entry for its file: {models}"
        for m in models:
            assert m["url"].startswith("https://") and m["directory"] in folder_paths.folder_names_and_paths, m
    for n in wf["nodes"]:
        if n["type"] == "MarkdownNote":
            continue
        want = sources["pack" if info[n["type"]].get("lotts_pack_node") else "core"]
        got = {k: n["properties"].get(k) for k in ("cnr_id", "ver")}
        assert got == want, f"{name}: node {n['id']} ({n['type']}) has source {got}, not {want}"
    assert sources["pack"] == {"cnr_id": "lotts", "ver": gen.node_schemas.pyproject()["project"]["version"]}
