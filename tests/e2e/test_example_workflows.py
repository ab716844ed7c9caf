"""Every shipped example workflow (example_workflows/*.json) runs in a real ComfyUI.

Each file is converted UI -> API with the live /object_info, pointed at the tiny
checkpoint of its model family (tiny_checkpoint.family_for: SD3/SD3.5 -> the tiny SD3,
everything else -> the tiny SD1.5, FLUX included), shrunk for CPU (example_runs.for_cpu:
64 px longest side, steps scaled to 4, at most 2 candidates), queued, and must finish with
every output file present. A new workflow file is picked up automatically.
test_dit_workflows checks what the SD3.5 example computes on its own backbone.
"""

import glob
import os

import pytest

from example_runs import for_cpu, run_and_check
from tiny_checkpoint import family_for
from workflow_api import VIRTUAL_NODES, load_ui_workflow, ui_to_api

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKFLOW_DIR = os.path.join(REPO_ROOT, "example_workflows")
WORKFLOWS = sorted(glob.glob(os.path.join(WORKFLOW_DIR, "*.json")))

PARAMS = [pytest.param(p, id=os.path.basename(p)) for p in WORKFLOWS] or [
    pytest.param(None, id="none", marks=pytest.mark.skip(
        reason="no example_workflows/*.json yet"))]


@pytest.mark.parametrize("path", PARAMS)
def test_example_workflow_is_ui_format(path):
    """Shipped examples are UI workflows (what ComfyUI's browser loads), not API prompts."""
    wf = load_ui_workflow(path)
    assert wf["nodes"], f"{path}: no nodes"


@pytest.mark.parametrize("path", PARAMS)
def test_example_workflow_runs(path, comfy, tiny_ckpt_for):
    ui, info = load_ui_workflow(path), comfy.object_info()
    # a workflow for a newer ComfyUI (its title says which) needs nodes this one lacks
    lacking = sorted({n["type"] for n in ui["nodes"]} - set(info) - VIRTUAL_NODES)
    if lacking:
        pytest.skip(f"{os.path.basename(path)} needs node(s) {', '.join(lacking)} this "
                    "ComfyUI does not have (a newer ComfyUI's workflow)")
    api = ui_to_api(ui, info)
    api = for_cpu(api, lambda name: tiny_ckpt_for(family_for(name)))
    entry = run_and_check(comfy, api, os.path.basename(path))
    if os.path.basename(path) == "lotts_fix_image_sd15.json":
        # the original competes with its refinements: the pick scored it (image 0, put
        # first by Image Batch) and the k refinements
        (refine,) = [e for e in api.values() if e["class_type"] == "LoTTSMaskedRefine"]
        (pick,) = [nid for nid, e in api.items() if e["class_type"] == "LoTTSVerifierPick"]
        (scores,) = entry["outputs"][pick]["lotts_scores"]
        assert sorted(scores["labels"]) == [f"image {i}" for i in
                                            range(refine["inputs"]["refinements"] + 1)]
