"""A real ComfyUI server for the e2e tier: start it, talk to it, stop it.

Everything lives in a private ``--base-directory`` (custom_nodes, models, input, output,
temp, user), the server listens on loopback only, and its stdout/stderr go to
``<base>/server.log``.

Deliberately not named ``server.py``: pytest puts tests/e2e on ``sys.path``, and ComfyUI's
own top-level ``server`` module is imported lazily (``from server import PromptServer`` in
comfy_extras and in custom nodes), so a ``tests/e2e/server.py`` could shadow it in any
in-process host test that runs in the same session.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from lotts_eval.runner import PromptFailed, Server  # the runner's client: one copy
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS_DIR = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(TESTS_DIR)
PACK_DIR_NAME = "comfyui_lotts"
TINY_CKPT_NAME = "tiny_sd15.safetensors"
LOOPBACK = "127.0.0.1"
NO_COMFYUI_REASON = ("ComfyUI not found: set COMFYUI_PATH=<ComfyUI checkout> (and COMFYUI_PYTHON "
                     "if its python is not <checkout>/.venv/bin/python)")


# The runner's error: a refused or failed prompt, a dead server, a timeout.
ComfyError = PromptFailed


def log_tail(path: str, lines: int = 60) -> str:
    try:
        with open(path, "r", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"(no server log: {e})"


# --------------------------------------------------------------------------- probing
_PROBE = r"""
import importlib.metadata, importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
import torch
from comfy.cli_args import args
args.cpu = True
import comfy.model_management
frontend = importlib.util.find_spec("comfyui_frontend_package") is not None
print(json.dumps({"torch": torch.__version__, "frontend": frontend,
                  "frontend_version": importlib.metadata.version("comfyui-frontend-package")
                  if frontend else None}))
"""


def probe_python(python: str, comfy_path: str, timeout: float = 120) -> tuple[dict | None, str]:
    """Can ``python`` import torch and ComfyUI's comfy package? (info, one-line reason)."""
    if not os.path.exists(python):
        return None, f"ComfyUI python {python} does not exist (set COMFYUI_PYTHON)"
    try:
        r = subprocess.run([python, "-c", _PROBE, comfy_path], capture_output=True, text=True,
                           timeout=timeout, cwd=comfy_path)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"ComfyUI python {python} failed to start: {type(e).__name__}: {e}"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
        return None, (f"{python} cannot import torch + ComfyUI at {comfy_path}: {last} "
                      "(set COMFYUI_PYTHON to ComfyUI's venv python)")
    try:
        return json.loads(r.stdout.strip().splitlines()[-1]), ""
    except (ValueError, IndexError):
        return None, f"{python}: unexpected probe output {r.stdout[-200:]!r}"


def server_command(comfy_path: str, python: str) -> list[str] | None:
    """How this ComfyUI starts its server, or None if ``comfy_path`` has no server.

    Upstream: ``main.py`` at the checkout's root. ComfyUI as an installable package (the
    0.10 fork) has its server in ``comfy/cmd/main.py`` (its root main.py is a deprecated
    shim that rewrites the base paths): run the entry point its ``comfyui`` console script
    runs, with ComfyUI's python."""
    if os.path.isfile(os.path.join(comfy_path, "comfy", "cmd", "main.py")):
        return [python, "-c", "import sys; from comfy.cmd.main import entrypoint; "
                              "sys.exit(entrypoint())"]
    if os.path.isfile(os.path.join(comfy_path, "main.py")):
        return [python, "main.py"]
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def tiny_checkpoint(python: str, comfy_path: str, family: str = "sd15",
                    timeout: float = 600) -> str:
    """Path of the cached tiny checkpoint of ``family`` (tiny_checkpoint.py: "sd15", "sd3"),
    built with ComfyUI's python if absent."""
    env = dict(os.environ, COMFYUI_PATH=comfy_path)
    r = subprocess.run([python, os.path.join(HERE, "tiny_checkpoint.py"), "--family", family,
                        "--cached"],
                       capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO_ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"building the tiny {family} checkpoint failed:\n" + r.stderr[-4000:])
    path = r.stdout.strip().splitlines()[-1]
    if not os.path.isfile(path):
        raise RuntimeError(f"tiny checkpoint builder printed {path!r}, which does not exist")
    return path


def link_checkpoint(base: str, ckpt_path: str, name: str | None = None) -> str:
    """Symlink ``ckpt_path`` into ``base``'s models/checkpoints; the name loaders use.
    A running server sees it at its next prompt (ComfyUI re-lists a folder whose mtime
    changed)."""
    name = name or os.path.basename(ckpt_path)
    link = os.path.join(base, "models", "checkpoints", name)
    if not os.path.lexists(link):
        os.symlink(ckpt_path, link)
    return name


def make_base_dir(ckpt_path: str | None, root: str | None = None,
                  link_pack: bool = True) -> str:
    """A fresh ``--base-directory``: the pack linked into custom_nodes, the checkpoint linked."""
    base = tempfile.mkdtemp(prefix="lotts_e2e_", dir=root)
    for sub in ("custom_nodes", "models/checkpoints", "input", "output", "temp", "user"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    if link_pack:
        os.symlink(REPO_ROOT, os.path.join(base, "custom_nodes", PACK_DIR_NAME))
    if ckpt_path:
        link_checkpoint(base, ckpt_path, TINY_CKPT_NAME)
    add_tiny_verifiers(os.path.join(base, "models", "lotts_verifiers"))
    return base


def add_tiny_verifiers(folder: str) -> None:
    """Tiny random ImageReward weights in the official layout and file name, where the
    pack's verifier loader looks (models/lotts_verifiers/ImageReward/ImageReward.pt), so
    workflows with a LoTTS Verifier Loader run. Built by the core tests' fixture code."""
    sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "core"))
    try:
        import verifier_fixtures
    finally:
        sys.path.pop(0)
    verifier_fixtures.make_imagereward(os.path.join(folder, "ImageReward"))


# --------------------------------------------------------------------------- server
def _die_with_parent() -> None:
    """preexec_fn: on Linux the server gets SIGTERM when the test process dies, even by
    SIGKILL or an unhandled SIGTERM (fixture finalizers then never run)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class ComfyServer:
    """One ComfyUI server process (``server_command``) on a free loopback port.

    ``frontend``: True serves the frontend package installed in ComfyUI's python, a path
    serves that frontend folder (``--front-end-root``), False a blank page.
    """

    def __init__(self, comfy_path: str, python: str, base_dir: str,
                 frontend: bool | str = True, extra_args: list[str] | None = None):
        self.comfy_path = comfy_path
        self.python = python
        self.base_dir = base_dir
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.log_path = os.path.join(base_dir, "server.log")
        self.proc: subprocess.Popen | None = None
        self.cmd = server_command(comfy_path, python) + [
            "--cpu", "--listen", LOOPBACK, "--port", str(self.port), "--disable-api-nodes",
            "--disable-auto-launch", "--base-directory", base_dir,
            "--database-url", "sqlite:///:memory:"]
        if not frontend:
            fe = os.path.join(base_dir, "frontend")
            os.makedirs(fe, exist_ok=True)
            with open(os.path.join(fe, "index.html"), "w") as f:
                f.write("<!doctype html><title>no frontend (e2e tests)</title>\n")
            self.cmd += ["--front-end-root", fe]
        elif isinstance(frontend, str):
            self.cmd += ["--front-end-root", frontend]
        self.cmd += list(extra_args or [])

    def start(self, timeout: float = 90) -> "ComfyServer":
        log = open(self.log_path, "w")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("COMFYUI_PATH", None)  # the pack must not care
        self.proc = subprocess.Popen(self.cmd, cwd=self.comfy_path, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True,
                                     preexec_fn=_die_with_parent if sys.platform.startswith("linux")
                                     else None)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with code {self.proc.returncode} while "
                                   f"starting; {self.log_path}:\n{log_tail(self.log_path)}")
            try:
                with urllib.request.urlopen(self.url + "/system_stats", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ComfyUI did not answer /system_stats within {timeout:.0f}s; "
                                   f"{self.log_path}:\n{log_tail(self.log_path)}")
            time.sleep(0.25)

    def stop(self, grace: float = 10) -> None:
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


# --------------------------------------------------------------------------- client
class ComfyClient(Server):
    """The evaluation runner's HTTP client (lotts_eval.runner.Server) on a server these
    tests started: it knows when the process died, and adds what only tests need."""

    def __init__(self, server: ComfyServer):
        super().__init__(server.url, timeout=60, poll=0.25, retries=0)
        self.server = server
        self.base_dir = server.base_dir
        self.log_path = server.log_path
        self._object_info = None

    def alive(self) -> bool:
        return self.server.running()

    def get_json(self, path: str, timeout: float = 60):
        return self._request("GET", path, timeout=timeout)

    def post_json(self, path: str, body, timeout: float = 60):
        return self._request("POST", path, body, timeout=timeout)

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.log_path, lines)

    def system_stats(self) -> dict:
        return self.get_json("/system_stats")

    def object_info(self, refresh: bool = False) -> dict:
        if self._object_info is None or refresh:
            self._object_info = self.get_json("/object_info", timeout=120)
        return self._object_info

    def wait(self, prompt_id: str, timeout: float | None = 300) -> dict:
        try:
            return super().wait(prompt_id, timeout)
        except PromptFailed as e:  # the server's own words help most here
            raise ComfyError(f"{e}\nserver log tail:\n{self.log_tail(30)}") from None

    def run(self, prompt: dict, timeout: float | None = 300) -> dict:
        return self.wait(self.queue(prompt), timeout)

    def history(self, prompt_id: str | None = None) -> dict:
        return self.get_json("/history" + (f"/{prompt_id}" if prompt_id else ""))

    def queue_state(self) -> dict:
        return self.get_json("/queue")

    def clear_queue(self) -> None:
        self.post_json("/queue", {"clear": True})

    def upload_image(self, data: bytes, name: str, subfolder: str = "",
                     overwrite: bool = True) -> str:
        """POST /upload/image (multipart); the name to put in a LoadImage node."""
        boundary = uuid.uuid4().hex
        parts = []
        fields = {"overwrite": "true" if overwrite else "false", "type": "input"}
        if subfolder:
            fields["subfolder"] = subfolder
        for k, v in fields.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                         f"{v}\r\n".encode())
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
                     f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + data + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        raw = self.raw("POST", "/upload/image", b"".join(parts),
                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        out = json.loads(raw)
        return f"{out['subfolder']}/{out['name']}" if out.get("subfolder") else out["name"]

    def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:
        q = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": type})
        return self.raw("GET", "/view?" + q)

    def output_files(self, entry: dict) -> list[dict]:
        """Every file an output node reported (images, gifs, audio, latents…), with its
        node id, kind, and local ``path`` under the base directory."""
        files = []
        for node_id, out in (entry.get("outputs") or {}).items():
            for kind, items in out.items():
                if not isinstance(items, list):
                    continue
                for item in items:
                    if isinstance(item, dict) and "filename" in item:
                        path = os.path.join(self.base_dir, item.get("type", "output"),
                                            item.get("subfolder", ""), item["filename"])
                        files.append(dict(item, node_id=node_id, kind=kind, path=path))
        return files


def start(comfy_path: str, python: str, ckpt_path: str | None, frontend: bool,
          root: str | None = None, timeout: float = 90) -> tuple[ComfyServer, ComfyClient]:
    base = make_base_dir(ckpt_path, root)
    srv = ComfyServer(comfy_path, python, base, frontend=frontend)
    srv.start(timeout)
    return srv, ComfyClient(srv)


def remove_base_dir(base: str) -> None:
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":  # manual use: start one and print its URL until Ctrl-C
    sys.path.append(TESTS_DIR)
    import comfy_host
    cp = comfy_host.find_comfyui()
    if cp is None:
        sys.exit("set COMFYUI_PATH")
    py = comfy_host.comfyui_python(cp)
    info, why = probe_python(py, cp)
    if info is None:
        sys.exit(why)
    s, c = start(cp, py, tiny_checkpoint(py, cp), info["frontend"])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the finally below
    print(c.url, s.base_dir, flush=True)
    try:
        while s.running():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        s.stop()
