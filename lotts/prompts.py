"""Quality prompts: the two conditionings whose attention LoTTS contrasts.

The paper builds them from the user prompt p as "A high-quality image of {p}" and
"A low-quality image of {p}" and reports the result is robust to the phrasing (it also
tried "A good/bad image of {p}"), so both templates are editable.
"""

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
