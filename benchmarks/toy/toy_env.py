"""Import setup shared by the toy-world scripts: the repo's test helpers on sys.path and
real ComfyUI imported (CPU) before anything touches comfy.

``setup(pytorch_attention=...)`` must run before any other comfy import.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "host"),
                os.path.join(ROOT, "benchmarks"), os.path.join(ROOT, "benchmarks", "toy")]


def setup() -> str:
    """Import ComfyUI (COMFYUI_PATH) as the host tests do (CPU, torch's SDPA kernel) or
    exit with the reason; return its path."""
    import comfy_host
    path, reason = comfy_host._import_comfyui()
    if path is None:
        sys.exit(reason)
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False  # no tqdm bar per sampler call in the logs
    return path
