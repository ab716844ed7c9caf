"""Running reductions of attention: exact against a direct computation."""

import pytest
import torch

from lotts import AttentionAccumulator, cross_attention_map, head_mean_attention
from lotts.attention import grid_for_tokens, resize_map


def direct(q, k, heads):
    b, n, c = q.shape
    d = c // heads
    qh = q.view(b, n, heads, d).transpose(1, 2)
    kh = k.view(b, k.shape[1], heads, d).transpose(1, 2)
    return (qh @ kh.transpose(-1, -2) * d ** -0.5).softmax(-1).mean(1)


@pytest.mark.parametrize("chunk", [1 << 24, 7])  # 7 elements forces one-row chunks
def test_head_mean_attention_matches_direct(chunk):
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 12, 16, generator=g), torch.randn(2, 5, 16, generator=g)
    out = head_mean_attention(q, k, heads=4, max_chunk_elements=chunk)
    assert torch.allclose(out, direct(q, k, 4), atol=1e-6)
    assert torch.allclose(out.sum(-1), torch.ones(2, 12))


def test_head_mean_attention_accumulates_in_place():
    q, k = torch.randn(1, 4, 8), torch.randn(1, 4, 8)
    out = torch.zeros(1, 4, 4)
    head_mean_attention(q, k, 2, out=out)
    head_mean_attention(q, k, 2, out=out, weight=2.0)
    assert torch.allclose(out, 3 * direct(q, k, 2), atol=1e-6)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="heads=3 dividing its width"):
        head_mean_attention(torch.randn(1, 4, 10), torch.randn(1, 4, 10), 3)
    with pytest.raises(ValueError, match="must be"):
        head_mean_attention(torch.randn(1, 4, 8), torch.randn(2, 4, 8), 2)


def test_cross_attention_map_excludes_special_tokens():
    probs = torch.tensor([[[0.7, 0.1, 0.2, 0.0], [0.9, 0.05, 0.05, 0.0]]])  # token 0 = <start>
    w = torch.tensor([0.0, 1.0, 1.0, 0.0])
    ca = cross_attention_map(probs, w)
    assert torch.allclose(ca, torch.tensor([[0.15, 0.05]]))
    with pytest.raises(ValueError, match="no content tokens"):
        cross_attention_map(probs, torch.zeros(4))
    with pytest.raises(ValueError, match="do not match"):
        cross_attention_map(probs, torch.ones(3))


def test_grid_for_tokens_rounds_up_like_the_unet():
    assert grid_for_tokens(64 * 64, 64, 64) == (64, 64)
    assert grid_for_tokens(16 * 16, 64, 64) == (16, 16)
    assert grid_for_tokens(15 * 20, 60, 80) == (15, 20)
    assert grid_for_tokens(8 * 10, 60, 80) == (8, 10)  # 15 -> 8 (ceil)
    with pytest.raises(ValueError, match="match no"):
        grid_for_tokens(7, 16, 16)


def test_accumulator_means_over_layers_and_resizes_cross_maps():
    acc = AttentionAccumulator((2, 2))
    g = torch.Generator().manual_seed(3)
    q1, k1 = torch.randn(3, 4, 8, generator=g), torch.randn(3, 5, 8, generator=g)
    q2, k2 = torch.randn(3, 4, 8, generator=g), torch.randn(3, 5, 8, generator=g)
    w = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.0])
    acc.add_cross("neg", q1, k1, 2, w, (2, 2))
    acc.add_cross("neg", q2, k2, 2, w, (2, 2))
    expect = (cross_attention_map(direct(q1, k1, 2), w) + cross_attention_map(direct(q2, k2, 2), w)) / 2
    assert torch.allclose(acc.cross_map("neg"), expect.view(3, 2, 2), atol=1e-6)
    # a layer at a finer grid is resized onto the kept grid
    q3 = torch.randn(3, 16, 8, generator=g)
    acc.add_cross("pos", q3, k1, 2, w, (4, 4))
    assert acc.cross_map("pos").shape == (3, 2, 2)
    expect3 = resize_map(cross_attention_map(direct(q3, k1, 2), w).view(3, 4, 4), (2, 2))
    assert torch.allclose(acc.cross_map("pos"), expect3, atol=1e-6)
    # self-attention: mean of layers, rows are distributions
    acc.add_self(q1, q1, 2, (2, 2))
    acc.add_self(q2, q2, 2, (2, 2))
    sa = acc.self_matrix()
    assert torch.allclose(sa, (direct(q1, q1, 2) + direct(q2, q2, 2)) / 2, atol=1e-6)
    assert torch.allclose(sa.sum(-1), torch.ones(3, 4))
    assert acc.layers_seen == (2, 2)
    q5 = torch.randn(3, 15, 8, generator=g)
    with pytest.raises(ValueError, match="cannot join"):
        acc.add_self(q5, q5, 2, (3, 5))
    with pytest.raises(KeyError):
        acc.cross_map("orig")


def test_head_major_layout_matches_token_major():
    g = torch.Generator().manual_seed(5)
    q, k = torch.randn(2, 6, 12, generator=g), torch.randn(2, 9, 12, generator=g)
    q4 = q.view(2, 6, 3, 4).transpose(1, 2)  # (B, heads, N, dim), as DiT blocks pass it
    k4 = k.view(2, 9, 3, 4).transpose(1, 2)
    assert torch.allclose(head_mean_attention(q4, k4, 3), direct(q, k, 3), atol=1e-6)


@pytest.mark.parametrize("chunk", [1 << 24, 5])
def test_pooled_self_attention_equals_pooling_the_full_matrix(chunk):
    g = torch.Generator().manual_seed(6)
    h, w, f = 4, 6, 2
    q, k = torch.randn(1, h * w, 8, generator=g), torch.randn(1, h * w, 8, generator=g)
    full = direct(q, k, 2).view(h, w, h, w)
    # keys: sum over f x f groups; queries: mean over f x f groups
    keys = full.view(h, w, h // f, f, w // f, f).sum((3, 5))
    expect = keys.view(h // f, f, w // f, f, h // f, w // f).mean((1, 3)).reshape(1, 6, 6)
    got = head_mean_attention(q, k, 2, pool=((h, w), f), max_chunk_elements=chunk)
    assert torch.allclose(got, expect, atol=1e-6)
    assert torch.allclose(got.sum(-1), torch.ones(1, 6))
    acc = AttentionAccumulator((2, 3))
    acc.add_self(q, k, 2, (4, 6))
    assert torch.allclose(acc.self_matrix(), expect, atol=1e-6)


def test_resize_map_area_down_bilinear_up():
    m = torch.arange(16.0).view(1, 4, 4)
    assert torch.equal(resize_map(m, (2, 2)), torch.tensor([[[2.5, 4.5], [10.5, 12.5]]]))
    assert resize_map(m, (8, 8)).shape == (1, 8, 8)
