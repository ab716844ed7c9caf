"""The nodes on joint-attention DiTs (tiny FLUX and SD3 built in code): FLOW schedules,
16-channel latents, pooled conditioning, and attention sliced from joint attention."""

import pytest
import torch

from comfy_host import require_comfyui

require_comfyui()


from tiny_models import (encode, tiny_flux, tiny_flux_clip, tiny_sd3,  # noqa: E402
                         tiny_sd3_clip)
from unet_support import model_state, pack_module, run_node  # noqa: E402

PROMPT = "a photo of a cat"
STEPS = 4


@pytest.fixture(scope="module", params=["flux", "sd3"])
def flux(request):
    """A tiny DiT (FLUX-dev layout, or SD3's MMDiT) with its text encoders."""
    if request.param == "flux":
        model, clip = tiny_flux(), tiny_flux_clip()
    else:
        model, clip = tiny_sd3(), tiny_sd3_clip()
    return model, clip, encode(clip, PROMPT), encode(clip, "blurry")


def empty(h=16, w=16):
    return {"samples": torch.zeros(1, 16, h, w)}


def fan_out(flux, n=2, seed=0, h=16, w=16, cfg=1.0):
    model, _, pos, neg = flux
    return run_node("LoTTSSeedFanOut", model, pos, neg, empty(h, w), seed, n, STEPS, cfg,
                                           "euler", "simple").result[0]


def localize(flux, cands, ratio=0.5, seed=0):
    model, clip, _, _ = flux
    return run_node("LoTTSDefectLocalizer",
        model, clip, PROMPT, cands, ratio, 0.5, 3, "A high-quality image of {p}",
        "A low-quality image of {p}", seed, steps=STEPS, scheduler="simple").result


def refine(flux, cands, mask, k=2, start=1, end=STEPS, seed=0):
    model, _, pos, neg = flux
    return run_node("LoTTSMaskedRefine", model, pos, neg, cands, mask, seed, k, STEPS, 1.0,
                                            "euler", "simple", start, end).result[0]


def test_fan_out_matches_stock_ksampler_on_flow_model(flux):
    import nodes as comfy_nodes
    model, _, pos, neg = flux
    cands = fan_out(flux, n=2, seed=3)["samples"]
    assert cands.shape == (2, 16, 16, 16)
    for i in range(2):
        ref = comfy_nodes.KSampler().sample(model, 3 + i, STEPS, 1.0, "euler", "simple", pos, neg,
                                            empty())[0]["samples"]
        assert torch.allclose(cands[i:i + 1], ref, atol=1e-4)


@pytest.mark.parametrize("hw", [(16, 16), (16, 24)])
def test_localizer_on_flux_gives_per_candidate_masks(flux, hw):
    cands = fan_out(flux, n=3, h=hw[0], w=hw[1])
    mask, heat = localize(flux, cands)
    h, w = hw
    assert mask.shape == (3, h * 8, w * 8) and heat.shape == (3, h * 8, w * 8, 3)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    grid = (h // 4) * (w // 4)  # DiT tokens at latent/2, pooled to latent/4
    for i in range(3):
        assert abs(mask[i].mean().item() - 0.5) <= 2 / grid
    assert not (torch.equal(mask[0], mask[1]) and torch.equal(mask[1], mask[2]))
    again, _ = localize(flux, cands)
    assert torch.equal(mask, again)


def test_refine_on_flow_model_preserves_unmasked_region(flux):
    cands = fan_out(flux, n=2)
    m = torch.zeros(2, 128, 128)
    m[:, 32:96, 16:64] = 1
    out = refine(flux, cands, m, k=2)["samples"]
    src = cands["samples"].repeat_interleave(2, 0)
    lm = torch.nn.functional.interpolate(m[:, None], scale_factor=1 / 8).repeat_interleave(2, 0)
    lm = lm.expand_as(out)
    assert (out - src)[lm == 0].abs().max() <= 1e-5
    assert (out - src)[lm == 1].abs().max() > 1e-3
    assert torch.equal(out, refine(flux, cands, m, k=2)["samples"])


def test_refine_then_harmonize_on_flow_schedule(flux):
    model, _, pos, neg = flux
    cands = fan_out(flux, n=1)
    noisy = refine(flux, cands, torch.ones(1, 128, 128), k=1, start=1, end=3)
    (done,) = run_node("LoTTSHarmonize", model, pos, neg, noisy, 0, STEPS, 1.0, "euler",
                                               "simple", 3, False).result
    # an all-ones mask makes refine+harmonize one unmasked run from step 1: equal to the
    # stock advanced sampler on the candidate with the same noise (refinement 0's seed)
    import nodes as comfy_nodes
    seeds = pack_module("lotts.seeds")
    (ref,) = comfy_nodes.KSamplerAdvanced().sample(
        model, "enable", seeds.stage_seed(0, seeds.Stream.REFINEMENT), STEPS, 1.0, "euler",
        "simple", pos, neg, cands, 1, STEPS, "disable")
    assert torch.allclose(done["samples"], ref["samples"], atol=1e-4)


def test_model_untouched_and_guidance_kept(flux):
    model, clip, pos, neg = flux
    before = model_state(model)
    cands = fan_out(flux, n=2)
    mask, _ = localize(flux, cands)
    refine(flux, cands, mask, k=1)
    assert model_state(model) == before
    assert "optimized_attention_override" not in model.model_options.get("transformer_options", {})


def test_bad_inputs_on_flux(flux):
    model, _, pos, neg = flux
    with pytest.raises(ValueError, match="latent_image has 4 channels .* 16-channel"):
        run_node("LoTTSSeedFanOut", model, pos, neg, {"samples": torch.ones(1, 4, 8, 8)},
                                        0, 1, 2, 1.0, "euler", "simple")
    no_pooled = [[pos[0][0], {}]]
    with pytest.raises(ValueError, match="positive has no 'pooled_output'"):
        run_node("LoTTSSeedFanOut", model, no_pooled, neg, empty(), 0, 1, 2, 1.0, "euler",
                                        "simple")
    cands = fan_out(flux, n=1)
    with pytest.raises(ValueError, match="negative has no 'pooled_output'"):
        run_node("LoTTSMaskedRefine", model, pos, no_pooled, cands, torch.ones(1, 128, 128), 0,
                                         1, STEPS, 1.0, "euler", "simple", 1, STEPS)
    with pytest.raises(ValueError, match="candidates has 4 channels"):
        localize(flux, {"samples": torch.ones(1, 4, 16, 16)})


# A planted defect through the capture of a real forward (FLUX, SD3 and every other
# backbone, odd sizes included): tests/host/test_backbones.py.
