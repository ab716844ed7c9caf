"""The user's inpainting mask is law, and refinements cost what the defect's area costs:
LoTTS on latents from Set Latent Noise Mask, and crop-to-mask refinement."""

import pytest
import torch

from comfy_host import require_comfyui

require_comfyui()

import nodes as comfy_nodes  # noqa: E402

from tiny_models import tiny_vae  # noqa: E402
from unet_support import PROMPT, models, pack_module, run_node, stock_ksampler  # noqa: E402

STEPS = 4


@pytest.fixture(scope="module")
def vae():
    return tiny_vae()


class MeanVerifier:
    name = "mean"

    def score(self, images, prompt, batch_size=None):
        return images.float().mean(dim=(1, 2, 3))


def image_latent(h=16, w=16, seed=0):
    return {"samples": torch.randn(1, 4, h, w, generator=torch.Generator().manual_seed(seed))}


def with_mask(latent, box=(0, 64, 0, 128)):
    """Set Latent Noise Mask (ComfyUI's node) with a pixel box (top, bottom, left, right)."""
    h, w = latent["samples"].shape[-2:]
    m = torch.zeros(1, h * 8, w * 8)
    t, b, l, r = box
    m[:, t:b, l:r] = 1
    return comfy_nodes.SetLatentNoiseMask().set_mask(latent, m)[0], m


def outside(latent_mask_px, shape):
    """Latent positions the pixel mask does not touch at all."""
    lm = torch.nn.functional.max_pool2d(latent_mask_px[:, None], 8)
    return (lm == 0).expand(shape)


def test_fan_out_honours_the_noise_mask_like_ksampler():
    model, _, pos, neg = models()
    src, m = with_mask(image_latent())
    cands = run_node("LoTTSSeedFanOut", model, pos, neg, src, 3, 2, STEPS, 7.0, "euler_ancestral",
                     "normal").result[0]
    out = cands["samples"]
    keep = outside(m, out.shape)
    assert (out - src["samples"])[keep].abs().max() <= 1e-5
    assert (out - src["samples"])[~keep].abs().max() > 1e-2
    for i in range(2):  # candidate i is KSampler with seed + i on the masked latent
        assert torch.equal(out[i:i + 1], stock_ksampler(model, pos, neg, src, 3 + i, STEPS,
                                                        sampler="euler_ancestral"))
    assert "noise_mask" in cands  # the mask follows the candidates


def test_localizer_mask_stays_inside_and_r_is_its_share():
    model, clip, pos, neg = models()
    src, m = with_mask(image_latent(), box=(0, 64, 0, 128))  # the top half
    cands = run_node("LoTTSSeedFanOut", model, pos, neg, src, 0, 2, STEPS, 7.0, "euler",
                     "normal").result[0]
    mask, _ = run_node("LoTTSDefectLocalizer", model, clip, PROMPT, cands, 0.5, 0.5, 2,
                       "A high-quality image of {p}", "A low-quality image of {p}", 0,
                       steps=STEPS).result
    assert (mask * (1 - m)).sum() == 0
    assert torch.allclose(mask[:, :64].mean((1, 2)), torch.full((2,), 0.5), atol=1 / 8)


@pytest.mark.parametrize("node_id", ["LoTTSSampler", "LoTTSBestOfN"])
def test_one_node_search_keeps_the_region_outside_the_mask(vae, node_id, monkeypatch):
    model, clip, pos, neg = models()
    src, m = with_mask(image_latent(seed=2), box=(32, 96, 32, 96))
    pool = pack_module("nodes.search").Pool
    seen, real = [], pool.score
    monkeypatch.setattr(pool, "score", lambda self, new, *a: (seen.extend(new), real(self, new, *a))[1])
    if node_id == "LoTTSSampler":
        run_node(node_id, model, clip, vae, pos, neg, PROMPT, MeanVerifier(), src, 0, 2, 2, 2,
                       STEPS, 7.0, "euler", "normal", 1, 1, 0.5, 0.5)
    else:
        run_node(node_id, model, pos, neg, src, 0, STEPS, 7.0, "euler", "normal",
                       MeanVerifier(), PROMPT, vae, 3)
    assert seen
    for s in seen:
        keep = outside(m, s.latent.shape)
        assert (s.latent - src["samples"])[keep].abs().max() <= 1e-5, s.lineage


def test_staged_refine_then_harmonize_keeps_the_region_outside_the_mask():
    model, clip, pos, neg = models()
    src, m = with_mask(image_latent(seed=3), box=(0, 64, 0, 64))
    cands = run_node("LoTTSSeedFanOut", model, pos, neg, src, 0, 2, STEPS, 7.0, "euler",
                     "normal").result[0]
    defect = torch.ones(2, 128, 128)  # everything, but the user's mask wins
    noisy = run_node("LoTTSMaskedRefine", model, pos, neg, cands, defect, 0, 2, STEPS, 7.0,
                     "euler", "normal", 1, STEPS - 1).result[0]
    done = run_node("LoTTSHarmonize", model, pos, neg, noisy, 0, STEPS, 7.0, "euler", "normal",
                    STEPS - 1, False).result[0]["samples"]
    keep = outside(m, done.shape)
    assert (done - src["samples"].expand_as(done))[keep].abs().max() <= 1e-5
    assert (done - cands["samples"].repeat_interleave(2, 0))[~keep].abs().max() > 1e-3


def test_empty_intersection_is_a_no_op(vae):
    model, clip, pos, neg = models()
    latent = image_latent()
    src = comfy_nodes.SetLatentNoiseMask().set_mask(latent, torch.zeros(1, 128, 128))[0]
    out = run_node("LoTTSSampler", model, clip, vae, pos, neg, PROMPT, MeanVerifier(), src, 0, 2,
                   2, 1, STEPS, 7.0, "euler", "normal", 1, 1, 0.5, 0.5)
    cost = out.ui["lotts_cost"][0]
    assert cost["nfe"]["refinement"] == 0 and cost["nfe"]["harmonization"] == 0
    assert cost["skipped"] == [{"depth": 1, "samples": 2, "flat": 0}]
    assert "empty mask" in out.result[4] and "no NFE spent" in out.result[4]
    assert cost["scored"] == 2  # the candidates alone


# --- crop to mask ---------------------------------------------------------------------------

def refine(cands, mask, region, end=STEPS, context=16, k=1, upscale_to=0):
    model, _, pos, neg = models()
    return run_node("LoTTSMaskedRefine", model, pos, neg, cands, mask, 0, k, STEPS, 7.0, "euler",
                    "normal", 1, end, region=region, context=context,
                    upscale_to=upscale_to).result[0]["samples"]


@pytest.fixture(scope="module")
def cands():
    model, _, pos, neg = models()
    return run_node("LoTTSSeedFanOut", model, pos, neg, {"samples": torch.zeros(1, 4, 32, 32)}, 5, 2,
                    STEPS, 7.0, "euler", "normal").result[0]


@pytest.mark.parametrize("region", ["crop to mask", "crop to mask, upscaled"])
@pytest.mark.parametrize("box,context", [((96, 160, 96, 160), 16),   # inside
                                         ((0, 40, 200, 256), 64),    # touching two borders
                                         ((100, 120, 100, 120), 4096)])  # margin > image: clamps
def test_crop_keeps_outside_the_mask_exactly(cands, region, box, context):
    mask = torch.zeros(1, 256, 256)
    t, b, l, r = box
    mask[:, t:b, l:r] = 1
    out = refine(cands, mask, region, context=context, upscale_to=256)
    keep = outside(mask, out.shape)
    assert (out - cands["samples"])[keep].abs().max() <= 1e-5
    assert (out - cands["samples"])[~keep].abs().max() > 1e-3


def test_disjoint_regions_share_one_box_and_crop_matches_full_frame_where_it_must(cands):
    crop = pack_module("nodes.crop")
    mask = torch.zeros(1, 256, 256)
    mask[:, 16:48, 16:48] = 1
    mask[:, 200:232, 200:232] = 1
    latent_mask = torch.nn.functional.interpolate(mask[:, None], size=(32, 32), mode="bilinear")[:, 0]
    assert crop.box_of(latent_mask[0], 0) == (0, 32, 0, 32)  # one box around both, aligned
    small = torch.zeros(32, 32)
    small[10:12, 10:12] = 1
    assert crop.box_of(small, 1) == (7, 15, 7, 15)  # 4x4 grown to the 8-pixel alignment
    out = refine(cands, mask, "crop to mask")
    keep = outside(mask, out.shape)
    assert (out - cands["samples"])[keep].abs().max() <= 1e-5


def test_crop_with_leftover_noise_feeds_harmonize(cands):
    model, _, pos, neg = models()
    mask = torch.zeros(1, 256, 256)
    mask[:, 96:160, 96:160] = 1
    noisy = refine(cands, mask, "crop to mask", end=STEPS - 1)
    full = refine(cands, mask, "full frame", end=STEPS - 1)
    keep = outside(mask, noisy.shape)
    # outside the mask both hold the candidate re-noised to end_step with the same noise
    assert torch.allclose(noisy[keep], full[keep], atol=1e-4)
    done = run_node("LoTTSHarmonize", model, pos, neg, {"samples": noisy}, 0, STEPS, 7.0, "euler",
                    "normal", STEPS - 1, False).result[0]["samples"]
    assert torch.isfinite(done).all()
