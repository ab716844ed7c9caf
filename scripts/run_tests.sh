#!/usr/bin/env bash
# Run all three test tiers (core, host, e2e) against a ComfyUI checkout:
#
#   scripts/run_tests.sh [COMFYUI_DIR] [pytest args...]
#
# COMFYUI_DIR defaults to $COMFYUI_PATH, else ~/ComfyUI; the python is $COMFYUI_PYTHON,
# else COMFYUI_DIR/.venv/bin/python (scripts/dev_comfyui.sh --no-start makes one). Runs
#   COMFYUI_PATH=COMFYUI_DIR <that python> -m pytest tests [pytest args]
# Without ComfyUI, `python3 -m pytest tests` runs the core tier and skips the others.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMFY=${COMFYUI_PATH:-$HOME/ComfyUI}
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ] && [ -d "$1" ]; then
  COMFY=$1
  shift
fi
[ -f "$COMFY/main.py" ] || { echo "run_tests: $COMFY is not a ComfyUI checkout" >&2; exit 2; }
COMFY=$(cd "$COMFY" && pwd)
PY=${COMFYUI_PYTHON:-$COMFY/.venv/bin/python}
[ -x "$PY" ] || { echo "run_tests: no python at $PY (set COMFYUI_PYTHON or run scripts/dev_comfyui.sh --no-start)" >&2; exit 2; }

if ! "$PY" -c 'import pytest' 2>/dev/null; then
  echo "run_tests: installing pytest into $PY (torch pinned)" >&2
  "$PY" -m pip freeze | grep -iE '^(torch|torchvision|torchaudio)==' > "${TMPDIR:-/tmp}/lotts-run-tests-cons.txt"
  "$PY" -m pip install -q -c "${TMPDIR:-/tmp}/lotts-run-tests-cons.txt" pytest
fi

cd "$REPO"
export COMFYUI_PATH="$COMFY" COMFYUI_PYTHON="$PY"
echo "+ COMFYUI_PATH=$COMFY $PY -m pytest tests $*" >&2
exec "$PY" -m pytest tests "$@"
