import pytest
import torch

from lotts.preview import colorize, overlay
from lotts.prompts import DEFAULT_NEGATIVE_TEMPLATE, DEFAULT_POSITIVE_TEMPLATE, quality_prompts
from lotts.schedule import (Plan, best_of_n_nfe, harmonize_window, match_best_of_n, nfe_per_step,
                            probe_step_for, refine_steps)
from lotts.seeds import STREAM_STRIDE, Stream, base_seed_for, round_seeds, stage_seed, stage_seeds
from lotts.blocks import choose_unet_blocks, dit_capture_blocks


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
    n = Plan(candidates=4, steps=20, refinements=2, start_step=15).nfe(7.0)
    assert n == {"candidates": 160, "probes": 12, "refinement": 80, "harmonization": 0,
                 "total": 252}
    h = Plan(4, 20, 2, 15, harmonize_steps=2).nfe(7.0)
    assert (h["refinement"], h["harmonization"], h["total"]) == (48, 32, 252)
    n1 = Plan(4, 20, 2, 15).nfe(1.0)
    assert n1["candidates"] == 80 and n1["refinement"] == 40 and n1["probes"] == 12
    d2 = Plan(4, 20, 2, 15, depth=2).nfe(7.0)
    assert d2["probes"] == 15 and d2["refinement"] == 80 + 20 and d2["total"] == 160 + 15 + 100
    assert Plan(4, 20, 0, 15).nfe(7.0) == {"candidates": 160, "probes": 0, "refinement": 0,
                                           "harmonization": 0, "total": 160}
    # refinements = 0 is Best-of-N whatever the other settings say
    assert Plan(4, 20, 0, 19, harmonize_steps=5, depth=3).nfe(7.0)["total"] == 160


def test_plan_units_are_the_nfe_without_the_cfg_factor():
    plan = Plan(3, 10, 2, 4, harmonize_steps=2, depth=2)
    units, nfe = plan.units(), plan.nfe(7.0)
    assert units == {"candidates": 30, "probes": 12, "refinement": 4 * 2 * 4,
                     "harmonization": 4 * 2 * 2, "total": 30 + 12 + 32 + 16}
    assert all(nfe[s] == units[s] * (1 if s == "probes" else 2) for s in units if s != "total")
    assert plan.rounds == 4 and plan.scored == 3 + 8 and plan.end_step == 8


def test_plan_errors_name_the_samplers_inputs():
    with pytest.raises(ValueError, match="depth must be >= 1"):
        Plan(4, 20, 2, 15, depth=0)
    with pytest.raises(ValueError, match=r"start_step \(2\) \+ harmonize_steps \(2\) must be < "
                                         r"steps \(4\).*at most 1 here"):
        Plan(1, 4, 1, 2, harmonize_steps=2)
    with pytest.raises(ValueError, match=r"start_step \(4\) must be >= 0 and < steps \(4\)"):
        Plan(1, 4, 1, 4)
    with pytest.raises(ValueError, match="candidates must be >= 1"):
        Plan(0, 4)
    with pytest.raises(ValueError, match=r"start_step \(5\) must be >= 0 and < steps \(5\)"):
        harmonize_window(5, 5)
    assert harmonize_window(5, 2) == 3
    assert probe_step_for(20) == 15 and probe_step_for(1) == 0


def test_best_of_n_budget_is_bounded():
    assert match_best_of_n(252, 20, 7.0, 1024) == 6
    assert match_best_of_n(1, 20, 7.0, 1024) == 1
    with pytest.raises(ValueError, match=r"match_budget: 10000000000000 NFE is 250000000000 "
                                         r"samples of 40 NFE .* maximum of 1024"):
        match_best_of_n(10_000_000_000_000, 20, 7.0, 1024)
    with pytest.raises(ValueError, match="1025 samples"):
        match_best_of_n(1025 * 40, 20, 7.0, 1024)


def test_seed_streams_never_meet_and_wrap_at_two_to_the_64():
    top = 2 ** 64 - 1
    assert stage_seeds(10, Stream.CANDIDATES, 3) == [10, 11, 12]
    assert stage_seeds(top, Stream.CANDIDATES, 3) == [top, 0, 1]
    assert stage_seed(top, Stream.REFINEMENT, 5) == (top + 2 * STREAM_STRIDE + 5) % 2 ** 64
    # apart in the low 32 bits, the only bits PyTorch's CPU generator keeps
    for base in (7, 2 ** 32 - 1, 2 ** 32, 2 ** 63, top):
        streams = [{x % 2 ** 32 for x in stage_seeds(base, s, 1000)} for s in Stream]
        assert all(len(a) == 1000 for a in streams)
        assert all(not (a & b) for i, a in enumerate(streams) for b in streams[i + 1:])
    with pytest.raises(ValueError, match="outside a seed stream"):
        stage_seed(0, Stream.PROBE, STREAM_STRIDE)
    for s in Stream:
        for i in (0, 3):
            assert stage_seed(base_seed_for(123456, s, i), s, i) == 123456
    probe, refine, harm = round_seeds(0, 2, 3)
    assert probe == stage_seed(0, Stream.PROBE, 2)
    assert refine == stage_seeds(0, Stream.REFINEMENT, 3, 6)
    assert harm == stage_seeds(0, Stream.HARMONIZATION, 3, 6)


def test_block_policy():
    blocks = [("input", 1, 1), ("input", 4, 2), ("input", 7, 4), ("input", 8, 4),
              ("middle", 0, 8), ("output", 3, 4), ("output", 9, 1)]
    assert choose_unet_blocks(blocks) == ([("input", 7), ("input", 8), ("output", 3)], 4)
    assert choose_unet_blocks([("input", 1, 1), ("input", 4, 2)]) == ([("input", 4)], 2)
    with pytest.raises(ValueError, match="no attention"):
        choose_unet_blocks([("middle", 0, 8)])
    assert dit_capture_blocks(19) == list(range(9, 19)) and dit_capture_blocks(1) == [0]


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
