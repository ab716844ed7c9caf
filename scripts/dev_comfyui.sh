#!/usr/bin/env bash
# Set up and start ComfyUI with this pack, for development. One command:
#
#   scripts/dev_comfyui.sh [COMFYUI_DIR] [main.py args...]
#
# COMFYUI_DIR defaults to $COMFYUI_PATH, else ~/ComfyUI. Steps (each skipped when done):
#   1. clone ComfyUI into COMFYUI_DIR if it does not exist ($COMFYUI_REPO, $COMFYUI_REF);
#   2. create COMFYUI_DIR/.venv if absent, with torch ($TORCH_SPEC) and ComfyUI's
#      requirements under a torch constraint; an existing venv is used as it is;
#   3. install the pack's requirements.txt, constrained to the torch that is installed
#      (an unconstrained install can swap torch for another build plus GBs of CUDA wheels);
#   4. link this repo into <custom_nodes>/comfyui_lotts (COMFYUI_DIR/custom_nodes, or
#      DIR/custom_nodes when you pass --base-directory DIR);
#   5. exec main.py with your args, adding --cpu when torch sees no CUDA device.
#
# Environment:
#   PYTHON            interpreter that creates the venv (default: python3.11, else python3)
#   TORCH_SPEC        what to install as torch when creating the venv
#                     (default "torch==2.14.1 torchvision==0.29.1", the pair tested here)
#   TORCH_INDEX_URL   index for TORCH_SPEC. Default: the PyTorch CPU index when no NVIDIA
#                     GPU is visible (never a CUDA build on a CPU-only machine unless asked),
#                     pip's own index otherwise. Set it empty to use pip's index anyway
#                     (e.g. a machine whose PyPI mirror holds the wheels).
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

# 2. venv --------------------------------------------------------------------------------
VENV="$COMFY/.venv"
PY="$VENV/bin/python"
CONS="$VENV/lotts-torch-constraints.txt"
if [ ! -x "$PY" ]; then
  BASE_PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
  say "creating $VENV with $BASE_PY"
  "$BASE_PY" -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
  TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
  if [ -z "${TORCH_INDEX_URL+set}" ] && ! has_nvidia_gpu; then
    TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
  fi
  say "installing $TORCH_SPEC${TORCH_INDEX_URL:+ from $TORCH_INDEX_URL}"
  # shellcheck disable=SC2086  # TORCH_SPEC is a list of requirement specifiers
  "$PY" -m pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} $TORCH_SPEC
  "$PY" -m pip freeze | grep -iE '^(torch|torchvision|torchaudio)==' > "$CONS"
  # ComfyUI's requirements minus torch/torchvision/torchaudio (exact names: torchsde stays).
  grep -v -E '^\s*(#|$)' "$COMFY/requirements.txt" \
    | grep -v -i -E '^(torch|torchvision|torchaudio)\s*([<>=!~;[].*)?$' > "$VENV/lotts-comfy-reqs.txt"
  say "installing ComfyUI's requirements (torch pinned)"
  "$PY" -m pip install -c "$CONS" -r "$VENV/lotts-comfy-reqs.txt"
else
  say "using the existing venv $VENV ($("$PY" -c 'import torch; print("torch", torch.__version__)' 2>/dev/null || echo 'no torch!'))"
fi
"$PY" -c 'import torch' 2>/dev/null || die "$PY cannot import torch; install one (see HOST notes) or remove $VENV"
"$PY" -m pip freeze | grep -iE '^(torch|torchvision|torchaudio)==' > "$CONS"

# 3. the pack's requirements (idempotent; never moves torch) ---------------------------
if ! "$PY" -m pip install -q --disable-pip-version-check -c "$CONS" -r "$REPO/requirements.txt"; then
  die "installing $REPO/requirements.txt failed"
fi

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
