"""The opt-in download: resumable (HTTP Range), verified (sha256 or size), no real network."""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error

import pytest

from lotts.verifiers import VerifierError
from lotts.verifiers.download import OFFICIAL_FILES, download_file, download_official

PAYLOAD = bytes(range(256)) * 40  # 10 KB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class FakeServer:
    """Stands in for urllib.request.urlopen; honours Range unless told not to."""

    def __init__(self, payload=PAYLOAD, honour_range=True, linked_sha=SHA, cut_at=None, status404=()):
        self.payload, self.honour_range, self.linked_sha = payload, honour_range, linked_sha
        self.cut_at, self.status404, self.requests = cut_at, status404, []

    def __call__(self, req, timeout=None):
        url = req.full_url
        rng = req.get_header("Range")
        self.requests.append((url, rng))
        if any(url.endswith(s) for s in self.status404):
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        start = int(rng.split("=")[1].rstrip("-")) if rng and self.honour_range else 0
        body = self.payload[start:self.cut_at] if self.cut_at else self.payload[start:]
        headers = {"Content-Length": str(len(self.payload) - start)}
        if self.linked_sha:
            headers["X-Linked-ETag"] = f'"{self.linked_sha}"'
        status = 200
        if rng and self.honour_range:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(self.payload) - 1}/{len(self.payload)}"
        return _Resp(body, headers, status)


class _Resp(io.BytesIO):
    def __init__(self, body, headers, status):
        super().__init__(body)
        self.headers, self.status = headers, status


def test_fresh_download_verified_with_progress(tmp_path):
    seen = []
    dest = download_file("https://x/f.pt", str(tmp_path / "a" / "f.pt"), opener=FakeServer(),
                         progress=lambda d, t: seen.append((d, t)))
    assert open(dest, "rb").read() == PAYLOAD and not os.path.exists(dest + ".part")
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_interrupted_download_is_kept_then_resumed_with_range(tmp_path):
    dest = str(tmp_path / "f.pt")
    with pytest.raises(VerifierError, match="stopped at 3000 of 10240 bytes; run again to resume"):
        download_file("https://x/f.pt", dest, opener=FakeServer(cut_at=3000, linked_sha=None))
    assert os.path.getsize(dest + ".part") == 3000 and not os.path.exists(dest)
    server = FakeServer()
    download_file("https://x/f.pt", dest, opener=server)
    assert server.requests == [("https://x/f.pt", "bytes=3000-")]
    assert open(dest, "rb").read() == PAYLOAD


def test_server_ignoring_range_restarts_cleanly(tmp_path):
    dest = str(tmp_path / "f.pt")
    with open(dest + ".part", "wb") as f:
        f.write(b"garbage!")
    download_file("https://x/f.pt", dest, opener=FakeServer(honour_range=False))
    assert open(dest, "rb").read() == PAYLOAD


def test_sha_mismatch_deletes_partial_and_names_url(tmp_path):
    dest = str(tmp_path / "f.pt")
    with pytest.raises(VerifierError, match="https://x/f.pt: sha256 .* does not match"):
        download_file("https://x/f.pt", dest, opener=FakeServer(linked_sha="0" * 64))
    assert not os.path.exists(dest) and not os.path.exists(dest + ".part")
    with pytest.raises(VerifierError, match="does not match"):
        download_file("https://x/f.pt", dest, sha256="1" * 64, opener=FakeServer(linked_sha=None))


def test_official_download_layout_skips_present_files_and_falls_back_to_bin(tmp_path):
    (tmp_path / "ImageReward").mkdir()
    (tmp_path / "ImageReward" / "med_config.json").write_text("{}")
    server = FakeServer(linked_sha=None)
    paths = download_official("ImageReward", str(tmp_path), opener=server,
                              progress=lambda rel, d, t: None)
    assert [os.path.relpath(p, tmp_path) for p in paths] == \
        ["ImageReward/ImageReward.pt", "ImageReward/med_config.json", "ImageReward/vocab.txt"]
    assert len(server.requests) == 2  # med_config.json was already there
    server = FakeServer(linked_sha=None, status404=("model.safetensors",))
    paths = download_official("PickScore", str(tmp_path), opener=server)
    assert sorted(os.path.basename(p) for p in paths) == ["config.json", "pytorch_model.bin"]


def test_every_verifier_has_official_files():
    from lotts.verifiers import SPECS
    for name, spec in SPECS.items():
        rels = [rel for _, rel, _ in OFFICIAL_FILES[name]]
        assert any(r == spec.default_weights or r.startswith(spec.default_weights + "/") for r in rels), name
        assert all(u.startswith("https://") for u, _, _ in OFFICIAL_FILES[name])
