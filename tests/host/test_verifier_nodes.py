"""LoTTSVerifierLoader / LoTTSVerifierPick inside real ComfyUI (in-process): the models
folder, ModelPatcher + ComfyUI's memory manager, ranked pass-through, errors, and the
opt-in download; tiny random checkpoints in the original layouts, no network."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from comfy_host import (interrupt_exception, load_pack, pack_nodes, processing_interrupted,
                        progress_hook, require_comfyui, run_node)

require_comfyui()

import pytest  # noqa: E402
import torch  # noqa: E402

import comfy.model_management as mm  # noqa: E402
import comfy.model_patcher  # noqa: E402
import folder_paths  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "core"))
import verifier_fixtures as vf  # noqa: E402

PROMPT = "a photo of the red cat"


@pytest.fixture(autouse=True)
def network_guard(monkeypatch):
    attempts = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args, **kwargs):
        attempts.append(args[1:] if args and isinstance(args[0], socket.socket) else args)
        raise OSError("network access attempted in a test")

    for obj, name in ((socket.socket, "connect"), (socket.socket, "connect_ex"),
                      (socket, "getaddrinfo"), (socket, "create_connection")):
        monkeypatch.setattr(obj, name, refuse)
    yield attempts
    assert attempts == [], f"network connections attempted: {attempts}"


@pytest.fixture(scope="module")
def pack():
    return load_pack()


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, pack):
    root = tmp_path_factory.mktemp("lotts_verifiers")
    vf.make_imagereward(root / "ImageReward")
    # HPS with the real CLIP vocabulary size and no tokenizer beside it: ComfyUI's
    # comfy/sd1_tokenizer must be used
    vf.make_hps(root, seed=1, name="HPS_v2.1_compressed.pt", tokenizer=False, vocab=49408, tw=16)
    vf.make_hf_clip(root / "PickScore_v1", seed=3)
    folder_paths.add_model_folder_path("lotts_verifiers", str(root), is_default=True)
    yield root
    paths = folder_paths.folder_names_and_paths["lotts_verifiers"][0]
    if str(root) in paths:
        paths.remove(str(root))


class _Loader:
    @staticmethod
    def load(*args, **kw):
        return run_node("LoTTSVerifierLoader", *args, **kw).result


class _Pick:
    @staticmethod
    def pick(*args, **kw):
        return run_node("LoTTSVerifierPick", *args, **kw)


def _nodes(pack):
    return _Loader, _Pick


def test_schemas_are_the_public_api(pack, models_dir):
    L, P = pack_nodes()["LoTTSVerifierLoader"], pack_nodes()["LoTTSVerifierPick"]
    li = L.INPUT_TYPES()
    assert list(li["required"]) == ["verifier", "weights", "precision"]
    assert li["required"]["verifier"][1]["options"] == ["ImageReward", "HPSv2", "HPSv2.1", "PickScore", "CLIPScore", "Aesthetic"]
    assert li["optional"]["download"][1]["default"] == "disabled"
    weights = li["required"]["weights"][1]["options"]
    for name in ("ImageReward/ImageReward.pt", "HPS_v2.1_compressed.pt", "PickScore_v1", "HPS_v2_compressed.pt"):
        assert name in weights
    assert list(L.RETURN_TYPES) == ["LOTTS_VERIFIER"]
    pi = P.INPUT_TYPES()
    assert list(pi["required"]) == ["verifier", "images", "prompt", "top_k"]
    assert list(pi["optional"]) == ["latents", "masks"]
    assert list(P.RETURN_NAMES[:5]) == ["best", "best_latent", "best_index", "scores", "ranked"]
    assert list(P.RETURN_TYPES[:5]) == ["IMAGE", "LATENT", "INT", "STRING", "IMAGE"]
    for cls, spec in ((L, li), (P, pi)):
        assert cls.DESCRIPTION and cls.CATEGORY == "LoTTS"
        for section in spec.values():
            for name, value in section.items():
                assert value[1].get("tooltip"), name


def test_loader_wraps_in_model_patcher(pack, models_dir):
    loader, _ = _nodes(pack)
    (v,) = loader.load("ImageReward", "ImageReward/ImageReward.pt", "fp32")
    assert isinstance(v.patcher, comfy.model_patcher.ModelPatcher)
    assert v.patcher.model is v.verifier.model and v.keep_loaded is False


def test_pick_ranks_and_passes_through_in_order(pack, models_dir):
    loader, pick = _nodes(pack)
    (v,) = loader.load("ImageReward", "ImageReward/ImageReward.pt", "fp32")
    imgs = vf.images(5, h=32, w=40, seed=4)
    expected = v.verifier.score(imgs, PROMPT).tolist()
    order = sorted(range(5), key=lambda i: -expected[i])
    latents = {"samples": torch.arange(5.).view(5, 1, 1, 1).expand(5, 4, 4, 5).clone(),
               "noise_mask": torch.arange(5.).view(5, 1, 1, 1).expand(5, 1, 4, 5).clone()}
    masks = torch.arange(5.).view(5, 1, 1).expand(5, 32, 40).clone()
    out = pick.pick(v, imgs, PROMPT, 2, latents=latents, masks=masks)
    best, best_latent, best_index, scores, ranked, best_mask = out.result
    assert json.loads(scores) == pytest.approx(expected, abs=1e-6)
    assert best_index == order[0]
    assert torch.equal(best, imgs[order[:2]]) and torch.equal(ranked, imgs[order])
    assert best_latent["samples"][:, 0, 0, 0].tolist() == [float(i) for i in order[:2]]
    assert best_latent["noise_mask"][:, 0, 0, 0].tolist() == [float(i) for i in order[:2]]
    assert best_mask[:, 0, 0].tolist() == [float(i) for i in order[:2]]
    assert latents["samples"][:, 0, 0, 0].tolist() == [0., 1., 2., 3., 4.]  # input untouched
    text = out.ui["text"][0]
    assert f"image {order[0]}: {expected[order[0]]:.4f}  <- picked" in text


class _FixedScores:
    name = "fixed"

    def __init__(self, scores):
        self.scores = torch.tensor(scores)

    def score(self, images, prompt):
        return self.scores


def test_ties_keep_input_order_and_top_k_clamps(pack):
    _, pick = _nodes(pack)
    imgs = torch.arange(4.).view(4, 1, 1, 1).expand(4, 2, 2, 3).clone()
    best, _, idx, scores, ranked, _ = pick.pick(_FixedScores([0.5, 0.9, 0.5, 0.9]), imgs, "p", 10).result
    assert idx == 1 and ranked[:, 0, 0, 0].tolist() == [1., 3., 0., 2.]
    assert best.shape[0] == 4  # top_k 10 > batch 4: clamped
    assert json.loads(scores) == pytest.approx([0.5, 0.9, 0.5, 0.9])


def test_scoring_loads_through_comfy_and_offloads_unless_keep_loaded(pack, models_dir, monkeypatch):
    loader, pick = _nodes(pack)
    calls = []
    real = mm.load_models_gpu
    monkeypatch.setattr(mm, "load_models_gpu", lambda models, **kw: (calls.append(models), real(models, **kw))[1])
    (v,) = loader.load("ImageReward", "ImageReward/ImageReward.pt", "fp32", keep_loaded=False)
    pick.pick(v, vf.images(2), PROMPT, 1)
    assert calls and calls[-1] == [v.patcher]
    assert all(lm.model is not v.patcher for lm in mm.current_loaded_models)
    (k,) = loader.load("ImageReward", "ImageReward/ImageReward.pt", "fp32", keep_loaded=True)
    pick.pick(k, vf.images(2), PROMPT, 1)
    assert any(lm.model is k.patcher for lm in mm.current_loaded_models)
    k.offload()
    assert all(lm.model is not k.patcher for lm in mm.current_loaded_models)


def test_cancel_during_scoring_stops_between_chunks_and_offloads(pack, models_dir, monkeypatch):
    """Cancel pressed while the first chunk is scored: ComfyUI's interrupt is raised before
    the next chunk, the model is offloaded, and the next pick is whole again."""
    loader, pick = _nodes(pack)
    (v,) = loader.load("ImageReward", "ImageReward/ImageReward.pt", "fp32")
    chunks = []
    forward = v.verifier.forward

    def forward_then_cancel(inputs):
        chunks.append(inputs["pixel_values"].shape[0])
        if len(chunks) == 1:
            mm.interrupt_current_processing(True)  # what the Cancel button does
        return forward(inputs)

    monkeypatch.setattr(v.verifier, "forward", forward_then_cancel)
    imgs = vf.images(20, h=32, w=32, seed=6)
    try:
        with pytest.raises(interrupt_exception()):
            pick.pick(v, imgs, PROMPT, 1)
        assert chunks == [8]  # no chunk after the cancel
        assert not processing_interrupted()  # ComfyUI's check consumed the flag
        assert all(lm.model is not v.patcher for lm in mm.current_loaded_models)  # offloaded
    finally:
        mm.interrupt_current_processing(False)
    out = pick.pick(v, imgs, PROMPT, 1)
    assert chunks == [8, 8, 8, 4] and len(json.loads(out.result[3])) == 20


def test_hps_uses_comfyui_clip_tokenizer_and_pickscore_folder(pack, models_dir):
    loader, pick = _nodes(pack)
    (h,) = loader.load("HPSv2.1", "HPS_v2.1_compressed.pt", "auto")
    ids = h.verifier.tokenizer("a photo of a cat")
    assert ids[0, 0].item() == 49406 and 49407 in ids[0].tolist()  # CLIP's <|startoftext|>, <|endoftext|>
    s = json.loads(pick.pick(h, vf.images(3), PROMPT, 1).result[3])
    assert len(s) == 3
    (p,) = loader.load("PickScore", "PickScore_v1", "fp32")
    assert len(json.loads(pick.pick(p, vf.images(3), PROMPT, 1).result[3])) == 3


def test_hps_ids_are_open_clip_ids_on_comfyui_clip_vocabulary(pack, models_dir):
    """The real CLIP vocabulary (ComfyUI's sd1_tokenizer): ids from open_clip's algorithm
    (the tests' oracle), and by value for prompts checked against hpsv2's own tokenizer."""
    loader, _ = _nodes(pack)
    (h,) = loader.load("HPSv2.1", "HPS_v2.1_compressed.pt", "fp32")
    import comfy.sd1_clip
    vocab_dir = os.path.join(os.path.dirname(os.path.abspath(comfy.sd1_clip.__file__)), "sd1_tokenizer")
    tok = h.verifier.tokenizer
    for prompt in ("It’s a “fancy” cat", "cats &amp; dogs &amp;amp; birds", "a ﬁne ﬂower", "ＡＢＣ ｃａｔ　１２",
                   "cafÃ© on the red car", "the cat <end_of_text> dog", "a photo of a cat"):
        assert tok(prompt)[0].tolist() == vf.openclip_reference_ids(prompt, vocab_dir, 77), prompt
    known = {"a photo of a cat": [49406, 320, 1125, 539, 320, 2368, 49407],
             "It’s a “ﬁne” cat &amp; dog": [49406, 585, 568, 320, 257, 3797, 257, 2368, 261, 1929, 49407],
             "ＡＢＣ ｃａｔ": [49406, 5334, 2368, 49407]}
    for prompt, ids in known.items():
        assert tok(prompt)[0].tolist() == ids + [0] * (77 - len(ids)), prompt


def test_missing_weights_name_file_folder_and_source(pack, models_dir):
    loader, _ = _nodes(pack)
    with pytest.raises(FileNotFoundError) as e:
        loader.load("HPSv2", "HPS_v2_compressed.pt", "fp32")
    msg = str(e.value)
    assert "'weights'" in msg and "HPS_v2_compressed.pt" in msg and str(models_dir) in msg
    assert "huggingface.co/xswu/HPSv2" in msg and "download" in msg


def test_wrong_file_for_verifier_names_weights(pack, models_dir):
    loader, _ = _nodes(pack)
    with pytest.raises(ValueError, match="'weights' = 'HPS_v2.1_compressed.pt' \\(ImageReward\\).*not an ImageReward"):
        loader.load("ImageReward", "HPS_v2.1_compressed.pt", "fp32")


def test_bad_side_files_are_refused_by_the_loader_node(pack, models_dir):
    """Not at pick time: the loader names the file, what is wrong and where to get it."""
    loader, _ = _nodes(pack)
    folder = models_dir / "ImageRewardBadConfig"
    vf.make_imagereward(folder)
    med = folder / "med_config.json"
    cfg = json.loads(med.read_text())
    for content, problem in (("<!DOCTYPE html><html><head></head><body></body></html>", "is an HTML page"),
                             (json.dumps(dict(cfg, num_attention_heads=7)),
                              "says num_attention_heads 7, which does not divide hidden_size 64")):
        med.write_text(content)
        with pytest.raises(ValueError) as e:
            loader.load("ImageReward", "ImageRewardBadConfig/ImageReward.pt", "fp32")
        msg = str(e.value)
        assert msg.startswith("'weights' = 'ImageRewardBadConfig/ImageReward.pt' (ImageReward): ")
        assert f"{med} {problem}" in msg and "THUDM/ImageReward/resolve/main/med_config.json" in msg


def test_bad_inputs_name_the_input(pack, models_dir):
    loader, pick = _nodes(pack)
    (v,) = loader.load("ImageReward", "ImageReward/ImageReward.pt", "fp32")
    with pytest.raises(ValueError, match="'images'.*got 4"):
        pick.pick(v, torch.rand(2, 16, 16, 4), PROMPT, 1)
    with pytest.raises(ValueError, match="'images'.*got 1"):
        pick.pick(v, torch.rand(2, 16, 16, 1), PROMPT, 1)
    with pytest.raises(ValueError, match="'prompt' is empty"):
        pick.pick(v, vf.images(2), "  ", 1)
    with pytest.raises(ValueError, match="'latents' has a batch of 3 but 'images' has 2"):
        pick.pick(v, vf.images(2), PROMPT, 1, latents={"samples": torch.zeros(3, 4, 2, 2)})
    with pytest.raises(ValueError, match="'masks'"):
        pick.pick(v, vf.images(2), PROMPT, 1, masks=torch.zeros(3, 8, 8))


def test_opt_in_download_lands_in_models_folder_with_progress(pack, models_dir, monkeypatch):
    import hashlib
    import io
    import urllib.request
    loader, _ = _nodes(pack)
    sd = vf.openclip_state_dict(seed=9, vocab=49408, tw=16)
    buf = io.BytesIO()
    torch.save({"state_dict": sd}, buf)
    payload = buf.getvalue()

    class Resp(io.BytesIO):
        status = 200
        headers = {"Content-Length": str(len(payload)),
                   "X-Linked-ETag": '"%s"' % hashlib.sha256(payload).hexdigest()}

    requested = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda req, timeout=None: (requested.append(req.full_url), Resp(payload))[1])
    updates = []
    with progress_hook(lambda v, t, preview=None, node_id=None: updates.append((v, t))):
        with pytest.raises(FileNotFoundError):  # off by default: nothing fetched
            loader.load("HPSv2", "HPS_v2_compressed.pt", "fp32")
        assert requested == []
        (v,) = loader.load("HPSv2", "HPS_v2_compressed.pt", "fp32", download="enabled")
    assert requested == ["https://huggingface.co/xswu/HPSv2/resolve/main/HPS_v2_compressed.pt"]
    # into ComfyUI's default folder for verifiers, the first it lists: upstream the one
    # added with is_default (models_dir); the 0.10 fork lists its base directory's first
    dest = Path(folder_paths.get_folder_paths("lotts_verifiers")[0])
    assert (dest / "HPS_v2_compressed.pt").read_bytes() == payload
    assert updates and updates[-1] == (100, 100)
    assert v.verifier.score(vf.images(2), PROMPT).shape == (2,)
    os.remove(dest / "HPS_v2_compressed.pt")
