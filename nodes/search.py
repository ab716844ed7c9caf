"""What the one-node sampler and Best-of-N share: a pool of scored samples with their
lineage, decoding + scoring, and the UI payload of scores."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..lotts.verifiers import rank
from .ui_previews import scores_ui
from .verifier_pick import score_images


@dataclass
class Sample:
    latent: torch.Tensor      # (1, C, H, W)
    lineage: str              # e.g. "candidate seed 12 -> refinement seed 17 (depth 1)"
    image: torch.Tensor | None = None
    score: float | None = None
    depth: int = 0


class Pool:
    """Every sample scored so far; the best one is always available."""

    def __init__(self):
        self.samples: list[Sample] = []

    def add(self, latents: torch.Tensor, lineages: list[str], depth: int) -> list[Sample]:
        new = [Sample(latents[i:i + 1], lineages[i], depth=depth) for i in range(latents.shape[0])]
        self.samples += new
        return new

    def score(self, new: list[Sample], vae, verifier, prompt: str) -> None:
        """Decode and score ``new`` in one batch each (the verifier sees them together)."""
        latents = torch.cat([s.latent for s in new])
        images = vae.decode(latents)[..., :3]
        scores = score_images(verifier, images, prompt)
        for s, img, sc in zip(new, images, scores):
            s.image, s.score = img.unsqueeze(0), sc

    def ranked(self) -> list[Sample]:
        order = rank([s.score for s in self.samples])
        return [self.samples[i] for i in order]

    def best(self) -> Sample:
        return self.ranked()[0]


def scores_payload(ranked: list[Sample], verifier_name: str, picked: int = 1) -> dict:
    """UI payload for the js score badges (see ui_previews.scores_ui)."""
    return scores_ui(torch.cat([s.image for s in ranked]), [s.score for s in ranked],
                     [s.lineage for s in ranked], verifier_name, picked)
