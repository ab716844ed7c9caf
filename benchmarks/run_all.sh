#!/usr/bin/env bash
# B1-B5 in one go, one results file (the scripts' stdout, appended as each step runs, so
# a step that is stopped still leaves what it printed; progress bars and logs go to a
# .log beside it). Usage:
#
#   COMFYUI_PATH=~/ComfyUI benchmarks/run_all.sh [gpu|cpu|sim] [RESULTS_FILE]
#
# gpu: GPU-sized settings at the precision ComfyUI picks there (fp16 SD1.5/SDXL, bf16
#      FLUX): B1 SD1.5 at 1024x1024 and 512x512, B1 FLUX-class DiT at 1024x1024, B5 SDXL
#      1024x1024 (8 masked steps), B2 at 512x512, B4 ViT-B-sized verifiers, B3 SDXL and
#      FLUX 1024x1024 attention shapes -- in that order, most wanted first. Every step is
#      capped (STEP_TIMEOUT_<step> seconds, below) and the whole run by TOTAL_BUDGET
#      (default 450 s): a step gets what is left when it starts, so the run ends inside
#      8 minutes on one large NVIDIA GPU whatever a step does.
# cpu: the settings of benchmarks/RESULTS.md on a 2-core CPU (B1 at 128x128, B2 (a)(c)
#      at 256 and (b) at 64, B5 at 1024x1024 with one masked step): about 2 hours on a
#      shared 2-core machine; every script runs under `nice -n 5`.
# sim: the gpu mode's steps, models and precisions (fp16 / bf16 forced) on the CPU, at
#      tiny sizes and 1/10 of every model's width (LOTTS_BENCH_SCALE=tiny): a check that
#      the GPU run's code paths run through (about 15-25 minutes on 2 shared cores).
# Default: gpu when nvidia-smi sees a GPU, else cpu. B1_ARGS, B1F_ARGS (the FLUX B1),
# B2_ARGS ... B5_ARGS replace a step's arguments (e.g. B1_ARGS="--size 64"); PYTHON picks
# the interpreter (default: ComfyUI's venv, else python3).
set -u
cd "$(dirname "$0")/.."
MODE=${1:-}
if [ -z "$MODE" ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then MODE=gpu; else MODE=cpu; fi
fi
: "${COMFYUI_PATH:=$HOME/ComfyUI}"
export COMFYUI_PATH PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-$COMFYUI_PATH/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
OUT=${2:-benchmarks/results-$(date +%Y%m%d-%H%M)-$MODE.txt}
LOG=${OUT%.txt}.log

NICE=()
case "$MODE" in
gpu)
    export LOTTS_BENCH_DEVICE=gpu
    TOTAL_BUDGET=${TOTAL_BUDGET:-450}
    # caps: what each step may take at most (expected on an H200: about half of it)
    CAP_B1=150 CAP_B1F=90 CAP_B5=60 CAP_B2=75 CAP_B4=45 CAP_B3=60
    B1=${B1_ARGS:---size 1024,512 --repeats 2}
    B1F=${B1F_ARGS:---model flux --size 1024 --repeats 2}
    B2=${B2_ARGS:---size 512 --pipeline-size 512 --repeats 3 --steps 4}
    B3=${B3_ARGS:-}
    B4=${B4_ARGS:---size base --repeats 5}
    B5=${B5_ARGS:---size 1024 --start-step 12 --repeats 3}
    ;;
sim)
    # one thread: on a busy machine two threads waiting on each other per op crawl
    export LOTTS_BENCH_DEVICE=cpu LOTTS_BENCH_SCALE=tiny OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
    NICE=(nice -n 5)
    TOTAL_BUDGET=${TOTAL_BUDGET:-3000}
    CAP_B1=900 CAP_B1F=600 CAP_B5=400 CAP_B2=600 CAP_B4=300 CAP_B3=600
    # half precision on a CPU is emulated (slow): the smallest plan with every stage
    SHORT="--steps 4 --start-step 2 --harmonize 1 --candidates 2 --k 1"
    B1=${B1_ARGS:---size 64 --dtype fp16 $SHORT}
    B1F=${B1F_ARGS:---model flux --size 64 --dtype bf16 $SHORT}
    B2=${B2_ARGS:---size 64 --pipeline-size 64 --steps 1 --dtype fp16}
    B3=${B3_ARGS:---cases sdxl_cross --no-default-kernel --dtype fp16}
    B4=${B4_ARGS:---size tiny --repeats 1}
    B5=${B5_ARGS:---size 256 --steps 6 --start-step 4 --end-step 6 --dtype fp16}
    ;;
cpu)
    export LOTTS_BENCH_DEVICE=cpu
    NICE=(nice -n 5)
    TOTAL_BUDGET=${TOTAL_BUDGET:-36000}
    CAP_B1=7200 CAP_B1F=7200 CAP_B5=3600 CAP_B2=3600 CAP_B4=3600 CAP_B3=3600
    B1=${B1_ARGS:---size 128}
    B1F=${B1F_ARGS:-SKIP}
    B2=${B2_ARGS:---size 256 --pipeline-size 64}
    B3=${B3_ARGS:-}
    B4=${B4_ARGS:---size base}
    B5=${B5_ARGS:---size 1024}
    ;;
*) echo "usage: $0 [gpu|cpu|sim] [RESULTS_FILE]" >&2; exit 2 ;;
esac

{
    echo "LoTTS benchmarks B1-B5 ($MODE settings), $(date -Iseconds)"
    echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (modified)')"
    if [ "$MODE" = gpu ]; then nvidia-smi -L 2>/dev/null; fi
    echo "python $PYTHON; COMFYUI_PATH $COMFYUI_PATH; load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null); budget ${TOTAL_BUDGET} s"
} > "$OUT"
: > "$LOG"

status=0
START=$SECONDS
run() {  # name, cap, script, args...
    local name=$1 cap=$2 script=$3; shift 3
    if [ "${1:-}" = SKIP ]; then return; fi
    local left=$((TOTAL_BUDGET - (SECONDS - START)))
    local limit=$(( cap < left ? cap : left ))
    echo >> "$OUT"
    if [ "$limit" -lt 10 ]; then
        echo "=== $name: not run (the run's budget of $TOTAL_BUDGET s is spent) ===" >> "$OUT"
        status=1
        return
    fi
    echo "=== $name: $script $* (at most $limit s) ===" >> "$OUT"
    local t0=$SECONDS
    "${NICE[@]}" timeout -k 5 "$limit" "$PYTHON" "benchmarks/$script" "$@" >> "$OUT" 2>> "$LOG"
    local rc=$?
    local why=""
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then why=" (stopped at its $limit s limit)"; fi
    echo "=== $name: exit $rc$why, $((SECONDS - t0)) s ===" >> "$OUT"
    [ $rc -eq 0 ] || status=1
}

# shellcheck disable=SC2086  # the argument strings are word-split on purpose
run B1 "$CAP_B1" b1_overhead.py $B1
run B1-FLUX "$CAP_B1F" b1_overhead.py $B1F
run B5 "$CAP_B5" b5_crop_refine.py $B5
run B2 "$CAP_B2" b2_localizer_cost.py $B2
run B4 "$CAP_B4" b4_verifier_batching.py $B4
run B3 "$CAP_B3" b3_attention_memory.py $B3
echo "total $((SECONDS - START)) s" >> "$OUT"
echo "results: $OUT (log: $LOG)"
exit $status
