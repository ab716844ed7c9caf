"""Which tokens of a conditioning are the prompt's own words, for every text encoder.

The localizer averages attention over a prompt's *content* tokens: not start, end or
padding tokens (they soak up attention and carry no place), not an LLM chat template's
system prompt. Each backbone's attention sees one or more runs of text tokens (its
layout's text segments, lotts/layouts.py: CLIP tokens, T5 tokens, an LLM's tokens with the
head of its template cut off by the encoder, ...); for each, this finds the token sequence
the conditioning was made from and marks the prompt's words in it:

* the prompt's place in the template: what the tokenizer makes of the template around an
  empty prompt is the same prefix and suffix (lotts.prompts.prompt_span);
* inside it, tokens with a word id (ComfyUI's tokenizers give start, end and padding word
  id 0);
* the sequence: the tokenizer's whose length is the conditioning's, or -- for encoders that
  cut the template's head (Qwen-Image, HunyuanImage 2.1) -- its last tokens.

Token keys are ``(tokenizer key, token)``: ids of different vocabularies never compare
equal, so "where the templates differ" and ``prior_words`` compare tokens per encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..lotts.layouts import Layout, TextSegment
from ..lotts.prompts import prompt_span

PLAIN_TEXT = (TextSegment("txt"),)  # a single run of text tokens, chosen by length


@dataclass
class PromptTokens:
    """A prompt encoded as the model sees it: its CONDITIONING and, per text segment of
    the layout, ``(content weights, token keys)`` (1.0 on the prompt's words)."""
    cond: list
    segments: dict[str, tuple[torch.Tensor, list]]

    def flat(self) -> tuple[list, torch.Tensor]:
        """Token keys and weights of every segment, one after the other."""
        ids = [k for _, keys in self.segments.values() for k in keys]
        w = torch.cat([w.float() for w, _ in self.segments.values()]) if self.segments else torch.zeros(0)
        return ids, w

    def split(self, flat_weights) -> dict[str, torch.Tensor]:
        """Flat weights (as :meth:`flat` orders them) back into ``{segment: weights}``."""
        flat_weights = torch.as_tensor(flat_weights, dtype=torch.float32)
        out, at = {}, 0
        for name, (w, _) in self.segments.items():
            out[name] = flat_weights[at:at + w.shape[0]]
            at += w.shape[0]
        return out


def token_key(token):
    """A comparable key for a token: its id, or for an embedding (a tensor in the token's
    place) its shape and sum, so the same embedding in two prompts compares equal."""
    if isinstance(token, torch.Tensor):
        return ("embedding", tuple(token.shape), round(float(token.float().sum()), 4))
    if isinstance(token, dict):  # an image in an LLM prompt (Qwen-Image-Edit)
        return ("image", str(token.get("type")))
    return int(token)


def content_marks(clip, text: str) -> dict[str, list]:
    """``{tokenizer key: [(token key, 1.0 | 0.0), ...]}``: every token ``clip``'s tokenizers
    make of ``text``, 1.0 on the prompt's own words (see the module doc)."""
    full = _tokenize_with_word_ids(clip, text)
    empty = _tokenize_with_word_ids(clip, "")
    out = {}
    for key, chunks in full.items():
        seq, around = _keyed(key, chunks), _keyed(key, empty.get(key, []))
        # the padding after a template's tail differs in length between the two (FLUX.2
        # Klein pads to 512 after it), so the template is compared without it
        a, b = prompt_span([k for k, _ in _unpadded(seq)], [k for k, _ in _unpadded(around)])
        out[key] = [(k, 1.0 if a <= i < b and w > 0 else 0.0) for i, (k, w) in enumerate(seq)]
    return out


def _keyed(key: str, chunks: list) -> list:
    """``[((key, token key), word id), ...]`` over a tokenizer's chunks; a tokenizer that
    drops word ids (Anima's Qwen3 side) gives 0 everywhere, so it marks nothing."""
    return [((key, token_key(t[0])), t[2] if len(t) > 2 else 0) for chunk in chunks
            for t in chunk]


def _tokenize_with_word_ids(clip, text: str) -> dict:
    """``clip.tokenize(text, return_word_ids=True)``; where the family's tokenizer fails
    with word ids (Anima's, ComfyUI 0.10: it unpacks its Qwen3 tokens as pairs), each of
    its per-encoder tokenizers (its attributes named as the keys they make) asked alone."""
    try:
        return clip.tokenize(text, return_word_ids=True)
    except ValueError:
        parts = {k: t for k, t in vars(clip.tokenizer).items()
                 if hasattr(t, "tokenize_with_weights") and hasattr(t, "embedding_key")}
        if not parts:
            raise
        return {k: t.tokenize_with_weights(text, True) for k, t in parts.items()}


def _unpadded(seq: list) -> list:
    """``seq`` ((token key, word id) pairs) without its trailing padding: the run of one
    repeated token without a word id at its end."""
    n = len(seq)
    while n > 0 and seq[n - 1][1] == 0 and seq[n - 1][0] == seq[-1][0]:
        n -= 1
    return seq[:n]


def sequences_in_model_order(clip, tokens: dict) -> list[list]:
    """The token sequences the conditioning may be, most likely first (the first of the
    right length is taken). Which encoders are loaded decides it where lengths alone
    could not: FLUX's conditioning is its T5 tokens; SD3's is its CLIP tokens followed by
    its T5 tokens, or either alone when the other encoder is not loaded."""
    model = getattr(clip, "cond_stage_model", None)
    t5 = "t5xxl" in tokens and getattr(model, "t5xxl", None) is not None
    clips = [k for k in ("l", "g") if k in tokens and getattr(model, f"clip_{k}", None) is not None]
    order = []
    if t5 and clips and hasattr(model, "clip_g"):  # SD3 with CLIP and T5
        order.append(tokens[clips[0]] + tokens["t5xxl"])
    if t5:
        order.append(tokens["t5xxl"])
    order += [tokens[k] for k in clips] + [seq for k, seq in tokens.items() if k != "t5xxl"]
    clip_keys = [k for k in ("l", "g") if k in tokens]
    if clip_keys and "t5xxl" in tokens:  # an encoder not introspectable: as before
        order += [tokens["t5xxl"], tokens[clip_keys[0]] + tokens["t5xxl"]]
    return order


def _segment_length(cond, seg: TextSegment) -> int:
    """How many tokens of segment ``seg`` the conditioning holds (0: absent)."""
    emb, options = cond[0]
    if seg.option is None:
        return int(emb.shape[1])
    value = options.get(seg.option)
    dim = seg.dim if seg.option_dim is None else seg.option_dim
    return 0 if value is None else int(value.shape[dim])


def encode_prompt(clip, text: str, layout: Layout | None = None) -> PromptTokens:
    """CONDITIONING for ``text`` (as CLIPTextEncode makes it) and, per text segment of
    ``layout`` (default: one segment chosen by length), its content weights and token
    keys, aligned with what the model's attention sees."""
    cond = clip.encode_from_tokens_scheduled(clip.tokenize(text))
    marks = content_marks(clip, text)
    segments = {}
    for seg in (layout.text if layout is not None else PLAIN_TEXT):
        length = _segment_length(cond, seg)
        if length == 0:
            segments[seg.name] = (torch.zeros(0), [])
            continue
        found = [marks[k] for k in seg.tokens if k in marks] if seg.tokens else \
            sequences_in_model_order(clip, marks)
        seq = next((s for s in found if len(s) == length), None)
        if seq is None and seg.cut_head:  # the encoder dropped the template's head
            seq = next((s[-length:] for s in found if len(s) > length), None)
        if seq is None:
            raise ValueError(f"cannot align the tokens of {text!r} with its conditioning "
                             f"({length} {seg.name} tokens; the tokenizers made "
                             f"{ {k: len(v) for k, v in marks.items()} }): unsupported text "
                             "encoder for the localizer.")
        weights = torch.tensor([m if seg.content else 0.0 for _, m in seq])
        segments[seg.name] = (weights, [k for k, _ in seq])
    return PromptTokens(cond, segments)


def phrase_tokens(clip, words: str) -> list[list]:
    """The token-key sequences of the comma-separated phrases of ``words``, one per phrase,
    text encoder, letter case and leading space (SDXL's two CLIPs, SD3's CLIPs and T5
    tokenize apart; CLIP lower-cases, T5 does not, so "cat" finds "Cat" there too; an LLM's
    tokenizer spells " cat" inside a sentence apart from "cat" at its start); the prompt's
    words only, without any template (:func:`content_marks`); an empty list for an empty
    string."""
    seqs = []
    for phrase in (w.strip() for w in words.split(",")):
        forms = dict.fromkeys((phrase, phrase.lower(), phrase.capitalize(), phrase.upper()))
        for form in [f for f in forms if f] + [" " + f for f in forms if f]:
            for key, marks in content_marks(clip, form).items():
                seq = [k for k, m in marks if m > 0]
                if seq and seq not in seqs:
                    seqs.append(seq)
    return seqs
