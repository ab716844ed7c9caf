"""A real ComfyUI server with the pack installed: registration, metadata, a stock run."""

import json
import os

import pytest

import comfy_host
from comfy_server import ComfyError, NO_COMFYUI_REASON
from workflow_api import shrink_for_cpu, ui_to_api, widget_slots

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

if comfy_host.find_comfyui() is None:  # one line for the whole module
    comfy_host.host_missing(NO_COMFYUI_REASON)


def _inputs(info):
    for section in ("required", "optional"):
        for name, spec in ((info.get("input") or {}).get(section) or {}).items():
            yield section, name, spec


def test_server_answers(comfy):
    stats = comfy.system_stats()
    assert stats["devices"][0]["type"] == "cpu"
    assert comfy.url.startswith("http://127.0.0.1:")


def test_every_pack_node_is_registered(comfy, pack_node_ids):
    assert pack_node_ids, "the pack registers no nodes"
    info = comfy.object_info()
    missing = [n for n in pack_node_ids if n not in info]
    assert not missing, (f"pack nodes missing from /object_info: {missing} "
                         "(did the pack fail to import in the server? see the log below)")


def test_pack_nodes_are_documented(comfy, pack_node_ids):
    """Every pack node: a DESCRIPTION, a tooltip on every input, a category under LoTTS."""
    info = comfy.object_info()
    problems = []
    for node_id in pack_node_ids:
        ni = info.get(node_id)
        if ni is None:
            problems.append(f"{node_id}: not in /object_info")
            continue
        if not str(ni.get("description") or "").strip():
            problems.append(f"{node_id}: no DESCRIPTION")
        if not str(ni.get("category") or "").startswith("LoTTS"):
            problems.append(f"{node_id}: category {ni.get('category')!r} does not start with "
                            "'LoTTS'")
        for section, name, spec in _inputs(ni):
            opts = spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 and \
                isinstance(spec[1], dict) else {}
            if not str(opts.get("tooltip") or "").strip():
                problems.append(f"{node_id}: {section} input {name!r} has no tooltip")
    assert not problems, "\n".join(problems)


def _stock_txt2img(ckpt):
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red cat", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage",
              "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0],
            "latent_image": ["4", 0], "seed": 0, "steps": 2, "cfg": 7.0,
            "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage",
              "inputs": {"images": ["6", 0], "filename_prefix": "lotts_e2e/stock"}},
    }


def test_stock_txt2img_runs(comfy, tiny_ckpt_name):
    entry = comfy.run(_stock_txt2img(tiny_ckpt_name), timeout=300)
    files = comfy.output_files(entry)
    assert [f["node_id"] for f in files] == ["7"], entry.get("outputs")
    f = files[0]
    assert f["type"] == "output" and os.path.isfile(f["path"]), f
    data = comfy.view(f["filename"], f["subfolder"], f["type"])
    assert data.startswith(PNG_MAGIC) and data == open(f["path"], "rb").read()


def test_node_error_is_reported(comfy, tiny_ckpt_name):
    """Validation errors come back as ComfyError with the node and reason."""
    prompt = _stock_txt2img(tiny_ckpt_name)
    prompt["4"]["inputs"]["width"] = 1  # below EmptyLatentImage's min
    with pytest.raises(ComfyError, match="width"):
        comfy.queue(prompt)


def test_ui_workflow_fixture_matches_live_schemas_and_runs(comfy, tiny_ckpt_name):
    """The converter on the live /object_info gives the same prompt as on the hand-written
    snapshot (so the snapshot is faithful), and ComfyUI runs it."""
    with open(os.path.join(FIXTURES, "ui_txt2img.json")) as f:
        wf = json.load(f)
    with open(os.path.join(FIXTURES, "object_info_stock.json")) as f:
        snapshot = json.load(f)
    live = comfy.object_info()
    api = ui_to_api(wf, live)
    assert api == ui_to_api(wf, snapshot)
    for node_type in snapshot:
        if node_type.startswith("_"):
            continue
        assert widget_slots(snapshot[node_type]) == widget_slots(live[node_type]), node_type
    entry = comfy.run(shrink_for_cpu(api, tiny_ckpt_name, size=64, steps=2), timeout=300)
    files = comfy.output_files(entry)
    assert files and all(os.path.isfile(f["path"]) for f in files), entry.get("outputs")
