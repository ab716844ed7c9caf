"""LoTTSDefectLocalizer: where is each candidate weak? (the paper's defect localization)

One probe pass per candidate: the candidate is re-noised to ``probe_step`` of the
schedule and the model is evaluated once under three conditionings -- the user's prompt,
"A high-quality image of {p}" and "A low-quality image of {p}" -- batched together. The
attention of the chosen layers is reduced on the fly (nodes/attention_capture.py) and the
core turns it into a map P and a top-r mask (lotts/localize.py).
"""

from __future__ import annotations

import torch

import comfy.model_management
import comfy.samplers

from ..lotts.localize import feather_mask, grid_to_latent, grow_mask, localize, resize_mask
from ..lotts.attention import resize_map
from ..lotts.preview import colorize
from ..lotts.prompts import DEFAULT_NEGATIVE_TEMPLATE, DEFAULT_POSITIVE_TEMPLATE, quality_prompts
from .attention_capture import make_recorder, probe
from .ui_previews import latent_to_rgb, localizer_viewer
from .common import (CATEGORY, MODEL_INPUT, SEED_INPUT, Progress, check_conditioning,
                     check_latent, pixel_size, scheduler_input, seeded_noise)


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


class LoTTSDefectLocalizer:
    DESCRIPTION = ("Finds each candidate's weak regions from the model's own attention: "
                   "contrasts the attention of 'A low-quality image of {p}' against 'A "
                   "high-quality image of {p}', spreads it over coherent regions with "
                   "self-attention, weights it by the prompt's own attention, and keeps the "
                   "top mask_ratio of the image. One probe pass per candidate (3 NFE).")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MASK", "IMAGE")
    RETURN_NAMES = ("mask", "heatmap")
    OUTPUT_TOOLTIPS = ("One binary mask per candidate at the image's pixel size: 1 = re-sample.",
                       "The defect score P per candidate, colourised (bright = weak).")
    FUNCTION = "localize"
    OUTPUT_NODE = True  # shows its per-candidate viewer even when nothing else is connected

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": MODEL_INPUT,
            "clip": ("CLIP", {"tooltip": "The text encoder of the checkpoint, to encode the "
                                         "quality prompts."}),
            "prompt": ("STRING", {"multiline": True, "default": "",
                                  "tooltip": "The prompt the candidates were made from (the {p} "
                                             "in the templates)."}),
            "candidates": ("LATENT", {"tooltip": "The N candidate latents (from LoTTS Seed Fan-Out)."}),
            "mask_ratio": ("FLOAT", {"default": 0.5, "min": 0.01, "max": 1.0, "step": 0.01,
                                     "tooltip": "r: share of the image marked for re-sampling "
                                                "(the paper's best is 0.5)."}),
            "prior_weight": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 10.0, "step": 0.05,
                                       "tooltip": "lambda: weight of the prompt's own attention "
                                                  "(a foreground prior) added to the quality "
                                                  "contrast. 0 = contrast only. The paper gives "
                                                  "no value; 0.5 is ours."}),
            "probe_step": ("INT", {"default": 15, "min": 0, "max": 10000,
                                   "tooltip": "Where in the schedule (of 'steps' steps) the "
                                              "candidates are re-noised for the probe. Late "
                                              "steps (little noise) see the candidate's details."}),
            "positive_template": ("STRING", {"default": DEFAULT_POSITIVE_TEMPLATE,
                                             "tooltip": "'High-quality' prompt; {p} is replaced "
                                                        "by the prompt."}),
            "negative_template": ("STRING", {"default": DEFAULT_NEGATIVE_TEMPLATE,
                                             "tooltip": "'Low-quality' prompt; {p} is replaced "
                                                        "by the prompt."}),
            "seed": SEED_INPUT,
        }, "optional": {
            "steps": ("INT", {"default": 20, "min": 1, "max": 10000,
                              "tooltip": "Length of the schedule probe_step indexes into."}),
            "scheduler": scheduler_input(),
            "grow": ("INT", {"default": 0, "min": 0, "max": 256,
                             "tooltip": "Dilate the mask by this many pixels."}),
            "feather": ("INT", {"default": 0, "min": 0, "max": 256,
                                "tooltip": "Soften the mask edge over this many pixels "
                                           "(the mask is then no longer binary)."}),
            "vae": ("VAE", {"tooltip": "Optional, for the on-node viewer only: decodes the "
                                       "candidates exactly. Without it the viewer shows a "
                                       "fast approximate colour preview of the latents."}),
            "positive": ("CONDITIONING", {
                "tooltip": "The positive conditioning the candidates were sampled with. The "
                           "probe then keeps everything it carries (FLUX guidance, SDXL size, "
                           "ControlNet, hooks, areas) and only swaps in the quality prompts' "
                           "text. Not connected: the three prompts are encoded from text alone "
                           "(as in workflows saved before this input existed)."}),
        }}

    def localize(self, model, clip, prompt, candidates, mask_ratio, prior_weight, probe_step,
                 positive_template, negative_template, seed, steps=20, scheduler="normal",
                 grow=0, feather=0, vae=None, positive=None):
        info = {}
        mask, heatmap = localize_candidates(model, clip, prompt, candidates, mask_ratio,
                                            prior_weight, probe_step, positive_template,
                                            negative_template, seed, steps, scheduler, grow,
                                            feather, positive=positive, info=info)
        samples = candidates["samples"]
        images = vae.decode(samples) if vae is not None else latent_to_rgb(model, samples)
        ui = localizer_viewer(images[..., :3], mask, heatmap, mask_ratio)
        ui["lotts_localizer"] = [info]
        return {"ui": ui, "result": (mask, heatmap)}


def mask_and_map(recorder, latent_hw, mask_ratio, prior_weight):
    """One candidate's mask and P from what ``recorder`` captured, on the latent's grid
    (padded cells cropped, lotts.localize.grid_to_latent)."""
    acc = recorder.acc
    if any(c not in acc.cross_keys() for c in range(3)):
        raise ValueError("positive has only area-restricted entries: the localizer needs "
                         "the attention of the whole image. Connect a conditioning with "
                         "an entry for the whole image (or leave positive unconnected).")
    mask, p = localize(acc.cross_map(0), acc.cross_map(1), acc.cross_map(2),
                       acc.self_matrix(), mask_ratio, prior_weight)
    return (grid_to_latent(mask, recorder.factor, latent_hw),
            grid_to_latent(p, recorder.factor, latent_hw, smooth=True))


def localize_candidates(model, clip, prompt, candidates, mask_ratio, prior_weight, probe_step,
                        positive_template=DEFAULT_POSITIVE_TEMPLATE,
                        negative_template=DEFAULT_NEGATIVE_TEMPLATE, seed=0, steps=20,
                        scheduler="normal", grow=0, feather=0, progress=None, *,
                        positive=None, info=None):
    """Masks (pixel size) and colourised P for every candidate; one probe pass each.

    Candidate i is probed with noise from seed + i, so its mask does not depend on the
    rest of the batch. ``info`` (a dict), when given, receives what was captured: the
    backbone, the attention kind and the blocks.
    """
    if not 0.0 < mask_ratio <= 1.0:
        raise ValueError(f"mask_ratio must be in (0, 1], got {mask_ratio}.")
    if prior_weight < 0:
        raise ValueError(f"prior_weight must be >= 0, got {prior_weight}.")
    pos_text, neg_text = quality_prompts(prompt, positive_template, negative_template)
    if clip is None:
        raise ValueError("clip is missing: connect the checkpoint's CLIP output.")
    samples = check_latent(model, candidates, "candidates")
    if not 0 <= probe_step < steps:
        raise ValueError(f"probe_step ({probe_step}) must be in [0, steps) = [0, {steps}).")
    if positive is not None:
        check_conditioning(model, positive, "positive")

    encoded, weights = zip(*(encode(clip, t) for t in (prompt.strip(), pos_text, neg_text)))
    conds = [with_text_of(positive, e) if positive is not None else e for e in encoded]
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"),
                                             scheduler, steps)
    sigma = float(sigmas[probe_step])

    n = samples.shape[0]
    latent_hw = tuple(samples.shape[-2:])
    progress = progress or Progress(model, n)
    masks, maps = [], []
    for i in range(n):
        comfy.model_management.throw_exception_if_processing_interrupted()
        recorder, blocks = make_recorder(model, dict(enumerate(weights)), samples.shape)
        patched = model.clone()
        recorder.patch(patched, blocks)
        one = samples[i:i + 1]
        probe(patched, conds, one, seeded_noise(one, [seed + i]), sigma, seed + i)
        mask, p = mask_and_map(recorder, latent_hw, mask_ratio, prior_weight)
        masks.append(mask.cpu())
        maps.append(p.cpu())
        progress.advance(1)
    if info is not None:
        info.update(backbone=type(model.model).__name__, attention=recorder.attention,
                    blocks=list(recorder.blocks), latent_channels=int(samples.shape[1]),
                    grid=list(recorder.acc.grid), layers=list(recorder.acc.layers_seen))

    size = pixel_size(samples)
    mask = resize_mask(torch.cat(masks), size)
    mask = feather_mask(grow_mask(mask, grow), feather)
    heatmap = colorize(resize_map(torch.cat(maps), size))
    return mask, heatmap


NODE_CLASS_MAPPINGS = {"LoTTSDefectLocalizer": LoTTSDefectLocalizer}
NODE_DISPLAY_NAME_MAPPINGS = {"LoTTSDefectLocalizer": "LoTTS Defect Localizer"}
