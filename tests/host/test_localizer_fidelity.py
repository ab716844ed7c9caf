"""The localizer on real prompts and real conditionings (issue: method fidelity).

Prompts of every length, the user's conditioning options reaching the probe, DiT maps
from the joint softmax, and masks placed on the right latent cells at odd sizes.
"""

import pytest
import torch

from comfy_host import require_comfyui

require_comfyui()

import node_helpers  # noqa: E402

from tiny_models import encode, tiny_flux, tiny_flux_clip, tiny_sd3  # noqa: E402
from unet_support import empty_latent, models, run_node, pack_module  # noqa: E402

STEPS = 4
HQ, LQ = "A high-quality image of {p}", "A low-quality image of {p}"


def run_localizer(model, clip, prompt, cands, **kw):
    return run_node("LoTTSDefectLocalizer", model, clip, prompt, cands, 0.5, 0.5, 2, HQ, LQ,
                                                 0, steps=STEPS, **kw)


def candidates(kind, n=2, h=16, w=16, channels=4):
    model, clip, pos, neg = models(kind)
    return run_node("LoTTSSeedFanOut", model, pos, neg, empty_latent(h, w), 5, n, STEPS, 7.0,
                                           "euler", "normal").result[0]


# --- 1. every prompt length ------------------------------------------------------------

# 1-300 words, dense around the chunk boundaries (a word is one token here; the templates
# add five): 70-74 crashed before ComfyUI's repeat-padding was folded back.
WORDS = [1, 10, 40, 68, 70, 72, 74, 76, 80, 120, 143, 146, 150, 152, 200, 220, 222, 226, 300]


@pytest.mark.parametrize("kind", ["sd15", "sdxl"])
def test_every_prompt_length_localizes(kind):
    """Near each 75-token boundary the quality prompts need one chunk more than the prompt;
    ComfyUI then repeats the shorter conditioning when it batches them."""
    model, clip, _, _ = models(kind)
    cands = candidates(kind, n=1)
    for words in WORDS:
        prompt = " ".join(["cat"] * words)
        result = run_localizer(model, clip, prompt, cands).result
        assert result[0].shape == (1, 128, 128), words


@pytest.mark.parametrize("kind", ["sd15", "sdxl"])
@pytest.mark.parametrize("words", [4, 72, 146])
def test_batched_probe_equals_each_conditioning_alone(kind, words, monkeypatch):
    model, clip, _, _ = models(kind)
    cands = candidates(kind, n=2)
    prompt = " ".join(["a red cat"] * (words // 3) + ["dog"] * (words % 3))
    batched = run_localizer(model, clip, prompt, cands).result
    monkeypatch.setattr(pack_module("nodes.attention_capture").ProbeGuider, "GROUP", 1)
    alone = run_localizer(model, clip, prompt, cands).result
    assert torch.equal(batched[0], alone[0])
    assert torch.allclose(batched[1], alone[1], atol=2e-3)  # colourised after min-max scaling: float noise grows


# --- 2. the probe sees the user's conditioning -------------------------------------------

def recording(model):
    """A clone of ``model`` whose every model call records its conditioning kwargs."""
    seen = []
    m = model.clone()

    def wrapper(apply_model, args):
        seen.append({k: v for k, v in args["c"].items() if isinstance(v, torch.Tensor)})
        return apply_model(args["input"], args["timestep"], **args["c"])

    m.set_model_unet_function_wrapper(wrapper)
    return m, seen


@pytest.mark.parametrize("guidance", [1.0, 4.0])
def test_probe_receives_the_users_flux_guidance(guidance):
    model, clip = tiny_flux(), tiny_flux_clip()
    pos = node_helpers.conditioning_set_values(encode(clip, "a photo of a cat"),
                                               {"guidance": guidance})
    cands = {"samples": torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(0))}
    m, seen = recording(model)
    # mask_ratio 1: what is checked is the conditioning the probe gets, and a random tiny
    # FLUX may give a flat P, which a smaller ratio refuses
    run_node("LoTTSDefectLocalizer", m, clip, "a photo of a cat", cands, 1.0, 0.5, 2, HQ, LQ,
                                          0, steps=STEPS, scheduler="simple", positive=pos)
    assert seen and all(torch.allclose(c["guidance"], torch.tensor(guidance)) for c in seen)
    seen.clear()  # unconnected: today's behaviour, the model's default guidance
    run_node("LoTTSDefectLocalizer", m, clip, "a photo of a cat", cands, 1.0, 0.5, 2, HQ, LQ,
                                          0, steps=STEPS, scheduler="simple")
    assert seen and all(torch.allclose(c["guidance"], torch.tensor(3.5)) for c in seen)


def test_probe_receives_the_users_sdxl_size_conditioning():
    model, clip, pos, _ = models("sdxl")
    size = {"width": 1024, "height": 1024, "target_width": 1024, "target_height": 1024}
    sized = node_helpers.conditioning_set_values(pos, size)
    cands = candidates("sdxl", n=1)
    m, seen = recording(model)
    run_localizer(m, clip, "a photo of a cat", cands, positive=sized)
    expected = model.model.encode_adm(pooled_output=pos[0][1]["pooled_output"], **size)
    assert seen
    for c in seen:  # the size embeddings (after the pooled text) are the user's 1024s
        assert torch.allclose(c["y"][:, -6 * 256:], expected[:, -6 * 256:].expand(c["y"].shape[0], -1))
    seen.clear()
    run_localizer(m, clip, "a photo of a cat", cands)  # unconnected: the latent's own size
    default = model.model.encode_adm(pooled_output=pos[0][1]["pooled_output"], width=128, height=128)
    assert all(torch.allclose(c["y"][:, -6 * 256:], default[:, -6 * 256:].expand(c["y"].shape[0], -1))
               for c in seen)


def test_area_restricted_entries_are_kept_but_not_mapped():
    model, clip, pos, _ = models("sd15")
    cands = candidates("sd15", n=1)
    area = node_helpers.conditioning_set_values(pos, {"area": (8, 8, 0, 0), "strength": 1.0})
    mask, _ = run_localizer(model, clip, "a photo of a cat", cands, positive=pos + area).result
    assert mask.shape == (1, 128, 128)
    with pytest.raises(ValueError, match="positive has only area-restricted entries"):
        run_localizer(model, clip, "a photo of a cat", cands, positive=area)


def test_localizer_reports_what_it_captured():
    model, clip, _, _ = models("sd15")
    ui = run_localizer(model, clip, "a photo of a cat", candidates("sd15", n=1)).ui
    (info,) = ui["lotts_localizer"]
    assert info["attention"] == "cross" and info["latent_channels"] == 4
    assert info["blocks"] and all(b.split()[0] in ("input", "middle", "output") for b in info["blocks"])
    assert info["grid"] == [4, 4] and info["layers"][0] >= 1
    assert info["propagation"] == "always" and info["contrast_tokens"] == "all content tokens"
    assert info["propagated"] == [True] and 0 <= info["self_attention_entropy"][0] <= 1
    assert info["decisions"][0].startswith("propagated (self-attention row entropy")


def test_propagation_auto_decides_per_candidate_from_the_entropy():
    """auto = the paper's propagation where self-attention has structure, the raw maps
    where it is near uniform; the payload says which, and why."""
    localize = pack_module("lotts.localize")
    model, clip, _, _ = models("sd15")
    cands = candidates("sd15", n=2)
    runs = {mode: run_localizer(model, clip, "a photo of a cat", cands, propagation=mode)
            for mode in ("always", "auto", "off")}
    (info,) = runs["auto"].ui["lotts_localizer"]
    for i, (used, entropy) in enumerate(zip(info["propagated"], info["self_attention_entropy"])):
        assert used == (entropy <= localize.STRUCTURELESS_ENTROPY)
        same = runs["always" if used else "off"].result[0][i]
        assert torch.equal(runs["auto"].result[0][i], same)
        assert info["decisions"][i].startswith("propagated" if used else "propagation skipped")
    (off,) = runs["off"].ui["lotts_localizer"]
    assert off["propagated"] == [False, False] and off["decisions"][0].startswith("propagation off")


def test_contrast_on_the_tokens_where_the_templates_differ():
    model, clip, _, _ = models("sd15")
    cands = candidates("sd15", n=1)
    differ = run_localizer(model, clip, "a photo of a cat", cands,
                           contrast_tokens="where the templates differ")
    (info,) = differ.ui["lotts_localizer"]
    assert info["contrast_tokens"] == "where the templates differ"
    assert info["contrast_token_count"] == [1, 1]  # "high" vs "low"
    (default,) = run_localizer(model, clip, "a photo of a cat", cands).ui["lotts_localizer"]
    assert default["contrast_token_count"] == [11, 11]  # a high - quality image of a photo of a cat
    with pytest.raises(ValueError, match="contrast_tokens must be one of"):
        run_localizer(model, clip, "a photo of a cat", cands, contrast_tokens="some")


def test_prior_on_the_words_the_user_names():
    """prior_words: CA_orig (the prior) from those words only; the contrast is unchanged,
    so with prior_weight 0 the mask is the default's; a word not in the prompt is refused."""
    model, clip, _, _ = models("sd15")
    cands = candidates("sd15", n=1)
    named = run_localizer(model, clip, "a photo of a cat", cands, prior_words="cat")
    (info,) = named.ui["lotts_localizer"]
    assert info["prior_words"] == "cat" and info["prior_token_count"] == 1
    (default,) = run_localizer(model, clip, "a photo of a cat", cands).ui["lotts_localizer"]
    assert default["prior_words"] == "" and default["prior_token_count"] == 5
    assert not torch.equal(named.result[1], run_localizer(model, clip, "a photo of a cat",
                                                          cands).result[1])
    no_prior = [run_node("LoTTSDefectLocalizer", model, clip, "a photo of a cat", cands, 0.5,
                         0.0, 2, HQ, LQ, 0, steps=STEPS, **kw).result[0]
                for kw in ({}, {"prior_words": "photo, cat"})]
    assert torch.equal(*no_prior)
    with pytest.raises(ValueError, match="prior_words: none of 'dog' occurs in the prompt"):
        run_localizer(model, clip, "a photo of a cat", cands, prior_words="dog")


# --- 3. DiT maps from the joint softmax --------------------------------------------------
# Every family's maps, FLUX and SD3 included, against a brute-force softmax of the same q/k
# with the model's masks (even and odd sizes): tests/host/test_backbones.py.


# --- 6. masks on the right latent cells at odd sizes -------------------------------------

def _planted(recorder, boundary):
    """Fill ``recorder``'s accumulator as if the probe had seen a defect on the grid's
    columns < boundary: CA_neg is 1 there, everything else flat; SA the identity."""
    acc = recorder.acc
    gh, gw = acc.grid
    neg = torch.zeros(1, gh, gw)
    neg[..., :boundary] = 1.0
    acc._cross = {0: torch.zeros(1, gh, gw), 1: torch.zeros(1, gh, gw), 2: neg}
    acc._cross_n = {0: 1, 1: 1, 2: 1}
    acc._self = torch.eye(gh * gw)[None]
    acc._self_n = 1


@pytest.mark.parametrize("family,pixels", [("flux", (600, 904)), ("sd3", (600, 904)),
                                           ("sdxl", (832, 1216))])
def test_planted_boundary_lands_on_the_right_latent_column(family, pixels):
    if family == "flux":
        model = tiny_flux()
    elif family == "sd3":
        model = tiny_sd3()
    else:
        model = models("sdxl")[0]
    capture = pack_module("nodes.attention_capture")
    localizer = pack_module("nodes.localizer")
    channels = 4 if family == "sdxl" else 16
    latent_hw = (pixels[0] // 8, pixels[1] // 8)
    w = torch.ones(5)
    rec, _ = capture.make_recorder(model, {0: w, 1: w, 2: w}, (1, channels, *latent_hw))
    assert rec.factor == 4
    gh, gw = rec.acc.grid
    assert (gh, gw) == (-(-latent_hw[0] // 4), -(-latent_hw[1] // 4))
    boundary = 7
    _planted(rec, boundary)
    share = boundary / gw  # the mask keeps exactly the defect columns
    mask, _ = localizer.mask_and_map(rec, latent_hw, share, 0.0)
    assert mask.shape == (1, *latent_hw)
    cols = mask[0].amax(0)
    assert torch.equal(cols[:boundary * 4], torch.ones(boundary * 4))
    assert torch.equal(cols[boundary * 4:], torch.zeros(latent_hw[1] - boundary * 4))
