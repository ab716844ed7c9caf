"""The U-Net nodes inside real ComfyUI: invariants, reproducibility, clear errors."""

import contextlib
import os

import pytest
import torch

from comfy_host import interrupt_exception, progress_bar_checks_cancel, progress_hook, require_comfyui

require_comfyui()

import comfy.model_management as mm  # noqa: E402

from unet_support import (PROMPT, pack_module, empty_latent, model_state, models, run_node,  # noqa: E402
                          stock_ksampler)

STEPS = 4


def fan_out(kind="sd15", n=3, seed=10, sampler="euler", h=16, w=16):
    model, clip, pos, neg = models(kind)
    return run_node("LoTTSSeedFanOut", model, pos, neg, empty_latent(h, w), seed, n, STEPS,
                                           7.0, sampler, "normal").result[0]


def localize_ui(cands, kind="sd15", ratio=0.5, prior=0.5, seed=0, probe_step=2, **kw):
    model, clip, _, _ = models(kind)
    return run_node("LoTTSDefectLocalizer",
        model, clip, PROMPT, cands, ratio, prior, probe_step, "A high-quality image of {p}",
        "A low-quality image of {p}", seed, steps=STEPS, **kw)


def localize(cands, *args, **kw):
    return localize_ui(cands, *args, **kw).result


def refine(cands, mask, seed=0, k=2, start=1, end=STEPS, kind="sd15", steps=STEPS):
    model, _, pos, neg = models(kind)
    return run_node("LoTTSMaskedRefine", model, pos, neg, cands, mask, seed, k, steps, 7.0,
                                            "euler", "normal", start, end).result[0]


def block_mask(n=1, h=16, w=16):
    """Pixel mask: a latent-aligned block (rows 2..9, cols 4..11 of the latent) set to 1."""
    m = torch.zeros(n, h * 8, w * 8)
    m[:, 16:80, 32:96] = 1
    return m


# --- fan-out -------------------------------------------------------------------------

@pytest.mark.parametrize("sampler,exact", [("euler_ancestral", True), ("euler", False)])
def test_fan_out_candidate_i_equals_stock_ksampler_with_seed_plus_i(sampler, exact):
    model, _, pos, neg = models()
    cands = fan_out(n=3, seed=10, sampler=sampler)["samples"]
    assert cands.shape == (3, 4, 16, 16)
    for i in range(3):
        ref = stock_ksampler(model, pos, neg, empty_latent(), 10 + i, STEPS, sampler=sampler)
        if exact:  # stochastic samplers run one by one: bit for bit
            assert torch.equal(cands[i:i + 1], ref)
        else:      # deterministic samplers run batched: float tolerance
            assert torch.allclose(cands[i:i + 1], ref, atol=1e-4), (cands[i] - ref[0]).abs().max()


def test_fan_out_is_reproducible_and_seed_sensitive():
    a, b, c = fan_out(seed=3)["samples"], fan_out(seed=3)["samples"], fan_out(seed=4)["samples"]
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.allclose(a[1:], c[:-1], atol=1e-4)  # seed 4 + i == seed 3 + (i + 1)


def test_fan_out_rejects_batched_latent_and_wrong_channels():
    model, _, pos, neg = models()
    with pytest.raises(ValueError, match="latent_image has a batch of 2"):
        run_node("LoTTSSeedFanOut", model, pos, neg, {"samples": torch.zeros(2, 4, 8, 8)},
                                        0, 2, 2, 7.0, "euler", "normal")
    with pytest.raises(ValueError, match="latent_image has 16 channels .* 4-channel"):
        run_node("LoTTSSeedFanOut", model, pos, neg, {"samples": torch.ones(1, 16, 8, 8)},
                                        0, 2, 2, 7.0, "euler", "normal")


# --- localizer -----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["sd15", "sd21v", "sdxl"])
@pytest.mark.parametrize("hw", [(16, 16), (16, 24)])
def test_localizer_masks_per_candidate(kind, hw):
    cands = fan_out(kind, n=3, h=hw[0], w=hw[1])
    mask, heat = localize(cands, kind, ratio=0.5)
    h, w = hw
    assert mask.shape == (3, h * 8, w * 8)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    grid = (h // 4) * (w // 4)
    for i in range(3):
        assert abs(mask[i].mean().item() - 0.5) <= 2 / grid
    assert not torch.equal(mask[0], mask[1]) or not torch.equal(mask[1], mask[2])
    assert heat.shape == (3, h * 8, w * 8, 3) and heat.dtype == torch.float32
    assert 0.0 <= heat.min() and heat.max() <= 1.0 and heat.std() > 0


def test_localizer_sends_small_viewer_previews():
    import folder_paths
    from PIL import Image
    cands = fan_out(n=3, h=64, w=96)  # 512x768 image: previews are shrunk to 384 max
    ui = localize_ui(cands).ui
    for key in ("lotts_candidates", "lotts_masks", "lotts_heatmaps"):
        assert len(ui[key]) == 3
        for ref in ui[key]:
            assert ref["type"] == "temp"
            path = os.path.join(folder_paths.get_temp_directory(), ref["subfolder"], ref["filename"])
            with Image.open(path) as im:
                assert im.size == (384, 256)
    assert ui["lotts_mask_ratio"] == [0.5]


def test_localizer_is_reproducible_and_candidate_independent():
    cands = fan_out(n=3)
    m1, h1 = localize(cands)
    m2, h2 = localize(cands)
    assert torch.equal(m1, m2) and torch.equal(h1, h2)
    # candidate 1's mask does not depend on the rest of the batch (its probe seed is seed + 1)
    alone = {"samples": cands["samples"][1:2]}
    m_alone, _ = localize(alone, seed=1)
    assert torch.equal(m_alone[0], m1[1])


def test_localizer_ratio_and_grow_feather():
    cands = fan_out(n=2)
    for r in (0.25, 1.0):
        mask, _ = localize(cands, ratio=r)
        assert abs(mask.mean().item() - r) <= 2 / 16
    base, _ = localize(cands, ratio=0.25)
    grown, _ = localize(cands, ratio=0.25, grow=8)
    assert grown.sum() > base.sum() and (grown >= base).all()
    soft, _ = localize(cands, ratio=0.25, feather=8)
    assert ((soft > 0) & (soft < 1)).any()


@pytest.mark.parametrize("kw,match", [
    (dict(ratio=0.0), r"mask_ratio must be in \(0, 1\]"),
    (dict(ratio=1.5), r"mask_ratio must be in \(0, 1\]"),
    (dict(prior=-1.0), "prior_weight"),
    (dict(probe_step=STEPS), r"probe_step \(4\) must be in \[0, steps\)"),
])
def test_localizer_bad_numbers(kw, match):
    with pytest.raises(ValueError, match=match):
        localize(fan_out(n=1), **kw)


def test_localizer_empty_prompt_and_wrong_latent():
    model, clip, _, _ = models()
    with pytest.raises(ValueError, match="prompt is empty"):
        run_node("LoTTSDefectLocalizer", model, clip, "  ", fan_out(n=1), 0.5, 0.5, 2, "A high-quality image of {p}",
                     "A low-quality image of {p}", 0, steps=STEPS)
    with pytest.raises(ValueError, match="candidates has 16 channels"):
        run_node("LoTTSDefectLocalizer", model, clip, PROMPT, {"samples": torch.ones(1, 16, 8, 8)}, 0.5, 0.5, 2,
                     "A high-quality image of {p}", "A low-quality image of {p}", 0, steps=STEPS)


# --- masked refine -------------------------------------------------------------------

def latent_mask(pixel_mask):
    return torch.nn.functional.interpolate(pixel_mask[:, None], scale_factor=1 / 8, mode="bilinear")


def test_refine_preserves_unmasked_region_and_changes_masked_region():
    cands = fan_out(n=2)
    mask = block_mask(2)
    out = refine(cands, mask, k=2)["samples"]
    assert out.shape == (4, 4, 16, 16)
    src = cands["samples"].repeat_interleave(2, dim=0)
    lm = latent_mask(mask).repeat_interleave(2, dim=0).expand_as(out)
    assert set(lm.unique().tolist()) == {0.0, 1.0}
    assert (out - src)[lm == 0].abs().max() <= 1e-5
    for j in range(4):
        assert (out[j] - src[j])[lm[j] == 1].abs().max() > 1e-2


def test_refine_with_localizer_mask_and_output_layout():
    cands = fan_out(n=3)
    mask, _ = localize(cands)
    out = refine(cands, mask, k=2)
    assert "noise_mask" not in out
    s = out["samples"]
    lm = latent_mask(mask)
    for i in range(3):
        for r in range(2):  # candidate-major: output 2*i + r refines candidate i
            diff = (s[2 * i + r] - cands["samples"][i]).abs()
            assert diff[lm[i].expand_as(diff) == 0].max() <= 1e-5
    assert not torch.equal(s[0], s[1])  # the two refinements use different noise


def test_refine_zero_mask_is_identity_and_full_mask_from_zero_is_full_resample():
    model, _, pos, neg = models()
    cands = fan_out(n=1)
    out = refine(cands, torch.zeros(1, 128, 128), k=1)["samples"]
    assert (out - cands["samples"]).abs().max() <= 1e-5
    full = refine(cands, torch.ones(1, 128, 128), seed=7, k=1, start=0)["samples"]
    seeds = pack_module("lotts.seeds")  # refinement 0 draws its noise from its own stream
    ref = stock_ksampler(model, pos, neg, {"samples": cands["samples"]},
                         seeds.stage_seed(7, seeds.Stream.REFINEMENT), STEPS)
    assert torch.allclose(full, ref, atol=1e-5)


def test_refine_seeds_and_reproducibility():
    cands = fan_out(n=1)
    mask = block_mask()
    a = refine(cands, mask, seed=1, k=2)["samples"]
    b = refine(cands, mask, seed=1, k=2)["samples"]
    c = refine(cands, mask, seed=2, k=2)["samples"]
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.allclose(a[1], c[0], atol=1e-4)  # output j uses seed + j


def test_refine_mask_broadcast_and_resize():
    cands = fan_out(n=2)
    one = refine(cands, block_mask(1), k=1)["samples"]
    two = refine(cands, block_mask(2), k=1)["samples"]
    assert torch.allclose(one, two, atol=1e-5)
    small = block_mask(1)[:, ::2, ::2]  # 64x64 mask for a 128x128 image: resized
    assert torch.allclose(refine(cands, small, k=1)["samples"], one, atol=1e-5)


@pytest.mark.parametrize("kw,match", [
    (dict(mask=torch.zeros(3, 128, 128)), "mask has 3 masks for 2 candidates"),
    (dict(mask=torch.zeros(1, 128, 256)), "aspect ratios differ"),
    (dict(mask=torch.zeros(1, 100, 100)), "not a multiple of 8"),
    (dict(start=2, end=2), r"start_step \(2\) must be >= 0 and < end_step \(2\)"),
    (dict(start=3, end=2), r"start_step \(3\)"),
    (dict(end=5), r"end_step \(5\) is past the last step \(4\)"),
    (dict(k=0), "refinements must be >= 1"),
])
def test_refine_bad_inputs_are_named(kw, match):
    cands = fan_out(n=2)
    mask = kw.pop("mask", block_mask(2))
    with pytest.raises(ValueError, match=match):
        refine(cands, mask, **kw)


def test_refine_wrong_channel_latent():
    with pytest.raises(ValueError, match="candidates has 16 channels"):
        refine({"samples": torch.ones(1, 16, 16, 16)}, block_mask())


# --- harmonize -----------------------------------------------------------------------

def test_refine_then_harmonize_equals_one_masked_then_global_run():
    model, _, pos, neg = models()
    cands = fan_out(n=1)
    noisy = refine(cands, block_mask(), k=1, start=1, end=3)
    assert not torch.equal(noisy["samples"], cands["samples"])
    (done,) = run_node("LoTTSHarmonize", model, pos, neg, noisy, 0, STEPS, 7.0, "euler", "normal", 3, False).result
    assert done["samples"].shape == cands["samples"].shape and "noise_mask" not in done
    assert torch.isfinite(done["samples"]).all()
    # harmonization is global: it also changes the unmasked region
    lm = latent_mask(block_mask()).expand_as(done["samples"])
    assert (done["samples"] - cands["samples"])[lm == 0].abs().max() > 1e-4
    (again,) = run_node("LoTTSHarmonize", model, pos, neg, noisy, 0, STEPS, 7.0, "euler", "normal", 3, False).result
    assert torch.equal(done["samples"], again["samples"])


def test_harmonize_add_noise_matches_stock_advanced_sampler_and_honours_noise_mask():
    import nodes as comfy_nodes
    seeds = pack_module("lotts.seeds")
    model, _, pos, neg = models()
    cands = fan_out(n=1)
    (out,) = run_node("LoTTSHarmonize", model, pos, neg, cands, 5, STEPS, 7.0, "euler",
                      "normal", 2, True).result
    noise_seed = seeds.stage_seed(5, seeds.Stream.HARMONIZATION, 0)  # its own stream
    (ref,) = comfy_nodes.KSamplerAdvanced().sample(model, "enable", noise_seed, STEPS, 7.0, "euler",
                                                   "normal", pos, neg, cands, 2, STEPS, "disable")
    assert torch.allclose(out["samples"], ref["samples"], atol=1e-5)
    # an inpainting mask is honoured as KSampler honours it: all zeros changes nothing
    masked = dict(cands, noise_mask=torch.zeros(1, 16, 16))
    (kept,) = run_node("LoTTSHarmonize", model, pos, neg, masked, 5, STEPS, 7.0, "euler",
                       "normal", 2, True).result
    assert (kept["samples"] - cands["samples"]).abs().max() <= 1e-5
    with pytest.raises(ValueError, match=r"start_step \(4\) must be"):
        run_node("LoTTSHarmonize", model, pos, neg, cands, 0, STEPS, 7.0, "euler", "normal",
                                         STEPS, False)


# --- the user's MODEL is never touched ------------------------------------------------

def test_no_node_changes_the_model_or_leaks_patches():
    model, clip, pos, neg = models()
    before = model_state(model)
    ref_before = stock_ksampler(model, pos, neg, empty_latent(), 99)
    cands = fan_out(n=2)
    mask, _ = localize(cands)
    noisy = refine(cands, mask, k=1, end=3)
    run_node("LoTTSHarmonize", model, pos, neg, noisy, 0, STEPS, 7.0, "euler", "normal", 3, False)
    assert model_state(model) == before
    assert "patches_replace" not in model.model_options.get("transformer_options", {})
    assert torch.equal(stock_ksampler(model, pos, neg, empty_latent(), 99), ref_before)


# --- Cancel ---------------------------------------------------------------------------

class CancelAfter:
    """A progress hook like the server's: counts updates, raises once cancelled."""

    def __init__(self, updates, check=True):
        self.left, self.check, self.calls = updates, check, 0

    def __call__(self, value, total, preview, node_id=None):
        self.calls += 1
        self.left -= 1
        if self.left == 0:
            mm.interrupt_current_processing(True)
        if self.check:
            mm.throw_exception_if_processing_interrupted()


@pytest.fixture
def cancel_hook():
    with contextlib.ExitStack() as hooks:
        yield lambda hook: hooks.enter_context(progress_hook(hook))
    mm.interrupt_current_processing(False)


def test_cancel_stops_sampling_between_steps(cancel_hook):
    hook = CancelAfter(2)
    cancel_hook(hook)
    with pytest.raises(interrupt_exception()):
        fan_out(n=2, sampler="euler_ancestral")
    assert hook.calls == 2  # stopped at the step where Cancel was pressed


def test_cancel_checked_between_candidates_of_the_localizer(cancel_hook):
    if progress_bar_checks_cancel():
        pytest.skip("this host's ProgressBar raises on Cancel itself: the progress hook that "
                    "never raises, which isolates the node's own check, cannot be set up")
    cands = fan_out(n=3)
    hook = CancelAfter(1, check=False)  # a hook that never raises: the node must check
    cancel_hook(hook)
    with pytest.raises(interrupt_exception()):
        localize(cands, max_batch=1)  # one candidate per probe pass
    assert hook.calls == 1  # candidate 0 probed, candidate 1 never started
