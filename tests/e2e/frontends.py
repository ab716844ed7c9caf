"""Which ComfyUI frontends the browser tests run against.

* ``pinned``: the ``comfyui-frontend-package`` installed in ComfyUI's python (the version
  ComfyUI's requirements.txt pins: 1.27.10 for v0.3.64); the default server uses it.
* ``newest``: frontend NEWEST (1.58.1), installed *outside* ComfyUI's venv so it never
  changes the shared environment:

      pip install --target ~/.cache/lotts-tests/frontend-1.58.1 comfyui-frontend-package==1.58.1

  found there, or at ``LOTTS_FRONTEND_NEWEST`` (that ``--target`` folder, or the package's
  ``static`` folder); the server gets ``--front-end-root <static>``.
"""

from __future__ import annotations

import glob
import os

NEWEST = "1.58.1"
DEFAULT_NEWEST_DIR = os.path.join(os.path.expanduser("~"), ".cache", "lotts-tests",
                                  f"frontend-{NEWEST}")
KINDS = ("pinned", "newest")
IDS = {"pinned": "frontend-pinned", "newest": f"frontend-{NEWEST}"}


def newest_static_dir() -> tuple[str | None, str]:
    """(the static folder of the newest frontend, "") or (None, a one-line skip reason)."""
    root = os.path.expanduser(os.environ.get("LOTTS_FRONTEND_NEWEST", DEFAULT_NEWEST_DIR))
    for cand in (root, os.path.join(root, "static"),
                 os.path.join(root, "comfyui_frontend_package", "static")):
        if os.path.isfile(os.path.join(cand, "index.html")):
            return cand, ""
    return None, (f"frontend {NEWEST} not found at {root}: pip install --target "
                  f"{DEFAULT_NEWEST_DIR} comfyui-frontend-package=={NEWEST} (or set "
                  "LOTTS_FRONTEND_NEWEST to such a folder)")


def installed_version(static_dir: str) -> str | None:
    """The package version of a ``--target`` install (from its dist-info), if known."""
    site = os.path.dirname(os.path.dirname(os.path.abspath(static_dir)))
    for info in glob.glob(os.path.join(site, "comfyui_frontend_package-*.dist-info")):
        return os.path.basename(info)[len("comfyui_frontend_package-"):-len(".dist-info")]
    return None
