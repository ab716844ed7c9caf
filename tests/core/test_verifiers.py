"""Verifiers on tiny random checkpoints in the original layouts, loaded strictly through
the production loaders, with a network guard: any connection attempt fails the test."""

from __future__ import annotations

import ast
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import torch

import verifier_fixtures as vf
from lotts.verifiers import DEFAULT_BATCH_SIZE, VerifierError, availability, load_verifier, rank
from lotts.verifiers.base import resize_longer_pad, resize_shorter_center_crop
from lotts.verifiers.weights import convert_to_safetensors, load_state_dict

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

DATA = pathlib.Path(__file__).parent / "data"
PROMPT = "a photo of the red cat"


pytestmark = pytest.mark.usefixtures("network_guard", "one_thread")


# ------------------------------------------------------------------ tiny models (module-wide)
@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("verifiers")
    return {
        "ImageReward": vf.make_imagereward(root / "ir"),
        "HPSv2": vf.make_hps(root / "hps2", seed=1, name="HPS_v2_compressed.pt"),
        "HPSv2.1": vf.make_hps(root / "hps21", seed=2),
        "PickScore": vf.make_hf_clip(root / "PickScore_v1", seed=3),
        "CLIPScore": vf.make_hf_clip(root / "clip", seed=4),
        "Aesthetic": vf.make_aesthetic(root / "aes", seed=5),
    }


@pytest.fixture(scope="module")
def loaded(models):
    return {name: load_verifier(name, str(path)) for name, path in models.items()}


NAMES = ["ImageReward", "HPSv2", "HPSv2.1", "PickScore", "CLIPScore", "Aesthetic"]


def test_all_verifiers_available():
    assert availability() == {n: None for n in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_scores_one_per_image_finite_and_distinct(loaded, name):
    s = loaded[name].score(vf.images(8), PROMPT)
    assert s.shape == (8,) and s.dtype == torch.float32
    assert torch.isfinite(s).all()
    assert s.unique().numel() == 8, s  # the ranking tests below would prove nothing otherwise


@pytest.mark.parametrize("name", NAMES)
def test_batch_of_8_equals_8_single_calls(loaded, name):
    imgs = vf.images(8, seed=3)
    v = loaded[name]
    batched = v.score(imgs, PROMPT)
    single = torch.cat([v.score(imgs[i:i + 1], PROMPT) for i in range(8)])
    assert (batched - single).abs().max().item() < 1e-5
    chunked = v.score(imgs, PROMPT, batch_size=3)
    assert (batched - chunked).abs().max().item() < 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_cancel_check_runs_between_chunks_and_chunking_keeps_scores(loaded, name, monkeypatch):
    v = loaded[name]
    imgs = vf.images(7, seed=5)
    one_pass = v.score(imgs, PROMPT, batch_size=7)
    log = []
    forward = v.forward
    monkeypatch.setattr(v, "forward", lambda inputs: (log.append(inputs["pixel_values"].shape[0]),
                                                      forward(inputs))[1])
    chunked = v.score(imgs, PROMPT, batch_size=3, check_cancel=lambda: log.append("check"))
    assert log == [3, "check", 3, "check", 1]  # between chunks, not before the first or after the last
    # float32 GEMMs of other shapes round differently: equal to float32 precision of the score scale
    assert chunked.shape == (7,) and torch.allclose(chunked, one_pass, rtol=1e-6, atol=1e-5)
    log.clear()
    default = v.score(vf.images(DEFAULT_BATCH_SIZE + 2, seed=5), PROMPT, check_cancel=lambda: log.append("check"))
    assert DEFAULT_BATCH_SIZE == 8 and log == [8, "check", 2] and default.shape == (10,)


def test_cancel_raised_between_chunks_stops_scoring(loaded, monkeypatch):
    v = loaded["HPSv2.1"]
    calls = []
    forward = v.forward
    monkeypatch.setattr(v, "forward", lambda inputs: (calls.append(1), forward(inputs))[1])

    class Cancelled(Exception):
        pass

    def cancel():
        raise Cancelled

    with pytest.raises(Cancelled):
        v.score(vf.images(6), PROMPT, batch_size=2, check_cancel=cancel)
    assert calls == [1]  # the first chunk ran, nothing after the cancel


@pytest.mark.parametrize("bad", [0, -1, 2.5, "8", True])
def test_bad_batch_size_is_named(loaded, bad):
    with pytest.raises(VerifierError, match="'batch_size'.*whole number"):
        loaded["ImageReward"].score(vf.images(2), PROMPT, batch_size=bad)


@pytest.mark.parametrize("name", ["ImageReward", "HPSv2.1", "PickScore"])
def test_prompt_changes_scores(loaded, name):
    imgs = vf.images(4)
    a, b = loaded[name].score(imgs, "a red cat"), loaded[name].score(imgs, "the blue dog on a tree")
    assert not torch.allclose(a, b)


def test_aesthetic_ignores_prompt(loaded):
    imgs = vf.images(4)
    assert torch.equal(loaded["Aesthetic"].score(imgs, ""), loaded["Aesthetic"].score(imgs, "anything"))


def test_score_independent_of_image_size_only_through_preprocessing(loaded):
    # the same picture at the model's resolution and upsampled ×2 (nearest) scores close
    img = vf.images(1, h=32, w=32)
    big = img.repeat_interleave(2, 1).repeat_interleave(2, 2)
    for name in ("ImageReward", "HPSv2.1"):
        a, b = loaded[name].score(img, PROMPT), loaded[name].score(big, PROMPT)
        assert torch.isfinite(b).all() and (a - b).abs().item() < 1.0


def test_low_precision_runs_and_returns_fp32(models):
    v = load_verifier("ImageReward", str(models["ImageReward"]), dtype=torch.bfloat16)
    ref = load_verifier("ImageReward", str(models["ImageReward"]))
    imgs = vf.images(4)
    s = v.score(imgs, PROMPT)
    assert s.dtype == torch.float32 and next(v.model.parameters()).dtype == torch.bfloat16
    assert (s - ref.score(imgs, PROMPT)).abs().max() < 0.5


# ------------------------------------------------------------------ original layouts, strictly
def test_imagereward_checkpoint_keys_map_one_to_one(models):
    sd = torch.load(models["ImageReward"], weights_only=True)
    v = load_verifier("ImageReward", str(models["ImageReward"]))
    own = set(v.model.state_dict())
    assert own == set(sd) - {"blip.text_encoder.embeddings.position_ids"}


def test_imagereward_tokens_are_bert_wordpiece_plus_blip_tokens(loaded):
    tok = loaded["ImageReward"].tokenizer
    ids, mask = tok("A Photo of the RED cats")
    words = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + vf.BERT_WORDS
    expect = ["[CLS]", "a", "photo", "of", "the", "red", "cat", "##s", "[SEP]"]
    assert ids.shape == (1, 35) and mask.shape == (1, 35)
    assert ids[0, :9].tolist() == [words.index(t) for t in expect]
    assert ids[0, 9:].eq(0).all() and mask[0].tolist() == [1] * 9 + [0] * 26
    assert tok.tok.token_to_id("[DEC]") == len(words) and tok.tok.token_to_id("[ENC]") == len(words) + 1
    long_ids, _ = tok(" ".join(["cat"] * 100))
    assert long_ids.shape == (1, 35) and long_ids[0, -1].item() == words.index("[SEP]")


def test_hps_conversion_matches_a_direct_openclip_forward(models, loaded):
    """Reference OpenCLIP math written out here (pre-LN blocks, in_proj attention, ln_post on
    the class token, @ proj) on the raw checkpoint; our converted CLIPModel must agree."""
    sd = torch.load(models["HPSv2.1"], weights_only=True)["state_dict"]
    v = loaded["HPSv2.1"]
    x = torch.rand(2, 3, 32, 32)
    heads = 2

    def block(x, p, w, causal=False):
        h = torch.nn.functional.layer_norm(x, (w,), sd[p + "ln_1.weight"], sd[p + "ln_1.bias"])
        q, k, vv = torch.nn.functional.linear(h, sd[p + "attn.in_proj_weight"], sd[p + "attn.in_proj_bias"]).chunk(3, -1)
        b, n, _ = q.shape
        sp = lambda t: t.view(b, n, heads, w // heads).transpose(1, 2)  # noqa: E731
        a = torch.nn.functional.scaled_dot_product_attention(sp(q), sp(k), sp(vv), is_causal=causal)
        a = a.transpose(1, 2).reshape(b, n, w)
        x = x + torch.nn.functional.linear(a, sd[p + "attn.out_proj.weight"], sd[p + "attn.out_proj.bias"])
        h = torch.nn.functional.layer_norm(x, (w,), sd[p + "ln_2.weight"], sd[p + "ln_2.bias"])
        h = torch.nn.functional.gelu(torch.nn.functional.linear(h, sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"]))
        return x + torch.nn.functional.linear(h, sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"])

    w = sd["visual.conv1.weight"].shape[0]
    t = torch.nn.functional.conv2d(x, sd["visual.conv1.weight"], stride=8).flatten(2).transpose(1, 2)
    t = torch.cat([sd["visual.class_embedding"].expand(2, 1, w), t], 1) + sd["visual.positional_embedding"]
    t = torch.nn.functional.layer_norm(t, (w,), sd["visual.ln_pre.weight"], sd["visual.ln_pre.bias"])
    for i in range(2):
        t = block(t, f"visual.transformer.resblocks.{i}.", w)
    t = torch.nn.functional.layer_norm(t[:, 0], (w,), sd["visual.ln_post.weight"], sd["visual.ln_post.bias"])
    ref_img = t @ sd["visual.proj"]
    ids = v.tokenizer(PROMPT)
    tw = sd["token_embedding.weight"].shape[1]
    u = sd["token_embedding.weight"][ids] + sd["positional_embedding"]
    for i in range(2):
        u = block(u, f"transformer.resblocks.{i}.", tw, causal=True)
    u = torch.nn.functional.layer_norm(u, (tw,), sd["ln_final.weight"], sd["ln_final.bias"])
    ref_txt = u[torch.arange(1), ids.argmax(-1)] @ sd["text_projection"]
    from lotts.verifiers.clip_models import image_embeds, text_embeds
    with torch.no_grad():
        assert torch.allclose(image_embeds(v.model.clip, x), ref_img, atol=1e-5)
        assert torch.allclose(text_embeds(v.model.clip, ids), ref_txt, atol=1e-5)


def test_hps_preprocess_is_resize_longer_and_zero_pad():
    x = torch.ones(1, 3, 20, 40)
    y = resize_longer_pad(x, 32)
    assert y.shape == (1, 3, 32, 32)
    assert torch.allclose(y[..., 8:24, :], torch.ones(1, 3, 16, 32), atol=1e-5)
    assert y[..., :8, :].abs().max() == 0 and y[..., 24:, :].abs().max() == 0
    z = resize_shorter_center_crop(torch.arange(40.).view(1, 1, 1, 40).expand(1, 3, 20, 40).contiguous(), 20)
    assert z.shape == (1, 3, 20, 20) and torch.equal(z[0, 0, 0], torch.arange(10., 30.))


# ------------------------------------------------------------------ committed fixed weights
def test_regression_against_committed_tiny_weights():
    expected = json.loads((DATA / "verifier_expected.json").read_text())
    imgs = vf.images(4, h=24, w=20, seed=11)
    ir = load_verifier("ImageReward", str(DATA / "verifier_imagereward_tiny.safetensors"),
                       tokenizer_dirs=[str(DATA / "verifier_imagereward_tiny_vocab")])
    hps = load_verifier("HPSv2.1", str(DATA / "verifier_hps_tiny.safetensors"))  # tokenizer: <stem>_tokenizer/
    assert ir.score(imgs, PROMPT).tolist() == pytest.approx(expected["ImageReward"], abs=1e-4)
    assert hps.score(imgs, PROMPT).tolist() == pytest.approx(expected["HPSv2.1"], abs=1e-4)


# ------------------------------------------------------------------ ranking
def test_rank_ties_keep_input_order_nan_last_and_top_k_clamps():
    assert rank([0.1, 0.5, 0.5, -1.0, 0.5]) == [1, 2, 4, 0, 3]
    assert rank(torch.tensor([1.0, float("nan"), 2.0])) == [2, 0, 1]
    assert rank([3.0, 1.0, 2.0], top_k=2) == [0, 2]
    assert rank([3.0, 1.0, 2.0], top_k=10) == [0, 2, 1]  # clamped to the batch
    with pytest.raises(VerifierError, match="top_k"):
        rank([1.0], top_k=0)


# ------------------------------------------------------------------ clear errors
@pytest.mark.parametrize("channels", [1, 4])
def test_wrong_channel_count_names_images(loaded, channels):
    with pytest.raises(VerifierError, match=rf"'images'.*3 channels.*got {channels}"):
        loaded["ImageReward"].score(torch.rand(2, 32, 32, channels), PROMPT)


def test_bad_image_shapes_and_types_name_images(loaded):
    for bad in (torch.rand(32, 32), torch.rand(1, 2, 32, 32, 3), torch.zeros(0, 32, 32, 3), [1, 2]):
        with pytest.raises(VerifierError, match="'images'"):
            loaded["HPSv2.1"].score(bad, PROMPT)
    with pytest.raises(VerifierError, match="'images'.*floats"):
        loaded["HPSv2.1"].score(torch.zeros(1, 8, 8, 3, dtype=torch.uint8), PROMPT)


@pytest.mark.parametrize("name", ["ImageReward", "HPSv2", "PickScore", "CLIPScore"])
def test_empty_prompt_names_prompt(loaded, name):
    for p in ("", "   \n"):
        with pytest.raises(VerifierError, match="'prompt' is empty"):
            loaded[name].score(vf.images(1), p)


def test_missing_vocab_names_file_folder_and_source(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no user cache either
    p = vf.make_imagereward(tmp_path / "ir", vocab=False)
    with pytest.raises(VerifierError) as e:
        load_verifier("ImageReward", str(p))
    msg = str(e.value)
    assert "vocab.txt" in msg and str(tmp_path / "ir") in msg and "bert-base-uncased" in msg


def test_imagereward_fixture_of_any_size_loads(tmp_path):
    # its med_config.json follows the weights beside it (B4 --size base crashed: a
    # config of 2 text layers beside weights with 3)
    p = vf.make_imagereward(tmp_path / "ir", vit_width=64, hidden=48, layers=3, inner=80)
    assert load_verifier("ImageReward", str(p)).score(vf.images(2), PROMPT).shape == (2,)


def test_vocab_found_in_hf_cache(tmp_path, monkeypatch):
    snap = tmp_path / "hf" / "hub" / "models--google-bert--bert-base-uncased" / "snapshots" / "abc"
    vf.write_bert_vocab(snap)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    p = vf.make_imagereward(tmp_path / "ir", vocab=False)
    assert load_verifier("ImageReward", str(p)).score(vf.images(1), PROMPT).shape == (1,)


def test_missing_clip_tokenizer_is_named(tmp_path):
    p = vf.make_hps(tmp_path / "hps", tokenizer=False)
    with pytest.raises(VerifierError, match="tokenizer.*vocab.json.*merges.txt"):
        load_verifier("HPSv2.1", str(p))
    # a tokenizer folder passed by the host (ComfyUI's sd1_tokenizer) is used
    vf.write_clip_tokenizer(tmp_path / "tok")
    assert load_verifier("HPSv2.1", str(p), tokenizer_dirs=[str(tmp_path / "tok")]) is not None


def test_corrupt_files_are_named(tmp_path):
    bad = tmp_path / "ImageReward.pt"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(VerifierError, match="ImageReward weights.*'ImageReward.pt'.*not a readable checkpoint"):
        load_verifier("ImageReward", str(bad))
    empty = tmp_path / "HPS_v2.1_compressed.pt"
    empty.write_bytes(b"")
    with pytest.raises(VerifierError, match="HPSv2.1 weights.*empty"):
        load_verifier("HPSv2.1", str(empty))
    good = tmp_path / "g.safetensors"
    from safetensors.torch import save_file
    save_file({"a": torch.zeros(1000)}, str(good))
    trunc = tmp_path / "t.safetensors"
    trunc.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(VerifierError, match="safetensors.*corrupt or truncated"):
        load_verifier("ImageReward", str(trunc))


def test_truncated_torch_checkpoint(tmp_path, models):
    data = pathlib.Path(models["ImageReward"]).read_bytes()
    p = tmp_path / "ImageReward.pt"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(VerifierError, match="not a readable checkpoint"):
        load_verifier("ImageReward", str(p))


def test_wrong_architecture_files_are_refused(models, tmp_path):
    with pytest.raises(VerifierError, match="not an ImageReward checkpoint"):
        load_verifier("ImageReward", str(models["HPSv2.1"]))
    with pytest.raises(VerifierError, match="not an OpenCLIP checkpoint"):
        load_verifier("HPSv2", str(models["ImageReward"]))
    with pytest.raises(VerifierError, match="not the LAION aesthetic predictor"):
        load_verifier("Aesthetic", str(models["ImageReward"]))
    with pytest.raises(VerifierError, match="no config.json"):
        load_verifier("PickScore", str(tmp_path))


def test_strict_loading_rejects_extra_and_missing_keys(tmp_path):
    sd = vf.imagereward_state_dict()
    vf.write_bert_vocab(tmp_path)
    extra = dict(sd, **{"blip.text_encoder.pooler.dense.weight": torch.zeros(2, 2)})
    torch.save(extra, tmp_path / "extra.pt")
    with pytest.raises(VerifierError, match="unexpected.*pooler"):
        load_verifier("ImageReward", str(tmp_path / "extra.pt"))
    missing = {k: v for k, v in sd.items() if "layer.1.crossattention.self.value.bias" not in k}
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(VerifierError, match="missing.*crossattention.self.value.bias"):
        load_verifier("ImageReward", str(tmp_path / "missing.pt"))
    hps = vf.openclip_state_dict()
    hps["visual.ln_post.bias"] = torch.zeros(7)
    vf.write_clip_tokenizer(tmp_path)
    torch.save({"state_dict": hps}, tmp_path / "shape.pt")
    with pytest.raises(VerifierError, match="wrong shape.*post_layernorm"):
        load_verifier("HPSv2", str(tmp_path / "shape.pt"))


# ------------------------------------------------------------------ weights_only
class _NotATensor:
    pass


def test_pickled_objects_are_refused_and_convert_explicitly(tmp_path):
    sd = vf.openclip_state_dict()
    path = tmp_path / "HPS_v2.1_compressed.pt"
    torch.save({"state_dict": sd, "extra": _NotATensor()}, path)
    vf.write_clip_tokenizer(tmp_path)
    with open(tmp_path / "open_clip_config.json", "w") as f:
        json.dump({"vision_cfg": {"head_width": 32}, "text_cfg": {"heads": 2}}, f)
    with pytest.raises(VerifierError, match="weights_only=True.*lotts.verifiers.convert"):
        load_verifier("HPSv2.1", str(path))
    out = convert_to_safetensors(str(path))
    assert out.endswith(".safetensors")
    v = load_verifier("HPSv2.1", out)
    assert v.score(vf.images(2), PROMPT).shape == (2,)
    assert set(load_state_dict(out)) == set(sd)


def test_torch_load_is_always_weights_only():
    """Every torch.load in the verifier package passes weights_only=True, except the one
    explicit, user-invoked converter."""
    root = pathlib.Path(__file__).resolve().parents[2] / "lotts" / "verifiers"
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "load" and \
                        getattr(node.func.value, "id", "") == "torch":
                    kw = {k.arg: k.value for k in node.keywords}
                    if fn.name == "convert_to_safetensors":
                        continue
                    assert isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True, \
                        f"{path.name}:{node.lineno}"
        assert not re.search(r"(?<![.\w])(eval|exec)\(", path.read_text()), path.name


# ------------------------------------------------------------------ optional dependencies
@pytest.mark.parametrize("package, disabled, load", [
    ("transformers", ("HPSv2", "HPSv2.1", "PickScore", "CLIPScore", "Aesthetic"), "PickScore"),
    ("ftfy", ("HPSv2", "HPSv2.1"), "HPSv2.1"),  # HPS's open_clip prompt cleaning
])
def test_missing_dependency_disables_only_its_verifiers(package, disabled, load):
    code = f"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == {package!r} or name.startswith({package!r} + "."):
            raise ImportError("blocked")
sys.meta_path.insert(0, Block())
import lotts, lotts.verifiers as v
a = v.availability()
for n in v.VERIFIER_NAMES:
    if n in {disabled!r}:
        assert {package!r} in a[n] and "disabled" in a[n], a[n]
    else:
        assert a[n] is None, a
try:
    v.load_verifier({load!r}, ".")
except v.VerifierUnavailable as e:
    print("OK", e)
"""
    root = pathlib.Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK") and f"pip install {package}" in r.stdout


def test_unknown_verifier_is_named():
    with pytest.raises(VerifierError, match="'verifier'.*unknown.*ImageReward"):
        load_verifier("NotAVerifier", ".")
