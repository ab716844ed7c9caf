"""Finding and loading real ComfyUI for the host and e2e tiers.

Never a stand-in: if the real ComfyUI cannot be imported, the tier is skipped with a
one-line reason saying what to set.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACK_MODULE_NAME = "comfyui_lotts"  # the folder name the tests install the pack under


def find_comfyui() -> str | None:
    """COMFYUI_PATH, else the ComfyUI this repo sits in (ComfyUI/custom_nodes/<pack>)."""
    path = os.environ.get("COMFYUI_PATH")
    if path:
        return os.path.abspath(path)
    parent = os.path.dirname(os.path.dirname(REPO_ROOT))
    if os.path.basename(os.path.dirname(REPO_ROOT)) == "custom_nodes" and \
            os.path.isfile(os.path.join(parent, "comfy", "model_management.py")):
        return parent
    return None


def comfyui_python(comfy_path: str) -> str:
    """The python that runs the ComfyUI server: COMFYUI_PYTHON, its .venv, or ours."""
    env = os.environ.get("COMFYUI_PYTHON")
    if env:
        return env
    venv = os.path.join(comfy_path, ".venv", "bin", "python")
    return venv if os.path.exists(venv) else sys.executable


@functools.lru_cache(maxsize=1)
def _import_comfyui() -> tuple[str | None, str]:
    path = find_comfyui()
    if path is None:
        return None, ("ComfyUI not found: set COMFYUI_PATH=<ComfyUI checkout> and run with "
                      "its venv's python (README, 'Tests')")
    if not os.path.isfile(os.path.join(path, "comfy", "model_management.py")):
        return None, f"COMFYUI_PATH={path} is not a ComfyUI checkout (no comfy/model_management.py)"
    if path not in sys.path:
        sys.path.insert(0, path)
    try:
        from comfy.cli_args import args
        args.cpu = True  # before comfy.model_management is imported: no CUDA probing
        # PyTorch's SDPA kernel, what ComfyUI picks on NVIDIA GPUs (most users); on these
        # CPUs it is also several times faster than the sub-quadratic default.
        args.use_pytorch_cross_attention = True
        import comfy.model_management  # noqa: F401
        import nodes  # noqa: F401  (ComfyUI's nodes.py)
    except Exception as e:  # any import failure means "this python cannot host ComfyUI"
        return None, (f"ComfyUI at {path} does not import with {sys.executable}: "
                      f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
                      "(run with ComfyUI's venv python)")
    if not nodes.__file__.startswith(path):
        return None, f"`import nodes` found {nodes.__file__}, not ComfyUI's nodes.py"
    # Previews and outputs the tests make stay out of the ComfyUI checkout.
    import tempfile
    import folder_paths
    scratch = tempfile.mkdtemp(prefix="lotts_host_")
    folder_paths.set_temp_directory(os.path.join(scratch, "temp"))
    folder_paths.set_output_directory(os.path.join(scratch, "output"))
    return path, ""


REQUIRE_HOST = "LOTTS_REQUIRE_HOST"  # CI sets it to 1 where it built the host


def host_missing(reason: str):
    """Skip (one line) because something the host or e2e tier needs is absent -- or, where
    ``LOTTS_REQUIRE_HOST=1`` says the host tiers must run (CI, once it has built the host),
    fail with the same reason: there a missing host is a broken CI, not a pass. Callable
    at module level, in fixtures and in tests."""
    if os.environ.get(REQUIRE_HOST) == "1":
        pytest.fail(f"{REQUIRE_HOST}=1 but the host tier cannot run: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_comfyui() -> str:
    """Skip the calling test module (one line) unless real ComfyUI imports; return its path."""
    path, reason = _import_comfyui()
    if path is None:
        host_missing(reason)
    return path


@functools.lru_cache(maxsize=1)
def load_pack():
    """Load this repo through ComfyUI's own custom-node loader; return the pack module.

    The repo is linked into a private custom_nodes folder under a fixed name, exactly as
    a user's install would sit, and loaded with ``nodes.load_custom_node``.
    """
    import tempfile
    import nodes
    root = tempfile.mkdtemp(prefix="lotts_custom_nodes_")
    link = os.path.join(root, PACK_MODULE_NAME)
    os.symlink(REPO_ROOT, link)
    ok = asyncio.run(nodes.load_custom_node(link))
    if not ok:
        raise RuntimeError("ComfyUI's custom-node loader failed to import the pack (see log)")
    return sys.modules[link.replace(".", "_x_")]


def pack_nodes() -> dict:
    """The pack's node classes by node id, as ComfyUI's loader registered them."""
    import nodes
    pack = load_pack()
    ours = sys.modules[pack.__name__ + ".nodes"].NODES
    found = {cls.GET_SCHEMA().node_id: cls for cls in ours}
    assert all(nodes.NODE_CLASS_MAPPINGS.get(i) is c for i, c in found.items())
    return found


def run_node(node_id: str, *args, **kwargs):
    """Execute a pack node as ComfyUI does -- inputs by name; positional ``args`` follow
    the node's input order -- and return its ``io.NodeOutput`` (``.result``, ``.ui``)."""
    cls = pack_nodes()[node_id]
    names = [i.id for i in cls.GET_SCHEMA().inputs]
    if len(args) > len(names):
        raise TypeError(f"{node_id} has {len(names)} inputs, got {len(args)} values")
    return cls.execute(**dict(zip(names, args)), **kwargs)
