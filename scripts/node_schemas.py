"""The node schemas exactly as ComfyUI's ``/object_info`` serves them, without a server.

The generators (make_example_workflows.py, make_node_docs.py, make_locales.py) read nodes
through this one function, so what they write is what the frontend sees: classic nodes
are described the way server.py's ``node_info`` does it, V3 ``io.ComfyNode`` classes by
their own ``GET_NODE_INFO_V1()`` (which server.py calls for them too).

Run with ComfyUI's python (COMFYUI_PATH=<ComfyUI checkout>); ComfyUI's nodes and the pack
are loaded in-process, the pack through ComfyUI's custom-node loader under the folder name
``comfyui_lotts`` (tests/comfy_host.py).
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def _node_info(nodes, name: str) -> dict:
    """``nodes``: anything with ComfyUI's NODE_CLASS_MAPPINGS / NODE_DISPLAY_NAME_MAPPINGS."""
    cls = nodes.NODE_CLASS_MAPPINGS[name]
    if hasattr(cls, "GET_NODE_INFO_V1"):
        return cls.GET_NODE_INFO_V1()
    inputs = cls.INPUT_TYPES()
    info = {
        "input": inputs,
        "input_order": {k: list(v) for k, v in inputs.items()},
        "output": list(cls.RETURN_TYPES),
        "output_is_list": list(getattr(cls, "OUTPUT_IS_LIST", [False] * len(cls.RETURN_TYPES))),
        "output_name": list(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)),
        "name": name,
        "display_name": nodes.NODE_DISPLAY_NAME_MAPPINGS.get(name, name),
        "description": getattr(cls, "DESCRIPTION", ""),
        "python_module": getattr(cls, "RELATIVE_PYTHON_MODULE", "nodes"),
        "category": getattr(cls, "CATEGORY", "sd"),
        "output_node": getattr(cls, "OUTPUT_NODE", False) == True,  # noqa: E712 (as server.py)
    }
    if hasattr(cls, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = list(cls.OUTPUT_TOOLTIPS)
    return info


class _Registered:
    """ComfyUI's node registry, the way ``nodes`` exposes it."""

    def __init__(self, classes: dict, display_names: dict):
        self.NODE_CLASS_MAPPINGS = classes
        self.NODE_DISPLAY_NAME_MAPPINGS = display_names


def _registered_nodes():
    """ComfyUI's built-in nodes (base and extras, no API nodes) and the pack's, registered
    as the server registers them at start-up, in its order."""
    from comfy_host import load_pack, registry
    import nodes
    if hasattr(nodes, "init_extra_nodes"):  # upstream: nodes.py registers into itself
        asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
        load_pack()
        return nodes
    # The 0.10 fork: the server's import_all_nodes_in_workspace (base_nodes, then
    # comfy_extras), then the custom_nodes folders (the pack, as comfy_host loads it).
    from comfy.nodes.package import import_all_nodes_in_workspace
    host, pack = import_all_nodes_in_workspace(vanilla_custom_nodes=False), registry()
    return _Registered({**host.NODE_CLASS_MAPPINGS, **pack.NODE_CLASS_MAPPINGS},
                       {**host.NODE_DISPLAY_NAME_MAPPINGS, **pack.NODE_DISPLAY_NAME_MAPPINGS})


@functools.lru_cache(maxsize=1)
def object_info() -> dict:
    """{node id: node info} for ComfyUI's nodes and the pack's, as /object_info has them."""
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from comfy_host import load_pack, require_comfyui
    require_comfyui()
    nodes = _registered_nodes()
    # The pack's nodes are the classes defined in the module ComfyUI's loader imported the
    # pack as (classic and V3 nodes alike; hosts differ in how they stamp
    # ``python_module``); the mark is not in /object_info.
    pack = load_pack().__name__ + "."
    info = {}
    for name, cls in nodes.NODE_CLASS_MAPPINGS.items():
        if cls.__module__.startswith(pack):
            info[name] = dict(_node_info(nodes, name), lotts_pack_node=True)
            continue
        try:
            info[name] = _node_info(nodes, name)
        except Exception:  # as the server's /object_info: a host node that fails is left out
            continue
    return info


def pack_module(name: str):
    """A module of the pack as ComfyUI's loader imported it (after ``object_info()``), by
    its dotted name inside the pack, e.g. ``"nodes.search_aliases"``."""
    object_info()
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from comfy_host import load_pack
    return sys.modules[f"{load_pack().__name__}.{name}"]


def pack_nodes(info: dict) -> list[str]:
    """The pack's node ids, in the order ComfyUI registered them (the menu order)."""
    return [name for name, node in info.items() if node.get("lotts_pack_node")]


def spec_kind(spec) -> tuple[object, dict]:
    """(type, options) of one input spec; a combo's type is its list of options (V1) or
    "COMBO" with ``options`` (V3), both returned as the list."""
    kind = spec[0] if isinstance(spec, (list, tuple)) and spec else spec
    opts = spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 and \
        isinstance(spec[1], dict) else {}
    if kind == "COMBO":
        kind = list(opts.get("options") or [])
    return kind, opts


def inputs(node: dict) -> list[tuple[str, str, object, dict]]:
    """[(section, name, type, options)] of a node's required and optional inputs, in order."""
    out = []
    for section in ("required", "optional"):
        specs = (node.get("input") or {}).get(section) or {}
        for name in (node.get("input_order") or {}).get(section) or list(specs):
            kind, opts = spec_kind(specs[name])
            out.append((section, name, kind, opts))
    return out


def read_toml(path: str) -> dict:
    try:
        import tomllib
    except ImportError:  # python 3.10
        import tomli as tomllib
    with open(path, "rb") as f:
        return tomllib.load(f)


def pyproject() -> dict:
    """The pack's pyproject.toml (its registry id, version, URLs)."""
    return read_toml(os.path.join(REPO, "pyproject.toml"))
