"""B4: a batch of 8 scored in one pass vs. 8 one-image calls, per verifier architecture.

Prints, for each architecture, per-image time batched(8) / one-at-a-time (lower is better;
< 1 means batching pays) and the largest score difference between the two (must be
< 1e-5, relative to the scores' scale when that exceeds 1). Models are random-weight checkpoints in the original layouts, built in a temp
folder: ``--size tiny`` (default, seconds) or ``--size base`` (ViT-B-sized towers; slower
but closer to the real cost profile). ``LOTTS_BENCH_DEVICE=gpu`` scores on the GPU. Not
a test: run it by hand.

    python3 benchmarks/b4_verifier_batching.py [--size tiny|base] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests", "core"), os.path.dirname(os.path.abspath(__file__))]

import verifier_fixtures as vf  # noqa: E402
from bench_common import GPU, machine_line  # noqa: E402
from lotts.verifiers import load_verifier  # noqa: E402

PROMPT = "a photo of the red cat"


def build(root, size):
    if size == "tiny":
        ir = dict()
        hps = dict()
        clip = dict()
    else:  # ViT-B/16-like vision towers, BERT-base-like text at half depth
        ir = dict(vit_width=768, vit_depth=12, patch=16, image=224, hidden=768, layers=6, inner=3072)
        hps = dict(vw=768, vlayers=12, patch=16, image=224, tw=512, tlayers=12, embed=512, heads=(12, 8))
        clip = dict(vw=768, tw=512, embed=512, image=224, patch=16)
    return {
        "ImageReward (BLIP ViT + BERT)": ("ImageReward", vf.make_imagereward(os.path.join(root, "ir"), **ir)),
        "HPSv2 (OpenCLIP -> CLIPModel)": ("HPSv2.1", vf.make_hps(os.path.join(root, "hps"), **hps)),
        "PickScore / CLIPScore (CLIPModel)": ("PickScore", vf.make_hf_clip(os.path.join(root, "pick"), **clip)),
        "Aesthetic (CLIP vision + MLP)": ("Aesthetic", vf.make_aesthetic(os.path.join(root, "aes"), **clip)),
    }


def timed(fn, repeats):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()  # scores come back on the CPU: the device has finished
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=("tiny", "base"), default="tiny")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if GPU and torch.cuda.is_available() else "cpu"
    images = vf.images(8, h=256, w=256, seed=0)
    # fp32 on every device: the batched-vs-single comparison below is at fp32 rounding
    print(f"B4 verifier batching, size={args.size}, device {device}, fp32")
    print(f"machine: {machine_line()}")
    print(f"{'architecture':36s} {'batched/img':>12s} {'single/img':>12s} {'ratio':>7s} {'max|diff|':>10s} {'max|score|':>10s}")
    with tempfile.TemporaryDirectory() as root:
        for label, (name, path) in build(root, args.size).items():
            v = load_verifier(name, str(path), device=device)
            tb, sb = timed(lambda: v.score(images, PROMPT, batch_size=8), args.repeats)
            ts, ss = timed(lambda: torch.cat([v.score(images[i:i + 1], PROMPT) for i in range(8)]), args.repeats)
            diff = (sb - ss).abs().max().item()
            scale = sb.abs().max().item()
            print(f"{label:36s} {tb / 8 * 1e3:10.2f}ms {ts / 8 * 1e3:10.2f}ms {tb / ts:7.3f} {diff:10.1e} {scale:10.3g}")
            # float32 GEMMs of different shapes round differently: 1e-5 relative to the score scale
            assert diff <= 1e-5 * max(1.0, scale), label


if __name__ == "__main__":
    main()
