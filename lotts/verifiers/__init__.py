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

from .base import (DEFAULT_BATCH_SIZE, Verifier, VerifierError, VerifierUnavailable, check_images,
                   check_prompt, rank)
from .registry import SPECS, VERIFIER_NAMES, VerifierSpec, availability, load_verifier

__all__ = ["DEFAULT_BATCH_SIZE", "Verifier", "VerifierError", "VerifierUnavailable", "check_images", "check_prompt", "rank",
           "SPECS", "VERIFIER_NAMES", "VerifierSpec", "availability", "load_verifier"]
