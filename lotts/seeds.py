"""Seeds: every stage of a LoTTS run draws its noise from its own stream.

A seed widget gives one base seed ``s``. Stage ``stream`` item ``i`` draws its noise from

    seed(s, stream, i) = (s + stream * STREAM_STRIDE + i) mod 2**64

so candidate i is exactly what a stock KSampler with ``s + i`` gives (stream 0), while the
probe, the refinements and the harmonization never reuse a candidate's noise -- also when
one seed widget feeds every node of a staged workflow. The sum wraps modulo 2**64, so
every seed a ComfyUI seed widget allows (0 .. 2**64 - 1) works for every item; lineages
report the seed really used.

Why the streams are 2**30 apart, inside the low 32 bits: ComfyUI draws its noise on the
CPU (``torch.manual_seed``, comfy/sample.py), and PyTorch's CPU generator (mt19937) keeps
only the low 32 bits of a seed -- seeds ``s`` and ``s + 2**32`` draw the same tensor. With
four streams 2**30 apart, two items of different streams differ in their low 32 bits as
long as each stream has fewer than 2**30 items (a run has at most a few thousand).
"""

from __future__ import annotations

from enum import IntEnum

SEED_MODULUS = 1 << 64
STREAM_STRIDE = 1 << 30  # 4 streams x 2**30 items fill the 2**32 seeds the CPU generator sees
STREAM_ITEMS = STREAM_STRIDE  # items a stream may have before it would meet the next one


class Stream(IntEnum):
    CANDIDATES = 0
    PROBE = 1
    REFINEMENT = 2
    HARMONIZATION = 3


def stage_seed(seed: int, stream: Stream, index: int = 0) -> int:
    """The noise seed of item ``index`` of ``stream`` for base seed ``seed``."""
    if not 0 <= int(index) < STREAM_ITEMS:
        raise ValueError(f"item {index} is outside a seed stream (0 .. {STREAM_ITEMS - 1})")
    return (int(seed) + int(stream) * STREAM_STRIDE + int(index)) % SEED_MODULUS


def stage_seeds(seed: int, stream: Stream, count: int, first: int = 0) -> list[int]:
    """Seeds of items ``first .. first + count - 1`` of ``stream``."""
    return [stage_seed(seed, stream, first + i) for i in range(count)]


def base_seed_for(noise_seed: int, stream: Stream, index: int = 0) -> int:
    """The base seed a node needs so that its item ``index`` of ``stream`` draws noise
    from ``noise_seed`` -- how a lineage is replayed with the separate nodes."""
    return (int(noise_seed) - int(stream) * STREAM_STRIDE - int(index)) % SEED_MODULUS


def round_seeds(seed: int, round_index: int, refinements: int) -> tuple[int, list[int], list[int]]:
    """The seeds of one localize-and-refine round of a LoTTS search: its probe's, its k
    refinements' and their harmonizations'.

    Rounds are numbered over the whole search -- the N candidates of depth 1 are rounds
    0 .. N-1, depth L >= 2 is round N + L - 2 -- so no two rounds share noise, and round r
    of a one-node run draws exactly what the separate nodes draw for item r (probe) and
    items r*k .. r*k+k-1 (refinement, harmonization).
    """
    first = round_index * refinements
    return (stage_seed(seed, Stream.PROBE, round_index),
            stage_seeds(seed, Stream.REFINEMENT, refinements, first),
            stage_seeds(seed, Stream.HARMONIZATION, refinements, first))
