"""Every shipped example workflow (example_workflows/*.json) runs in a real ComfyUI.

Each file is converted UI -> API with the live /object_info, pointed at the tiny
checkpoint of its model family (tiny_checkpoint.family_for: SD3/SD3.5 -> the tiny SD3,
everything else -> the tiny SD1.5, FLUX included), shrunk for CPU (64 px longest side,
steps scaled to 4, at most 2 candidates), queued, and must finish with every output file
present. A new workflow file is picked up automatically. test_dit_workflows checks what
the SD3.5 example computes on its own backbone.
"""

import glob
import os

import pytest

from tiny_checkpoint import family_for
from workflow_api import load_ui_workflow, shrink_for_cpu, ui_to_api

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKFLOW_DIR = os.path.join(REPO_ROOT, "example_workflows")
# Step counts are scaled so the largest `steps` becomes STEPS (step indices such as
# probe_step / start_step / end_step scale along; 30 -> 4 maps the shipped 15/22/27 to
# 2/2/3, still a valid schedule).
STEPS = int(os.environ.get("LOTTS_E2E_STEPS", "4"))
# Candidate counts (LoTTSSeedFanOut.candidates, by input name) are capped: the cost is
# linear in them and 2 still exercises the per-candidate paths.
CANDIDATES = int(os.environ.get("LOTTS_E2E_CANDIDATES", "2"))
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
    wf = load_ui_workflow(path)
    api = ui_to_api(wf, comfy.object_info())
    api = shrink_for_cpu(api, lambda name: tiny_ckpt_for(family_for(name)), size=64, steps=STEPS,
                         extra={"*": {"candidates": lambda n: min(n, CANDIDATES)
                                      if isinstance(n, int) else n}})
    entry = comfy.run(api, timeout=float(os.environ.get("LOTTS_E2E_WORKFLOW_TIMEOUT", "600")))
    outputs = entry.get("outputs") or {}
    output_nodes = [nid for nid, e in api.items()
                    if comfy.object_info()[e["class_type"]].get("output_node")]
    assert output_nodes, f"{os.path.basename(path)} has no output node"
    missing = [nid for nid in output_nodes if nid not in outputs]
    assert not missing, f"output nodes {missing} produced nothing; outputs: {outputs}"
    files = comfy.output_files(entry)
    absent = [f["path"] for f in files if not os.path.isfile(f["path"])]
    assert not absent, f"reported output files missing on disk: {absent}"
