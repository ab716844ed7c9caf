#!/usr/bin/env bash
# B1-B5 in one go, one results file (the scripts' stdout; their progress bars and logs
# go to a .log beside it). Usage:
#
#   COMFYUI_PATH=~/ComfyUI benchmarks/run_all.sh [gpu|cpu] [RESULTS_FILE]
#
# gpu: GPU-sized settings (SD1.5 at 512x512 for B1/B2, SDXL 1024x1024 for B5, the SDXL
#      and FLUX 1024x1024 attention shapes for B3, ViT-B-sized verifiers for B4), with
#      LOTTS_BENCH_DEVICE=gpu so ComfyUI uses the GPU; prepared to finish in about 10
#      minutes on one large NVIDIA GPU (each script is capped by STEP_TIMEOUT seconds).
# cpu: the settings of benchmarks/RESULTS.md on a 2-core CPU (B1 at 128x128, B2 (a)(c)
#      at 256 and (b) at 64, B5 at 1024x1024 with one masked step): about 2 hours on a
#      shared 2-core machine; every script runs under `nice -n 5`.
# Default: gpu when nvidia-smi sees a GPU, else cpu. B1_ARGS ... B5_ARGS replace a
# script's arguments (e.g. B1_ARGS="--size 64"); PYTHON picks the interpreter (default:
# ComfyUI's venv).
set -u
cd "$(dirname "$0")/.."
MODE=${1:-}
if [ -z "$MODE" ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then MODE=gpu; else MODE=cpu; fi
fi
: "${COMFYUI_PATH:=$HOME/ComfyUI}"
export COMFYUI_PATH
PYTHON=${PYTHON:-$COMFYUI_PATH/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
OUT=${2:-benchmarks/results-$(date +%Y%m%d-%H%M)-$MODE.txt}
LOG=${OUT%.txt}.log

case "$MODE" in
gpu)
    export LOTTS_BENCH_DEVICE=gpu
    NICE=()
    STEP_TIMEOUT=${STEP_TIMEOUT:-240}
    B1=${B1_ARGS:---size 512 --repeats 2}
    B2=${B2_ARGS:---size 512 --pipeline-size 512 --repeats 3 --steps 4}
    B3=${B3_ARGS:-}
    B4=${B4_ARGS:---size base --repeats 5}
    B5=${B5_ARGS:---size 1024 --start-step 12 --repeats 3}
    ;;
cpu)
    export LOTTS_BENCH_DEVICE=cpu
    NICE=(nice -n 5)
    STEP_TIMEOUT=${STEP_TIMEOUT:-3600}
    B1=${B1_ARGS:---size 128}
    B2=${B2_ARGS:---size 256 --pipeline-size 64}
    B3=${B3_ARGS:-}
    B4=${B4_ARGS:---size base}
    B5=${B5_ARGS:---size 1024}
    ;;
*) echo "usage: $0 [gpu|cpu] [RESULTS_FILE]" >&2; exit 2 ;;
esac

{
    echo "LoTTS benchmarks B1-B5 ($MODE settings), $(date -Iseconds)"
    echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (modified)')"
    if [ "$MODE" = gpu ]; then nvidia-smi -L 2>/dev/null; fi
    echo "python $PYTHON; COMFYUI_PATH $COMFYUI_PATH; load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
} > "$OUT"
: > "$LOG"

status=0
run() {  # name, script, args...
    local name=$1 script=$2; shift 2
    echo >> "$OUT"
    echo "=== $name: $script $* ===" >> "$OUT"
    local t0=$SECONDS
    "${NICE[@]}" timeout "$STEP_TIMEOUT" "$PYTHON" "benchmarks/$script" "$@" >> "$OUT" 2>> "$LOG"
    local rc=$?
    echo "=== $name: exit $rc, $((SECONDS - t0)) s ===" >> "$OUT"
    [ $rc -eq 0 ] || status=1
}

# shellcheck disable=SC2086  # the argument strings are word-split on purpose
run B3 b3_attention_memory.py $B3
run B4 b4_verifier_batching.py $B4
run B2 b2_localizer_cost.py $B2
run B5 b5_crop_refine.py $B5
run B1 b1_overhead.py $B1
echo "results: $OUT (log: $LOG)"
exit $status
