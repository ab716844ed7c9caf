"""The node library finds LoTTS nodes by the words users search for (nodes/search_aliases.py).

In headless Chromium, on both frontends: each query is typed into the Node Library
sidebar's search field and into the search box a double click on the canvas opens, and
the LoTTS nodes each lists are read back; then the same with the pack's extension disabled
(the frontend's Comfy.Extension.Disabled setting).

* ComfyUI 0.3.64's schema has no ``search_aliases`` field, so /object_info carries none:
  the extension adds them (js/search_aliases.json). Frontend 1.58.1 searches them: every
  node whose list holds a query is found by it, and words no node name contains
  ("test-time scaling", "inference scaling") find the pack only with the extension.
* Frontend 1.27.10's search reads names only (not ``search_aliases``): with or without
  the extension it lists the same nodes -- the aliases are harmless there, and useless.
"""

from __future__ import annotations

import json
import os

import browser_driver

HERE = os.path.dirname(os.path.abspath(__file__))
ALIASES_FILE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "js", "search_aliases.json")
QUERIES = ["test-time scaling", "inference scaling", "best of n", "defect mask", "refine", "localized"]
NOT_IN_ANY_NAME = ["test-time scaling", "inference scaling"]


def test_node_search_finds_lotts_by_alias(ui_comfy, browser_tools, pack_nodes, tmp_path):
    names = pack_nodes["display"]
    with open(ALIASES_FILE, encoding="utf-8") as f:
        aliases = json.load(f)
    for q in NOT_IN_ANY_NAME:  # the control below relies on it
        assert not any(q in n.lower() for n in names.values()), q
    cfg = {"url": ui_comfy.url, "queries": QUERIES, "names": names}
    res = browser_driver.run(browser_tools, "search.mjs", cfg, tmp_path, timeout=600)
    print(f"frontend {res.get('frontendVersion')}: {json.dumps({k: res.get(k) for k in ('withPack', 'withoutExtension')})}")
    assert not res.get("fatal"), f"driver stopped at {res['steps'][-1:]}: {res['fatal']}\n{res['stderr']}"
    assert res["extensionRan"] is False, "Comfy.Extension.Disabled did not disable the extension"

    with_pack, without = res["withPack"], res["withoutExtension"]
    for where in ("library", "searchBox"):
        if ui_comfy.frontend == "newest":
            for q in QUERIES:
                want = {i for i, words in aliases.items() if q in words}
                assert want <= set(with_pack[where][q]), (where, q, with_pack[where][q], want)
            for q in NOT_IN_ANY_NAME:
                assert without[where][q] == [], (where, q, without[where][q])
        else:  # 1.27.10 searches names only: the aliases change nothing there
            assert with_pack[where] == without[where], (where, with_pack[where], without[where])
            for q in NOT_IN_ANY_NAME:
                assert with_pack[where][q] == [], (where, q)

    errors = browser_driver.extension_errors(res)
    assert not errors, "errors from the extension:\n" + "\n".join(errors)
