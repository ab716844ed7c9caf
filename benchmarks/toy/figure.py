"""The toy-world picture: candidate, planted defect, heatmap P, mask, refined -- one row
per case, for the node's defaults and for one of the localizer's options (localization.FIXES).

Toy world, not a real checkpoint: latents of a 1 M-parameter U-Net trained on coloured
shapes, shown through a fixed latent -> RGB map (toy_world.to_rgb).

    COMFYUI_PATH=~/ComfyUI nice -n 10 ~/ComfyUI/.venv/bin/python benchmarks/toy/figure.py
"""

from __future__ import annotations

import argparse
import os

import toy_env

toy_env.setup()

import torch  # noqa: E402

import adapter  # noqa: E402
import localization as L  # noqa: E402
import toy_models as tm  # noqa: E402
import toy_world as tw  # noqa: E402

STEPS, PROBE, RATIO, T0, HARMONIZE, CFG = 20, 15, 0.2, 10, 3, 4.0


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", default="16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cases", default="noise:0,blotch:1,smear:2")
    ap.add_argument("--settings", default="differing tokens + auto",
                    help="a name from localization.FIXES shown next to the node's defaults")
    ap.add_argument("--milestone", type=int, default=None)
    ap.add_argument("--out", default=os.path.join(toy_env.ROOT, "docs", "images",
                                                  "toy_world_localization.png"))
    return ap.parse_args()


def refine_with(model, clip, case, mask):
    positive = adapter.encode(clip, case.caption)
    negative = adapter.encode(clip, "")
    end = STEPS - HARMONIZE
    out = adapter.refine(model, positive, negative, case.latent.unsqueeze(0), mask.unsqueeze(0),
                         7, 1, STEPS, CFG, T0, end)
    return adapter.harmonize(model, positive, negative, out, 7, STEPS, CFG, end)[0]


def main():
    a = parse()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    path = (os.path.join(tm.run_dir(a.variant, a.seed), f"unet_ema_{a.milestone}.safetensors")
            if a.milestone else None)
    model, clip = tm.load_trained(a.variant, a.seed, path), tm.toy_clip()
    size = tm.latent_size(a.variant)
    colorize = adapter.core("preview").colorize
    rows = []
    with torch.inference_mode():
        for spec in a.cases.split(","):
            kind, idx = spec.split(":")
            case = tw.benchmark_cases(9000 + a.seed, int(idx) + 1, size, kind)[int(idx)]
            rec = adapter.capture(model, clip, case.caption, case.latent.unsqueeze(0), PROBE,
                                  STEPS, seed=0)[0]
            subject = L.subject_ids(clip, case.caption)
            for label, s in (("node defaults", L.NODE), (a.settings, L.FIXES[a.settings])):
                p, _ = L.score_map(rec, s, subject)
                mask = L.grid_mask(p, RATIO, size)[0]
                hit, _ = L.hit_iou(mask, case.defect_mask)
                refined = refine_with(model, clip, case, mask)
                rows.append((f"{kind}\n{label}\nhit {hit:.2f}", case, colorize(p)[0], mask, refined))
    titles = ["candidate", "planted defect", "heatmap P", f"mask (r={RATIO})", "refined"]
    fig, axes = plt.subplots(len(rows), 5, figsize=(7.2, 1.45 * len(rows)), dpi=100)
    for r, (label, case, heat, mask, refined) in enumerate(rows):
        cand = tw.to_rgb(case.latent)
        defect = cand * 0.35 + 0.65 * case.defect_mask.float().unsqueeze(-1)
        pics = [cand, defect, heat, mask.unsqueeze(-1).expand(-1, -1, 3), tw.to_rgb(refined)]
        for c, pic in enumerate(pics):
            ax = axes[r, c]
            ax.imshow(pic.clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=6.5, rotation=0, ha="right", va="center")
    fig.suptitle(f"TOY WORLD (not a real checkpoint): {size}x{size} latents, toy U-Net seed "
                 f"{a.seed}, probe {PROBE}/{STEPS}", fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    fig.savefig(a.out)
    print(f"wrote {a.out} ({os.path.getsize(a.out) // 1024} KiB)")


if __name__ == "__main__":
    main()
