"""What a LoTTS run asks of the host beyond its model calls (issue 27): the costs a GPU
shows and a CPU hides. Counted with the benchmarks' own audit (benchmarks/host_audit.py),
through the nodes as a graph runs them."""

import os
import sys

import torch

from comfy_host import load_pack, require_comfyui

require_comfyui()

import comfy.model_management as mm  # noqa: E402

from tiny_models import tiny_vae  # noqa: E402
from unet_support import PROMPT, empty_latent, models, run_node  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "benchmarks"))
import host_audit  # noqa: E402

STEPS = 4


class MeanVerifier:
    name = "mean"

    def score(self, images, prompt, batch_size=None):
        return images.float().mean(dim=(1, 2, 3))


def audited_sampler(n=2, k=2, **kw):
    model, clip, pos, neg = models()
    audit = host_audit.Audit(load_pack(), gpu=False)
    counted = audit.counting(model)
    with torch.inference_mode(), audit:
        run_node("LoTTSSampler", counted, clip, tiny_vae(), pos, neg, PROMPT, MeanVerifier(),
                 empty_latent(), 0, n, k, 1, STEPS, 7.0, "euler", "normal", 1, 1, 0.5, 0.5, **kw)
    return audit.summary()


def test_probe_forward_never_waits_for_the_device():
    # the capture checked and copied the token weights at every captured layer (a value
    # read and a blocking upload each): the GPU drained its queue mid-forward, per layer
    probes = audited_sampler()["probes"]
    assert probes["calls"] == 2 and probes["syncs"] == 0, probes["sites"]


def test_refinements_and_crops_are_one_batch():
    # N*k = 4 children, cfg: 8 images a call, as many as the fan-out of 4 would make --
    # full frame and crop to mask (each crop used to be its own batch-1 call)
    for region in ("full frame", "crop to mask"):
        s = audited_sampler(region=region, context=0)
        assert set(s["refinement"]["batches"]) == {8}, (region, s["refinement"]["batches"])
        assert set(s["harmonization"]["batches"]) == {8}


def test_probe_leaves_the_loaded_model_loaded():
    # the probe used to load a patched clone of the model: ComfyUI swaps models on each
    # load and, once the clone is gone, runs a full garbage collection and flushes the
    # GPU's cache at the next load
    model, clip, pos, neg = models()
    cands = run_node("LoTTSSeedFanOut", model, pos, neg, empty_latent(), 0, 2, STEPS, 7.0,
                     "euler", "normal").result[0]
    loaded, original = [], mm.load_models_gpu

    def spy(models_, *a, **k):
        loaded.extend(models_)
        return original(models_, *a, **k)

    mm.load_models_gpu = spy
    try:
        run_node("LoTTSDefectLocalizer", model, clip, PROMPT, cands, 0.5, 0.5, 3,
                 "A high-quality image of {p}", "A low-quality image of {p}", 0, steps=STEPS)
    finally:
        mm.load_models_gpu = original
    unets = [m for m in loaded if m.model is model.model]
    assert unets and all(m is model for m in unets)
