"""Reading a verifier's side files (configs, vocabularies) and checking them against the
weights, so a wrong file is refused at load time with a message naming it.

Files found beside weights are often not what their names say: the HTML page a browser
saves from a model page ("Save link as" on a ``/blob/`` link), a Git LFS pointer from a
clone without git-lfs, an empty file from an interrupted download, or the config of
another model. Each is refused here, naming the file, what is wrong with it and where the
right one comes from (``source``: a sentence the caller writes), instead of failing later
with a bare ``JSONDecodeError`` or a tensor-shape error inside scoring.
"""

from __future__ import annotations

import json
import numbers

from .base import VerifierError

_SNIFF_BYTES = 2048


def impostor(path: str) -> str | None:
    """What the file really is when it is a common stand-in for the real file, else None:
    empty, an HTML page, or a Git LFS pointer."""
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not head.strip():
        return "is empty (an interrupted download?)"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html")) or (text.startswith(b"<") and b"<html" in text):
        return "is an HTML page (what a browser saves from a model page), not the file itself"
    if text.startswith(b"version https://git-lfs.github.com/spec/"):
        return ("is a Git LFS pointer (a clone without git-lfs), not the file itself; "
                "run `git lfs pull` there or download the file")
    return None


def _refuse(what: str, path: str, problem: str, source: str):
    raise VerifierError(f"{what}: {path} {problem}. {source}".rstrip())


def read_text(path: str, what: str, source: str = "") -> str:
    """The file as UTF-8 text, refusing impostors and undecodable bytes."""
    problem = impostor(path)
    if problem:
        _refuse(what, path, problem, source)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as e:
        _refuse(what, path, f"is not UTF-8 text (byte {e.start}): not the right file", source)


def read_json_object(path: str, what: str, source: str = "") -> dict:
    """A JSON object (``{...}``) from the file, or a message saying why it is not one."""
    text = read_text(path, what, source)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        _refuse(what, path, f"is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})", source)
    if not isinstance(obj, dict):
        _refuse(what, path, f"holds a JSON {type(obj).__name__}, not an object ({{...}}): not the right file",
                source)
    return obj


class ConfigCheck:
    """Checks of one config file's values against the weights, all with the same message
    shape: file, key, what was wrong, where to get the right file."""

    def __init__(self, path: str, what: str, source: str = ""):
        self.path, self.what, self.source = path, what, source

    def fail(self, problem: str):
        _refuse(self.what, self.path, problem, self.source)

    def whole(self, key: str, value) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            self.fail(f"says {key} {value!r}, which is not a whole number >= 1")
        return int(value)

    def same(self, key: str, value, in_weights: int, where: str):
        """``value`` (None: absent from the file, nothing to check) must be ``in_weights``."""
        if value is None:
            return
        if self.whole(key, value) != in_weights:
            self.fail(f"says {key} {value} but the weights have {in_weights} ({where}): the file "
                      "belongs to another model")

    def divides(self, heads_key: str, heads, width_key: str, width: int, where: str = "the width in the weights") -> int:
        heads = self.whole(heads_key, heads)
        if width % heads:
            self.fail(f"says {heads_key} {heads}, which does not divide {width_key} {width} ({where}): "
                      "each attention head takes width / heads channels")
        return heads

    def small_positive(self, key: str, value) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
            self.fail(f"says {key} {value!r}, which is not a small positive number (e.g. 1e-12)")
        return float(value)
