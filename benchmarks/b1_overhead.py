"""B1: what the LoTTS pipeline costs beyond its NFE -- wall time of one LoTTS Sampler run
divided by an NFE-matched LoTTS Best-of-N run, same model, size, sampler, in one process.

ComfyUI in-process (the pack loaded through ComfyUI's own custom-node loader), the real
SD1.5 U-Net architecture (comfy/model_detection.py's SD15 config: 320 channels, 860 M
parameters) with random weights, a 768-wide 1-layer CLIP with the real SD1 tokenizer, the
TAESD VAE and a tiny ImageReward verifier (random weights). Localizing (attention capture,
probes), masked refinement, harmonization, decoding and scoring all count in the LoTTS time;
Best-of-N pays its own decoding and scoring. Goal: time ratio <= 1.05. NFE matching is only
exact to within one Best-of-N sample, so the per-NFE ratio is printed too. Not a test:

    COMFYUI_PATH=~/ComfyUI ~/ComfyUI/.venv/bin/python benchmarks/b1_overhead.py \
        [--size 128] [--candidates 2] [--k 2] [--steps 8] [--start-step 4] [--harmonize 2] [--repeats 1]

On 2 CPU cores the full-size U-Net costs ~7-12 s per NFE at 256x256 (a T=8 pair of runs
would take ~25 min), so the default is 128x128 (~4x cheaper per NFE); pass --size 256 on a
faster machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "host"),
                os.path.join(ROOT, "tests", "core")]

import comfy_host  # noqa: E402

_path, _reason = comfy_host._import_comfyui()
if _path is None:
    sys.exit(f"B1 needs ComfyUI: {_reason}")

import torch  # noqa: E402

import folder_paths  # noqa: E402

import verifier_fixtures as vf  # noqa: E402
from tiny_models import tiny_vae  # noqa: E402
from bench_common import clip_768, cpu_model, sd15_unet  # noqa: E402

PROMPT = "a photo of a red cat sitting on a wooden chair"
NEGATIVE = "blurry, low quality"

def nfe_total(report: str) -> int:
    return int(re.search(r"NFE total:\s*(\d+)", report).group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=128, help="image side in pixels (latent = size/8)")
    ap.add_argument("--candidates", type=int, default=2, help="LoTTS N")
    ap.add_argument("--k", type=int, default=2, help="LoTTS refinements per candidate")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--start-step", type=int, default=4, help="t0")
    ap.add_argument("--harmonize", type=int, default=2)
    ap.add_argument("--cfg", type=float, default=7.0)
    ap.add_argument("--sampler", default="euler")
    ap.add_argument("--scheduler", default="normal")
    ap.add_argument("--repeats", type=int, default=1,
                    help="timed LoTTS/Best-of-N pairs (alternating); the best of each is used")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t_build = time.perf_counter()
    pack = comfy_host.load_pack()
    node = lambda name: pack.NODE_CLASS_MAPPINGS[name]()  # noqa: E731
    model, clip, vae = sd15_unet(), clip_768(), tiny_vae()
    vroot = tempfile.mkdtemp(prefix="b1_verifiers_")
    vf.make_imagereward(os.path.join(vroot, "ImageReward"))
    folder_paths.add_model_folder_path("lotts_verifiers", vroot, is_default=True)
    (verifier,) = node("LoTTSVerifierLoader").load("ImageReward", "ImageReward/ImageReward.pt", "fp32")
    unet_params = sum(p.numel() for p in model.model.diffusion_model.parameters())
    build_s = time.perf_counter() - t_build

    with torch.inference_mode():
        encode = lambda t: clip.encode_from_tokens_scheduled(clip.tokenize(t))  # noqa: E731
        pos, neg = encode(PROMPT), encode(NEGATIVE)
        latent = {"samples": torch.zeros(1, 4, args.size // 8, args.size // 8)}

        def lotts():
            out = node("LoTTSSampler").run(
                model, clip, vae, pos, neg, PROMPT, verifier, latent, args.seed, args.candidates,
                args.k, 1, args.steps, args.cfg, args.sampler, args.scheduler, args.start_step,
                args.harmonize, 0.5, 0.5)
            return out["result"][4]

        def bon(report):
            out = node("LoTTSBestOfN").run(
                model, pos, neg, latent, args.seed, args.steps, args.cfg, args.sampler,
                args.scheduler, verifier, PROMPT, vae, 1, report)
            return out["result"][3]

        def timed(fn, *a):
            t = time.perf_counter()
            r = fn(*a)
            return time.perf_counter() - t, r

        # warm-up: one short pass through both nodes (allocator, first-call costs)
        warm = node("LoTTSBestOfN").run(model, pos, neg, latent, args.seed, 1, args.cfg,
                                        args.sampler, args.scheduler, verifier, PROMPT, vae, 1, "")
        del warm
        lotts_times, bon_times = [], []
        for _ in range(max(1, args.repeats)):
            tl, lotts_report = timed(lotts)
            tb, bon_report = timed(bon, lotts_report)
            lotts_times.append(tl)
            bon_times.append(tb)

    tl, tb = min(lotts_times), min(bon_times)
    nl, nb = nfe_total(lotts_report), nfe_total(bon_report)
    m = int(re.search(r"\bM=(\d+)", bon_report).group(1))
    print("B1 overhead: LoTTS Sampler vs NFE-matched LoTTS Best-of-N, in-process ComfyUI")
    print(f"date {datetime.date.today().isoformat()}; CPU {cpu_model()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), python "
          f"{platform.python_version()}")
    print(f"model: SD1.5 U-Net (real architecture, 320 channels, {unet_params / 1e6:.0f} M params, "
          f"random weights, fp32), CLIP 768-wide 1 layer, TAESD VAE, tiny ImageReward verifier; "
          f"built in {build_s:.0f} s")
    print(f"setup: {args.size}x{args.size} (latent {args.size // 8}x{args.size // 8}), "
          f"{args.sampler}/{args.scheduler}, T={args.steps}, cfg={args.cfg}; LoTTS N={args.candidates} "
          f"k={args.k} t0={args.start_step} harmonize={args.harmonize}; Best-of-N M={m} "
          f"(match_budget = the LoTTS report); best of {len(lotts_times)} run(s) each")
    print()
    print(lotts_report)
    print()
    print(bon_report)
    print()
    print(f"{'':12}{'seconds':>10}{'NFE':>8}{'ms/NFE':>10}")
    print(f"{'LoTTS':12}{tl:>10.2f}{nl:>8}{tl / nl * 1e3:>10.1f}")
    print(f"{'Best-of-N':12}{tb:>10.2f}{nb:>8}{tb / nb * 1e3:>10.1f}")
    print(f"time ratio LoTTS / Best-of-N      = {tl / tb:.3f}   (goal <= 1.05; NFE ratio {nl / nb:.3f})")
    print(f"per-NFE ratio (s/NFE LoTTS / BoN) = {(tl / nl) / (tb / nb):.3f}")


if __name__ == "__main__":
    main()
