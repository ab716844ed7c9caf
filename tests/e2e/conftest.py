"""e2e tier: a real ComfyUI server with the pack in its custom_nodes.

Fixtures (session-scoped unless noted):

* ``comfy_env``   (comfy_path, python, probe info) or a one-line skip. ComfyUI is found by
                  ``comfy_host.find_comfyui()`` (COMFYUI_PATH, or the ComfyUI this repo sits
                  in); the server's python by ``comfy_host.comfyui_python()``
                  (COMFYUI_PYTHON, else <ComfyUI>/.venv/bin/python, else this python),
                  checked by a subprocess that imports torch + comfy.model_management.
* ``tiny_ckpt``   path of the cached tiny SD1.5 checkpoint (tiny_checkpoint.py, built once
                  with ComfyUI's python into ~/.cache/lotts-tests/<version>/).
* ``tiny_ckpt_for``  family ("sd15", "sd3": tiny_checkpoint.FAMILIES) -> the name of that
                  tiny checkpoint in the ``comfy`` server's models/checkpoints; builds
                  (cached) and links a family on first use, so sessions that never ask
                  for the ~1 GB SD3 one do not build it.
* ``comfy``       a ComfyClient (comfy_server.py) for a server started on a free loopback
                  port with a private --base-directory; stopped at session end. Its log is
                  attached to every failing test that used it.
* ``comfy_newest_frontend``  the same, serving the newest frontend (frontends.py).
* ``ui_comfy``    (function scope, parametrized) one of the two, once per frontend.
* ``browser_tools``  (chromium, node, playwright-core folder) for browser_driver.run().
* ``pack_node_ids``  the pack's node ids, from loading the repo through
                  ComfyUI's own custom-node loader in a subprocess (ComfyUI's python).

Env: LOTTS_E2E_KEEP=1 keeps the base directory (it is also kept when a test failed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS_DIR = os.path.dirname(HERE)
for _p in (TESTS_DIR, HERE):
    if _p not in sys.path:
        sys.path.append(_p)

import browser_driver  # noqa: E402
import comfy_host  # noqa: E402
import comfy_server  # noqa: E402
import frontends  # noqa: E402

_failed = {"n": 0}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        _failed["n"] += 1
        for client in getattr(item, "funcargs", {}).values():
            if isinstance(client, comfy_server.ComfyClient):
                rep.sections.append((f"ComfyUI server log tail ({client.log_path})",
                                     client.log_tail(80)))


@pytest.fixture(scope="session")
def comfy_env():
    path = comfy_host.find_comfyui()
    if path is None:
        comfy_host.host_missing(comfy_server.NO_COMFYUI_REASON)
    python = comfy_host.comfyui_python(path)
    if comfy_server.server_command(path, python) is None:
        comfy_host.host_missing(f"COMFYUI_PATH={path} is not a ComfyUI checkout (no main.py, "
                                "no comfy/cmd/main.py)")
    info, reason = comfy_server.probe_python(python, path)
    if info is None:
        comfy_host.host_missing(reason)
    # Load the pack through ComfyUI's loader in the background (~10 s), overlapping the
    # checkpoint build and the server start; ``pack_nodes`` collects the result.
    listing = _start_pack_listing(path, python)
    yield path, python, info
    if listing.poll() is None:
        listing.kill()
    listing.wait()


@pytest.fixture(scope="session")
def tiny_ckpt(comfy_env):
    path, python, _ = comfy_env
    try:
        return comfy_server.tiny_checkpoint(python, path)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        pytest.fail(str(e), pytrace=False)


def _serve(comfy_env, tiny_ckpt, frontend):
    """A ComfyClient on a fresh server (see ComfyServer for ``frontend``), stopped after."""
    path, python, _ = comfy_env
    base = comfy_server.make_base_dir(tiny_ckpt)
    srv = comfy_server.ComfyServer(path, python, base, frontend=frontend)
    try:
        srv.start(timeout=float(os.environ.get("LOTTS_E2E_START_TIMEOUT", "90")))
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    client = comfy_server.ComfyClient(srv)
    try:
        yield client
    finally:
        srv.stop()
        if _failed["n"] or os.environ.get("LOTTS_E2E_KEEP"):
            sys.stderr.write(f"\n[e2e] ComfyUI base directory kept: {base}\n")
        else:
            comfy_server.remove_base_dir(base)


@pytest.fixture(scope="session")
def comfy(comfy_env, tiny_ckpt):
    """The server with ComfyUI's own (pinned) frontend package, if installed."""
    yield from _serve(comfy_env, tiny_ckpt, comfy_env[2]["frontend"])


@pytest.fixture(scope="session")
def comfy_newest_frontend(comfy_env, tiny_ckpt):
    """A second server that serves frontend frontends.NEWEST (skips if it is not installed)."""
    static, reason = frontends.newest_static_dir()
    if static is None:
        comfy_host.host_missing(reason)
    yield from _serve(comfy_env, tiny_ckpt, static)


def _ui_client(request, kind):
    if kind == "pinned":
        info = request.getfixturevalue("comfy_env")[2]
        if not info["frontend"]:
            comfy_host.host_missing("comfyui-frontend-package is not installed in ComfyUI's python")
        client = request.getfixturevalue("comfy")
        client.frontend_version = info.get("frontend_version")
    else:
        client = request.getfixturevalue("comfy_newest_frontend")
        client.frontend_version = frontends.installed_version(frontends.newest_static_dir()[0])
    client.frontend = kind
    return client


@pytest.fixture(params=frontends.KINDS, ids=[frontends.IDS[k] for k in frontends.KINDS])
def ui_comfy(request):
    """The server for a browser test, once per frontend (frontends.py): a ComfyClient
    with ``frontend`` ("pinned" / "newest") and ``frontend_version`` set."""
    return _ui_client(request, request.param)


@pytest.fixture
def ui_comfy_pinned(request):
    """ui_comfy for the pinned frontend only."""
    return _ui_client(request, "pinned")


@pytest.fixture(scope="session")
def browser_tools():
    """(chromium, node, node_modules folder holding playwright-core), or a one-line skip."""
    tools, reason = browser_driver.find_tools()
    if tools is None:
        comfy_host.host_missing(reason)
    return tools


@pytest.fixture(scope="session")
def tiny_ckpt_name():
    return comfy_server.TINY_CKPT_NAME


@pytest.fixture(scope="session")
def tiny_ckpt_for(comfy_env, comfy, tiny_ckpt_name):
    path, python, _ = comfy_env
    names = {"sd15": tiny_ckpt_name}

    def name_for(family: str) -> str:
        if family not in names:
            try:
                ckpt = comfy_server.tiny_checkpoint(python, path, family)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                pytest.fail(str(e), pytrace=False)
            names[family] = comfy_server.link_checkpoint(comfy.base_dir, ckpt)
        return names[family]
    return name_for


_LIST_PACK = r"""
import json, sys
sys.path.append(sys.argv[1])
import comfy_host
path, reason = comfy_host._import_comfyui()
if path is None:
    print("LOTTS_PACK_JSON " + json.dumps({"error": reason})); sys.exit(0)
try:
    found = comfy_host.pack_nodes()
except Exception as e:
    print("LOTTS_PACK_JSON " + json.dumps({"error": f"{type(e).__name__}: {e}"})); sys.exit(0)
print("LOTTS_PACK_JSON " + json.dumps({"ids": list(found),
                                       "display": {i: c.GET_SCHEMA().display_name
                                                   for i, c in found.items()}}))
"""


def _start_pack_listing(comfy_path: str, python: str) -> subprocess.Popen:
    env = dict(os.environ, COMFYUI_PATH=comfy_path)
    proc = subprocess.Popen([python, "-c", _LIST_PACK, TESTS_DIR], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=comfy_path)
    _listings[(comfy_path, python)] = proc
    return proc


_listings: dict = {}


def list_pack_nodes(comfy_path: str, python: str, timeout: float = 300) -> dict:
    """{"ids", "display"} or {"error", "log"}: the repo loaded by ComfyUI's custom-node
    loader (comfy_host.load_pack) in a subprocess with ComfyUI's python."""
    proc = _listings.pop((comfy_path, python), None) or _start_pack_listing(comfy_path, python)
    _listings.pop((comfy_path, python), None)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return {"error": f"loading the pack took over {timeout:.0f}s", "log": out[-4000:]}
    for line in out.splitlines():
        if line.startswith("LOTTS_PACK_JSON "):
            res = json.loads(line[len("LOTTS_PACK_JSON "):])
            if "error" in res:
                res["log"] = out[-4000:]
            return res
    return {"error": f"pack listing subprocess failed (rc {proc.returncode})", "log": out[-4000:]}


@pytest.fixture(scope="session")
def pack_nodes(comfy_env):
    """{"ids": [...], "display": {...}}; fails the test (with the loader's log) if the pack
    does not import through ComfyUI's loader."""
    path, python, _ = comfy_env
    out = list_pack_nodes(path, python)
    if "error" in out:
        pytest.fail(f"the pack does not load through ComfyUI's loader: {out['error']}\n"
                    f"{out.get('log', '')}", pytrace=False)
    return out


@pytest.fixture(scope="session")
def pack_node_ids(pack_nodes):
    return list(pack_nodes["ids"])
