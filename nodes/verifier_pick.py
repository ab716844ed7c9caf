"""LoTTSVerifierPick: score a batch of images with a verifier and return the best ones."""

from __future__ import annotations

import json

import torch

import comfy.model_management as mm
from comfy_api.latest import io

from ..lotts.verifiers import VerifierError, rank
from . import inputs, search_aliases
from .ui_previews import scores_ui

def _reorder_latent(latent: dict, order: list[int], batch: int) -> dict:
    if not isinstance(latent, dict) or "samples" not in latent:
        raise ValueError("'latents' is not a LATENT (a dict with 'samples')")
    samples = latent["samples"]
    if samples.shape[0] != batch:
        raise ValueError(f"'latents' has a batch of {samples.shape[0]} but 'images' has {batch}: connect the "
                         "latents the images were decoded from (same batch, same order)")
    idx = torch.tensor(order, dtype=torch.long)
    out = dict(latent)
    out["samples"] = samples[idx.to(samples.device)]
    mask = latent.get("noise_mask")
    if isinstance(mask, torch.Tensor) and mask.ndim >= 1 and mask.shape[0] == batch:
        out["noise_mask"] = mask[idx.to(mask.device)]
    if isinstance(latent.get("batch_index"), (list, tuple)) and len(latent["batch_index"]) == batch:
        out["batch_index"] = [latent["batch_index"][i] for i in order]
    return out


def _reorder_masks(masks: torch.Tensor, order: list[int], batch: int) -> torch.Tensor:
    if masks.ndim == 2:
        masks = masks.unsqueeze(0)
    if masks.ndim != 3:
        raise ValueError(f"'masks' must be a MASK (B, H, W); got shape {tuple(masks.shape)}")
    if masks.shape[0] == 1 and batch > 1:
        masks = masks.expand(batch, -1, -1)
    if masks.shape[0] != batch:
        raise ValueError(f"'masks' has a batch of {masks.shape[0]} but 'images' has {batch}")
    return masks[torch.tensor(order, dtype=torch.long, device=masks.device)]


def scores_text(scores: list[float], order: list[int], name: str, top_k: int) -> str:
    lines = [f"{name}: {len(scores)} images, best first (index: score)"]
    for r, i in enumerate(order):
        mark = "  <- picked" if r < top_k else ""
        lines.append(f"#{r + 1}  image {i}: {scores[i]:.4f}{mark}")
    return "\n".join(lines)


def score_images(verifier, images, prompt, batch_size=None) -> list[float]:
    """Scores in input order, in batched chunks of ``batch_size`` images (None: the
    verifier's default) with a Cancel check before and between them (the LOTTS_VERIFIER
    does the latter); verifier errors become clear ValueErrors."""
    if not hasattr(verifier, "score"):
        raise ValueError("'verifier' is not a LOTTS_VERIFIER: connect LoTTS Verifier Loader")
    mm.throw_exception_if_processing_interrupted()
    try:
        scores = verifier.score(images, prompt) if batch_size is None else \
            verifier.score(images, prompt, batch_size)
    except VerifierError as e:
        raise ValueError(str(e)) from None
    return [float(s) for s in scores.tolist()]


class LoTTSVerifierPick(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LoTTSVerifierPick", display_name="LoTTS Verifier Pick",
            **search_aliases.schema_field("LoTTSVerifierPick"),
            category=inputs.CATEGORY,
            description="Scores every image of the batch against the prompt with the verifier "
                        "(in batched passes of a few images; Cancel stops it between them) and "
                        "returns the top_k best, best first. Latents and masks given alongside "
                        "are passed through in the same ranked order. Ties keep input order; a "
                        "top_k larger than the batch is clamped to the batch size. The scores "
                        "are shown on the node.",
            inputs=[
                inputs.verifier(),
                io.Image.Input("images", tooltip="The candidate images (a batch, RGB). Every "
                                                 "image is scored."),
                inputs.prompt("The prompt the images were generated from (the Aesthetic "
                              "verifier ignores it; the others need it)."),
                io.Int.Input("top_k", default=1, min=1, max=4096,
                             tooltip="How many of the best images to return in 'best'. More "
                                     "than the batch size is clamped to the batch size."),
                io.Latent.Input("latents", optional=True,
                                tooltip="The latents of the same images (same batch, same "
                                        "order): returned ranked as best_latent."),
                io.Mask.Input("masks", optional=True,
                              tooltip="Masks of the same images (batch of the images, or 1): "
                                      "returned ranked as best_mask."),
            ],
            outputs=[
                io.Image.Output(display_name="best",
                                tooltip="The top_k highest-scoring images, best first."),
                io.Latent.Output(display_name="best_latent",
                                 tooltip="The latents of those top_k images, best first (None "
                                         "when no latents were connected)."),
                io.Int.Output(display_name="best_index",
                              tooltip="Index (0-based, in the input batch) of the best image."),
                io.String.Output(display_name="scores",
                                 tooltip="All scores as a JSON list, in input order."),
                io.Image.Output(display_name="ranked",
                                tooltip="The whole batch, best first."),
                io.Mask.Output(display_name="best_mask",
                               tooltip="The masks of the top_k images, best first (None when no "
                                       "masks were connected)."),
            ])

    @classmethod
    def execute(cls, *, verifier, images, prompt, top_k, latents=None, masks=None):
        vals = score_images(verifier, images, prompt)
        order = rank(vals)
        k = min(int(top_k), len(order))
        if int(top_k) < 1:
            raise ValueError(f"'top_k' must be at least 1; got {top_k}")
        idx = torch.tensor(order, dtype=torch.long, device=images.device)
        ranked = images[idx]
        best = ranked[:k]
        best_latent = _reorder_latent(latents, order, len(order)) if latents is not None else None
        if best_latent is not None:
            best_latent["samples"] = best_latent["samples"][:k]
            if isinstance(best_latent.get("noise_mask"), torch.Tensor) and \
                    best_latent["noise_mask"].shape[0] == len(order):
                best_latent["noise_mask"] = best_latent["noise_mask"][:k]
            if isinstance(best_latent.get("batch_index"), list):
                best_latent["batch_index"] = best_latent["batch_index"][:k]
        best_mask = _reorder_masks(masks, order, len(order))[:k] if masks is not None else None
        text = scores_text(vals, order, getattr(verifier, "name", "verifier"), k)
        ui = {"text": [text], **scores_ui(ranked, [vals[i] for i in order],
                                          [f"image {i}" for i in order],
                                          getattr(verifier, "name", "verifier"), k)}
        return io.NodeOutput(best, best_latent, order[0], json.dumps(vals), ranked, best_mask,
                             ui=ui)

