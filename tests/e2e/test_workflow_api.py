"""The UI -> API workflow converter, against a hand-written object_info snapshot (no server).

test_server.py checks the same conversion against a live server's /object_info and runs it.
"""

import copy
import json
import os

import pytest

from workflow_api import (WorkflowError, map_widgets_values, override_inputs, shrink_for_cpu,
                          ui_to_api, widget_slots)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def _load(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def oi():
    return _load("object_info_stock.json")


@pytest.fixture()
def wf():
    return _load("ui_txt2img.json")


# The API prompt ui_txt2img.json stands for (written out by hand).
EXPECTED_TXT2IMG = {
    "3": {"class_type": "KSampler", "inputs": {
        "seed": 42, "steps": 20, "cfg": 7.5, "sampler_name": "euler", "scheduler": "normal",
        "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
        "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple",
          "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    # width comes from the PrimitiveNode (384), not the stale widget value (512)
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 384, "height": 512,
                                                       "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "_meta": {"title": "Positive"},
          "inputs": {"text": "a red cat on a blue sofa", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, low quality",
                                                     "clip": ["4", 1]}},
    # LatentUpscale (13) is bypassed: its LATENT input is passed through; the VAE comes
    # through the Reroute (11) from the checkpoint loader
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "lotts_e2e/ui_txt2img",
                                                "images": ["8", 0]}},
    # PreviewImage (14) is muted, Note (12) / PrimitiveNode (10) / Reroute (11) are virtual
}


def test_txt2img_converts_exactly(wf, oi):
    assert ui_to_api(wf, oi) == EXPECTED_TXT2IMG


def test_links_in_object_form(wf, oi):
    """Newer frontends may store links as objects instead of arrays."""
    keys = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")
    wf["links"] = [dict(zip(keys, link)) for link in wf["links"]]
    assert ui_to_api(wf, oi) == EXPECTED_TXT2IMG


def test_widget_slots_include_control_after_generate(oi):
    assert widget_slots(oi["KSampler"]) == [
        ("seed", "control"), ("steps", None), ("cfg", None), ("sampler_name", None),
        ("scheduler", None), ("denoise", None)]
    assert widget_slots(oi["LoadImage"]) == [("image", "upload")]
    assert widget_slots(oi["VAEDecode"]) == []


def test_seed_control_value_is_skipped_and_required(oi):
    vals = [7, "fixed", 3, 1.5, "dpmpp_2m", "karras", 0.5]
    assert map_widgets_values("KSampler", oi["KSampler"], vals) == {
        "seed": 7, "steps": 3, "cfg": 1.5, "sampler_name": "dpmpp_2m", "scheduler": "karras",
        "denoise": 0.5}
    # Without the control value the positions shift: refuse rather than mis-assign.
    with pytest.raises(WorkflowError, match="do not fit"):
        map_widgets_values("KSampler", oi["KSampler"], [7, 3, 1.5, "dpmpp_2m", "karras", 0.5])
    # A non-control value in the control slot means the layout is wrong.
    with pytest.raises(WorkflowError, match="control_after_generate"):
        map_widgets_values("KSampler", oi["KSampler"], [7, 3, 1.5, "dpmpp_2m", "karras", 0.5, 1])


def test_control_value_after_seed_with_legacy_schema():
    """Schemas without the control_after_generate flag: the frontend still adds the control
    widget after INT inputs named seed / noise_seed."""
    schema = {"input": {"required": {"noise_seed": ["INT", {"default": 0}],
                                     "seed_like": ["INT", {"default": 0}]}}}
    assert map_widgets_values("X", schema, [5, "increment", 6]) == {"noise_seed": 5,
                                                                    "seed_like": 6}
    # an explicit control_after_generate: false turns it off
    schema["input"]["required"]["noise_seed"][1]["control_after_generate"] = False
    assert map_widgets_values("X", schema, [5, 6]) == {"noise_seed": 5, "seed_like": 6}


def test_upload_widget_value_optional(oi):
    for vals in (["cat.png", "image"], ["cat.png", None], ["cat.png"]):
        assert map_widgets_values("LoadImage", oi["LoadImage"], vals) == {"image": "cat.png"}


def test_required_then_optional_and_force_input():
    schema = {
        "input": {"required": {"a": ["INT", {}], "model": ["MODEL", {}],
                               "b": [["x", "y"], {}], "f": ["FLOAT", {"forceInput": True}]},
                  "optional": {"c": ["STRING", {}], "mask": ["MASK", {}],
                               "d": ["BOOLEAN", {}], "e": ["COMBO", {"options": ["p", "q"]}]},
                  "hidden": {"unique_id": "UNIQUE_ID"}},
        # input_order wins over dict order
        "input_order": {"required": ["b", "model", "a", "f"], "optional": ["d", "c", "mask", "e"],
                        "hidden": ["unique_id"]},
    }
    assert [n for n, _ in widget_slots(schema)] == ["b", "a", "d", "c", "e"]
    assert map_widgets_values("X", schema, ["y", 3, True, "hi", "q"]) == {
        "b": "y", "a": 3, "d": True, "c": "hi", "e": "q"}


def test_dict_widgets_values():
    schema = {"input": {"required": {"a": ["INT", {}], "b": ["STRING", {}]}}}
    assert map_widgets_values("X", schema, {"b": "s", "a": 1, "stale": 0}) == {"a": 1, "b": "s"}


def test_non_strict_maps_positionally(oi):
    out = map_widgets_values("KSampler", oi["KSampler"], [7, "fixed", 3], strict=False)
    assert out == {"seed": 7, "steps": 3}


def test_muted_upstream_drops_the_input(wf, oi):
    # mute the sampler: VAEDecode's samples input (via the bypassed upscale) disappears,
    # exactly as the frontend does (ComfyUI then reports the missing required input)
    next(n for n in wf["nodes"] if n["id"] == 3)["mode"] = 2
    api = ui_to_api(wf, oi)
    assert "3" not in api
    assert api["8"]["inputs"] == {"vae": ["4", 2]}


def test_bypass_falls_back_to_first_input_of_same_type(oi):
    """A bypassed node passes through the input at the output's index if its type matches,
    else the first input of the wanted type; with none, the downstream input is dropped."""
    wf = {
        "nodes": [
            {"id": 1, "type": "CheckpointLoaderSimple", "mode": 0, "inputs": [],
             "widgets_values": ["m.safetensors"]},
            {"id": 2, "type": "EmptyLatentImage", "mode": 0, "widgets_values": [64, 64, 1]},
            # bypassed VAEDecode: output 0 is IMAGE; no IMAGE input -> nothing passes
            {"id": 3, "type": "VAEDecode", "mode": 4,
             "inputs": [{"name": "samples", "type": "LATENT", "link": 1},
                        {"name": "vae", "type": "VAE", "link": 2}]},
            {"id": 4, "type": "SaveImage", "mode": 0,
             "inputs": [{"name": "images", "type": "IMAGE", "link": 3}],
             "widgets_values": ["x"]},
            # bypassed KSampler: output 0 (LATENT) -> input 0 is MODEL, so the first LATENT
            # input (latent_image) passes through
            {"id": 5, "type": "KSampler", "mode": 4,
             "inputs": [{"name": "model", "type": "MODEL", "link": 4},
                        {"name": "latent_image", "type": "LATENT", "link": 5}],
             "widgets_values": [1, "fixed", 20, 8, "euler", "normal", 1]},
            {"id": 6, "type": "VAEDecode", "mode": 0,
             "inputs": [{"name": "samples", "type": "LATENT", "link": 6},
                        {"name": "vae", "type": "VAE", "link": 7}]},
        ],
        "links": [[1, 2, 0, 3, 0, "LATENT"], [2, 1, 2, 3, 1, "VAE"], [3, 3, 0, 4, 0, "IMAGE"],
                  [4, 1, 0, 5, 0, "MODEL"], [5, 2, 0, 5, 3, "LATENT"],
                  [6, 5, 0, 6, 0, "LATENT"], [7, 1, 2, 6, 1, "VAE"]],
    }
    api = ui_to_api(wf, oi)
    assert set(api) == {"1", "2", "4", "6"}
    assert api["4"]["inputs"] == {"filename_prefix": "x"}
    assert api["6"]["inputs"] == {"samples": ["2", 0], "vae": ["1", 2]}


def test_reroute_chain_and_dangling_reroute(oi):
    wf = {
        "nodes": [
            {"id": 1, "type": "CheckpointLoaderSimple", "mode": 0,
             "widgets_values": ["m.safetensors"]},
            {"id": 2, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 1}]},
            {"id": 3, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 2}]},
            {"id": 4, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": None}]},
            {"id": 5, "type": "VAEDecode", "mode": 0,
             "inputs": [{"name": "samples", "type": "LATENT", "link": 4},
                        {"name": "vae", "type": "VAE", "link": 3}]},
        ],
        "links": [[1, 1, 2, 2, 0, "*"], [2, 2, 0, 3, 0, "VAE"], [3, 3, 0, 5, 1, "VAE"],
                  [4, 4, 0, 5, 0, "LATENT"]],
    }
    assert ui_to_api(wf, oi)["5"]["inputs"] == {"vae": ["1", 2]}


def test_unknown_type_and_unsupported_shapes(wf, oi):
    bad = copy.deepcopy(wf)
    bad["nodes"][0]["type"] = "NoSuchNode"
    with pytest.raises(WorkflowError, match="NoSuchNode"):
        ui_to_api(bad, oi)
    sub = copy.deepcopy(wf)
    sub["definitions"] = {"subgraphs": [{"id": "abc"}]}
    with pytest.raises(NotImplementedError):
        ui_to_api(sub, oi)


def test_shrink_for_cpu(wf, oi):
    api = shrink_for_cpu(ui_to_api(wf, oi), "tiny_sd15.safetensors", size=64, steps=2)
    assert api["4"]["inputs"]["ckpt_name"] == "tiny_sd15.safetensors"
    assert (api["5"]["inputs"]["width"], api["5"]["inputs"]["height"]) == (48, 64)
    assert api["3"]["inputs"]["steps"] == 2
    assert api["3"]["inputs"]["model"] == ["4", 0]
    per_family = shrink_for_cpu(ui_to_api(wf, oi), lambda old: "tiny_of_" + old)
    assert per_family["4"]["inputs"]["ckpt_name"] == \
        "tiny_of_" + ui_to_api(wf, oi)["4"]["inputs"]["ckpt_name"]
    adv = {"1": {"class_type": "KSamplerAdvanced",
                 "inputs": {"steps": 30, "start_at_step": 15, "end_at_step": 10000}},
           "2": {"class_type": "KSamplerAdvanced",
                 "inputs": {"steps": 30, "start_at_step": 0, "end_at_step": 15}},
           # a node with step indices but no steps of its own: scaled against the max
           "3": {"class_type": "X", "inputs": {"probe_step": 22, "start_step": 15,
                                               "end_step": 27, "refine_steps": 10,
                                               "k": 2, "width": 1024, "height": 576}}}
    out = shrink_for_cpu(adv, "t", steps=4)
    assert out["1"]["inputs"] == {"steps": 4, "start_at_step": 2, "end_at_step": 4}
    assert out["2"]["inputs"] == {"steps": 4, "start_at_step": 0, "end_at_step": 2}
    assert out["3"]["inputs"] == {"probe_step": 2, "start_step": 2, "end_step": 3,
                                  "refine_steps": 1, "k": 2, "width": 64, "height": 32}
    out = shrink_for_cpu(adv, "t", steps=6)
    assert out["3"]["inputs"]["probe_step"] == 4 and out["3"]["inputs"]["end_step"] == 5
    big = shrink_for_cpu(adv, "t", size=4096, steps=50)
    assert big == adv  # never grows
    assert adv["1"]["inputs"]["steps"] == 30  # input not modified


def test_override_inputs_never_replaces_links(wf, oi):
    api = ui_to_api(wf, oi)
    out = override_inputs(api, {"KSampler": {"cfg": 1.0, "model": "x", "seed": lambda s: s + 1},
                                "*": {"filename_prefix": "p", "not_there": 1}})
    assert out["3"]["inputs"]["cfg"] == 1.0 and out["3"]["inputs"]["seed"] == 43
    assert out["3"]["inputs"]["model"] == ["4", 0]
    assert out["9"]["inputs"]["filename_prefix"] == "p"
    assert all("not_there" not in e["inputs"] for e in out.values())
