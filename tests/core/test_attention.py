"""Running reductions of attention: exact against a direct computation."""

import pytest
import torch

from lotts.attention import AttentionAccumulator, cross_attention_map, head_mean_attention
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


def _pool_full(full: torch.Tensor, h: int, w: int, f: int) -> torch.Tensor:
    """Brute force: a (h*w, h*w) attention matrix pooled by f (keys summed, queries
    averaged over the cells each group really holds), ceil-sized."""
    ph, pw = -(-h // f), -(-w // f)
    cell = [(i // f) * pw + (j // f) for i in range(h) for j in range(w)]
    out = torch.zeros(ph * pw, ph * pw)
    count = torch.zeros(ph * pw)
    for a in range(h * w):
        count[cell[a]] += 1
        for b in range(h * w):
            out[cell[a], cell[b]] += full[a, b]
    return out / count[:, None]


@pytest.mark.parametrize("hw", [(5, 7), (3, 4), (6, 6)])
@pytest.mark.parametrize("chunk", [1 << 24, 5])
def test_pooling_odd_grids_keeps_partial_groups(hw, chunk):
    h, w = hw
    g = torch.Generator().manual_seed(8)
    q, k = torch.randn(1, h * w, 8, generator=g), torch.randn(1, h * w, 8, generator=g)
    expect = _pool_full(direct(q, k, 2)[0], h, w, 2)
    got = head_mean_attention(q, k, 2, pool=((h, w), 2), max_chunk_elements=chunk)
    assert got.shape == (1, -(-h // 2) * -(-w // 2), -(-h // 2) * -(-w // 2))
    assert torch.allclose(got[0], expect, atol=1e-6)
    assert torch.allclose(got.sum(-1), torch.ones_like(got.sum(-1)), atol=1e-6)
    acc = AttentionAccumulator((-(-h // 2), -(-w // 2)))
    acc.add_self(q, k, 2, (h, w))
    assert torch.allclose(acc.self_matrix()[0], expect, atol=1e-6)


def test_pool_map_averages_the_cells_each_group_holds():
    from lotts.attention import pool_map
    m = torch.arange(15.0).view(1, 3, 5)
    got = pool_map(m, 2)
    expect = torch.tensor([[[(0 + 1 + 5 + 6) / 4, (2 + 3 + 7 + 8) / 4, (4 + 9) / 2],
                            [(10 + 11) / 2, (12 + 13) / 2, 14.0]]])
    assert torch.allclose(got, expect)


@pytest.mark.parametrize("chunk", [1 << 24, 11])
def test_joint_attention_maps_equal_brute_force_joint_softmax(chunk):
    """Image->text is sliced out of softmax over [text, image] keys (not a softmax over
    the text keys alone); image->image is renormalised over the image keys."""
    from lotts.attention import joint_attention_maps
    g = torch.Generator().manual_seed(9)
    b, heads, txt, (h, w), dim = 2, 3, 5, (4, 6), 8
    img = h * w
    q = torch.randn(b, heads, txt + img, dim, generator=g)
    k = torch.randn(b, heads, txt + img, dim, generator=g)
    wts = torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0])
    logits = (q[:, :, txt:] @ k.transpose(-1, -2)) * dim ** -0.5  # (b, heads, img, txt+img)
    joint = logits.softmax(-1)
    expect_ca = (joint[..., :txt] @ (wts / wts.sum())).mean(1)          # (b, img)
    text_only = (logits[..., :txt].softmax(-1) @ (wts / wts.sum())).mean(1)
    assert not torch.allclose(expect_ca, text_only, atol=1e-3)  # the two really differ
    expect_sa = logits[..., txt:].softmax(-1).mean(1)                   # (b, img, img)
    sa = torch.zeros(b, img, img)
    ca = joint_attention_maps(q[:, :, txt:], k, txt, heads, wts, self_out=sa,
                              max_chunk_elements=chunk)
    assert torch.allclose(ca, expect_ca, atol=1e-6)
    assert torch.allclose(sa, expect_sa, atol=1e-6)
    pooled = torch.zeros(b, 6, 6)
    joint_attention_maps(q[:, :, txt:], k, txt, heads, wts, self_out=pooled,
                         self_pool=((h, w), 2), max_chunk_elements=chunk)
    for i in range(b):
        assert torch.allclose(pooled[i], _pool_full(expect_sa[i], h, w, 2), atol=1e-6)
    acc = AttentionAccumulator((2, 3))
    acc.add_joint(1, q[:, :, txt:], k, txt, heads=heads, token_weights=wts, grid=(h, w),
                  with_self=True)
    from lotts.attention import pool_map
    assert torch.allclose(acc.cross_map(1), pool_map(expect_ca.view(b, h, w), 2), atol=1e-6)
    assert torch.allclose(acc.self_matrix(), pooled, atol=1e-6)


def test_repeated_text_keys_fold_to_the_unrepeated_map():
    """ComfyUI repeats a 77-token conditioning to 154 tokens when it batches it with a
    154-token one; the folded map equals the map of the conditioning alone."""
    g = torch.Generator().manual_seed(10)
    q, k = torch.randn(2, 6, 8, generator=g), torch.randn(2, 4, 8, generator=g)
    wts = torch.tensor([0.0, 1.0, 1.0, 0.0])
    alone = AttentionAccumulator((2, 3))
    alone.add_cross(0, q, k, 2, wts, (2, 3))
    repeated = AttentionAccumulator((2, 3))
    repeated.add_cross(0, q, k.repeat(1, 2, 1), 2, wts, (2, 3))
    assert torch.allclose(alone.cross_map(0), repeated.cross_map(0), atol=1e-6)
    with pytest.raises(ValueError, match="not a whole repetition"):
        repeated.add_cross(0, q, k[:, :3].repeat(1, 2, 1), 2, wts, (2, 3))
