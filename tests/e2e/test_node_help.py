"""The pack's node help pages and translations in the real frontend (headless Chromium),
once per frontend (frontends.py: the pinned one and the newest).

* Selecting a lone node and pressing the selection toolbox's info button shows the node's
  page from js/docs/ (1.58.1: the Node Info panel; 1.27.10: the node library's help), its
  pictures loaded, and the frontend found the page under /extensions/<pack folder>/docs/.
* With the frontend switched to Chinese, each node's title, input and output labels and
  widget labels are the ones in locales/zh/nodeDefs.json (served by ComfyUI at /i18n).

Screenshots go to the test's tmp folder, or to LOTTS_LAYOUT_SCREENSHOTS=<dir>.
"""

from __future__ import annotations

import json
import os

import pytest

import browser_driver
import comfy_server

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
LANGUAGE = "zh"


def _defs(lang):
    with open(os.path.join(REPO_ROOT, "locales", lang, "nodeDefs.json"), encoding="utf-8") as f:
        return json.load(f)


NODES = list(_defs("en"))
_seen: dict = {}


def seen(ui_comfy, browser_tools, tmp_path_factory):
    if ui_comfy.frontend not in _seen:
        work = tmp_path_factory.mktemp(f"help_{ui_comfy.frontend}")
        shots = os.environ.get("LOTTS_LAYOUT_SCREENSHOTS")
        shots = os.path.join(shots, ui_comfy.frontend) if shots else str(work)
        os.makedirs(shots, exist_ok=True)
        cfg = {"url": ui_comfy.url, "nodes": NODES, "language": LANGUAGE, "screenshot_dir": shots}
        res = browser_driver.run(browser_tools, "node_help.mjs", cfg, work, timeout=900)
        assert not res.get("fatal"), f"driver stopped at {res['steps'][-1:]}: {res['fatal']}"
        _seen[ui_comfy.frontend] = res
    return _seen[ui_comfy.frontend]


@pytest.mark.parametrize("node", NODES)
def test_node_info_shows_the_page(node, ui_comfy, browser_tools, tmp_path_factory):
    res = seen(ui_comfy, browser_tools, tmp_path_factory)
    help_ = res["help"][node]
    version = res.get("frontendVersion")
    assert help_["clicked"], f"frontend {version}: no info button in the selection toolbox"
    assert help_["shown"], f"frontend {version}: the help of {node} was not shown"
    en = _defs("en")[node]
    assert en["display_name"] in help_["text"] and en["description"] in help_["text"], help_["text"][:500]
    for name in en["inputs"]:
        assert name in help_["text"], f"{node}: input {name} not on its help page"
    with open(os.path.join(REPO_ROOT, "js", "docs", node + ".md"), encoding="utf-8") as f:
        pictures = f.read().count("](images/")
    assert len(help_["images"]) == pictures and all(i["width"] > 0 for i in help_["images"]), \
        f"{pictures} pictures on the page, the panel shows {help_['images']}"
    page = f"/extensions/{comfy_server.PACK_DIR_NAME}/docs/{node}.md"
    assert any(r["url"].endswith(page) and r["status"] == 200 for r in res["docRequests"]), \
        f"frontend {version} did not get {page}: {res['docRequests']}"


@pytest.mark.parametrize("node", NODES)
def test_translated_labels(node, ui_comfy, browser_tools, tmp_path_factory):
    res = seen(ui_comfy, browser_tools, tmp_path_factory)
    got = res["translated"][node]
    zh = _defs(LANGUAGE)[node]
    want_inputs = {k: v["name"] for k, v in zh["inputs"].items()}
    assert got["title"] == zh["display_name"], (got["title"], zh["display_name"])
    # The seed's "control after generate" widget is labelled by the frontend itself.
    wrong = {k: (v, want_inputs.get(k)) for k, v in {**got["inputs"], **got["widgets"]}.items()
             if k in want_inputs and k != "control_after_generate" and v != want_inputs[k]}
    assert not wrong, f"frontend {res.get('frontendVersion')}: labels (shown, expected): {wrong}"
    outs = {k: v["name"] for k, v in zh["outputs"].items()}
    assert got["outputs"] == outs, (got["outputs"], outs)
