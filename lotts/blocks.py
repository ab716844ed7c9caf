"""Which attention layers the localizer reads -- a method choice the paper leaves open.

U-Nets (SD1.x, SD2.x, SDXL): the attention blocks at 1/4 of the latent's resolution (the
"16x16 at 512px" level of SD1.5/SD2.x, input 7-8 and output 3-5; the 32x32-at-1024px
level of SDXL, input 7-8, middle and output 0-2). That level is the one the
attention-map literature (Prompt-to-Prompt, DAAM) finds most semantic: finer levels
attend to texture, coarser ones are too blurred to place a hand or a face. Its
self-attention is also small enough to keep (N^2 with N = latent_pixels / 16). Models
without attention at 1/4 use their coarsest level below it.

DiTs: the second half of the double-stream / joint blocks (FLUX, SD3, Qwen-Image, HiDream,
HunyuanImage, AuraFlow, Chroma), of the main layers of single-stream models (Lumina 2,
OmniGen2) and of Cosmos Predict2's blocks. Early blocks still mix mostly positional
information; the late double blocks are where text tokens bind to image regions (the
layers attention-map work on FLUX averages, e.g. ConceptAttention), while single-stream
blocks that follow double-stream ones mix text and image tokens into one stream and are
left out. Which module list that is, per family, is a fact in lotts/layouts.py.
"""

from __future__ import annotations

TARGET_FACTOR = 4


def choose_unet_blocks(blocks: list[tuple[str, int, int]], target: int = TARGET_FACTOR
                       ) -> tuple[list[tuple[str, int]], int]:
    """From ``(block name, index, down-sampling factor)`` of every U-Net block with
    attention: the blocks at ``target``, else at the coarsest factor below it, and that
    factor."""
    factors = sorted({f for _, _, f in blocks if f <= target})
    if not factors:
        raise ValueError("this U-Net has no attention at or above 1/4 of the latent resolution")
    chosen = factors[-1]
    return [(name, idx) for name, idx, f in blocks if f == chosen], chosen


def dit_capture_blocks(count: int) -> list[int]:
    """Indices of the joint-attention blocks to read among ``count``: the second half."""
    return list(range(count // 2, count))
