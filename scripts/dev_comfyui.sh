#!/usr/bin/env bash
# Set up and start ComfyUI with this pack, for development. One command:
#
#   scripts/dev_comfyui.sh [COMFYUI_DIR] [main.py args...]
#
# COMFYUI_DIR defaults to $COMFYUI_PATH, else ~/ComfyUI. Steps (each skipped when done):
#   1. clone ComfyUI into COMFYUI_DIR if it does not exist ($COMFYUI_REPO, $COMFYUI_REF);
#   2. find ComfyUI's Python and use it as it is: $COMFYUI_PYTHON, else COMFYUI_DIR/.venv or
#      COMFYUI_DIR/venv (bin/python, or Scripts/python.exe on Windows), else the portable
#      build's python_embeded beside COMFYUI_DIR. Only when there is none, create
#      COMFYUI_DIR/.venv with torch ($TORCH_SPEC) and ComfyUI's requirements under a torch
#      constraint -- never a second multi-GB torch install next to an existing one;
#   3. install the pack's requirements.txt, constrained to the torch that is installed
#      (an unconstrained install can swap torch for another build plus GBs of CUDA wheels);
#   4. link this repo into <custom_nodes>/comfyui_lotts (COMFYUI_DIR/custom_nodes, or
#      DIR/custom_nodes when you pass --base-directory DIR);
#   5. exec main.py with your args, adding --cpu when torch sees no CUDA device.
# A failing pip step stops with one "[dev_comfyui] error: ..." line naming the step, pip's
# last error and its full log ($LOTTS_DEV_LOGS, default ${TMPDIR:-/tmp}/lotts-dev).
#
# Environment:
#   COMFYUI_PYTHON    use this Python (no venv is created)
#   PYTHON            interpreter that creates the venv (default: python3.11, else python3)
#   TORCH_SPEC        what to install as torch when creating the venv
#                     (default "torch==2.14.1 torchvision==0.29.1", the pair tested here)
#   TORCH_INDEX_URL   the only index torch is installed from. Default: the PyTorch CPU index
#                     when no NVIDIA GPU is visible, pip's own configuration otherwise. Set
#                     it empty to use pip's configuration anyway. With an index, pip runs with
#                     no configuration files and no PIP_* variables (--isolated,
#                     PIP_CONFIG_FILE=/dev/null): a configured extra index cannot slip a CUDA
#                     build in. On a machine without an NVIDIA GPU the script then checks
#                     that the installed torch is a CPU build, and stops if it is not.
#   LOTTS_DEV_DRY=1   (or --no-start as the first main.py arg) set up, print the command,
#                     do not start.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACK_NAME=comfyui_lotts

COMFY=${COMFYUI_PATH:-$HOME/ComfyUI}
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  COMFY=$1
  shift
fi
DRY=${LOTTS_DEV_DRY:-0}
ARGS=()
for a in "$@"; do
  if [ "$a" = "--no-start" ]; then DRY=1; else ARGS+=("$a"); fi
done

say() { printf '[dev_comfyui] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# 1. ComfyUI source --------------------------------------------------------------------
if [ ! -e "$COMFY" ]; then
  say "cloning ComfyUI into $COMFY"
  git clone "${COMFYUI_REPO:-https://github.com/comfyanonymous/ComfyUI}" "$COMFY"
  if [ -n "${COMFYUI_REF:-}" ]; then git -C "$COMFY" checkout -q "$COMFYUI_REF"; fi
fi
[ -f "$COMFY/main.py" ] && [ -f "$COMFY/comfy/model_management.py" ] \
  || die "$COMFY exists but is not a ComfyUI checkout (no main.py / comfy/)"
COMFY=$(cd "$COMFY" && pwd)

has_nvidia_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

# 2. ComfyUI's python ------------------------------------------------------------------
LOGS=${LOTTS_DEV_LOGS:-${TMPDIR:-/tmp}/lotts-dev}
mkdir -p "$LOGS"
CONS="$LOGS/torch-constraints.txt"

# pip_step WHAT HINT pip-args...: run pip quietly into a log; on failure one error line.
pip_step() {
  local what=$1 hint=$2 log
  shift 2
  log="$LOGS/pip-$(printf '%s' "$what" | tr -c 'A-Za-z0-9' '-').log"
  if ! "$PY" -m pip "$@" >"$log" 2>&1; then
    local last
    last=$(grep -E '^(ERROR|error)' "$log" | tail -n 1 || true)
    die "installing $what failed${last:+ (pip: $last)}; full pip output in $log. $hint"
  fi
}

find_python() {
  if [ -n "${COMFYUI_PYTHON:-}" ]; then printf '%s\n' "$COMFYUI_PYTHON"; return; fi
  local c
  for c in "$COMFY/.venv/bin/python" "$COMFY/venv/bin/python" \
           "$COMFY/.venv/Scripts/python.exe" "$COMFY/venv/Scripts/python.exe" \
           "$COMFY/../python_embeded/python.exe" "$COMFY/../python_embeded/python"; do
    if [ -x "$c" ]; then printf '%s\n' "$c"; return; fi
  done
}

has_nvidia_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }
torch_build() { "$PY" -c 'import torch; print(torch.__version__, torch.version.cuda or "cpu")' 2>/dev/null; }

PY=$(find_python)
if [ -n "$PY" ]; then
  say "using ComfyUI's python $PY ($(torch_build || echo 'no torch!'))"
else
  VENV="$COMFY/.venv"
  PY="$VENV/bin/python"
  BASE_PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
  say "no ComfyUI python found: creating $VENV with $BASE_PY"
  "$BASE_PY" -m venv "$VENV" || die "creating $VENV with $BASE_PY failed: install python3-venv, or set PYTHON"
  TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
  if [ -z "${TORCH_INDEX_URL+set}" ] && ! has_nvidia_gpu; then
    TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
  fi
  say "installing $TORCH_SPEC${TORCH_INDEX_URL:+ from $TORCH_INDEX_URL only}"
  hint="Check the network and the index, or set TORCH_SPEC / TORCH_INDEX_URL (README, 'Development'); then remove $VENV and rerun."
  # shellcheck disable=SC2086  # TORCH_SPEC is a list of requirement specifiers
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    PIP_CONFIG_FILE=/dev/null pip_step torch "$hint" install --isolated --index-url "$TORCH_INDEX_URL" $TORCH_SPEC
  else
    pip_step torch "$hint" install $TORCH_SPEC
  fi
  if ! has_nvidia_gpu && [ "$(torch_build | cut -d' ' -f2)" != "cpu" ]; then
    die "the torch installed in $VENV is a CUDA build ($(torch_build)) on a machine without an NVIDIA GPU: remove $VENV and rerun without TORCH_INDEX_URL (the CPU index is the default here)"
  fi
  "$PY" -m pip freeze | grep -iE '^(torch|torchvision|torchaudio)==' > "$CONS"
  # ComfyUI's requirements minus torch/torchvision/torchaudio (exact names: torchsde stays).
  grep -v -E '^\s*(#|$)' "$COMFY/requirements.txt" \
    | grep -v -i -E '^(torch|torchvision|torchaudio)\s*([<>=!~;[].*)?$' > "$LOGS/comfy-requirements.txt"
  say "installing ComfyUI's requirements (torch pinned)"
  pip_step "ComfyUI's requirements" "Fix the cause pip names and rerun (the venv is kept)." \
    install -c "$CONS" -r "$LOGS/comfy-requirements.txt"
fi
"$PY" -c 'import torch' 2>/dev/null \
  || die "$PY cannot import torch: install torch into ComfyUI's python (README, 'Development'), or set COMFYUI_PYTHON to one that has it"
"$PY" -m pip freeze | grep -iE '^(torch|torchvision|torchaudio)==' > "$CONS" \
  || die "$PY -m pip freeze lists no torch: install torch with pip into ComfyUI's python, or set COMFYUI_PYTHON"

# 3. the pack's requirements (idempotent; never moves torch) ---------------------------
pip_step "$REPO/requirements.txt" "Fix the cause pip names and rerun; the pack needs only numpy, einops, safetensors, transformers and tokenizers." \
  install --disable-pip-version-check -c "$CONS" -r "$REPO/requirements.txt"

# 4. link the pack into custom_nodes ---------------------------------------------------
NODES_DIR="$COMFY/custom_nodes"
for ((i = 0; i < ${#ARGS[@]}; i++)); do
  case "${ARGS[$i]}" in
    --base-directory) NODES_DIR="${ARGS[$((i + 1))]:?--base-directory needs a value}/custom_nodes" ;;
    --base-directory=*) NODES_DIR="${ARGS[$i]#--base-directory=}/custom_nodes" ;;
  esac
done
mkdir -p "$NODES_DIR"
LINK="$NODES_DIR/$PACK_NAME"
if [ "$(cd "$REPO/.." && pwd)" = "$(cd "$NODES_DIR" && pwd)" ]; then
  say "the repo already sits in $NODES_DIR"
elif [ -L "$LINK" ]; then
  if [ "$(readlink -f "$LINK")" != "$(readlink -f "$REPO")" ]; then
    say "relinking $LINK (was -> $(readlink "$LINK"))"
    ln -sfn "$REPO" "$LINK"
  fi
elif [ -e "$LINK" ]; then
  die "$LINK exists and is not a link to this repo: move it away first"
else
  ln -s "$REPO" "$LINK"
  say "linked $LINK -> $REPO"
fi

# 5. start --------------------------------------------------------------------------------
CMD=("$PY" main.py)
case " ${ARGS[*]-} " in
  *" --cpu "*) ;;
  *) if [ "$("$PY" -c 'import torch; print(torch.cuda.is_available())' 2>/dev/null)" != "True" ]; then
       CMD+=(--cpu)
     fi ;;
esac
CMD+=("${ARGS[@]+"${ARGS[@]}"}")
say "cd $COMFY && ${CMD[*]}"
if [ "$DRY" = "1" ]; then
  exit 0
fi
cd "$COMFY"
exec "${CMD[@]}"
