"""Running the headless-Chromium drivers in tests/e2e/browser/ from the Python tests.

A driver is a node script taking one JSON config file; it prints one line
``LOTTS_BROWSER_JSON {...}`` (browser/comfy_page.mjs) with what it saw, and the test asserts.

Needs Chromium (``LOTTS_CHROMIUM`` or ``chromium`` on PATH), node, and playwright-core
(``LOTTS_NODE_MODULES``, a folder holding ``playwright-core``; else NODE_PATH or
tests/e2e/browser/node_modules, or a global install).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_DIR = os.path.join(HERE, "browser")
RESULT_PREFIX = "LOTTS_BROWSER_JSON "
# Files whose console errors count as the pack's (the extension and its folder in URLs).
EXTENSION_FILES = ("lotts.js", "lotts_logic.js", "comfyui_lotts")


def _chromium() -> str | None:
    for c in (os.environ.get("LOTTS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if c and shutil.which(c):
            return shutil.which(c)
    return None


def _node_modules(node: str) -> str | None:
    """A folder that holds playwright-core (what the driver's require() will search)."""
    cands = [os.environ.get("LOTTS_NODE_MODULES"), os.path.join(BROWSER_DIR, "node_modules")]
    cands += os.environ.get("NODE_PATH", "").split(os.pathsep)
    for c in filter(None, cands):
        if os.path.isfile(os.path.join(c, "playwright-core", "package.json")):
            return c
    try:  # globally installed?
        r = subprocess.run([node, "-p", "require.resolve('playwright-core/package.json')"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            return os.path.dirname(os.path.dirname(r.stdout.strip()))
    except (OSError, subprocess.TimeoutExpired):
        pass
    return None


def find_tools() -> tuple[tuple[str, str, str] | None, str]:
    """((chromium, node, node_modules), "") or (None, a one-line reason)."""
    chromium = _chromium()
    if chromium is None:
        return None, "no Chromium (apt-get install chromium, or set LOTTS_CHROMIUM)"
    node = shutil.which("node")
    if node is None:
        return None, "no node on PATH (needed to drive Chromium with playwright-core)"
    mods = _node_modules(node)
    if mods is None:
        return None, ("playwright-core not found (npm install playwright-core; set "
                      "LOTTS_NODE_MODULES to its node_modules folder)")
    return (chromium, node, mods), ""


def run(tools, script: str, cfg: dict, work_dir, timeout: float) -> dict:
    """Run browser/<script> with ``cfg`` (plus the chromium path); its parsed result, also
    saved as <work_dir>/<script>.result.json. Raises AssertionError if it printed none."""
    chromium, node, mods = tools
    cfg = dict(cfg, chromium=chromium)
    cfg_path = os.path.join(str(work_dir), script + ".json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    r = subprocess.run([node, os.path.join(BROWSER_DIR, script), cfg_path], capture_output=True,
                       text=True, timeout=timeout, env=dict(os.environ, NODE_PATH=mods),
                       cwd=str(work_dir))
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith(RESULT_PREFIX)), None)
    assert line, (f"browser driver {script} failed (rc {r.returncode}):\n{r.stdout[-3000:]}\n"
                  f"{r.stderr[-3000:]}")
    res = json.loads(line[len(RESULT_PREFIX):])
    res["stderr"] = r.stderr[-4000:]
    with open(os.path.join(str(work_dir), script + ".result.json"), "w") as f:
        json.dump(res, f, indent=1)
    return res


def extension_errors(res: dict, phase_prefix: str = "") -> list[str]:
    """Console errors and uncaught page errors that come from the pack's files."""
    bad = []
    for m in res.get("console", []):
        if not str(m.get("phase")).startswith(phase_prefix):
            continue
        if m["type"] == "error" and any(f in (m["url"] + m["text"]) for f in EXTENSION_FILES):
            bad.append(f"[{m['phase']}] console.error {m['url']}: {m['text']}")
    for e in res.get("pageerrors", []):  # uncaught exceptions whose stack is in our files
        if str(e.get("phase")).startswith(phase_prefix) and \
                any(f in e["text"] for f in EXTENSION_FILES):
            bad.append(f"[{e['phase']}] page error: {e['text']}")
    return bad
