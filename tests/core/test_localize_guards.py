"""Exact behaviour of the localizer's guards, found on a trained toy model (benchmarks/toy,
B6): structureless self-attention, flat maps, and the contrast's token set."""

import math

import pytest
import torch

from lotts.localize import (STRUCTURELESS_ENTROPY, flat_maps, localize, normalize, propagate,
                            propagate_guarded, self_attention_entropy, top_ratio_mask)
from lotts.prompts import contrast_weights, differing_tokens, phrase_positions


def local_self_attention(h=8, w=8, radius=1):
    """Rows spread uniformly over the (2r+1)^2 neighbourhood: structured attention."""
    idx = torch.arange(h * w)
    y, x = idx // w, idx % w
    near = ((y[:, None] - y[None]).abs() <= radius) & ((x[:, None] - x[None]).abs() <= radius)
    sa = near.float()
    return (sa / sa.sum(1, keepdim=True)).unsqueeze(0)


def near_uniform(n=64, seed=0, jitter=0.05):
    """Rows within a few % of uniform (entropy ~0.999 of max): a trained toy U-Net's."""
    g = torch.Generator().manual_seed(seed)
    sa = (1 + jitter * torch.randn(1, n, n, generator=g)).clamp_min(0)
    return sa / sa.sum(-1, keepdim=True)


def planted_diff():
    diff = torch.zeros(1, 8, 8)
    diff[0, 2:4, 5:8] = 1.0
    return diff


def test_entropy_is_one_for_uniform_rows_and_zero_for_the_identity():
    n = 16
    assert self_attention_entropy(torch.full((1, n, n), 1 / n)).item() == pytest.approx(1.0)
    assert self_attention_entropy(torch.eye(n).unsqueeze(0)).item() == pytest.approx(0.0, abs=1e-6)
    two = (torch.eye(n) + torch.roll(torch.eye(n), 1, 1)).unsqueeze(0) / 2
    assert self_attention_entropy(two).item() == pytest.approx(math.log(2) / math.log(n))
    assert self_attention_entropy(local_self_attention()).item() < 0.55
    assert self_attention_entropy(near_uniform()).item() > STRUCTURELESS_ENTROPY


def test_auto_keeps_the_raw_map_when_self_attention_is_near_uniform():
    sa, diff = near_uniform(), planted_diff()
    (always,), used_always, _ = propagate_guarded(sa, [diff], "always")
    (auto,), used, entropy = propagate_guarded(sa, [diff], "auto")
    assert torch.equal(auto, diff) and used.tolist() == [False]
    assert entropy.item() > STRUCTURELESS_ENTROPY and used_always.tolist() == [True]
    planted = top_ratio_mask(diff, 6 / 64)
    assert torch.equal(top_ratio_mask(auto, 6 / 64), planted)
    # the paper's propagation ranks by the jitter of SA instead
    assert not torch.equal(top_ratio_mask(always, 6 / 64), planted)


def test_auto_propagates_structured_self_attention_like_the_paper():
    sa = local_self_attention()
    diff = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(1))
    (auto,), used, _ = propagate_guarded(sa, [diff], "auto")
    assert torch.equal(auto, propagate(sa, diff)) and used.tolist() == [True]


def test_auto_decides_per_image_and_off_needs_no_self_attention():
    sa = torch.cat([local_self_attention(), torch.full((1, 64, 64), 1 / 64)])
    diff = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(2))
    (out,), used, _ = propagate_guarded(sa, [diff], "auto")
    assert torch.equal(out[0], propagate(sa, diff)[0]) and torch.equal(out[1], diff[1])
    assert used.tolist() == [True, False]
    (off,), used, entropy = propagate_guarded(None, [diff], "off")
    assert torch.equal(off, diff) and used.tolist() == [False, False] and entropy is None
    with pytest.raises(ValueError, match="propagation must be one of always, auto, off"):
        propagate_guarded(sa, [diff], "sometimes")


def test_localize_reports_the_decision_and_auto_finds_the_planted_region():
    diff = planted_diff()
    zeros = torch.zeros_like(diff)
    report = {}
    mask, _ = localize(zeros, zeros, diff, near_uniform(), 6 / 64, 0.0, propagation="auto",
                       report=report)
    assert torch.equal(mask, top_ratio_mask(diff, 6 / 64))
    assert report["propagated"] == [False] and report["self_attention_entropy"][0] > 0.99
    report = {}
    localize(zeros, zeros, diff, None, 6 / 64, 0.0, use_propagation=False, report=report)
    assert report == {"propagated": [False], "self_attention_entropy": None, "flat": [False]}


def test_rounding_noise_is_flat_and_normalises_to_zero():
    m = torch.full((2, 4, 4), 0.25)
    m[1] += torch.arange(16.0).view(4, 4) * 1e-9  # float rounding around 0.25
    m2 = torch.arange(16.0).view(1, 4, 4)
    assert flat_maps(m).tolist() == [True, True] and flat_maps(m2).tolist() == [False]
    assert torch.equal(normalize(m), torch.zeros(2, 4, 4))
    allowed = torch.zeros(1, 4, 4)
    allowed[0, 0, :2] = 1  # two allowed cells with equal values: flat where it matters
    assert flat_maps(m2, allowed).tolist() == [False]
    assert flat_maps(m2 * 0 + 3, allowed).tolist() == [True]


def test_a_flat_score_is_refused_naming_the_candidate():
    zeros = torch.zeros(3, 8, 8)
    good = planted_diff()
    neg = torch.cat([good, good, torch.zeros(1, 8, 8)])
    with pytest.raises(ValueError, match="candidate 7: the defect score P is flat"):
        localize(zeros, zeros, neg, None, 0.1, 0.5, use_propagation=False, first_index=5)
    # where no ranking is needed (everything is kept) a flat P is fine
    mask, _ = localize(zeros, zeros, neg, None, 1.0, 0.5, use_propagation=False)
    assert torch.equal(mask, torch.ones(3, 8, 8))



def test_a_search_gets_an_empty_mask_for_a_flat_score_and_keeps_the_others():
    """on_flat="empty" (what LoTTS Sampler uses): the flat image gets no mask -- so the
    search skips it and reports it -- and the others their masks, as with "refuse"."""
    zeros = torch.zeros(3, 8, 8)
    good = planted_diff()
    neg = torch.cat([good, good, torch.zeros(1, 8, 8)])
    report = {}
    mask, _ = localize(zeros, zeros, neg, None, 0.1, 0.5, use_propagation=False,
                       on_flat="empty", report=report)
    assert report["flat"] == [False, False, True]
    assert not mask[2].any() and mask[0].sum() == round(0.1 * 64)
    ref, _ = localize(zeros[:2], zeros[:2], neg[:2], None, 0.1, 0.5, use_propagation=False)
    assert torch.equal(mask[:2], ref)
    with pytest.raises(ValueError, match="on_flat must be"):
        localize(zeros, zeros, neg, None, 0.1, 0.5, use_propagation=False, on_flat="skip")

START, END = 49406, 49407


def test_differing_tokens_are_the_template_words_that_differ():
    # [start] a high - quality image of a red square [end] [pad]
    pos = [START, 1, 10, 11, 12, 13, 14, 1, 20, 21, END, END]
    neg = [START, 1, 30, 11, 12, 13, 14, 1, 20, 21, END, END]
    content = torch.tensor([0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], dtype=torch.float32)
    assert differing_tokens(pos, content, neg, content) == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    # templates of different lengths: "a very bad ..." vs "a good ..."
    neg2 = [START, 1, 40, 41, 13, 14, 1, 20, 21, END, END, END]
    content2 = [0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]
    pos2 = [START, 1, 42, 13, 14, 1, 20, 21, END, END, END, END]
    content_p2 = [0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    assert differing_tokens(neg2, content2, pos2, content_p2) == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert differing_tokens(pos2, content_p2, neg2, content2) == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    # identical content: nothing differs, the content mask itself
    assert differing_tokens(pos, content, pos, content) == content.tolist()


def test_phrase_positions_mark_whole_phrases_among_content_tokens():
    # <start> a red cat on a red mat <end> <pad>; "red cat" is two tokens
    ids = [0, 1, 2, 3, 4, 1, 2, 5, 9, 9]
    content = [0, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    assert phrase_positions(ids, content, [[2, 3]]) == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0]
    assert phrase_positions(ids, content, [[2]]) == [0, 0, 1, 0, 0, 0, 1, 0, 0, 0]
    assert phrase_positions(ids, content, [[5], [3]]) == [0, 0, 0, 1, 0, 0, 0, 1, 0, 0]
    # padding and start/end tokens never count, a phrase not in the prompt marks nothing
    assert phrase_positions(ids, content, [[9]]) == [0] * 10
    assert phrase_positions(ids, content, [[3, 2]]) == [0] * 10


def test_contrast_falls_back_on_both_sides_when_one_template_only_adds_words():
    # "a photo of a cat" vs "a blurry photo of a cat": the positive has no word of its own
    content = [0, 1, 1, 1, 1, 1, 0]
    pos, neg = [0, 1, 2, 3, 1, 4, 9], [0, 1, 7, 2, 3, 1, 4]
    neg_content = [0, 1, 1, 1, 1, 1, 1]
    w_pos, w_neg, differ = contrast_weights(pos, content, neg, neg_content)
    assert not differ and w_pos == [0, 1, 1, 1, 1, 1, 0] and w_neg == [0, 1, 1, 1, 1, 1, 1]
    # "high" vs "low": each side keeps its own word
    w_pos, w_neg, differ = contrast_weights([0, 5, 2, 4, 9], [0, 1, 1, 1, 0],
                                            [0, 6, 2, 4, 9], [0, 1, 1, 1, 0])
    assert differ and w_pos == [0, 1, 0, 0, 0] and w_neg == [0, 1, 0, 0, 0]
    # token keys of different encoders never match
    assert phrase_positions([("l", 5), ("t5xxl", 5)], [1, 1], [[("t5xxl", 5)]]) == [0, 1]
