"""What the running host serves of the pack's search words and subgraph blueprint.

* /object_info: a host whose V3 schema has ``search_aliases`` (ComfyUI 0.10) serves each
  LoTTS node's list (nodes/search_aliases.py, the same as js/search_aliases.json); one
  without the field (0.3.64) serves none, and the pack's extension adds them in the page
  (test_browser_search.py).
* /global_subgraphs: ComfyUI 0.10 lists every custom_nodes/<pack>/subgraphs/*.json (its
  comfy/app/subgraph_manager.py) and the frontend shows them as nodes under "Subgraph
  Blueprints"; the pack's blueprint is listed there, its data the shipped file. ComfyUI
  0.3.64 has no such route (server.py): the test skips, saying so; the file still opens as
  a workflow there (test_browser_subgraphs.py runs it).

Run on the fork by pointing COMFYUI_PATH at it (README, "Tests").
"""

from __future__ import annotations

import json
import os
import urllib.error

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
BLUEPRINT_DIR = os.path.join(REPO_ROOT, "subgraphs")
PACK_MODULE = "custom_nodes.comfyui_lotts"  # comfy_server.PACK_DIR_NAME under custom_nodes


def test_object_info_carries_the_aliases_where_the_schema_has_them(comfy, pack_node_ids):
    with open(os.path.join(REPO_ROOT, "js", "search_aliases.json"), encoding="utf-8") as f:
        aliases = json.load(f)
    info = comfy.object_info()
    served = {i: info[i].get("search_aliases") for i in pack_node_ids}
    if any(served.values()):  # the host has the field: every node's own list
        assert served == aliases, served
    else:  # 0.3.64: none at all (the extension adds them in the page)
        assert all(v is None for v in served.values()), served


def test_the_blueprint_is_served_where_the_host_serves_blueprints(comfy):
    try:
        listed = comfy.get_json("/global_subgraphs")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            pytest.skip("this ComfyUI serves no subgraph blueprints (no /global_subgraphs route: "
                        "ComfyUI 0.3.64); the blueprint opens there as a workflow")
        raise
    ours = {k: v for k, v in listed.items() if (v.get("info") or {}).get("node_pack") == PACK_MODULE}
    shipped = sorted(f[:-len(".json")] for f in os.listdir(BLUEPRINT_DIR) if f.endswith(".json"))
    assert sorted(v["name"] for v in ours.values()) == shipped, listed
    for entry_id, entry in ours.items():
        full = comfy.get_json(f"/global_subgraphs/{entry_id}")
        with open(os.path.join(BLUEPRINT_DIR, entry["name"] + ".json"), encoding="utf-8") as f:
            assert json.loads(full["data"]) == json.load(f), entry["name"]
