"""Quality prompts: the two conditionings whose attention LoTTS contrasts.

The paper builds them from the user prompt p as "A high-quality image of {p}" and
"A low-quality image of {p}" and reports the result is robust to the phrasing (it also
tried "A good/bad image of {p}"), so both templates are editable.
"""

import difflib

DEFAULT_POSITIVE_TEMPLATE = "A high-quality image of {p}"
DEFAULT_NEGATIVE_TEMPLATE = "A low-quality image of {p}"


def fill_template(template: str, prompt: str) -> str:
    """Put ``prompt`` where ``{p}`` stands in ``template``.

    Plain replacement, not ``str.format``: prompts and templates may hold other braces
    (embeddings syntax, JSON-ish text) that ``format`` would choke on. A template without
    ``{p}`` is used as it is (a fixed quality phrase is a legitimate choice).
    """
    return template.replace("{p}", prompt)


def check_prompt(prompt, why: str) -> str:
    """The prompt text, stripped; refused when empty (``why`` says who needs it)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"prompt is empty: {why}")
    return prompt.strip()


def quality_prompts(prompt: str,
                    positive_template: str = DEFAULT_POSITIVE_TEMPLATE,
                    negative_template: str = DEFAULT_NEGATIVE_TEMPLATE) -> tuple[str, str]:
    """Return ``(positive, negative)`` quality prompts for ``prompt``."""
    prompt = check_prompt(prompt, "LoTTS contrasts 'high-quality' and 'low-quality' versions "
                                  "of the prompt the candidates were made from; pass that prompt.")
    for name, template in (("positive_template", positive_template),
                           ("negative_template", negative_template)):
        if not isinstance(template, str) or not template.strip():
            raise ValueError(f"{name} is empty: give a phrase such as "
                             f"{DEFAULT_POSITIVE_TEMPLATE if name.startswith('pos') else DEFAULT_NEGATIVE_TEMPLATE!r}.")
    positive = fill_template(positive_template, prompt)
    negative = fill_template(negative_template, prompt)
    if positive == negative:
        raise ValueError("positive_template and negative_template give the same text: the "
                         "localizer needs two different quality phrasings to contrast.")
    return positive, negative


CONTRAST_TOKENS = ("all content tokens", "where the templates differ")


def _as_floats(content) -> list[float]:
    return [float(w) for w in (content.tolist() if hasattr(content, "tolist") else content)]


def _own_tokens(ids_a: list, content_a, ids_b: list, content_b) -> list[float]:
    """1.0 on the content tokens of prompt a that an LCS diff against b leaves unmatched."""
    content_a, content_b = _as_floats(content_a), _as_floats(content_b)
    idx_a = [i for i, w in enumerate(content_a) if w > 0]
    seq_a = [ids_a[i] for i in idx_a]
    seq_b = [t for t, w in zip(ids_b, content_b) if w > 0]
    matcher = difflib.SequenceMatcher(a=seq_a, b=seq_b, autojunk=False)
    shared = {j for block in matcher.get_matching_blocks() for j in range(block.a, block.a + block.size)}
    out = [0.0] * len(content_a)
    for j, i in enumerate(idx_a):
        if j not in shared:
            out[i] = 1.0
    return out


def differing_tokens(ids_a: list, content_a, ids_b: list, content_b):
    """1.0 on the content tokens of prompt a that prompt b does not share, else 0.0.

    ``ids_*`` are the token ids the model sees, ``content_*`` the content-token masks
    (0/1 per token, 0 on start/end/padding; a sequence or a 1-D tensor). Tokens are
    aligned by a longest-common-subsequence diff of the content ids, so templates may
    differ in length ("A good image of {p}" vs "A very bad image of {p}"): for the default
    templates only "high" (resp. "low") remains -- the contrast then reads the one word
    that carries the quality judgement instead of averaging it with the prompt's words,
    which both conditionings share. Returns a list of floats, one per token; the content
    mask itself if the prompts differ nowhere in their content.
    """
    out = _own_tokens(ids_a, content_a, ids_b, content_b)
    return out if any(out) else [1.0 if w > 0 else 0.0 for w in _as_floats(content_a)]


def contrast_weights(ids_pos: list, content_pos, ids_neg: list, content_neg):
    """The two quality prompts' token weights for ``contrast_tokens`` "where the templates
    differ": ``(w_pos, w_neg, differ)``. Where one template only adds words to the other
    ("A photo of {p}" vs "A blurry photo of {p}") one side has no word of its own, and its
    whole prompt against the other's one word would not be a contrast: both sides then
    fall back to all content tokens and ``differ`` is False."""
    a = _own_tokens(ids_pos, content_pos, ids_neg, content_neg)
    b = _own_tokens(ids_neg, content_neg, ids_pos, content_pos)
    if any(a) and any(b):
        return a, b, True
    mask = lambda c: [1.0 if w > 0 else 0.0 for w in _as_floats(c)]  # noqa: E731
    return mask(content_pos), mask(content_neg), False


def phrase_positions(ids: list, content, phrases: list[list]) -> list[float]:
    """1.0 on the content tokens of a prompt that belong to one of ``phrases``, else 0.0.

    ``ids``: the prompt's token keys as the model sees them, ``content``: its content-token
    mask (as for :func:`differing_tokens`), ``phrases``: token-key sequences (a word may
    be several tokens: every contiguous occurrence of the whole sequence among the content
    tokens is marked). Returns all zeros when no phrase occurs -- the caller says so.
    """
    content = [float(w) for w in (content.tolist() if hasattr(content, "tolist") else content)]
    idx = [i for i, w in enumerate(content) if w > 0]
    seq = [ids[i] for i in idx]
    out = [0.0] * len(content)
    for phrase in phrases:
        n = len(phrase)
        for j in range(len(seq) - n + 1 if n else 0):
            if seq[j:j + n] == list(phrase):
                for i in idx[j:j + n]:
                    out[i] = 1.0
    return out



def prompt_span(tokens: list, around: list) -> tuple[int, int]:
    """Where a prompt's own tokens are among ``tokens``, what a tokenizer made of the prompt
    inside its template, given ``around``, what it made of the template around an empty
    prompt: ``(start, end)`` between their longest common prefix and suffix.

    Text encoders wrap the prompt: CLIP in start / end / padding tokens, LLM encoders
    (Qwen-Image, OmniGen2, HunyuanImage) in a chat template with a system prompt. What the
    template adds is the same whatever the prompt, so it is the common prefix and suffix;
    the prompt is what lies between (the caller still drops tokens that are not words, such
    as a CLIP chunk's inner start and end tokens). The suffix is never allowed to overlap
    the prefix.
    """
    n = min(len(tokens), len(around))
    start = 0
    while start < n and tokens[start] == around[start]:
        start += 1
    tail = 0
    while tail < n - start and tokens[-1 - tail] == around[-1 - tail]:
        tail += 1
    return start, len(tokens) - tail
