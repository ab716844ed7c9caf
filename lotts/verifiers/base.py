"""The verifier interface and the input checks every verifier shares.

A verifier turns a batch of ComfyUI IMAGE tensors ``(B, H, W, 3)`` in [0, 1] and one
prompt into one score per image, higher = better: ``score(images, prompt) -> (B,)``.
The batch goes through the network in chunks of ``batch_size`` images (``DEFAULT_BATCH_SIZE``
unless the caller says otherwise) on the device the model sits on; between chunks an
optional ``check_cancel()`` runs, so a host can stop a long scoring pass. The scores come
back as float32 on the CPU, in input order, the same whatever the chunking.
"""

from __future__ import annotations

import math
import operator

import torch
import torch.nn.functional as F

# OpenAI CLIP's normalisation (ImageReward/BLIP, HPS, PickScore, CLIP, aesthetic all use it).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# Images per forward pass when the caller gives no batch size: big enough to batch well on
# a GPU, small enough that a Cancel between chunks comes within seconds with real weights.
DEFAULT_BATCH_SIZE = 8


class VerifierError(ValueError):
    """A bad input, weight file or missing file, with a message that names it."""


class VerifierUnavailable(ImportError):
    """A verifier whose optional dependency is missing (the others still work)."""


def check_images(images, name: str = "images") -> torch.Tensor:
    """Validate a ComfyUI IMAGE batch ``(B, H, W, 3)`` (a single ``(H, W, 3)`` is allowed)."""
    if not isinstance(images, torch.Tensor):
        raise VerifierError(f"'{name}' must be a ComfyUI IMAGE tensor (B, H, W, 3); got {type(images).__name__}")
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4:
        raise VerifierError(f"'{name}' must be a ComfyUI IMAGE tensor (B, H, W, 3); got shape {tuple(images.shape)}")
    b, h, w, c = images.shape
    if c != 3:
        hint = {1: " (a grayscale image or a MASK? convert it to RGB first)",
                4: " (RGBA? drop the alpha channel, e.g. with an 'image to RGB' node)"}.get(c, "")
        raise VerifierError(f"'{name}' must have 3 channels (RGB) in the last dimension; got {c}{hint}. "
                            f"Shape {tuple(images.shape)}")
    if b == 0 or h == 0 or w == 0:
        raise VerifierError(f"'{name}' is empty: shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise VerifierError(f"'{name}' must be floats in [0, 1]; got dtype {images.dtype}")
    return images


def check_prompt(prompt, name: str = "prompt", required: bool = True) -> str:
    if not isinstance(prompt, str):
        raise VerifierError(f"'{name}' must be a string; got {type(prompt).__name__}")
    if required and not prompt.strip():
        raise VerifierError(f"'{name}' is empty: this verifier scores how well each image matches the "
                            "prompt, so give it the prompt the images were generated from")
    return prompt


def check_batch_size(batch_size, name: str = "batch_size") -> int:
    """Images per forward pass: ``None`` is the default, otherwise a whole number >= 1."""
    if batch_size is None:
        return DEFAULT_BATCH_SIZE
    try:
        n = operator.index(batch_size)  # ints and numpy ints; not floats or bools
    except TypeError:
        n = None
    if n is None or isinstance(batch_size, bool) or n < 1:
        raise VerifierError(f"'{name}' must be a whole number of images >= 1 (or None for "
                            f"{DEFAULT_BATCH_SIZE}); got {batch_size!r}")
    return n


def to_nchw(images: torch.Tensor) -> torch.Tensor:
    return images.permute(0, 3, 1, 2).float().clamp(0, 1)


def _resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if (x.shape[-2], x.shape[-1]) == (h, w):
        return x
    return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True)


def resize_shorter_center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision ``Resize(size)`` (shorter side, bicubic) + ``CenterCrop(size)`` on NCHW."""
    h, w = x.shape[-2:]
    if h <= w:
        nh, nw = size, int(size * w / h)
    else:
        nh, nw = int(size * h / w), size
    x = _resize(x, nh, nw)
    top = int(round((nh - size) / 2.0))
    left = int(round((nw - size) / 2.0))
    return x[..., top:top + size, left:left + size]


def resize_longer_pad(x: torch.Tensor, size: int, fill: float = 0.0) -> torch.Tensor:
    """open_clip's ``ResizeMaxSize``: longer side to ``size`` (bicubic), pad to square with ``fill``."""
    h, w = x.shape[-2:]
    scale = size / max(h, w)
    nh, nw = round(h * scale), round(w * scale)
    x = _resize(x, nh, nw)
    pad_h, pad_w = size - nh, size - nw
    return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=fill)


def normalize(x: torch.Tensor, mean=CLIP_MEAN, std=CLIP_STD) -> torch.Tensor:
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


class Verifier:
    """Base class. Subclasses set ``name``, ``model`` (an ``nn.Module``, what ComfyUI's
    ModelPatcher manages) and implement ``prepare`` and ``forward``.

    ``prepare(images, prompt)`` returns CPU tensors (the batch dimension first, or shared
    text inputs); ``forward(inputs)`` runs the model on them and returns ``(B,)`` scores.
    """

    name = "verifier"
    uses_prompt = True

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype = torch.float32):
        self.model = model.eval().requires_grad_(False)
        self.dtype = dtype

    # -- to override -------------------------------------------------------------------
    def prepare(self, images: torch.Tensor, prompt: str) -> dict:
        raise NotImplementedError

    def forward(self, inputs: dict) -> torch.Tensor:
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for p in self.model.parameters():
            return p.device
        return torch.device("cpu")

    def _to_device(self, inputs: dict) -> dict:
        dev = self.device
        out = {}
        for k, v in inputs.items():
            if isinstance(v, torch.Tensor):
                v = v.to(dev)
                if v.is_floating_point():
                    v = v.to(self.dtype)
            out[k] = v
        return out

    @torch.inference_mode()
    def score(self, images: torch.Tensor, prompt: str, batch_size: int | None = None,
              check_cancel=None) -> torch.Tensor:
        """Scores ``(B,)`` float32 on the CPU, in input order; one pass per ``batch_size``
        images (``None``: ``DEFAULT_BATCH_SIZE``). ``check_cancel()``, when given, is called
        between chunks and may raise to stop; nothing is returned then."""
        images = check_images(images)
        prompt = check_prompt(prompt, required=self.uses_prompt)
        step = check_batch_size(batch_size)
        outs = []
        for i in range(0, images.shape[0], step):
            if i and check_cancel is not None:
                check_cancel()
            inputs = self._to_device(self.prepare(images[i:i + step], prompt))
            outs.append(self.forward(inputs).float().reshape(-1).cpu())
        return torch.cat(outs)

    def __call__(self, images, prompt, batch_size=None, check_cancel=None):
        return self.score(images, prompt, batch_size, check_cancel)

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} on {self.device} {self.dtype}>"


def rank(scores, top_k: int | None = None) -> list[int]:
    """Indices best first. Ties keep input order (stable); NaN scores rank last.

    ``top_k`` larger than the batch is clamped to the batch size; ``top_k < 1`` is an error.
    """
    vals = [float(s) for s in (scores.tolist() if isinstance(scores, torch.Tensor) else scores)]
    order = sorted(range(len(vals)), key=lambda i: (math.isnan(vals[i]), -vals[i] if not math.isnan(vals[i]) else 0.0))
    if top_k is None:
        return order
    if int(top_k) < 1:
        raise VerifierError(f"'top_k' must be at least 1; got {top_k}")
    return order[:min(int(top_k), len(order))]
