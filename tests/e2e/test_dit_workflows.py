"""The DiT example workflows through a real server, on a tiny checkpoint of their own family.

test_example_workflows runs every example; here a DiT example (SD3.5) is checked for what
makes it a DiT run rather than a silent SD1.5 one -- ComfyUI would turn its 16-channel
empty latent into 4 channels on an SD1.5 model and the workflow would still "work":

* the tiny SD3 checkpoint (tiny_checkpoint.py: tiny MMDiT, the real CLIP-L and CLIP-G
  text encoders in fp8, 16-channel TAESD) goes through CheckpointLoaderSimple, the real
  SD3 tokenizers and text encoders, the sampler, the VAE;
* the latents flowing through the workflow are 16-channel: a SaveLatent is added after
  the fan-out and after the harmonize, and the saved tensors' shapes are read back;
* the localizer saw 16-channel latents and joint attention: its UI output
  ``lotts_localizer`` (``[{"backbone", "attention", "blocks", "latent_channels"}]``).

No FLUX case: ComfyUI's FLUX detection fixes the DiT's width (3072, 24 heads) and the
text encoders are the real CLIP-L and T5-XXL (4.76 B parameters), so the smallest FLUX
checkpoint it accepts (1 double + 1 single block: 535 M) is 5.5 GB even in fp8. Measured
on the 2-core CPU machines (loaded): built by streaming in 261 s; load 32 s at a 12.8 GB
peak RSS (7.6 GB after: T5 stays fp8 and is upcast per layer); one T5 encode (256
tokens) 274-311 s; one DiT call at 64 px 4.9 s. The example workflow encodes 5 prompts:
~25 min of T5 alone per run.
"""

from __future__ import annotations

import json
import os
import struct

import pytest

from tiny_checkpoint import SD3_DEPTH
from workflow_api import load_ui_workflow, shrink_for_cpu, ui_to_api

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKFLOW_DIR = os.path.join(REPO_ROOT, "example_workflows")
SIZE, STEPS, CANDIDATES = 64, 4, 2

# (workflow, tiny family, backbone name the localizer reports, joint blocks in the model)
CASES = [pytest.param("lotts_sd35.json", "sd3", "SD3", SD3_DEPTH, id="sd35")]


def safetensors_shapes(path: str) -> dict:
    """{tensor name: shape} from a .safetensors/.latent file's header (no torch needed)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


def png_size(path: str) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _node(api: dict, class_type: str) -> str:
    ids = [nid for nid, e in api.items() if e["class_type"] == class_type]
    assert len(ids) == 1, f"expected one {class_type} in the workflow, found {ids}"
    return ids[0]


@pytest.mark.parametrize("workflow,family,backbone,depth", CASES)
def test_dit_workflow_runs_on_its_own_backbone(workflow, family, backbone, depth, comfy,
                                               tiny_ckpt_for):
    api = ui_to_api(load_ui_workflow(os.path.join(WORKFLOW_DIR, workflow)), comfy.object_info())
    api = shrink_for_cpu(api, tiny_ckpt_for(family), size=SIZE, steps=STEPS,
                         extra={"LoTTSSeedFanOut": {"candidates": CANDIDATES}})
    fan_out, harmonize = _node(api, "LoTTSSeedFanOut"), _node(api, "LoTTSHarmonize")
    localizer = _node(api, "LoTTSDefectLocalizer")
    n = api[fan_out]["inputs"]["candidates"]
    k = api[_node(api, "LoTTSMaskedRefine")]["inputs"]["refinements"]
    api["e2e_candidates"] = {"class_type": "SaveLatent", "inputs": {
        "samples": [fan_out, 0], "filename_prefix": "lotts_e2e/candidates"}}
    api["e2e_harmonized"] = {"class_type": "SaveLatent", "inputs": {
        "samples": [harmonize, 0], "filename_prefix": "lotts_e2e/harmonized"}}

    entry = comfy.run(api, timeout=float(os.environ.get("LOTTS_E2E_WORKFLOW_TIMEOUT", "600")))
    outputs = entry.get("outputs") or {}
    files = comfy.output_files(entry)
    absent = [f["path"] for f in files if not os.path.isfile(f["path"])]
    assert not absent, f"reported output files missing on disk: {absent}"

    # 16-channel latents all the way: fan-out (N candidates), harmonize (N x k refined)
    grid = [SIZE // 8, SIZE // 8]
    for node, batch in (("e2e_candidates", n), ("e2e_harmonized", n * k)):
        saved = [f for f in files if f["node_id"] == node]
        assert len(saved) == 1, f"SaveLatent {node} wrote {saved}"
        shape = safetensors_shapes(saved[0]["path"])["latent_tensor"]
        assert shape == [batch, 16] + grid, f"{node}: latent shape {shape}"
    # the verifier pick over the N x k refinements and the N candidates: the best saved,
    # every sample previewed, ranked
    best = [f for f in files if f["node_id"] == _node(api, "SaveImage")]
    ranked = [f for f in files if f["node_id"] == _node(api, "PreviewImage")]
    assert len(best) == 1 and len(ranked) == n * k + n, (best, ranked)
    assert all(png_size(f["path"]) == (SIZE, SIZE) for f in best + ranked)

    # what the localizer saw (its UI output)
    seen = outputs.get(localizer, {}).get("lotts_localizer")
    assert seen is not None, (f"the localizer's UI output has no 'lotts_localizer' "
                              f"(keys: {sorted(outputs.get(localizer, {}))})")
    assert isinstance(seen, list) and len(seen) == 1, seen
    info = seen[0]
    assert backbone.lower() in str(info["backbone"]).lower(), info
    assert info["attention"] == "joint", info
    assert info["latent_channels"] == 16, info
    blocks = info["blocks"]
    assert isinstance(blocks, list) and 0 < len(blocks) <= depth, info
    assert all(isinstance(b, str) and b for b in blocks), info
