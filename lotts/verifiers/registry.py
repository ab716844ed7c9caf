"""Which verifiers exist, what each needs, and loading one by name.

A verifier whose optional dependency is missing is *disabled*, with a message saying what
to install; importing this package and using the other verifiers still works.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field

import torch

from .base import VerifierError, VerifierUnavailable


@dataclass(frozen=True)
class VerifierSpec:
    name: str
    module: str            # submodule of lotts.verifiers holding the loader
    loader: str            # its loader function
    requires: tuple        # importable top-level packages
    default_weights: str   # the official file/folder name in models/lotts_verifiers/
    weights_kind: str      # "file" or "folder"
    source: str            # where users get the weights
    kwargs: dict = field(default_factory=dict)


SPECS = {s.name: s for s in (
    VerifierSpec("ImageReward", "imagereward", "load_imagereward", ("tokenizers",),
                 "ImageReward/ImageReward.pt", "file",
                 "https://huggingface.co/THUDM/ImageReward (ImageReward.pt, med_config.json) + "
                 "vocab.txt from https://huggingface.co/google-bert/bert-base-uncased"),
    # HPS tokenises as open_clip does: ftfy (its prompt cleaning) and regex (its split)
    VerifierSpec("HPSv2", "clip_models", "load_hps", ("transformers", "ftfy", "regex"), "HPS_v2_compressed.pt", "file",
                 "https://huggingface.co/xswu/HPSv2 (HPS_v2_compressed.pt)", {"name": "HPSv2"}),
    VerifierSpec("HPSv2.1", "clip_models", "load_hps", ("transformers", "ftfy", "regex"), "HPS_v2.1_compressed.pt",
                 "file",
                 "https://huggingface.co/xswu/HPSv2 (HPS_v2.1_compressed.pt)", {"name": "HPSv2.1"}),
    VerifierSpec("PickScore", "clip_models", "load_pickscore", ("transformers",), "PickScore_v1", "folder",
                 "https://huggingface.co/yuvalkirstain/PickScore_v1 (config.json + model weights)"),
    VerifierSpec("CLIPScore", "clip_models", "load_clipscore", ("transformers",), "clip-vit-large-patch14",
                 "folder", "https://huggingface.co/openai/clip-vit-large-patch14 (config.json, "
                 "model.safetensors, vocab.json, merges.txt)"),
    VerifierSpec("Aesthetic", "clip_models", "load_aesthetic", ("transformers",),
                 "sac+logos+ava1-l14-linearMSE.pth", "file",
                 "https://github.com/christophschuhmann/improved-aesthetic-predictor "
                 "(sac+logos+ava1-l14-linearMSE.pth) + the CLIP ViT-L/14 folder clip-vit-large-patch14/ "
                 "beside it (https://huggingface.co/openai/clip-vit-large-patch14)"),
)}

VERIFIER_NAMES = tuple(SPECS)


def _missing(spec: VerifierSpec) -> list[str]:
    out = []
    for pkg in spec.requires:
        try:
            if importlib.util.find_spec(pkg) is None:
                out.append(pkg)
        except (ImportError, ValueError):
            out.append(pkg)
    return out


def availability() -> dict[str, str | None]:
    """``{name: None}`` when usable, else ``{name: reason}``."""
    out = {}
    for name, spec in SPECS.items():
        miss = _missing(spec)
        out[name] = None if not miss else (
            f"the {name} verifier is disabled: it needs the Python package(s) {', '.join(miss)} "
            f"(pip install {' '.join(miss)}); the other verifiers still work")
    return out


def load_verifier(name: str, path: str, dtype: torch.dtype = torch.float32, device="cpu",
                  tokenizer_dirs=()):
    """Load verifier ``name`` from ``path`` (a file or folder). Raises ``VerifierError``
    for bad/missing files and ``VerifierUnavailable`` for a missing dependency."""
    spec = SPECS.get(name)
    if spec is None:
        raise VerifierError(f"'verifier': unknown verifier '{name}'; choose one of {', '.join(VERIFIER_NAMES)}")
    reason = availability()[name]
    if reason:
        raise VerifierUnavailable(reason)
    try:
        mod = importlib.import_module(f".{spec.module}", __package__)
    except ImportError as e:
        raise VerifierUnavailable(f"the {name} verifier is disabled: {e}") from None
    return getattr(mod, spec.loader)(path, dtype=dtype, device=device,
                                     tokenizer_dirs=tuple(tokenizer_dirs), **spec.kwargs)
