"""Verifiers: score a batch of images against a prompt, higher = better.

ImageReward, HPSv2 / HPSv2.1, PickScore, CLIP score and the LAION aesthetic predictor,
implemented here on torch (+ tokenizers / transformers, imported lazily) and loaded from
the original published checkpoints with strict key matching. Nothing here touches the
network: tokenisers come from files beside the weights (or folders the caller names).

    v = load_verifier("ImageReward", "models/lotts_verifiers/ImageReward/ImageReward.pt")
    scores = v.score(images, "a cat")      # images: (B, H, W, 3) in [0, 1] -> (B,)
    scores = v.score(images, "a cat", batch_size=4, check_cancel=host_cancel_check)
    order = rank(scores, top_k=2)
"""

import importlib

_EXPORTS = {
    "base": ("DEFAULT_BATCH_SIZE", "Verifier", "VerifierError", "VerifierUnavailable",
             "check_images", "check_prompt", "rank"),
    "registry": ("availability", "load_verifier"),
    "specs": ("SPECS", "VERIFIER_NAMES", "VerifierSpec"),
}
__all__ = [name for names in _EXPORTS.values() for name in names]


def __getattr__(name):
    """Names load on first use, so ``lotts.verifiers.specs`` imports without torch."""
    for module, names in _EXPORTS.items():
        if name in names:
            return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
