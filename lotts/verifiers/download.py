"""Opt-in download of the official verifier weights: resumable and verified.

Only called when the user switches the loader's ``download`` option on; nothing here runs
at import. A file is fetched to ``<name>.part`` (resumed with an HTTP Range request when a
partial file exists), checked (sha256 when known -- Hugging Face reports the sha256 of
LFS files in ``X-Linked-ETag`` -- else the announced size), then renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request

from .base import VerifierError

_HF = "https://huggingface.co/{repo}/resolve/main/{file}"

# verifier -> [(url, relative destination under the verifiers folder, sha256 or None)]
OFFICIAL_FILES = {
    "ImageReward": [
        (_HF.format(repo="THUDM/ImageReward", file="ImageReward.pt"), "ImageReward/ImageReward.pt", None),
        (_HF.format(repo="THUDM/ImageReward", file="med_config.json"), "ImageReward/med_config.json", None),
        (_HF.format(repo="google-bert/bert-base-uncased", file="vocab.txt"), "ImageReward/vocab.txt", None),
    ],
    "HPSv2": [(_HF.format(repo="xswu/HPSv2", file="HPS_v2_compressed.pt"), "HPS_v2_compressed.pt", None)],
    "HPSv2.1": [(_HF.format(repo="xswu/HPSv2", file="HPS_v2.1_compressed.pt"), "HPS_v2.1_compressed.pt", None)],
    "PickScore": [
        (_HF.format(repo="yuvalkirstain/PickScore_v1", file="config.json"), "PickScore_v1/config.json", None),
        (_HF.format(repo="yuvalkirstain/PickScore_v1", file="model.safetensors"), "PickScore_v1/model.safetensors", None),
    ],
    "CLIPScore": [
        (_HF.format(repo="openai/clip-vit-large-patch14", file=f), f"clip-vit-large-patch14/{f}", None)
        for f in ("config.json", "model.safetensors", "vocab.json", "merges.txt")
    ],
    "Aesthetic": [
        ("https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/"
         "sac%2Blogos%2Bava1-l14-linearMSE.pth", "sac+logos+ava1-l14-linearMSE.pth", None),
    ] + [
        (_HF.format(repo="openai/clip-vit-large-patch14", file=f), f"clip-vit-large-patch14/{f}", None)
        for f in ("config.json", "model.safetensors", "vocab.json", "merges.txt")
    ],
}

CHUNK = 1 << 20


def official_url(name: str, filename: str) -> str | None:
    """The official download link of verifier ``name``'s file ``filename`` (a base name)."""
    for url, rel, _ in OFFICIAL_FILES.get(name, ()):
        if rel.rsplit("/", 1)[-1] == filename:
            return url
    return None


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download_file(url: str, dest: str, sha256: str | None = None, progress=None, opener=None) -> str:
    """Fetch ``url`` to ``dest`` (resuming ``dest + '.part'``), verify, rename; returns ``dest``.

    ``progress(done_bytes, total_bytes_or_None)`` is called as data arrives.
    ``opener`` defaults to ``urllib.request.urlopen`` (tests pass a fake).
    """
    opener = opener or urllib.request.urlopen
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    part = dest + ".part"
    have = os.path.getsize(part) if os.path.isfile(part) else 0
    req = urllib.request.Request(url, headers={"User-Agent": "comfyui-lotts"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = opener(req, timeout=60)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # already complete
            resp = None
        else:
            raise VerifierError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
    except OSError as e:
        raise VerifierError(f"download of {url} failed: {e}. Download it yourself and put it at {dest}") from None
    total = None
    if resp is not None:
        with resp:
            headers = resp.headers
            status = getattr(resp, "status", 200)
            linked = headers.get("X-Linked-ETag") or headers.get("x-linked-etag")
            if sha256 is None and linked and re.fullmatch(r'"?[0-9a-f]{64}"?', linked.strip()):
                sha256 = linked.strip().strip('"')
            if status == 206:
                m = re.search(r"/(\d+)$", headers.get("Content-Range", ""))
                total = int(m.group(1)) if m else None
                mode = "ab"
            else:  # the server ignored the Range: start over
                have, mode = 0, "wb"
                n = headers.get("Content-Length")
                total = int(n) if n and n.isdigit() else None
            done = have
            with open(part, mode) as f:
                while True:
                    block = resp.read(CHUNK)
                    if not block:
                        break
                    f.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
    size = os.path.getsize(part)
    if total is not None and size != total:
        raise VerifierError(f"download of {url} stopped at {size} of {total} bytes; run again to resume "
                            f"({part} is kept)")
    if sha256 is not None:
        got = _sha256(part)
        if got != sha256.lower():
            os.remove(part)
            raise VerifierError(f"download of {url}: sha256 {got} does not match the expected {sha256}; "
                                "the partial file was deleted, run again")
    os.replace(part, dest)
    return dest


def download_official(name: str, root: str, progress=None, opener=None) -> list[str]:
    """Download the official files of verifier ``name`` into ``root`` (skipping files that
    are already there); returns their paths."""
    if name not in OFFICIAL_FILES:
        raise VerifierError(f"no official download for verifier '{name}'")
    paths = []
    for url, rel, sha in OFFICIAL_FILES[name]:
        dest = os.path.join(root, *rel.split("/"))
        cb = (lambda d, t, r=rel: progress(r, d, t)) if progress else None
        if rel.endswith("/model.safetensors"):
            # some repos publish only pytorch_model.bin: accept either
            alt = dest[:-len("model.safetensors")] + "pytorch_model.bin"
            if os.path.isfile(alt):
                paths.append(alt)
                continue
            if not os.path.isfile(dest):
                try:
                    download_file(url, dest, sha, progress=cb, opener=opener)
                except VerifierError as e:
                    if "HTTP 404" not in str(e):
                        raise
                    download_file(url[:-len("model.safetensors")] + "pytorch_model.bin", alt, None,
                                  progress=cb, opener=opener)
                    dest = alt
            paths.append(dest)
            continue
        if not os.path.isfile(dest):
            download_file(url, dest, sha, progress=cb, opener=opener)
        paths.append(dest)
    return paths
