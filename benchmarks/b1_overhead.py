"""B1: what the LoTTS pipeline costs beyond its NFE -- wall time of one LoTTS Sampler run
divided by an NFE-matched LoTTS Best-of-N run, same model, size and sampler, one process.

ComfyUI in-process (the pack loaded through ComfyUI's own custom-node loader), the real
SD1.5 U-Net architecture (comfy/model_detection.py's SD15 config: 320 channels, 860 M
parameters) with random weights, a 768-wide 1-layer CLIP with the real SD1 tokenizer, the
TAESD VAE and a tiny ImageReward verifier (random weights). Defaults are the paper's
setting: T=20, N=4, k=2, t0=10, 3 harmonization steps, cfg 7, euler/normal.

Every figure comes from the nodes' cost data (``ui["lotts_cost"][0]``: NFE and seconds
per stage, "decode + verifier" included) and the wall time of each node call:

* time ratio LoTTS / Best-of-N (goal <= 1.05);
* NFE granularity factor = LoTTS NFE / Best-of-N NFE: Best-of-N's M is a whole number
  of samples, so the NFE match is exact only to within one sample;
* per-NFE ratio = time ratio / granularity factor (goal <= 1.05);
* probes' share of LoTTS's wall time (goal <= 5 %) and decode + verifier's share;
* per stage: seconds, s/NFE, and the seconds beyond Best-of-N's s/NFE (what costs what).

    COMFYUI_PATH=~/ComfyUI ~/ComfyUI/.venv/bin/python benchmarks/b1_overhead.py \
        [--size 128] [--candidates 4] [--k 2] [--steps 20] [--start-step 10] \
        [--harmonize 3] [--cfg 7] [--repeats 1]

On 2 shared CPU cores the full-size U-Net costs ~1-4 s per NFE at 128x128 (a pair of
runs at the paper's setting is 652 NFE: 20-40 min); 64x64 is ~3x cheaper.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import (clip_768, encode, load_average, machine_line, run_node, sd15_unet,  # noqa: E402
                          start_comfyui, tiny_imagereward, unet_params)

PROMPT = "a photo of a red cat sitting on a wooden chair"
NEGATIVE = "blurry, low quality"
STAGES = ("candidates", "probes", "refinement", "harmonization", "decode + verifier")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=128, help="image side in pixels (latent = size/8)")
    ap.add_argument("--candidates", type=int, default=4, help="LoTTS N")
    ap.add_argument("--k", type=int, default=2, help="LoTTS refinements per candidate")
    ap.add_argument("--steps", type=int, default=20, help="T")
    ap.add_argument("--start-step", type=int, default=10, help="t0")
    ap.add_argument("--harmonize", type=int, default=3)
    ap.add_argument("--cfg", type=float, default=7.0)
    ap.add_argument("--sampler", default="euler")
    ap.add_argument("--scheduler", default="normal")
    ap.add_argument("--max-batch", type=int, default=0, help="both nodes' max_batch (0 = automatic)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="timed LoTTS/Best-of-N pairs (ABBA order); the fastest of each is used")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    start_comfyui()
    import torch
    from tiny_models import tiny_vae

    t_build = time.perf_counter()
    model, clip, vae = sd15_unet(), clip_768(), tiny_vae()
    verifier = tiny_imagereward()
    build_s = time.perf_counter() - t_build

    with torch.inference_mode():
        pos, neg = encode(clip, PROMPT), encode(clip, NEGATIVE)
        latent = {"samples": torch.zeros(1, 4, args.size // 8, args.size // 8)}

        def lotts(n, k, steps, t0, harmonize):
            return run_node("LoTTSSampler", model, clip, vae, pos, neg, PROMPT, verifier, latent,
                            args.seed, n, k, 1, steps, args.cfg, args.sampler, args.scheduler,
                            t0, harmonize, 0.5, 0.5, max_batch=args.max_batch)

        def bon(steps, budget):
            return run_node("LoTTSBestOfN", model, pos, neg, latent, args.seed, steps, args.cfg,
                            args.sampler, args.scheduler, verifier, PROMPT, vae, 1, str(budget),
                            max_batch=args.max_batch)

        def timed(fn, *a):
            t, cpu = time.perf_counter(), time.process_time()
            out = fn(*a)
            cost = dict(out.ui["lotts_cost"][0], cpu_seconds=time.process_time() - cpu)
            return time.perf_counter() - t, cost

        # warm-up: both nodes once, every stage, 2 steps (allocator, first-call costs)
        t_warm = time.perf_counter()
        timed(lotts, 1, 1, 2, 0, 0)
        timed(bon, 2, 1)
        warm_s = time.perf_counter() - t_warm
        runs, budget = [], None
        for r in range(max(1, args.repeats)):
            # ABBA order, so a drift in the machine's load does not favour either side
            first_bon = r % 2 == 1
            if first_bon:
                tb, cb = timed(bon, args.steps, budget)
            tl, cl = timed(lotts, args.candidates, args.k, args.steps, args.start_step,
                           args.harmonize)
            budget = cl["nfe_total"]
            if not first_bon:
                tb, cb = timed(bon, args.steps, budget)
            runs.append((tl, cl, tb, cb))

    tl, cl = min(((r[0], r[1]) for r in runs), key=lambda r: r[0])
    tb, cb = min(((r[2], r[3]) for r in runs), key=lambda r: r[0])
    nl, nb = cl["nfe_total"], cb["nfe_total"]
    bon_rate = cb["seconds"]["candidates"] / cb["nfe"]["candidates"]  # Best-of-N s/NFE

    print("B1 overhead: LoTTS Sampler vs NFE-matched LoTTS Best-of-N, in-process ComfyUI")
    print(f"machine: {machine_line()}")
    print(f"model: SD1.5 U-Net (real architecture, {unet_params(model) / 1e6:.0f} M params, "
          f"random weights, fp32), CLIP 768-wide 1 layer, TAESD VAE, tiny ImageReward "
          f"verifier; built in {build_s:.0f} s, warm-up {warm_s:.0f} s")
    print(f"setup: {args.size}x{args.size} (latent {args.size // 8}x{args.size // 8}), "
          f"{args.sampler}/{args.scheduler}, T={args.steps}, cfg={args.cfg}; LoTTS N={args.candidates} "
          f"k={args.k} t0={args.start_step} harmonize={args.harmonize}; Best-of-N M={cb['samples']} "
          f"(match_budget = LoTTS's {nl} NFE); max_batch {args.max_batch or 'automatic'}; "
          f"fastest of {len(runs)} run(s) each")
    print(f"LoTTS formula NFE {cl['formula']}")
    print()
    print(f"{'stage':20}{'NFE':>6}{'seconds':>10}{'s/NFE':>8}{'share':>8}{'beyond BoN rate':>17}")
    for name in STAGES:
        if name not in cl["seconds"]:
            continue
        secs, nfe = cl["seconds"][name], cl["nfe"].get(name, 0)
        extra = secs - nfe * bon_rate
        rate = f"{secs / nfe:.3f}" if nfe else "-"
        print(f"  {name:18}{nfe:>6}{secs:>10.2f}{rate:>8}{100 * secs / tl:>7.1f}%{extra:>+16.2f}s")
    other = tl - sum(cl["seconds"].values())
    print(f"  {'outside stages':18}{'':>6}{other:>10.2f}{'':>8}{100 * other / tl:>7.1f}%{other:>+16.2f}s")
    print(f"  {'LoTTS total':18}{nl:>6}{tl:>10.2f}{tl / nl:>8.3f}")
    for name in ("candidates", "decode + verifier"):
        secs, nfe = cb["seconds"][name], cb["nfe"].get(name, 0)
        rate = f"{secs / nfe:.3f}" if nfe else "-"
        print(f"  BoN {name:14}{nfe:>6}{secs:>10.2f}{rate:>8}{100 * secs / tb:>7.1f}%")
    print(f"  {'Best-of-N total':18}{nb:>6}{tb:>10.2f}{tb / nb:>8.3f}")
    print()
    ratio, granularity = tl / tb, nl / nb
    print(f"time ratio LoTTS / Best-of-N: {ratio:.3f} (goal <= 1.05)")
    # on a shared machine the load can change between the two runs; this process's CPU
    # time (all threads) is less sensitive to it than wall time
    cpu_ratio = cl["cpu_seconds"] / cb["cpu_seconds"]
    print(f"  (process CPU time: LoTTS {cl['cpu_seconds']:.1f} s, Best-of-N {cb['cpu_seconds']:.1f} s, "
          f"ratio {cpu_ratio:.3f}; per NFE {cpu_ratio / (nl / nb):.3f}; load average now "
          f"{load_average()})")
    print(f"NFE granularity factor (LoTTS NFE / Best-of-N NFE): {granularity:.4f} ({nl} / {nb})")
    print(f"per-NFE ratio (time ratio / granularity): {ratio / granularity:.3f} (goal <= 1.05)")
    print(f"probes' share of LoTTS time: {100 * cl['seconds']['probes'] / tl:.1f} % (goal <= 5 %)")
    print(f"decode + verifier share: LoTTS {100 * cl['seconds']['decode + verifier'] / tl:.1f} % "
          f"({cl['scored']} images), Best-of-N "
          f"{100 * cb['seconds']['decode + verifier'] / tb:.1f} % ({cb['scored']} images)")


if __name__ == "__main__":
    main()
