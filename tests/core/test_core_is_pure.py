"""The core package must never import the host."""

import ast
import pathlib

HOST_MODULES = {"comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths",
                "nodes", "latent_preview", "node_helpers", "server", "execution"}


def test_lotts_imports_nothing_from_the_host():
    root = pathlib.Path(__file__).resolve().parents[2] / "lotts"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in HOST_MODULES]
    assert not offenders, offenders
