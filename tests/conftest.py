"""Test tiers (see README, "Tests"):

    tests/core  pure torch; always runs (CI included)
    tests/host  real ComfyUI in-process; needs COMFYUI_PATH (or the pack sitting in
                ComfyUI/custom_nodes/) and a python that can import ComfyUI
    tests/e2e   a real ComfyUI server; needs the same, plus the server's python

Host and e2e tests skip with a one-line reason when their host is absent.
"""

import os
import sys

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)

# The core package is imported as `lotts`; the tests' shared helpers as plain modules.
# Appended, not prepended: the repo root holds a `nodes/` package, and ComfyUI's own
# top-level `nodes` module must win when the host tier puts ComfyUI on the path.
for path in (REPO_ROOT, TESTS_DIR):
    if path not in sys.path:
        sys.path.append(path)
