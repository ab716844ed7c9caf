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
from ..lotts.localize import (check_mask_ratio, check_prior_weight, feather_mask, grid_to_latent,
                              grow_mask, latent_to_grid, localize, resize_mask)
from ..lotts.preview import colorize
from ..lotts.prompts import quality_prompts
from ..lotts.schedule import PROBE_CONDITIONINGS
from ..lotts.seeds import Stream, stage_seeds
from . import inputs
from .attention_capture import ProbeGuider, make_recorder, probe
from .checks import check_conditioning, check_latent, pixel_size, user_mask
from .sampling import Progress, batch_limit, seeded_noise
from .ui_previews import latent_to_rgb, localizer_viewer


def encode(clip, text: str):
    """CONDITIONING for ``text`` (as CLIPTextEncode makes it) and its content-token mask.

    The mask has one entry per text token the model sees: 1 for tokens of the prompt's
    words, 0 for start, end and padding tokens (ComfyUI's tokenizers give those word id
    0). Text encoders differ in what the model sees: one tokenizer's tokens (SD1.x, FLUX's
    T5), two run side by side (SDXL: CLIP-L and CLIP-G widths concatenated, same
    tokens), or CLIP tokens followed by T5 tokens (SD3 with T5).
    """
    cond = clip.encode_from_tokens_scheduled(clip.tokenize(text))
    tokens_needed = cond[0][0].shape[1]
    word_ids = {key: [t[2] for chunk in chunks for t in chunk]
                for key, chunks in clip.tokenize(text, return_word_ids=True).items()}
    candidates = list(word_ids.values())
    clip_keys = [k for k in ("l", "g") if k in word_ids]
    if clip_keys and "t5xxl" in word_ids:  # SD3: [CLIP tokens, T5 tokens] along the sequence
        candidates.append(word_ids[clip_keys[0]] + word_ids["t5xxl"])
    for ids in candidates:
        if len(ids) == tokens_needed:
            return cond, torch.tensor([1.0 if i > 0 else 0.0 for i in ids])
    raise ValueError(f"cannot align the tokens of {text!r} with its conditioning "
                     f"({tokens_needed} tokens): unsupported text encoder for the localizer.")


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

    def __post_init__(self):
        check_mask_ratio(self.mask_ratio)
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
                inputs.max_batch(),
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
    def validate_inputs(cls, **kw):
        if isinstance(kw.get("probe_step"), int) and isinstance(kw.get("steps", 20), int):
            try:
                check_probe_step(kw["probe_step"], kw.get("steps", 20))
            except ValueError as e:
                return str(e)
        return True

    @classmethod
    def execute(cls, *, model, clip, prompt, candidates, mask_ratio, prior_weight, probe_step,
                positive_template, negative_template, seed, steps=20, scheduler="normal",
                grow=0, feather=0, vae=None, positive=None, max_batch=0):
        settings = ProbeSettings(model, clip, prompt, steps, scheduler, mask_ratio, prior_weight,
                                 probe_step, positive_template, negative_template, grow, feather,
                                 positive, max_batch)
        samples = check_latent(model, candidates, "candidates")
        info = {}
        mask, heatmap = localize_candidates(
            settings, candidates, info=info,
            seeds=stage_seeds(seed, Stream.PROBE, samples.shape[0]))
        images = vae.decode(samples) if vae is not None else latent_to_rgb(model, samples)
        ui = localizer_viewer(images[..., :3], mask, heatmap, mask_ratio)
        ui["lotts_localizer"] = [info]
        return io.NodeOutput(mask, heatmap, ui=ui)


def mask_and_map(recorder, latent_hw, mask_ratio, prior_weight, allowed=None):
    """The masks and P of the candidates ``recorder`` captured, on the latent's grid
    (padded cells cropped, lotts.localize.grid_to_latent). ``allowed`` (latent grid): the
    user's inpainting mask -- the defect mask stays inside it and r is its share of it."""
    acc = recorder.acc
    if any(c not in acc.cross_keys() for c in range(3)):
        raise ValueError("positive has only area-restricted entries: the localizer needs "
                         "the attention of the whole image. Connect a conditioning with "
                         "an entry for the whole image (or leave positive unconnected).")
    cells = None if allowed is None else latent_to_grid(allowed > 0, recorder.factor, acc.grid)
    mask, p = localize(acc.cross_map(0), acc.cross_map(1), acc.cross_map(2),
                       acc.self_matrix(), mask_ratio, prior_weight, allowed=cells)
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
    rest of the batch. ``info`` (a dict), when given, receives what was captured: the
    backbone, the attention kind and the blocks.
    """
    s = settings
    samples = check_latent(s.model, candidates, "candidates")
    encoded, weights = zip(*(encode(s.clip, t) for t in s.texts()))
    conds = [with_text_of(s.positive, e) if s.positive is not None else e for e in encoded]
    sigmas = comfy.samplers.calculate_sigmas(s.model.get_model_object("model_sampling"),
                                             s.scheduler, s.steps)
    sigma = float(sigmas[s.probe_step])

    n = samples.shape[0]
    latent_hw = tuple(samples.shape[-2:])
    progress = progress or Progress(s.model, n * PROBE_CONDITIONINGS)
    allowed = user_mask(candidates, samples)
    size = batch_limit(s.model, samples.shape[1:], s.max_batch, ProbeGuider.GROUP)
    masks, maps = [], []
    for a in range(0, n, size):
        comfy.model_management.throw_exception_if_processing_interrupted()
        part = samples[a:a + size]
        recorder, blocks = make_recorder(s.model, dict(enumerate(weights)), part.shape)
        patched = s.model.clone()
        recorder.patch(patched, blocks)
        probe(patched, conds, part, seeded_noise(part, seeds[a:a + size]), sigma, seeds[a])
        mask, p = mask_and_map(recorder, latent_hw, s.mask_ratio, s.prior_weight,
                               None if allowed is None else allowed[a:a + size])
        masks.append(mask.cpu())
        maps.append(p.cpu())
        progress.advance(part.shape[0] * PROBE_CONDITIONINGS)
    if info is not None:
        info.update(backbone=type(s.model.model).__name__, attention=recorder.attention,
                    blocks=list(recorder.blocks), latent_channels=int(samples.shape[1]),
                    grid=list(recorder.acc.grid), layers=list(recorder.acc.layers_seen))

    size = pixel_size(samples)
    mask = feather_mask(grow_mask(resize_mask(torch.cat(masks), size), s.grow), s.feather)
    return mask, colorize(resize_map(torch.cat(maps), size))
