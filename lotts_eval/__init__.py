"""Evaluation runner: LoTTS vs Best-of-N at matched NFE, through ComfyUI's HTTP API.

    python -m lotts_eval --prompts examples/prompts.txt --server http://127.0.0.1:8188 \\
        --ckpt v1-5-pruned-emaonly.safetensors --verifier ImageReward --budgets 1,2,4 --out eval_out

For every prompt and every budget N it queues a LoTTS Sampler run (N candidates, k
refinements) on a ComfyUI server, reads the NFE the run spent from its report, then
queues a LoTTS Best-of-N run matched to that NFE. Each method's chosen image is scored by
every requested verifier (the first one also selects). Rows go to ``OUT/results.csv`` as
soon as they finish (fsync'd); a rerun skips the rows already there. ``OUT/score_vs_nfe.png``
plots the mean score against NFE per method (the paper's Fig. 8) when matplotlib is
installed.

Nothing here imports ComfyUI: it talks to servers over HTTP (stdlib ``urllib``) and works
against any number of them at once (one worker thread per ``--server``).
"""

from .runner import (CSV_NAME, PLOT_NAME, EvalError, ResultsCSV, Settings, Server,
                     ServerUnreachable, bon_graph, expected_bon_samples, lotts_graph, parse_budgets,
                     parse_verifiers, plan, read_prompts, run_eval)
from .plot import PlotUnavailable, plot_results, summarize

__all__ = ["CSV_NAME", "PLOT_NAME", "EvalError", "ResultsCSV", "Settings", "Server",
           "ServerUnreachable", "bon_graph", "expected_bon_samples", "lotts_graph",
           "parse_budgets", "parse_verifiers", "plan", "read_prompts", "run_eval",
           "PlotUnavailable", "plot_results", "summarize"]
