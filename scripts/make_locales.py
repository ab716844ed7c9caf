"""Writes the pack's English UI strings, locales/en/{main,nodeDefs}.json, from the node schemas.

ComfyUI serves every custom node's ``locales/<lang>/main.json`` (with ``nodeDefs.json``
under the key "nodeDefs") at ``/i18n`` (app/custom_node_manager.py); the frontend shows
them when the user picks that language. ``nodeDefs.json`` has the layout of the frontend's
own: per node its display name, description, each input's name and tooltip (and the
seed's "control after generate" row), each output's name and tooltip by index.
``main.json`` names the pack's menu category and its own data type.

It also writes ``js/search_aliases.json``, the node library's search words per node
(nodes/search_aliases.py): the pack's frontend extension adds them to the node
definitions on hosts whose schema has no ``search_aliases`` field (ComfyUI 0.3.64).

The other languages (locales/zh/) are translations kept by hand in the same layout;
tests/host/test_locales.py checks en equals this script's output and that every other
language has exactly en's keys (naming what is missing), so a new input shows up as a
clear failure until it is translated.

    COMFYUI_PATH=~/ComfyUI ~/ComfyUI/.venv/bin/python scripts/make_locales.py
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import node_schemas  # noqa: E402

LOCALES = os.path.join(REPO, "locales")
FILES = ("main.json", "nodeDefs.json")
SEARCH_ALIASES = os.path.join(REPO, "js", "search_aliases.json")


def node_defs(info: dict) -> dict:
    out = {}
    for name in node_schemas.pack_nodes(info):
        node = info[name]
        inputs = {}
        for _, inp, _, opts in node_schemas.inputs(node):
            inputs[inp] = {"name": inp, **({"tooltip": opts["tooltip"]} if opts.get("tooltip") else {})}
            if opts.get("control_after_generate"):
                inputs["control_after_generate"] = {"name": "control after generate"}
        tips = node.get("output_tooltips") or []
        outputs = {}
        for i, out_name in enumerate(node["output_name"]):
            outputs[str(i)] = {"name": out_name,
                               **({"tooltip": tips[i]} if i < len(tips) and tips[i] else {})}
        out[name] = {"display_name": node["display_name"], "description": node.get("description", ""),
                     "inputs": inputs, "outputs": outputs}
    return out


def main_strings(info: dict) -> dict:
    """The pack's menu categories and the data types only its nodes use."""
    pack = node_schemas.pack_nodes(info)
    categories = {}
    for name in pack:
        for part in info[name]["category"].split("/"):
            categories[part] = part

    def types(node):
        return set(node["output"]) | {k for _, _, k, _ in node_schemas.inputs(node) if isinstance(k, str)}

    others = set().union(*(types(n) for k, n in info.items() if k not in pack))
    own = sorted(set().union(*(types(info[k]) for k in pack)) - others)
    return {"nodeCategories": categories, "dataTypes": {t: t for t in own}}


def build_en(info: dict) -> dict:
    """{file name: content} of locales/en/."""
    return {"main.json": main_strings(info), "nodeDefs.json": node_defs(info)}


def search_aliases(info: dict) -> dict:
    """{node id: [search words]} for every pack node, from nodes/search_aliases.py."""
    aliases = node_schemas.pack_module("nodes.search_aliases").ALIASES
    return {name: list(aliases[name]) for name in node_schemas.pack_nodes(info)}


def dumps(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main():
    os.makedirs(os.path.join(LOCALES, "en"), exist_ok=True)
    for name, data in build_en(node_schemas.object_info()).items():
        with open(os.path.join(LOCALES, "en", name), "w", encoding="utf-8") as f:
            f.write(dumps(data))
        print("wrote", os.path.join("locales", "en", name))
    with open(SEARCH_ALIASES, "w", encoding="utf-8") as f:
        f.write(dumps(search_aliases(node_schemas.object_info())))
    print("wrote", os.path.relpath(SEARCH_ALIASES, REPO))


if __name__ == "__main__":
    main()
