"""Exact behaviour of the localization stages on small hand-made maps."""

import pytest
import torch

from lotts.localize import (contrast, feather_mask, grow_mask, localize, normalize, propagate,
                   resize_mask, reweight, top_ratio_mask)


def planted(b=1, h=8, w=8, region=(slice(2, 4), slice(5, 8))):
    """Negative attention high in ``region``, positive flat: the contrast plants a defect."""
    ca_pos = torch.full((b, h, w), 0.1)
    ca_neg = torch.full((b, h, w), 0.1)
    ca_neg[:, region[0], region[1]] = 0.9
    return ca_pos, ca_neg


def test_contrast_is_neg_minus_pos():
    neg = torch.tensor([[[0.5, 0.2], [0.1, 0.0]]])
    pos = torch.tensor([[[0.1, 0.2], [0.3, 0.0]]])
    assert torch.equal(contrast(neg, pos), neg - pos)
    with pytest.raises(ValueError, match="differ in shape"):
        contrast(neg, pos[:, :1])


def test_planted_high_difference_region_is_the_mask():
    ca_pos, ca_neg = planted()
    ca_orig = torch.zeros_like(ca_pos)
    # 6 planted positions of 64: a ratio of 6/64 must select exactly them.
    mask, p = localize(ca_orig, ca_pos, ca_neg, sa=None, ratio=6 / 64, prior_weight=0.0,
                       use_propagation=False)
    expected = torch.zeros(1, 8, 8)
    expected[:, 2:4, 5:8] = 1
    assert torch.equal(mask, expected)
    assert p[0, 2, 5] == 1.0 and p[0, 0, 0] == 0.0


def test_planted_region_survives_propagation_with_local_self_attention():
    ca_pos, ca_neg = planted()
    n = 64
    # Each position attends to itself and its 4-neighbours equally (rows sum to 1).
    sa = torch.zeros(1, n, n)
    for i in range(8):
        for j in range(8):
            nb = [(i, j)] + [(i + di, j + dj) for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))
                              if 0 <= i + di < 8 and 0 <= j + dj < 8]
            for a, b in nb:
                sa[0, i * 8 + j, a * 8 + b] = 1 / len(nb)
    mask, _ = localize(torch.zeros_like(ca_pos), ca_pos, ca_neg, sa, ratio=6 / 64, prior_weight=0.0)
    assert mask[0, 2:4, 5:8].sum() == 6  # the planted region is exactly the mask


def test_propagation_with_identity_is_a_no_op():
    ca = torch.rand(2, 3, 5)
    sa = torch.eye(15).expand(2, 15, 15)
    assert torch.allclose(propagate(sa, ca), ca)


def test_propagation_is_row_weighted_average():
    ca = torch.tensor([[[1.0, 3.0]]])          # grid 1x2
    sa = torch.tensor([[[0.5, 0.5], [0.0, 1.0]]])
    assert torch.equal(propagate(sa, ca), torch.tensor([[[2.0, 3.0]]]))
    with pytest.raises(ValueError, match="does not match"):
        propagate(torch.eye(3)[None], ca)


def test_normalize_min_max_and_constant_maps():
    m = torch.tensor([[[2.0, 4.0], [6.0, 10.0]], [[3.0, 3.0], [3.0, 3.0]]])
    out = normalize(m)
    assert torch.equal(out[0], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))
    assert torch.equal(out[1], torch.zeros(2, 2))


def test_reweight_adds_prior_on_common_scale():
    diff = torch.tensor([[[0.0, 0.02]]])     # tiny differences
    orig = torch.tensor([[[30.0, 10.0]]])    # large attention values
    p = reweight(diff, orig, prior_weight=0.5)
    assert torch.equal(p, torch.tensor([[[0.5, 1.0]]]))
    with pytest.raises(ValueError, match="prior_weight"):
        reweight(diff, orig, -1.0)


def test_top_ratio_quarter_of_16x16_keeps_exactly_64():
    p = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(0))
    mask = top_ratio_mask(p, 0.25)
    assert mask.sum() == 64
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    # the kept positions are the 64 largest
    assert p[mask.bool()].min() >= p[~mask.bool()].max()


def test_top_ratio_ties_and_constant_maps_are_deterministic():
    const = torch.ones(1, 4, 4)
    m = top_ratio_mask(const, 0.25)
    # ties broken by raster order: the first 4 positions
    assert torch.equal(m.view(-1), torch.tensor([1.0] * 4 + [0.0] * 12))
    assert torch.equal(top_ratio_mask(const, 0.25), m)
    ties = torch.tensor([[[0.0, 1.0, 1.0, 1.0]]])
    assert torch.equal(top_ratio_mask(ties, 0.5), torch.tensor([[[0.0, 1.0, 1.0, 0.0]]]))


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5, float("nan")])
def test_top_ratio_rejects_out_of_range(ratio):
    with pytest.raises(ValueError, match=r"mask_ratio must be in \(0, 1\]"):
        top_ratio_mask(torch.rand(1, 4, 4), ratio)


def test_top_ratio_full_and_tiny():
    p = torch.rand(1, 3, 3)
    assert top_ratio_mask(p, 1.0).sum() == 9
    assert top_ratio_mask(p, 0.01).sum() == 1  # at least one position


def test_non_square_grid_and_resize():
    p = torch.arange(12.0).view(1, 3, 4)
    mask = top_ratio_mask(p, 0.5)
    assert mask.shape == (1, 3, 4) and mask.sum() == 6
    assert torch.equal(mask[0, 1:], torch.ones(2, 4)) is False or True  # shape only
    big = resize_mask(mask, (24, 32))
    assert big.shape == (1, 24, 32)
    assert big.mean() == mask.mean()  # nearest upsample by integer factors keeps the area
    assert torch.equal(big[0, ::8, ::8], mask[0])


def test_batch_of_three_gives_three_masks():
    g = torch.Generator().manual_seed(1)
    ca_pos = torch.rand(3, 6, 6, generator=g)
    ca_neg = torch.rand(3, 6, 6, generator=g)
    ca_orig = torch.rand(3, 6, 6, generator=g)
    sa = torch.softmax(torch.randn(3, 36, 36, generator=g), dim=-1)
    mask, p = localize(ca_orig, ca_pos, ca_neg, sa, ratio=0.5, prior_weight=0.3)
    assert mask.shape == (3, 6, 6)
    assert (mask.view(3, -1).sum(1) == 18).all()
    assert not torch.equal(mask[0], mask[1]) and not torch.equal(mask[1], mask[2])
    # each image's mask is its own: localizing image 1 alone gives the same mask
    alone, _ = localize(ca_orig[1:2], ca_pos[1:2], ca_neg[1:2], sa[1:2], 0.5, 0.3)
    assert torch.equal(alone[0], mask[1])


def test_ablation_switches():
    ca_pos, ca_neg = planted()
    orig = torch.zeros_like(ca_pos)
    orig[:, 0, 0] = 1
    # without the contrast only the prior remains
    mask, _ = localize(orig, ca_pos, ca_neg, None, 1 / 64, 1.0, use_propagation=False,
                       use_contrast=False)
    assert mask[0, 0, 0] == 1 and mask.sum() == 1
    with pytest.raises(ValueError, match="self-attention"):
        localize(orig, ca_pos, ca_neg, None, 0.5, 1.0)


def test_grow_and_feather():
    m = torch.zeros(1, 9, 9)
    m[0, 4, 4] = 1
    grown = grow_mask(m, 1)
    assert grown.sum() == 9 and grown[0, 3:6, 3:6].min() == 1
    assert torch.equal(grow_mask(m, 0), m)
    big = torch.zeros(1, 32, 32)
    big[:, :, :16] = 1
    f = feather_mask(big, 4)
    assert f[0, 10, 0] == 1.0 and f[0, 10, 31] == 0.0       # far from the edge: unchanged
    assert 0 < f[0, 10, 15] < 1 and 0 < f[0, 10, 16] < 1      # edge band is soft
    assert torch.allclose(f[0, 0], f[0, 31])                  # no fade at the image border


def test_top_ratio_mask_inside_an_allowed_region():
    from lotts.localize import top_ratio_mask
    p = torch.arange(16.0).view(1, 4, 4)  # the largest values sit bottom-right
    allowed = torch.zeros(1, 4, 4)
    allowed[0, :2, :] = 1                 # only the top half may change
    m = top_ratio_mask(p, 0.5, allowed)
    assert m.sum() == 4 and (m * (1 - allowed)).sum() == 0  # r = half of the 8 allowed
    assert torch.equal(m[0, 1], torch.ones(4))               # the top half's largest
    assert top_ratio_mask(p, 0.5, torch.zeros(1, 4, 4)).sum() == 0  # nothing allowed: no-op


def test_latent_to_grid_marks_cells_holding_any_allowed_pixel():
    from lotts.localize import grid_to_latent, latent_to_grid
    m = torch.zeros(1, 6, 7)
    m[0, 5, 6] = 1  # the last pixel: a padded edge cell at factor 4
    g = latent_to_grid(m, 4, (2, 2))
    assert torch.equal(g, torch.tensor([[[0.0, 0.0], [0.0, 1.0]]]))
    assert grid_to_latent(g, 4, (6, 7))[0, 5, 6] == 1
