import pytest
import torch

from lotts import (DEFAULT_NEGATIVE_TEMPLATE, DEFAULT_POSITIVE_TEMPLATE, best_of_n_nfe,
                   colorize, lotts_nfe, nfe_per_step, overlay, quality_prompts, refine_steps)


def test_quality_prompts_default_and_custom_templates():
    assert quality_prompts("a cat") == ("A high-quality image of a cat", "A low-quality image of a cat")
    assert DEFAULT_POSITIVE_TEMPLATE.endswith("{p}") and DEFAULT_NEGATIVE_TEMPLATE.endswith("{p}")
    assert quality_prompts(" a {cat} ", "A good image of {p}", "A bad image of {p}") == \
        ("A good image of a {cat}", "A bad image of a {cat}")
    assert quality_prompts("x", "masterpiece", "worst quality") == ("masterpiece", "worst quality")


@pytest.mark.parametrize("prompt", ["", "   ", None])
def test_empty_prompt_is_named(prompt):
    with pytest.raises(ValueError, match="prompt is empty"):
        quality_prompts(prompt)


def test_same_templates_rejected():
    with pytest.raises(ValueError, match="same text"):
        quality_prompts("a cat", "{p}", "{p}")
    with pytest.raises(ValueError, match="negative_template is empty"):
        quality_prompts("a cat", "{p} good", "")


def test_refine_steps_split_and_errors():
    s = refine_steps(20, 10, 17)
    assert (s.masked_steps, s.harmonize_steps) == (7, 3)
    assert refine_steps(20, 0).end_step == 20
    with pytest.raises(ValueError, match=r"start_step \(10\) must be"):
        refine_steps(20, 10, 10)
    with pytest.raises(ValueError, match=r"end_step \(21\) is past"):
        refine_steps(20, 5, 21)
    with pytest.raises(ValueError, match="start_step"):
        refine_steps(20, -1, 5)


def test_nfe_accounting():
    assert nfe_per_step(7.0) == 2 and nfe_per_step(1.0) == 1 and nfe_per_step(7.0, 2) == 4
    assert best_of_n_nfe(8, 20, 7.0) == 320
    n = lotts_nfe(candidates=4, steps=20, cfg=7.0, refinements=2, start_step=15)
    assert n == {"candidates": 160, "probes": 12, "refinement": 80, "harmonization": 0,
                 "total": 252}
    h = lotts_nfe(4, 20, 7.0, 2, 15, harmonize_steps=2)
    assert (h["refinement"], h["harmonization"], h["total"]) == (48, 32, 252)
    n1 = lotts_nfe(4, 20, 1.0, 2, 15)
    assert n1["candidates"] == 80 and n1["refinement"] == 40 and n1["probes"] == 12
    d2 = lotts_nfe(4, 20, 7.0, 2, 15, depth=2)
    assert d2["probes"] == 15 and d2["refinement"] == 80 + 20 and d2["total"] == 160 + 15 + 100
    assert lotts_nfe(4, 20, 7.0, 0, 15) == {"candidates": 160, "probes": 0, "refinement": 0,
                                            "harmonization": 0, "total": 160}
    with pytest.raises(ValueError, match="depth"):
        lotts_nfe(4, 20, 7.0, 2, 15, depth=0)
    with pytest.raises(ValueError, match="harmonize_steps"):
        lotts_nfe(4, 20, 7.0, 2, 15, harmonize_steps=5)


def test_colorize_and_overlay():
    maps = torch.tensor([[[0.0, 1.0], [0.5, 0.25]]])
    rgb = colorize(maps)
    assert rgb.shape == (1, 2, 2, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert rgb[0, 0, 0].sum() < 0.05 and rgb[0, 0, 1].sum() > 2.5   # dark low, bright high
    img = torch.full((1, 2, 2, 3), 0.5)
    mask = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    out = overlay(img, mask, 0.5)
    assert torch.allclose(out[0, 0, 0], torch.tensor([0.75, 0.25, 0.25]))
    assert torch.equal(out[0, 1, 1], img[0, 1, 1])
    assert torch.allclose(overlay(img, rgb, 1.0), rgb)
    with pytest.raises(ValueError, match="opacity"):
        overlay(img, mask, 2.0)
    with pytest.raises(ValueError, match="sizes differ"):
        overlay(img, torch.zeros(1, 3, 3), 0.5)
