"""The node help pages (js/docs/<NodeId>.md, shown in the frontend's Node Info panel) are
exactly what scripts/make_node_docs.py makes from the live node schemas, cover every input
and output of every node, and every picture they show is shipped."""

import importlib.util
import os
import re

import pytest

from comfy_host import REPO_ROOT, require_comfyui

require_comfyui()


def _load(script):
    path = os.path.join(REPO_ROOT, "scripts", script)
    spec = importlib.util.spec_from_file_location(script[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load("make_node_docs.py")


def _own_scheduler_order() -> str | None:
    """Why this host's scheduler list is not ComfyUI's, or None. The pages show the
    schedulers' default, the first in ComfyUI's list (``list(SCHEDULER_HANDLERS)``
    upstream); the 0.10 fork's KSampler lists them in an order of its own."""
    import comfy.samplers
    ours = list(comfy.samplers.KSampler.SCHEDULERS)
    upstream = list(getattr(comfy.samplers, "SCHEDULER_HANDLERS", ours))
    if ours != upstream:
        return f"{ours[0]!r} first, not {upstream[0]!r} as in comfy.samplers.SCHEDULER_HANDLERS"
    return None


def test_pages_match_the_generator():
    if why := _own_scheduler_order():
        pytest.skip(f"this host's KSampler lists schedulers in its own order ({why}): the "
                    "pages are made from ComfyUI's")
    info = gen.node_schemas.object_info()
    built = gen.build_all(info)
    shipped = sorted(f for f in os.listdir(gen.DOCS_DIR) if f.endswith(".md"))
    assert shipped == sorted(built), "run scripts/make_node_docs.py"
    for name, text in built.items():
        with open(os.path.join(gen.DOCS_DIR, name), encoding="utf-8") as f:
            assert f.read() == text, f"js/docs/{name} is stale: run scripts/make_node_docs.py"


def test_every_node_every_socket_every_picture():
    info = gen.node_schemas.object_info()
    for node in gen.node_schemas.pack_nodes(info):
        with open(os.path.join(gen.DOCS_DIR, node + ".md"), encoding="utf-8") as f:
            text = f.read()
        rows = set(re.findall(r"^\| ([^|]+?) \|", text, re.M))
        names = [n for _, n, _, _ in gen.node_schemas.inputs(info[node])] + info[node]["output_name"]
        assert not [n for n in names if n not in rows], f"{node}.md lacks rows for {names}"
        assert "## Inputs" in text and "## Outputs" in text and info[node]["description"] in text
        for src in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
            assert not re.match(r"^[a-z]+:|^/", src), f"{node}.md: {src} is not relative to docs/"
            assert os.path.isfile(os.path.join(gen.DOCS_DIR, src)), f"{node}.md shows missing {src}"
