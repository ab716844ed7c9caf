"""Finding and loading real ComfyUI for the host and e2e tiers.

Never a stand-in: if the real ComfyUI cannot be imported, the tier is skipped with a
one-line reason saying what to set.
"""

from __future__ import annotations

import asyncio
import contextlib
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


def _needs_vanilla_shim(path: str) -> bool:
    """ComfyUI as upstream ships it has its base nodes in ``<checkout>/nodes.py``. The
    pip-installable fork (hiddenswitch/ComfyUI, 0.10) keeps them in comfy/nodes/ and makes
    the top-level modules custom nodes import (``nodes``, ``folder_paths``, ``server``,
    ...) only when asked, through comfy_compatibility.vanilla -- as its own custom-node
    loader does before loading a custom_nodes folder."""
    return not os.path.isfile(os.path.join(path, "nodes.py")) and \
        os.path.isfile(os.path.join(path, "comfy_compatibility", "vanilla.py"))


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
    # Some ComfyUI builds (the 0.10 fork) parse sys.argv for their own flags when
    # comfy.cli_args is first imported: pytest's flags are not theirs.
    argv, sys.argv = sys.argv, sys.argv[:1]
    import tempfile
    scratch = tempfile.mkdtemp(prefix="lotts_host_")
    try:
        from comfy.cli_args import args
        args.cpu = True  # before comfy.model_management is imported: no CUDA probing
        # Everything ComfyUI reads or writes by default (models/, input/, output/, temp/,
        # user/) in a scratch folder, as the server's --base-directory does: not in the
        # ComfyUI checkout, nor (the 0.10 fork defaults to the working directory) in this repo.
        args.base_directory = scratch
        # PyTorch's SDPA kernel, what ComfyUI picks on NVIDIA GPUs (most users); on these
        # CPUs it is also several times faster than the sub-quadratic default.
        args.use_pytorch_cross_attention = True
        import comfy.model_management  # noqa: F401
        if _needs_vanilla_shim(path):
            from comfy_compatibility.vanilla import prepare_vanilla_environment
            prepare_vanilla_environment()
        import nodes  # noqa: F401  (ComfyUI's nodes.py, or the fork's stand-in for it)
    except Exception as e:  # any import failure means "this python cannot host ComfyUI"
        return None, (f"ComfyUI at {path} does not import with {sys.executable}: "
                      f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
                      "(run with ComfyUI's venv python)")
    finally:
        sys.argv = argv
    if not (nodes.__file__ or "").startswith(path):
        return None, f"`import nodes` found {nodes.__file__}, not ComfyUI's nodes.py"
    import folder_paths
    if not folder_paths.get_temp_directory().startswith(scratch):  # imported before us
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
def _load_pack():
    """(pack module, the node registry ComfyUI's loader filled) -- see load_pack."""
    import tempfile
    import nodes
    root = tempfile.mkdtemp(prefix="lotts_custom_nodes_")
    link = os.path.join(root, PACK_MODULE_NAME)
    os.symlink(REPO_ROOT, link)
    if hasattr(nodes, "load_custom_node"):  # upstream: nodes.py registers into itself
        ok = asyncio.run(nodes.load_custom_node(link))
        if not ok:
            raise RuntimeError("ComfyUI's custom-node loader failed to import the pack (see log)")
        return sys.modules[link.replace(".", "_x_")], nodes
    # The 0.10 fork: what its server does for each folder in custom_nodes/
    # (comfy.nodes.vanilla_node_importing); the nodes it returns are what the server adds
    # to its registry.
    from comfy.nodes.vanilla_node_importing import _vanilla_load_custom_nodes_1
    registry = _vanilla_load_custom_nodes_1(link)
    if PACK_MODULE_NAME not in sys.modules or not registry.NODE_CLASS_MAPPINGS:
        raise RuntimeError("ComfyUI's custom-node loader failed to import the pack (see log)")
    return sys.modules[PACK_MODULE_NAME], registry


def load_pack():
    """Load this repo through ComfyUI's own custom-node loader; return the pack module.

    The repo is linked into a private custom_nodes folder under a fixed name, exactly as
    a user's install would sit, and loaded with ``nodes.load_custom_node`` (upstream
    ComfyUI) or the loader the 0.10 fork runs on each custom_nodes folder.
    """
    return _load_pack()[0]


def registry():
    """Where ComfyUI registered the pack's nodes: an object with ``NODE_CLASS_MAPPINGS``
    and ``NODE_DISPLAY_NAME_MAPPINGS`` (upstream: the ``nodes`` module itself)."""
    return _load_pack()[1]


def pack_nodes() -> dict:
    """The pack's node classes by node id, as ComfyUI's loader registered them."""
    pack = load_pack()
    ours = sys.modules[pack.__name__ + ".nodes"].NODES
    found = {cls.GET_SCHEMA().node_id: cls for cls in ours}
    assert all(registry().NODE_CLASS_MAPPINGS.get(i) is c for i, c in found.items())
    return found


def run_node(node_id: str, *args, **kwargs):
    """Execute a pack node as ComfyUI does -- inputs by name; positional ``args`` follow
    the node's input order -- and return its ``io.NodeOutput`` (``.result``, ``.ui``)."""
    cls = pack_nodes()[node_id]
    names = [i.id for i in cls.GET_SCHEMA().inputs]
    if len(args) > len(names):
        raise TypeError(f"{node_id} has {len(names)} inputs, got {len(args)} values")
    return cls.execute(**dict(zip(names, args)), **kwargs)


# --- Cancel and progress: where each host keeps them -------------------------------------

def interrupt_exception() -> type:
    """The exception ComfyUI's Cancel raises (``throw_exception_if_processing_interrupted``):
    in comfy.model_management upstream, in comfy.interruption in the 0.10 fork."""
    import comfy.model_management as mm
    exc = getattr(mm, "InterruptProcessingException", None)
    if exc is None:
        from comfy.interruption import InterruptProcessingException as exc
    return exc


def processing_interrupted() -> bool:
    """Is Cancel pending? The 0.10 fork's ``model_management.processing_interrupted()``
    returns None (its wrapper drops the value), so read the flag where it lives."""
    try:
        from comfy.interruption import processing_interrupted as pending
    except ImportError:  # upstream: the flag lives in model_management
        from comfy.model_management import processing_interrupted as pending
    return bool(pending())


@contextlib.contextmanager
def progress_hook(hook):
    """Inside the block every ``comfy.utils.ProgressBar`` update calls
    ``hook(value, total, preview, node_id=None)``, as the server's hook is called.

    Upstream ComfyUI has one global hook (``set_progress_bar_global_hook``); the 0.10 fork
    sends each update to the execution context's server as a "progress" message."""
    import comfy.utils
    if hasattr(comfy.utils, "set_progress_bar_global_hook"):
        old = comfy.utils.PROGRESS_BAR_HOOK
        comfy.utils.set_progress_bar_global_hook(hook)
        try:
            yield
        finally:
            comfy.utils.set_progress_bar_global_hook(old)
        return
    from comfy.distributed.server_stub import ServerStub
    from comfy.execution_context import context_execute_prompt, current_execution_context

    class _HookServer(ServerStub):
        def send_sync(self, event, data, sid=None):
            if event == "progress":
                hook(data["value"], data["max"], data.get("output"), node_id=data.get("node"))

    with context_execute_prompt(_HookServer(), "lotts-host-tests",
                                current_execution_context().progress_registry):
        yield


@functools.lru_cache(maxsize=1)
def progress_bar_checks_cancel() -> bool:
    """Does ``ProgressBar.update_absolute`` itself raise on a pending Cancel (the 0.10
    fork), rather than the server's hook (upstream)? Measured, not looked up."""
    import comfy.model_management as mm
    import comfy.utils
    mm.interrupt_current_processing(True)
    try:
        with progress_hook(lambda *a, **k: None):
            comfy.utils.ProgressBar(1).update_absolute(1)
    except interrupt_exception():
        return True
    finally:
        mm.interrupt_current_processing(False)
    return False
