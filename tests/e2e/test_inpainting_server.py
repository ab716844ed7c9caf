"""The user's inpainting mask through a real server (issue 14.1): a latent from Set Latent
Noise Mask goes into Seed Fan-Out and Masked Refine, and outside the mask every result
equals the input latent, as a stock KSampler keeps it."""

import pytest
import torch
from safetensors.torch import load_file

import comfy_host
from comfy_server import NO_COMFYUI_REASON

if comfy_host.find_comfyui() is None:  # one line for the whole module
    comfy_host.host_missing(NO_COMFYUI_REASON)

SIZE = 64  # pixels; latent 8x8


def _prompt(ckpt):
    common = {"steps": 3, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal"}
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red cat", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage",
              "inputs": {"width": SIZE, "height": SIZE, "batch_size": 1}},
        # the picture the user wants to keep
        "5": {"class_type": "KSampler", "inputs": dict(
            common, model=["1", 0], positive=["2", 0], negative=["3", 0],
            latent_image=["4", 0], seed=3, denoise=1.0)},
        # allowed: the left half
        "6": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": SIZE, "height": SIZE}},
        "7": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": SIZE // 2, "height": SIZE}},
        "8": {"class_type": "MaskComposite", "inputs": {
            "destination": ["6", 0], "source": ["7", 0], "x": 0, "y": 0, "operation": "add"}},
        "9": {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["5", 0], "mask": ["8", 0]}},
        "10": {"class_type": "LoTTSSeedFanOut", "inputs": dict(
            common, model=["1", 0], positive=["2", 0], negative=["3", 0],
            latent_image=["9", 0], seed=0, candidates=2)},
        # a defect mask over the whole image: the user's mask must still win
        "11": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": SIZE, "height": SIZE}},
        "12": {"class_type": "LoTTSMaskedRefine", "inputs": dict(
            common, model=["1", 0], positive=["2", 0], negative=["3", 0],
            candidates=["10", 0], mask=["11", 0], seed=1, refinements=2, start_step=1,
            end_step=3)},
        "20": {"class_type": "SaveLatent", "inputs": {"samples": ["5", 0],
                                                      "filename_prefix": "lotts_e2e/inpaint_input"}},
        "21": {"class_type": "SaveLatent", "inputs": {"samples": ["10", 0],
                                                      "filename_prefix": "lotts_e2e/inpaint_fanout"}},
        "22": {"class_type": "SaveLatent", "inputs": {"samples": ["12", 0],
                                                      "filename_prefix": "lotts_e2e/inpaint_refined"}},
    }


def test_set_latent_noise_mask_is_honoured_by_fan_out_and_refine(comfy, tiny_ckpt_name):
    entry = comfy.run(_prompt(tiny_ckpt_name), timeout=600)
    files = {f["node_id"]: f["path"] for f in comfy.output_files(entry)}
    latent = {k: load_file(files[k])["latent_tensor"] for k in ("20", "21", "22")}
    original, fanned, refined = latent["20"], latent["21"], latent["22"]
    assert fanned.shape[0] == 2 and refined.shape[0] == 4
    keep = slice(5, None)  # latent columns well inside the kept (right) half
    for name, out in (("Seed Fan-Out", fanned), ("Masked Refine", refined)):
        diff = (out[..., keep] - original[..., keep]).abs().max().item()
        assert diff <= 1e-5, f"{name} changed the region the user's mask keeps by {diff}"
        # ...and did work inside the allowed half
        assert (out[..., :3] - original[..., :3]).abs().max().item() > 1e-3, name
    assert not torch.equal(fanned[0], fanned[1])
