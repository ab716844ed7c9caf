"""LoTTSDefectLocalizer: where is each candidate weak? (the paper's defect localization)

One probe pass per candidate: the candidate is re-noised to ``probe_step`` of the
schedule and the model is evaluated once under three conditionings -- the user's prompt,
"A high-quality image of {p}" and "A low-quality image of {p}" -- batched together. The
attention of the chosen layers is reduced on the fly (nodes/attention_capture.py) and the
core turns it into a map P and a top-r mask (lotts/localize.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

import comfy.model_management
import comfy.samplers
from comfy_api.latest import io

from ..lotts.attention import resize_map
from ..lotts.localize import (PROPAGATION_MODES, STRUCTURELESS_ENTROPY, check_mask_ratio,
                              check_prior_weight, check_propagation, feather_mask,
                              grid_to_latent, grow_mask, latent_to_grid, localize, resize_mask)
from ..lotts.preview import colorize
from ..lotts.prompts import CONTRAST_TOKENS, contrast_weights, phrase_positions, quality_prompts
from ..lotts.schedule import PROBE_CONDITIONINGS
from ..lotts.seeds import Stream, stage_seeds
from . import inputs, search_aliases
from .attention_capture import ProbeGuider, make_recorder, model_layout, probe
from .prompt_tokens import encode_prompt, phrase_tokens
from .checks import check_conditioning, check_latent, pixel_size, queue_time_check, user_mask
from .sampling import Progress, batch_limit, seeded_noise
from .ui_previews import latent_to_rgb, localizer_viewer


def encode(clip, text: str):
    """CONDITIONING for ``text`` (as CLIPTextEncode makes it) and its content-token mask,
    for a model whose attention sees one run of text tokens (nodes/prompt_tokens.py)."""
    cond, content, _ = encode_tokens(clip, text)
    return cond, content


def encode_tokens(clip, text: str):
    """CONDITIONING for ``text``, its content-token mask and the token keys, aligned --
    one run of text tokens (nodes/prompt_tokens.encode_prompt does every layout)."""
    encoded = encode_prompt(clip, text)
    ids, w = encoded.flat()
    return encoded.cond, w, ids


def prior_weights(settings, ids: list, content: torch.Tensor) -> torch.Tensor:
    """The prompt tokens CA_orig (the prior, ③) averages: all content tokens, or only the
    ``prior_words`` where they are given -- refused when none of them is in the prompt."""
    if not settings.prior_words.strip():
        return content
    chosen = phrase_positions(ids, content, phrase_tokens(settings.clip, settings.prior_words))
    if not any(chosen):
        raise ValueError(f"prior_words: none of {settings.prior_words!r} occurs in the prompt "
                         f"{settings.prompt!r}. Give words of the prompt (comma-separated, "
                         "e.g. its subject), or leave prior_words empty for all its words.")
    return torch.tensor(chosen)


def with_text_of(positive, encoded):
    """The user's ``positive`` conditioning with its text replaced by ``encoded``'s.

    Every option of every entry stays -- FLUX guidance, SDXL size and crop, ControlNet /
    T2I-Adapter / GLIGEN, hooks, area, strength, masks -- so the probe sees the model as
    the user's sampling did; only the text embedding and what the text encoder derived
    from the text (the pooled output, an attention mask) are the new text's.
    """
    text_emb, text_opts = encoded[0]
    return [[text_emb, {**opts, **text_opts}] for _, opts in positive]


@dataclass(frozen=True)
class ProbeSettings:
    """What the localizer needs besides the candidates, validated once.

    ``positive``: the user's positive conditioning (its options reach the probe), or None
    to encode the three prompts from text alone.
    """
    model: object
    clip: object
    prompt: str
    steps: int = 20
    scheduler: str = "normal"
    mask_ratio: float = 0.5
    prior_weight: float = 0.5
    probe_step: int = 15
    positive_template: str = inputs.DEFAULT_POSITIVE_TEMPLATE
    negative_template: str = inputs.DEFAULT_NEGATIVE_TEMPLATE
    grow: int = 0
    feather: int = 0
    positive: list | None = None
    max_batch: int = 0
    propagation: str = "always"
    contrast_tokens: str = CONTRAST_TOKENS[0]
    prior_words: str = ""
    # "refuse" (the Defect Localizer: the user must act) or "empty" (a search: a flat P
    # means nothing to re-sample for that sample, reported, the rest of the run kept)
    on_flat: str = "refuse"

    def __post_init__(self):
        check_mask_ratio(self.mask_ratio)
        check_propagation(self.propagation)
        if self.contrast_tokens not in CONTRAST_TOKENS:
            raise ValueError(f"contrast_tokens must be one of {CONTRAST_TOKENS}; got "
                             f"{self.contrast_tokens!r}")
        check_prior_weight(self.prior_weight)
        if self.clip is None:
            raise ValueError("clip is missing: connect the checkpoint's CLIP output.")
        self.texts()  # the prompt and templates are usable
        check_probe_step(self.probe_step, self.steps)
        if self.positive is not None:
            check_conditioning(self.model, self.positive, "positive")

    def texts(self) -> tuple[str, str, str]:
        """The prompt and its two quality versions, in conditioning order."""
        pos, neg = quality_prompts(self.prompt, self.positive_template, self.negative_template)
        return self.prompt.strip(), pos, neg

    def with_model(self, model) -> "ProbeSettings":
        return replace(self, model=model)


def check_probe_step(probe_step: int, steps: int) -> None:
    if not 0 <= probe_step < steps:
        raise ValueError(f"probe_step ({probe_step}) must be in [0, steps) = [0, {steps}): it "
                         "indexes the schedule of 'steps' steps.")


class LoTTSDefectLocalizer(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LoTTSDefectLocalizer", display_name="LoTTS Defect Localizer",
            **search_aliases.schema_field("LoTTSDefectLocalizer"),
            category=inputs.CATEGORY,
            description="Finds each candidate's weak regions from the model's own attention: "
                        "contrasts the attention of 'A low-quality image of {p}' against 'A "
                        "high-quality image of {p}', spreads it over coherent regions with "
                        "self-attention, weights it by the prompt's own attention, and keeps "
                        "the top mask_ratio of the image (of its inpainting mask, when the "
                        "latent has one: the defect mask stays inside it). One probe pass per "
                        "candidate (3 NFE).",
            inputs=[
                inputs.model(), inputs.clip(),
                inputs.prompt("The prompt the candidates were made from (the {p} in the "
                              "templates)."),
                inputs.candidates_latent(), inputs.mask_ratio(), inputs.prior_weight(),
                io.Int.Input("probe_step", default=15, min=0, max=inputs.STEP_MAX,
                             tooltip="Where in the schedule (of 'steps' steps) the candidates "
                                     "are re-noised for the probe. Late steps (little noise) "
                                     "see the candidate's details."),
                inputs.template("positive_template"), inputs.template("negative_template"),
                inputs.seed(),
                inputs.steps(tooltip="Length of the schedule probe_step indexes into.",
                             optional=True),
                inputs.scheduler(optional=True),
                io.Int.Input("grow", default=0, min=0, max=256, optional=True,
                             tooltip="Dilate the mask by this many pixels."),
                io.Int.Input("feather", default=0, min=0, max=256, optional=True,
                             tooltip="Soften the mask edge over this many pixels (the mask is "
                                     "then no longer binary)."),
                inputs.vae(optional=True, tooltip="Optional, for the on-node viewer only: "
                           "decodes the candidates exactly. Without it the viewer shows a fast "
                           "approximate colour preview of the latents."),
                inputs.positive(optional=True, tooltip=(
                    "The positive conditioning the candidates were sampled with. The probe "
                    "then keeps everything it carries (FLUX guidance, SDXL size, ControlNet, "
                    "hooks, areas) and only swaps in the quality prompts' text. Not "
                    "connected: the three prompts are encoded from text alone (as in "
                    "workflows saved before this input existed).")),
                inputs.max_batch(), *method_inputs(),
            ],
            outputs=[
                io.Mask.Output(display_name="mask",
                               tooltip="One binary mask per candidate at the image's pixel "
                                       "size: 1 = re-sample."),
                io.Image.Output(display_name="heatmap",
                                tooltip="The defect score P per candidate, colourised "
                                        "(bright = weak)."),
            ],
            is_output_node=True)  # shows its per-candidate viewer even when nothing else is connected

    @classmethod
    def validate_inputs(cls, probe_step, steps=20, scheduler="normal", propagation="always",
                        contrast_tokens=CONTRAST_TOKENS[0]):
        return queue_time_check(cls, locals(), lambda: check_probe_step(probe_step, steps))

    @classmethod
    def execute(cls, *, model, clip, prompt, candidates, mask_ratio, prior_weight, probe_step,
                positive_template, negative_template, seed, steps=20, scheduler="normal",
                grow=0, feather=0, vae=None, positive=None, max_batch=0, propagation="always",
                contrast_tokens=CONTRAST_TOKENS[0], prior_words=""):
        settings = ProbeSettings(model, clip, prompt, steps, scheduler, mask_ratio, prior_weight,
                                 probe_step, positive_template, negative_template, grow, feather,
                                 positive, max_batch, propagation, contrast_tokens, prior_words)
        samples = check_latent(model, candidates, "candidates")
        info = {}
        mask, heatmap = localize_candidates(
            settings, candidates, info=info,
            seeds=stage_seeds(seed, Stream.PROBE, samples.shape[0]))
        images = vae.decode(samples) if vae is not None else \
            latent_to_rgb(model, samples, model_layout(model).latent_scale)
        ui = localizer_viewer(images[..., :3], mask, heatmap, mask_ratio)
        ui["lotts_localizer"] = [info]
        return io.NodeOutput(mask, heatmap, ui=ui)


def method_inputs():
    """The localizer's method options (LoTTS Defect Localizer and LoTTS Sampler, last)."""
    return [
        io.Combo.Input("propagation", options=list(PROPAGATION_MODES), default="always",
                       optional=True, tooltip=(
                           "Stage 2, spreading the contrast with self-attention (SA @ CA). "
                           "always: the paper. auto: per candidate, skipped when "
                           "self-attention carries no structure (mean row entropy above "
                           f"{STRUCTURELESS_ENTROPY:g} of its maximum: every position "
                           "attends to almost all others alike, which would wash the map "
                           "out to its mean); the node's report says what it did. off: the "
                           "ablation.")),
        io.Combo.Input("contrast_tokens", options=list(CONTRAST_TOKENS),
                       default=CONTRAST_TOKENS[0], optional=True, tooltip=(
                           "Which text tokens the quality contrast averages. all content "
                           "tokens: the paper (the prompt's words too, which both quality "
                           "prompts share). where the templates differ: only the words that "
                           "differ between the two templates ('high' vs 'low' by default).")),
        io.String.Input("prior_words", default="", optional=True, tooltip=(
            "Stage 3's prior (where the prompt's subject is) from these words of the "
            "prompt only, comma-separated (e.g. 'cat, chair'). Empty: all the prompt's "
            "words (the paper). Words not in the prompt are refused.")),
    ]


def decision(mode: str, propagated: bool, entropy: float | None) -> str:
    """One line saying what stage 2 did for a candidate (the node's report)."""
    ent = "" if entropy is None else f"self-attention row entropy {entropy:.3f} of max"
    if mode == "off":
        return "propagation off" + (f" ({ent})" if ent else "")
    if propagated:
        return f"propagated ({ent})"
    return (f"propagation skipped: {ent} > {STRUCTURELESS_ENTROPY:g} -- self-attention is "
            "near uniform and would wash the contrast out; the raw maps were used")


def mask_and_map(recorder, latent_hw, mask_ratio, prior_weight, allowed=None, *,
                 propagation="always", report=None, first_index=0, on_flat="refuse"):
    """The masks and P of the candidates ``recorder`` captured, on the latent's grid
    (padded cells cropped, lotts.localize.grid_to_latent). ``allowed`` (latent grid): the
    user's inpainting mask -- the defect mask stays inside it and r is its share of it.
    ``propagation``, ``report``, ``first_index``: see lotts.localize.localize."""
    acc = recorder.acc
    if any(c not in acc.cross_keys() for c in range(3)):
        raise ValueError("positive has only area-restricted entries: the localizer needs "
                         "the attention of the whole image. Connect a conditioning with "
                         "an entry for the whole image (or leave positive unconnected).")
    cells = None if allowed is None else latent_to_grid(allowed > 0, recorder.factor, acc.grid)
    mask, p = localize(acc.cross_map(0), acc.cross_map(1), acc.cross_map(2),
                       acc.self_matrix(), mask_ratio, prior_weight, allowed=cells,
                       propagation=propagation, report=report, first_index=first_index,
                       on_flat=on_flat)
    mask = grid_to_latent(mask, recorder.factor, latent_hw)
    if allowed is not None:
        mask = mask * (allowed > 0)
    return mask, grid_to_latent(p, recorder.factor, latent_hw, smooth=True)


def localize_candidates(settings: ProbeSettings, candidates: dict, *, seeds: list[int],
                        progress: Progress | None = None, info: dict | None = None):
    """Masks (pixel size) and colourised P for every candidate.

    All candidates are probed together, in as few model calls as fit: batches of
    candidates no larger than sampling's own (ProbeGuider evaluates two conditionings at
    a time, 2 images per candidate, as a CFG step does). Candidate i is re-noised with
    noise from ``seeds[i]`` and every map is per image, so its mask does not depend on the
    rest of the batch. ``info`` (a dict), when given, receives what was captured and
    decided: the backbone, the attention kind, the blocks, the contrast's token set and,
    per candidate, the self-attention row entropy and what propagation did.
    """
    s = settings
    samples = check_latent(s.model, candidates, "candidates")
    layout = model_layout(s.model)
    prompts = [encode_prompt(s.clip, t, layout) for t in s.texts()]
    encoded = [p.cond for p in prompts]
    ids, weights = zip(*(p.flat() for p in prompts))
    weights = list(weights)
    weights[0] = prior_weights(s, ids[0], weights[0])
    contrast_used = s.contrast_tokens
    if s.contrast_tokens == CONTRAST_TOKENS[1]:
        w_pos, w_neg, differ = contrast_weights(ids[1], weights[1], ids[2], weights[2])
        weights[1], weights[2] = torch.tensor(w_pos), torch.tensor(w_neg)
        if not differ:
            contrast_used = (f"{CONTRAST_TOKENS[0]} (one template only adds words to the "
                             "other: no word of its own to contrast)")
    segment_weights = {c: p.split(w) for c, (p, w) in enumerate(zip(prompts, weights))}
    conds = [with_text_of(s.positive, e) if s.positive is not None else e for e in encoded]
    sigmas = comfy.samplers.calculate_sigmas(s.model.get_model_object("model_sampling"),
                                             s.scheduler, s.steps)
    sigma = float(sigmas[s.probe_step])

    n = samples.shape[0]
    latent_hw = tuple(samples.shape[-2:])
    progress = progress or Progress(s.model, n * PROBE_CONDITIONINGS)
    allowed = user_mask(candidates, samples)
    size = batch_limit(s.model, samples.shape[1:], s.max_batch, ProbeGuider.GROUP)
    masks, maps, entropy, propagated, flat = [], [], [], [], []
    for a in range(0, n, size):
        comfy.model_management.throw_exception_if_processing_interrupted()
        part = samples[a:a + size]
        recorder, blocks = make_recorder(s.model, segment_weights, part.shape)
        patched = s.model.clone()  # the capture goes on a clone; only its options are used:
        recorder.patch(patched, blocks)  # the loaded model stays the one sampling uses
        probe(s.model, conds, part, seeded_noise(part, seeds[a:a + size]), sigma, seeds[a],
              model_options=patched.model_options)
        report = {}
        mask, p = mask_and_map(recorder, latent_hw, s.mask_ratio, s.prior_weight,
                               None if allowed is None else allowed[a:a + size],
                               propagation=s.propagation, report=report, first_index=a,
                               on_flat=s.on_flat)
        masks.append(mask.cpu())
        maps.append(p.cpu())
        entropy += report["self_attention_entropy"]
        propagated += report["propagated"]
        flat += report["flat"]
        progress.advance(part.shape[0] * PROBE_CONDITIONINGS)
    if info is not None:
        info.update(backbone=type(s.model.model).__name__, attention=recorder.attention,
                    blocks=list(recorder.blocks), latent_channels=int(samples.shape[1]),
                    grid=list(recorder.acc.grid), layers=list(recorder.acc.layers_seen),
                    contrast_tokens=contrast_used,
                    contrast_token_count=[int(weights[1].sum()), int(weights[2].sum())],
                    prior_words=s.prior_words.strip(), prior_token_count=int(weights[0].sum()),
                    propagation=s.propagation,
                    self_attention_entropy=[round(e, 4) for e in entropy],
                    propagated=propagated, flat=flat,
                    decisions=[decision(s.propagation, u, e) for u, e in zip(propagated, entropy)])

    size = pixel_size(samples, layout.latent_scale)  # the image's own size, whatever the VAE
    mask = feather_mask(grow_mask(resize_mask(torch.cat(masks), size), s.grow), s.feather)
    return mask, colorize(resize_map(torch.cat(maps), size))
