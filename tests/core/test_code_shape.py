"""The code's shape, checked: imports run one way (nodes/ -> lotts/, never back; the
evaluation client never imports the node layer) and no function takes more than six
positional parameters (shared settings travel as one object, the rest by keyword)."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MAX_POSITIONAL = 6


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield ("." * node.level) + (node.module or "")


@pytest.mark.parametrize("package,forbidden", [("lotts", ("nodes", "..nodes", "lotts_eval")),
                                               ("lotts_eval", ("nodes",))])
def test_imports_run_one_way(package, forbidden):
    offenders = [f"{p.relative_to(ROOT)}: {name}" for p in (ROOT / package).rglob("*.py")
                 for name in _imports(p)
                 if any(name == f or name.startswith(f + ".") for f in forbidden)]
    assert not offenders, offenders


# ComfyUI hands a node's validate_inputs the inputs its signature names as positional
# parameters (inspect.getfullargspec(...).args): keyword-only ones would never arrive.
NAMED_BY_COMFYUI = {"validate_inputs"}


def test_no_function_takes_more_than_six_positional_parameters():
    long = []
    for package in ("nodes", "lotts", "lotts_eval"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                        and node.name not in NAMED_BY_COMFYUI:
                    args = node.args.posonlyargs + node.args.args
                    names = [a.arg for a in args if a.arg not in ("self", "cls")]
                    if len(names) > MAX_POSITIONAL:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}({len(names)})")
    assert not long, long
