"""Input checks the LoTTS nodes share: each raises a ValueError that names the input and
the fix, before any work is done."""

from __future__ import annotations

import math

import torch

import comfy.sample
import comfy.utils


def check_latent(model, latent: dict, input_name: str) -> torch.Tensor:
    """Return ``latent["samples"]`` after checking it fits ``model``; name the input if not."""
    if not isinstance(latent, dict) or "samples" not in latent:
        raise ValueError(f"{input_name} is not a LATENT (a dict with 'samples').")
    samples = latent["samples"]
    # an image latent: [batch, channels, height, width], or one frame of a model whose
    # latents have a frame axis (Qwen-Image, Cosmos Predict2: [batch, channels, 1, h, w])
    if not (samples.ndim == 4 or samples.ndim == 5 and samples.shape[2] == 1):
        raise ValueError(f"{input_name} has shape {tuple(samples.shape)}; LoTTS works on image "
                         "latents [batch, channels, height, width] (not video latents).")
    samples = comfy.sample.fix_empty_latent_channels(model, samples)
    expected = model.get_model_object("latent_format").latent_channels
    if samples.shape[1] != expected:
        raise ValueError(f"{input_name} has {samples.shape[1]} channels but this model works on "
                         f"{expected}-channel latents: make it with this model's VAE or its "
                         "empty-latent node.")
    if samples.shape[0] == 0:
        raise ValueError(f"{input_name} is an empty batch.")
    return samples


def _needs_pooled(model) -> bool:
    """Whether the model reads the pooled text embedding (SDXL's ADM vector, FLUX's and
    SD3's vec input); ComfyUI fails deep inside with a bare KeyError when it is absent."""
    import comfy.model_base as mb
    inner = model.model
    dit_classes = tuple(c for c in (getattr(mb, "Flux", None), getattr(mb, "SD3", None)) if c)
    return getattr(inner, "adm_channels", 0) > 0 or isinstance(inner, dit_classes)


def check_conditioning(model, cond, input_name: str) -> None:
    """A CONDITIONING is a list of [tensor, dict]; name the input when it is not usable."""
    if not isinstance(cond, list) or not cond or not all(
            isinstance(c, (list, tuple)) and len(c) == 2 and isinstance(c[1], dict) for c in cond):
        raise ValueError(f"{input_name} is not a CONDITIONING (a list of [tensor, options]); "
                         "connect a CLIP Text Encode output.")
    if _needs_pooled(model) and any("pooled_output" not in c[1] for c in cond):
        raise ValueError(f"{input_name} has no 'pooled_output': this model "
                         f"({type(model.model).__name__}) needs the pooled text embedding. "
                         "Encode the prompt with CLIP Text Encode (or your model's text-encode "
                         "node) instead of building the conditioning by hand.")


def pixel_size(samples: torch.Tensor, scale: int = 8) -> tuple[int, int]:
    """Pixel height and width of a latent whose VAE down-samples by ``scale`` (8 for most
    of ComfyUI's; the backbone layouts, lotts/layouts.py, know the others)."""
    return samples.shape[-2] * scale, samples.shape[-1] * scale


def prepare_mask(mask: torch.Tensor, batch: int, samples: torch.Tensor,
                 input_name: str = "mask") -> torch.Tensor:
    """Check a MASK against a latent batch and bring it to the latent's pixel size.

    Batch: 1 (broadcast) or ``batch``. Size: the pixel size of the latent (height*8,
    width*8), or any size of the same aspect ratio (resized, nearest); a mask whose sides
    are not multiples of 8 cannot be aligned with the latent grid and is refused.
    """
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.ndim != 3:
        raise ValueError(f"{input_name} has shape {tuple(mask.shape)}; expected a MASK [batch, height, width].")
    if mask.shape[0] not in (1, batch):
        raise ValueError(f"{input_name} has {mask.shape[0]} masks for {batch} candidates: give one "
                         "mask per candidate (as the localizer makes) or a single mask for all.")
    target = pixel_size(samples)
    h, w = mask.shape[-2:]
    if (h, w) != target:
        if h % 8 or w % 8:
            raise ValueError(f"{input_name} is {w}x{h} pixels, not a multiple of 8: it cannot be "
                             f"aligned with the {target[1]}x{target[0]} image. Resize it to "
                             f"{target[1]}x{target[0]}.")
        if not math.isclose(h / w, target[0] / target[1], rel_tol=0.01):
            raise ValueError(f"{input_name} is {w}x{h} but the image is {target[1]}x{target[0]}: "
                             "the aspect ratios differ, so the mask would land on the wrong "
                             "region. Make the mask from these candidates.")
        mask = torch.nn.functional.interpolate(mask.unsqueeze(1).float(), size=target,
                                               mode="nearest-exact").squeeze(1)
    return mask.float().clamp(0.0, 1.0).expand(batch, -1, -1).contiguous()


def latent_mask(mask: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` masks of any size on the latent grid, resized as ComfyUI's masked
    sampling resizes a noise mask (comfy.utils.reshape_mask: bilinear)."""
    n, (h, w) = samples.shape[0], samples.shape[-2:]
    return comfy.utils.reshape_mask(mask.float(), (n, 1, h, w))[:, 0].contiguous()


SOURCE_KEY = "lotts_source"  # the clean latents a masked refinement started from


def latent_out(latent: dict, samples: torch.Tensor, noise_mask: torch.Tensor | None = None,
               source: torch.Tensor | None = None) -> dict:
    """A LATENT with ``samples`` and the input's other keys. ``noise_mask``,
    ``batch_index`` and the source latents describe the input batch, so they are only
    set when given for this one."""
    drop = ("samples", "noise_mask", "batch_index", SOURCE_KEY)
    out = {k: v for k, v in latent.items() if k not in drop}
    out["samples"] = samples
    if noise_mask is not None:
        out["noise_mask"] = noise_mask
    if source is not None:
        out[SOURCE_KEY] = source
    return out


def user_mask(latent: dict, samples: torch.Tensor) -> torch.Tensor | None:
    """The LATENT's inpainting mask (Set Latent Noise Mask, VAE Encode for Inpainting) on
    the latent grid, one per item -- resized as ComfyUI's own masked sampling resizes it
    (comfy/sampler_helpers.py, bilinear) -- or None when it has none."""
    mask = latent.get("noise_mask") if isinstance(latent, dict) else None
    if mask is None:
        return None
    count = mask.reshape(-1, mask.shape[-2], mask.shape[-1]).shape[0]
    if count not in (1, samples.shape[0]):
        raise ValueError(f"the latent's noise_mask has {count} masks for a batch of "
                         f"{samples.shape[0]}: give one mask, or one per latent.")
    return latent_mask(mask, samples)


def queue_time_check(node, named: dict, *checks) -> bool | str:
    """What a node's ``validate_inputs`` returns: True, or the first problem as a message
    that names its input.

    ComfyUI hands ``validate_inputs`` only the inputs its signature names, and skips its
    own range and option-list checks for exactly those (all of them when the signature
    takes ``**kwargs``; ComfyUI 0.3.64 also never checks a V3 combo's options). So a node
    names only what it needs -- its combos and the inputs of its cross-input ``checks`` --
    and this checks those against the node's schema first: min/max for numbers, the
    option list for combos. ``named`` is the validator's ``locals()``; a value that is
    None comes from a link, unknown until the graph runs, and then the ``checks`` (callables
    raising ValueError) wait for ``execute``, which checks the same again.
    """
    named = {k: v for k, v in named.items() if k != "cls"}
    # define_schema, not GET_SCHEMA: the server validates on a locked copy of the class,
    # which GET_SCHEMA would try to write to
    schema = {i.id: i for i in node.define_schema().inputs}
    for name, value in named.items():
        problem = schema_problem(schema[name], value)
        if problem:
            return problem
    if any(v is None for v in named.values()):
        return True
    try:
        for check in checks:
            check()
    except ValueError as e:
        return str(e)
    return True


def schema_problem(spec, value) -> str | None:
    """Why ``value`` is not allowed by the schema input ``spec`` (as ComfyUI would refuse
    it at queue time), or None."""
    if value is None:
        return None
    options = getattr(spec, "options", None)
    if options is not None:
        if value not in options:
            shown = ", ".join(map(repr, options)) if len(options) <= 20 else f"{len(options)} options"
            return f"{spec.id}: {value!r} is not one of its options ({shown})."
        return None
    low, high = getattr(spec, "min", None), getattr(spec, "max", None)
    if low is not None and value < low:
        return f"{spec.id}: {value} is below its minimum of {low}."
    if high is not None and value > high:
        return f"{spec.id}: {value} is above its maximum of {high}."
    return None
