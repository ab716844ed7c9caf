"""``python -m lotts_eval``: the command line of the evaluation runner."""

from __future__ import annotations

import argparse
import os
import sys

from .plot import PlotUnavailable, plot_results, summarize, summary_text
from .runner import (CSV_NAME, PLOT_NAME, EvalError, Settings, load_rows, parse_budgets,
                     parse_verifiers, plan, read_prompts, run_eval)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m lotts_eval",
        description="LoTTS vs Best-of-N at matched NFE on ComfyUI servers: a CSV of "
                    "(prompt, method, NFE, score per verifier) and a plot of mean score vs NFE. "
                    "Resumable: a rerun skips the rows already in OUT/results.csv.")
    ap.add_argument("--prompts", help="text file, one prompt per line (# comments, blank lines skipped)")
    ap.add_argument("--server", action="append", default=[], metavar="URL",
                    help="ComfyUI server address, e.g. http://127.0.0.1:8188; repeat to spread "
                         "the prompts over several servers")
    ap.add_argument("--ckpt", help="checkpoint name as CheckpointLoaderSimple lists it")
    ap.add_argument("--verifier", action="append", default=[], metavar="NAME[:weights]",
                    help="verifier (ImageReward, HPSv2, HPSv2.1, PickScore, CLIPScore, Aesthetic) and "
                         "optionally its weights in models/lotts_verifiers/; repeat for more. The "
                         "first one selects inside both methods, every one scores the chosen image")
    ap.add_argument("--budgets", default="1,2,4",
                    help="LoTTS candidate counts N, one curve point each (default 1,2,4)")
    ap.add_argument("--k", type=int, default=2, help="refinements per candidate (default 2)")
    ap.add_argument("--depth", type=int, default=1, help="LoTTS search depth (default 1)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cfg", type=float, default=7.0)
    ap.add_argument("--sampler", default="euler")
    ap.add_argument("--scheduler", default="normal")
    ap.add_argument("--start-step", type=int, default=None,
                    help="t0, the refinement start step (default steps // 2, the SD1.5 choice)")
    ap.add_argument("--harmonize-steps", type=int, default=3)
    ap.add_argument("--mask-ratio", type=float, default=0.5)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--negative", default="blurry, low quality, distorted")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"),
                    help="verifier compute dtype")
    ap.add_argument("--seed", type=int, default=0,
                    help="both methods sample from seeds seed, seed+1, ... for every prompt")
    ap.add_argument("--out", default="lotts_eval", help="output folder (results.csv, score_vs_nfe.png)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds one run may take before it is interrupted (default: no limit)")
    ap.add_argument("--dry-run", action="store_true",
                    help="print the NFE plan (LoTTS NFE and matched Best-of-N M per budget) and exit")
    ap.add_argument("--plot-only", action="store_true",
                    help="redraw the plot and summary from OUT/results.csv; no server needed")
    return ap


def settings_from(args) -> Settings:
    if not args.ckpt:
        raise EvalError("--ckpt is required (the checkpoint name on the server)")
    start = args.start_step if args.start_step is not None else args.steps // 2
    return Settings(ckpt=args.ckpt, verifiers=parse_verifiers(args.verifier),
                    budgets=parse_budgets(args.budgets), k=args.k, depth=args.depth,
                    steps=args.steps, cfg=args.cfg, sampler=args.sampler, scheduler=args.scheduler,
                    start_step=start, harmonize_steps=args.harmonize_steps, width=args.width,
                    height=args.height, seed=args.seed, negative=args.negative,
                    precision=args.precision, mask_ratio=args.mask_ratio)


def finish(out_dir: str, title: str) -> int:
    csv_path = os.path.join(out_dir, CSV_NAME)
    if not os.path.exists(csv_path):
        print(f"error: no {csv_path} yet", file=sys.stderr)
        return 1
    rows = load_rows(csv_path)
    print(summary_text(summarize(rows)))
    try:
        png = plot_results(rows, os.path.join(out_dir, PLOT_NAME), title)
        print(f"plot: {png}")
    except PlotUnavailable as e:
        print(f"note: {e}", file=sys.stderr)
    print(f"csv: {csv_path} ({len(rows)} rows)")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.plot_only:
            return finish(args.out, "")
        if not args.prompts:
            raise EvalError("--prompts FILE is required")
        s = settings_from(args)
        prompts = read_prompts(args.prompts)
        print(f"{len(prompts)} prompts x budgets {','.join(map(str, s.budgets))} x 2 methods on "
              f"{len(args.server)} server(s); {s.ckpt}, {s.width}x{s.height}, T={s.steps} "
              f"t0={s.start_step} k={s.k} harmonize={s.harmonize_steps} cfg={s.cfg} "
              f"{s.sampler}/{s.scheduler}; verifiers {', '.join(v[0] for v in s.verifiers)}")
        for p in plan(s):
            print(f"  N={p['budget']}: LoTTS {p['lotts_nfe']} NFE (formula) -> Best-of-N "
                  f"M={p['bon_samples']} ({p['bon_nfe']} NFE)")
        if args.dry_run:
            return 0
        out = run_eval(prompts, args.server, s, args.out, timeout=args.timeout)
        print(f"done: {out.written} new rows, {out.skipped} skipped (already done)")
        title = (f"{s.ckpt}, {len(prompts)} prompts, {s.width}x{s.height}, T={s.steps}, k={s.k}, "
                 f"{s.sampler}/{s.scheduler}, cfg {s.cfg}")
        return finish(args.out, title)
    except EvalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if "unreachable" in str(e) else 1
    except KeyboardInterrupt:
        print("interrupted: finished rows are in the CSV; rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
