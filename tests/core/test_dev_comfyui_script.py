"""scripts/dev_comfyui.sh: which Python it uses, how pip failures end, where torch comes from.

The script runs with ``--no-start`` against a throwaway ComfyUI folder whose Python is a
stub (a shell script) that records each call and answers like pip / torch would, so these
tests run anywhere bash does, without ComfyUI, torch or a network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "dev_comfyui.sh")

pytestmark = pytest.mark.skipif(sys.platform.startswith("win") or shutil.which("bash") is None,
                                reason="needs bash")

# The stub: `-m venv DIR` makes DIR/bin/python (itself); `-c CODE` answers the script's torch
# probes with $STUB_TORCH ("<version> <cuda or cpu>"); `-m pip freeze` lists torch; `-m pip
# install` fails with pip's error line when $STUB_PIP_FAIL is set. Every call is logged.
STUB = r"""#!/usr/bin/env bash
echo "CALL PIP_CONFIG_FILE=${PIP_CONFIG_FILE-unset} $*" >> "$STUB_LOG"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && exit 0
fi
if [ "$1" = "-c" ]; then
  case "$2" in
    *cuda.is_available*) echo False ;;
    *torch.version.cuda*) echo "${STUB_TORCH:-2.14.1 cpu}" ;;
  esac
  exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ] && [ "$3" = "freeze" ]; then
  echo "torch==2.14.1"; echo "numpy==2.1.0"; exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ] && [ -n "${STUB_PIP_FAIL:-}" ]; then
  echo "Collecting something"
  echo "  long pip output ..."
  echo "ERROR: No matching distribution found for $STUB_PIP_FAIL"
  exit 1
fi
exit 0
"""


def _stub(path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(STUB)
    os.chmod(path, 0o755)
    return path


def _comfy(root) -> str:
    comfy = os.path.join(str(root), "ComfyUI")
    os.makedirs(os.path.join(comfy, "comfy"))
    for name in ("main.py", os.path.join("comfy", "model_management.py")):
        open(os.path.join(comfy, name), "w").close()
    with open(os.path.join(comfy, "requirements.txt"), "w") as f:
        f.write("torch\ntorchsde\ntorchvision\nnumpy>=1.25.0\n")
    return comfy


def _run(comfy, tmp_path, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("COMFYUI_PYTHON", "COMFYUI_PATH",
                                                             "TORCH_INDEX_URL")}
    # No nvidia-smi on PATH: a machine without an NVIDIA GPU.
    full.update(PATH="/usr/bin:/bin", STUB_LOG=str(tmp_path / "calls.log"),
                LOTTS_DEV_LOGS=str(tmp_path / "logs"), **env)
    r = subprocess.run(["bash", SCRIPT, comfy, "--no-start"], capture_output=True, text=True,
                       env=full, timeout=60)
    log = (tmp_path / "calls.log").read_text() if (tmp_path / "calls.log").exists() else ""
    return r, log


def test_an_existing_venv_is_used_as_it_is(tmp_path):
    comfy = _comfy(tmp_path)
    py = _stub(os.path.join(comfy, "venv", "bin", "python"))
    r, log = _run(comfy, tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"using ComfyUI's python {py}" in r.stderr
    assert not os.path.exists(os.path.join(comfy, ".venv"))
    assert " -m venv " not in log
    assert "-m pip install --disable-pip-version-check -c" in log  # only the pack's requirements
    assert os.path.islink(os.path.join(comfy, "custom_nodes", "comfyui_lotts"))


def test_the_portable_builds_python_embeded_is_used(tmp_path):
    portable = tmp_path / "ComfyUI_windows_portable"
    comfy = _comfy(portable)
    py = _stub(os.path.join(str(portable), "python_embeded", "python.exe"))
    r, _ = _run(comfy, tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"using ComfyUI's python {comfy}/../python_embeded/python.exe" in r.stderr, r.stderr
    assert os.path.samefile(os.path.join(comfy, "..", "python_embeded", "python.exe"), py)
    assert not os.path.exists(os.path.join(comfy, ".venv"))


def test_a_failing_pip_ends_with_one_error_line(tmp_path):
    comfy = _comfy(tmp_path)
    _stub(os.path.join(comfy, ".venv", "bin", "python"))
    r, _ = _run(comfy, tmp_path, STUB_PIP_FAIL="einops")
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("[dev_comfyui] error: installing ") and "requirements.txt failed" in last, last
    assert "No matching distribution found for einops" in last and str(tmp_path / "logs") in last, last
    assert "Collecting" not in r.stderr and "long pip output" not in r.stderr  # no raw pip output


def test_a_new_venv_on_a_cpu_machine_takes_torch_from_the_cpu_index_only(tmp_path):
    comfy = _comfy(tmp_path)
    base = _stub(str(tmp_path / "base" / "python3"))
    r, log = _run(comfy, tmp_path, PYTHON=base, PIP_EXTRA_INDEX_URL="https://example.invalid/cu128")
    assert r.returncode == 0, r.stderr
    torch_call = next(c for c in log.splitlines() if "install" in c and "torch==2.14.1" in c)
    assert torch_call.startswith("CALL PIP_CONFIG_FILE=/dev/null ")
    assert "install --isolated --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 " \
           "torchvision==0.29.1" in torch_call, torch_call
    reqs = next(c for c in log.splitlines() if "comfy-requirements.txt" in c)
    assert " -c " in reqs  # ComfyUI's requirements under the torch constraint


def test_a_cuda_torch_on_a_cpu_machine_stops_the_script(tmp_path):
    comfy = _comfy(tmp_path)
    base = _stub(str(tmp_path / "base" / "python3"))
    r, _ = _run(comfy, tmp_path, PYTHON=base, STUB_TORCH="2.14.1 12.8")
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("[dev_comfyui] error: the torch installed") and "CUDA build" in last, last


def test_messages_name_only_files_the_pack_ships():
    """Its hints point at the README (shipped), not at notes outside the pack."""
    with open(SCRIPT) as f:
        text = f.read()
    assert "HOST" not in text and "README, 'Development'" in text
