"""B1: what the LoTTS pipeline costs beyond its NFE -- wall time of one LoTTS Sampler run
divided by an NFE-matched LoTTS Best-of-N run, same model, size and sampler, one process.

ComfyUI in-process (the pack loaded through ComfyUI's own custom-node loader) and a real
architecture with random weights at the precision ComfyUI picks for it on this device
(``--dtype auto``: fp16 for SD1.5 and bf16 for FLUX on a recent NVIDIA GPU, fp32 on a
CPU; the chosen dtype is printed):

* ``--model sd15`` (default): the SD1.5 U-Net (comfy/model_detection.py's SD15 config, 860 M
  parameters), a 768-wide 1-layer CLIP with the real SD1 tokenizer, the TAESD VAE and a
  tiny ImageReward verifier. Defaults are the paper's setting: T=20, N=4, k=2, t0=10,
  3 harmonization steps, cfg 7, euler/normal.
* ``--model flux``: a FLUX-class DiT (FLUX.1's width 3072, 2 double + 4 single blocks,
  guidance-distilled: cfg 1, guidance 3.5), FLUX's real CLIP-L and T5 tokenizers with tiny
  encoders, TAESD with 16 latent channels; euler/simple.

Every figure comes from the nodes' cost data (``ui["lotts_cost"][0]``: NFE and seconds
per stage, "decode + verifier" included) and the wall time of each node call:

* time ratio LoTTS / Best-of-N (goal <= 1.05);
* NFE granularity factor = LoTTS NFE / Best-of-N NFE: Best-of-N's M is a whole number
  of samples, so the NFE match is exact only to within one sample;
* per-NFE ratio = time ratio / granularity factor (goal <= 1.05);
* probes' share of LoTTS's wall time (goal <= 5 %) and decode + verifier's share;
* per stage: seconds, s/NFE, and the seconds beyond Best-of-N's s/NFE (what costs what);
* then one instrumented run of each (benchmarks/host_audit.py, ``--no-audit`` skips it):
  per stage the model calls and their batch sizes, the host-device synchronisation
  points per model call, model loads, garbage collections, and host CPU time -- LoTTS and
  Best-of-N side by side, and the stages where LoTTS's calls are smaller or wait more.

    COMFYUI_PATH=~/ComfyUI ~/ComfyUI/.venv/bin/python benchmarks/b1_overhead.py \
        [--model sd15|flux] [--size 128[,256...]] [--dtype auto] [--candidates 4] [--k 2] \
        [--steps 20] [--start-step 10] [--harmonize 3] [--cfg 7] [--repeats 1]

Several sizes (``--size 512,1024``) share one model build; each size's section is printed
as soon as it is measured. On 2 shared CPU cores the full-size U-Net costs ~1-4 s per NFE
at 128x128 (a pair of runs at the paper's setting is 652 NFE: 20-40 min).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import (DTYPES, GPU, TINY, clip_768, encode, flux_clip, flux_dit,  # noqa: E402
                          load_average, machine_line, run_node, sd15_unet, start_comfyui,
                          synchronize, tiny_imagereward, unet_params)

PROMPT = "a photo of a red cat sitting on a wooden chair"
NEGATIVE = "blurry, low quality"
STAGES = ("candidates", "probes", "refinement", "harmonization", "decode + verifier")


MODELS = {
    # name: (builder, text encoder, latent channels, default cfg, scheduler, description)
    "sd15": (sd15_unet, clip_768, 4, 7.0, "normal",
             "SD1.5 U-Net (real architecture, {p} M params, random weights, {d}), CLIP 768-wide "
             "1 layer, TAESD VAE, tiny ImageReward verifier"),
    "flux": (flux_dit, flux_clip, 16, 1.0, "simple",
             "FLUX-class DiT (width 3072, 2 double + 4 single blocks, {p} M params, random "
             "weights, {d}, guidance 3.5), FLUX tokenizers with tiny CLIP-L/T5, TAESD VAE (16 "
             "channels), tiny ImageReward verifier"),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="sd15")
    ap.add_argument("--size", default="128",
                    help="image side(s) in pixels, comma-separated (latent = size/8)")
    ap.add_argument("--dtype", choices=DTYPES, default="auto",
                    help="auto: what ComfyUI picks for this model on this device")
    ap.add_argument("--candidates", type=int, default=4, help="LoTTS N")
    ap.add_argument("--k", type=int, default=2, help="LoTTS refinements per candidate")
    ap.add_argument("--steps", type=int, default=20, help="T")
    ap.add_argument("--start-step", type=int, default=10, help="t0")
    ap.add_argument("--harmonize", type=int, default=3)
    ap.add_argument("--cfg", type=float, default=None, help="default: 7 (sd15), 1 (flux)")
    ap.add_argument("--sampler", default="euler")
    ap.add_argument("--scheduler", default=None, help="default: normal (sd15), simple (flux)")
    ap.add_argument("--max-batch", type=int, default=0, help="both nodes' max_batch (0 = automatic)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="timed LoTTS/Best-of-N pairs (ABBA order); the fastest of each is used")
    ap.add_argument("--no-audit", action="store_true",
                    help="skip the instrumented run (model calls, syncs, loads per stage)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sizes = [int(x) for x in args.size.split(",") if x.strip()]
    build, text_encoder, channels, cfg, scheduler, described = MODELS[args.model]
    args.cfg = cfg if args.cfg is None else args.cfg
    args.scheduler = args.scheduler or scheduler

    pack = start_comfyui()
    import torch
    from tiny_models import tiny_vae

    t_build = time.perf_counter()
    model, dtype_label = build(dtype=args.dtype)
    clip, vae = text_encoder(), tiny_vae(channels)
    verifier = tiny_imagereward()
    build_s = time.perf_counter() - t_build
    with torch.inference_mode():
        pos, neg = encode(clip, PROMPT), encode(clip, NEGATIVE)
    if args.model == "flux":  # FLUX-dev's guidance (FluxGuidance), on both conditionings
        pos = [[t, dict(o, guidance=3.5)] for t, o in pos]
        neg = [[t, dict(o, guidance=3.5)] for t, o in neg]
    print("B1 overhead: LoTTS Sampler vs NFE-matched LoTTS Best-of-N, in-process ComfyUI",
          flush=True)
    print(f"machine: {machine_line()}")
    print(f"model: {described.format(p=round(unet_params(model) / 1e6), d=dtype_label)}; "
          f"built in {build_s:.0f} s" + ("; TINY SCALE (code paths only: figures mean nothing)"
                                          if TINY else ""), flush=True)
    for size in sizes:
        measure(args, size, model, clip, vae, verifier, pos, neg, channels, pack)


def measure(args, size, model, clip, vae, verifier, pos, neg, channels, pack):
    import torch
    latent = {"samples": torch.zeros(1, channels, size // 8, size // 8)}

    def lotts(n, k, steps, t0, harmonize, m=model):
        return run_node("LoTTSSampler", m, clip, vae, pos, neg, PROMPT, verifier, latent,
                        args.seed, n, k, 1, steps, args.cfg, args.sampler, args.scheduler,
                        t0, harmonize, 0.5, 0.5, max_batch=args.max_batch)

    def bon(steps, budget, m=model):
        return run_node("LoTTSBestOfN", m, pos, neg, latent, args.seed, steps, args.cfg,
                        args.sampler, args.scheduler, verifier, PROMPT, vae, 1, str(budget),
                        max_batch=args.max_batch)

    def timed(fn, *a, **k):
        synchronize()
        t, cpu = time.perf_counter(), time.process_time()
        out = fn(*a, **k)
        synchronize()
        cost = dict(out.ui["lotts_cost"][0], cpu_seconds=time.process_time() - cpu)
        return time.perf_counter() - t, cost

    with torch.inference_mode():
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

    print()
    print(f"setup: {size}x{size} (latent {size // 8}x{size // 8}), "
          f"{args.sampler}/{args.scheduler}, T={args.steps}, cfg={args.cfg}; LoTTS N={args.candidates} "
          f"k={args.k} t0={args.start_step} harmonize={args.harmonize}; Best-of-N M={cb['samples']} "
          f"(match_budget = LoTTS's {nl} NFE); max_batch {args.max_batch or 'automatic'}; "
          f"fastest of {len(runs)} run(s) each; warm-up {warm_s:.0f} s")
    print(f"LoTTS formula NFE {cl['formula']}")
    print()
    print(f"{'stage':20}{'NFE':>6}{'seconds':>10}{'s/NFE':>8}{'share':>8}{'beyond BoN rate':>17}")
    for name in STAGES:
        if name not in cl["seconds"]:
            continue
        secs, nfe = cl["seconds"][name], cl["nfe"].get(name, 0)
        extra = secs - nfe * bon_rate
        rate = f"{secs / nfe:.4f}" if nfe else "-"
        print(f"  {name:18}{nfe:>6}{secs:>10.3f}{rate:>8}{100 * secs / tl:>7.1f}%{extra:>+16.3f}s")
    other = tl - sum(cl["seconds"].values())
    bon_other = tb - sum(cb["seconds"].values())
    print(f"  {'outside stages':18}{'':>6}{other:>10.3f}{'':>8}{100 * other / tl:>7.1f}%{other:>+16.3f}s")
    print(f"  {'LoTTS total':18}{nl:>6}{tl:>10.3f}{tl / nl:>8.4f}")
    for name in ("candidates", "decode + verifier"):
        secs, nfe = cb["seconds"][name], cb["nfe"].get(name, 0)
        rate = f"{secs / nfe:.4f}" if nfe else "-"
        print(f"  BoN {name:14}{nfe:>6}{secs:>10.3f}{rate:>8}{100 * secs / tb:>7.1f}%")
    print(f"  {'BoN outside stages':18}{'':>6}{bon_other:>10.3f}{'':>8}{100 * bon_other / tb:>7.1f}%")
    print(f"  {'Best-of-N total':18}{nb:>6}{tb:>10.3f}{tb / nb:>8.4f}")
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
    print(f"per-NFE ratio (time ratio / granularity): {ratio / granularity:.3f} (goal <= 1.05)"
          f"  [{args.model} {size}x{size}]")
    print(f"probes' share of LoTTS time: {100 * cl['seconds']['probes'] / tl:.1f} % (goal <= 5 %)"
          f"  [{args.model} {size}x{size}]")
    print(f"decode + verifier share: LoTTS {100 * cl['seconds']['decode + verifier'] / tl:.1f} % "
          f"({cl['scored']} images), Best-of-N "
          f"{100 * cb['seconds']['decode + verifier'] / tb:.1f} % ({cb['scored']} images)",
          flush=True)
    if not args.no_audit:
        audit(args, lotts, bon, budget, model, pack)


def audit(args, lotts, bon, budget, model, pack):
    """One instrumented run of each node (benchmarks/host_audit.py), printed side by side."""
    import torch
    import host_audit
    summaries = {}
    with torch.inference_mode():
        for name, fn, a in (("lotts", lotts, (args.candidates, args.k, args.steps,
                                              args.start_step, args.harmonize)),
                            ("bon", bon, (args.steps, budget))):
            au = host_audit.Audit(pack, GPU and torch.cuda.is_available())
            counted = au.counting(model)
            with au:
                fn(*a, m=counted)
            summaries[name] = au.summary()
    print()
    for line in host_audit.table(summaries["lotts"], summaries["bon"],
                                 GPU and torch.cuda.is_available()):
        print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
