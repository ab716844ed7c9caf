"""The per-family attention layouts (lotts/layouts.py) and the prompt's place in a template
(lotts/prompts.prompt_span): token accounting on hand-made shapes."""

import pytest
import torch

from lotts.attention import attention_maps, kernel_mask
from lotts.layouts import LAYOUTS, classify, layout_for, read_range, segment_ranges, token_grid
from lotts.prompts import prompt_span


def layout(name):
    return next(l for l in LAYOUTS if name in l.classes)


def test_every_layout_is_complete_facts():
    for l in LAYOUTS:
        if l.refused:
            continue
        assert l.attention in ("joint", "separate")
        names = {t.name for t in l.text}
        if l.attention == "joint":
            assert "img" in l.order and names <= set(l.order), l.family
            assert set(l.excluded) <= set(l.order) and not set(l.excluded) & names
            assert l.read in l.blocks
        assert l.how and l.patch >= 1 and l.latent_scale >= 1


def test_a_class_finds_its_layout_only_with_its_network():
    names = ["ChromaRadiance", "Chroma", "Flux", "BaseModel"]  # a Chroma Radiance's MRO
    assert layout_for(names, "ChromaRadiance").family.startswith("Chroma Radiance")
    assert layout_for(["WAN21", "BaseModel"], "WanModel") is None  # BaseModel is the U-Net's row
    assert layout_for(["SDXL", "BaseModel"], "UNetModel").attention == "separate"
    assert layout_for(["Something"], "X") is None


def test_token_accounting_of_a_joint_call():
    l = layout("Flux")
    lengths = {"txt": 256, "img": 64 * 64, "ref": 32 * 40, "reg": 0}
    total = 256 + 4096 + 1280
    assert classify(l, total, total, lengths) == "joint"
    assert classify(l, 4096, 4096, lengths) == "other"  # an image-only call
    assert classify(l, 4096, 256, lengths) == "unknown"
    assert segment_ranges(l.order, lengths) == {"txt": (0, 256), "img": (256, 4352),
                                                "ref": (4352, 5632)}
    aura = layout("AuraFlow")
    r = segment_ranges(aura.order, {"reg": 8, "txt": 5, "img": 12})
    assert r == {"reg": (0, 8), "txt": (8, 13), "img": (13, 25)}


def test_separate_calls_tell_self_from_cross_by_order_when_counts_agree():
    l = layout("BaseModel")
    lengths = {"txt": 12, "img": 12}
    assert classify(l, 12, 12, lengths, expect_cross=False) == "self"
    assert classify(l, 12, 12, lengths, expect_cross=True) == "cross"
    assert classify(l, 20, 20, {"txt": 77, "img": 20}) == "self"
    assert classify(l, 20, 154, {"txt": 77, "img": 20}) == "cross"
    assert classify(l, 80, 80, {"txt": 77, "img": 20}) == "other"  # another level


def test_the_second_half_of_the_read_blocks_counted_from_the_first_call():
    l = layout("Flux")
    assert read_range({"double_blocks": 19, "single_blocks": 38}, l) == (9, 19)
    aura = layout("AuraFlow")
    assert read_range({"double_layers": 4, "single_layers": 32}, aura) == (2, 4)


def test_token_grid_pads_up_to_the_patch():
    assert token_grid((15, 21), 2) == (8, 11)
    assert token_grid((100, 120), 16) == (7, 8)
    assert token_grid((9, 13), 1) == (9, 13)


@pytest.mark.parametrize("tokens,around,span", [
    ([49406, 320, 1125, 49407, 49407, 49407], [49406, 49407, 49407, 49407, 49407, 49407], (1, 3)),
    ([5, 6, 7, 1, 0, 0], [1, 0, 0, 0, 0, 0], (0, 4)),  # T5: no start; its end token has no word id
    ([9, 9, 2, 3, 4, 8, 9], [9, 9, 8, 9], (2, 5)),                         # a chat template
    ([9, 9, 8, 9], [9, 9, 8, 9], (4, 4)),                                  # an empty prompt
])
def test_prompt_span_is_between_the_templates_common_prefix_and_suffix(tokens, around, span):
    assert prompt_span(tokens, around) == span


def test_masks_are_applied_as_the_kernels_apply_them():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 2, 5, 4, generator=g), torch.randn(2, 2, 6, 4, generator=g)
    keep = torch.tensor([True, True, False, True, False, True])
    additive = torch.where(keep, 0.0, -1e4)
    logits = q @ k.transpose(-1, -2) * 0.5
    expect = logits.masked_fill(~keep, float("-inf")).softmax(-1)[..., :2].sum(-1).mean(1)
    w = torch.tensor([1.0, 1.0, 0, 0, 0, 0]) / 2
    for mask in (keep.expand(2, 5, 6), additive.expand(2, 5, 6), keep.view(1, 6).expand(5, 6)):
        ca = attention_maps(q, k, 2, key_weights=w, mask=kernel_mask(mask))
        assert torch.allclose(ca * 2, expect, atol=1e-5)
    per_key = kernel_mask(keep.view(1, 1, 6).expand(2, 1, 6), per_key_bool=True)  # basic's bool
    assert per_key.shape == (2, 1, 1, 6)
    ca = attention_maps(q, k, 2, key_weights=w, mask=per_key)
    assert torch.allclose(ca * 2, expect, atol=1e-5)
