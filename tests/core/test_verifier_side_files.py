"""Verifier side files that are not what they claim (an HTML page saved by a browser, a
Git LFS pointer, invalid JSON, a vocabulary without BERT's tokens, the config of another
model) are refused at load time, naming the file, what is wrong and where the right one
comes from; config values are checked against the weights' shapes."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

import verifier_fixtures as vf
from lotts.verifiers import VerifierError, load_verifier

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

pytestmark = pytest.mark.usefixtures("network_guard", "one_thread")

# what "Save page as" on a model page's file view gives
HTML_PAGE = ("<!DOCTYPE html>\n<html class=\"\">\n<head><meta charset=\"utf-8\">\n"
             "<title>med_config.json · THUDM/ImageReward at main</title></head>\n"
             "<body><div>{\"hidden_size\": 768}</div></body>\n</html>\n")
LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4f2b2a1c0a8d6e5f7b9c3d1e2f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a\nsize 1789237248\n")
THUDM_MED = "https://huggingface.co/THUDM/ImageReward/resolve/main/med_config.json"
BERT_VOCAB = "https://huggingface.co/google-bert/bert-base-uncased/resolve/main/vocab.txt"
OPENAI_CLIP = "https://huggingface.co/openai/clip-vit-large-patch14"
LAION_H14 = "https://huggingface.co/laion/CLIP-ViT-H-14-laion2B-s32B-b79K"


def make(name, root: pathlib.Path) -> tuple[str, pathlib.Path]:
    """(what to pass to load_verifier, the folder its side files sit in)."""
    if name == "ImageReward":
        return vf.make_imagereward(root / "ImageReward"), root / "ImageReward"
    if name == "HPSv2.1":
        return vf.make_hps(root), root
    if name in ("PickScore", "CLIPScore"):
        return vf.make_hf_clip(root / name), root / name
    return vf.make_aesthetic(root), root  # Aesthetic


def refused(name, path) -> str:
    with pytest.raises(VerifierError) as e:
        load_verifier(name, str(path))
    return str(e.value)


@pytest.fixture(autouse=True)
def no_user_hf_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no bert vocab.txt from the user's cache
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)


# ------------------------------------------------------------------ not what they claim
SIDE_FILES = [  # (verifier, side file, where the message says to get the right one)
    ("ImageReward", "med_config.json", THUDM_MED),
    ("ImageReward", "vocab.txt", BERT_VOCAB),
    ("HPSv2.1", "open_clip_config.json", LAION_H14),
    ("HPSv2.1", "vocab.json", OPENAI_CLIP),
    ("HPSv2.1", "merges.txt", OPENAI_CLIP),
    ("PickScore", "config.json", "https://huggingface.co/yuvalkirstain/PickScore_v1/resolve/main/config.json"),
    ("PickScore", "vocab.json", OPENAI_CLIP),
    ("PickScore", "tokenizer_config.json", OPENAI_CLIP),
    ("CLIPScore", "config.json", f"{OPENAI_CLIP}/resolve/main/config.json"),
    ("Aesthetic", "clip-vit-large-patch14/config.json", f"{OPENAI_CLIP}/resolve/main/config.json"),
]


@pytest.mark.parametrize("name, side, source", SIDE_FILES)
def test_html_page_is_refused_naming_file_and_source(tmp_path, name, side, source):
    path, folder = make(name, tmp_path)
    (folder / side).write_text(HTML_PAGE, encoding="utf-8")
    msg = refused(name, path)
    assert f"{folder / side} is an HTML page" in msg and "not the file itself" in msg
    assert source in msg


@pytest.mark.parametrize("name, side, source", [s for s in SIDE_FILES if s[1].endswith(".json")])
def test_lfs_pointer_invalid_json_and_non_object_are_refused(tmp_path, name, side, source):
    path, folder = make(name, tmp_path)
    target = folder / side
    for content, problem in ((LFS_POINTER, "is a Git LFS pointer"),
                             ('{"hidden_size": 768,', "is not valid JSON (Expecting property name"),
                             ("[1, 2]", "holds a JSON list, not an object"),
                             ("", "is empty")):
        target.write_text(content, encoding="utf-8")
        msg = refused(name, path)
        assert f"{target} {problem}" in msg and source in msg, msg


def test_vocab_without_bert_tokens_is_refused(tmp_path):
    path, folder = make("ImageReward", tmp_path)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[MASK]"] + vf.BERT_WORDS) + "\n")
    msg = refused("ImageReward", path)
    assert f"{folder / 'vocab.txt'} has no [SEP] token: not a BERT vocab.txt" in msg and BERT_VOCAB in msg


def test_weights_that_are_an_html_page_or_lfs_pointer_are_named(tmp_path):
    for content, problem in ((HTML_PAGE, "is an HTML page"), (LFS_POINTER, "is a Git LFS pointer")):
        p = tmp_path / "ImageReward.pt"
        p.write_text(content)
        assert f"ImageReward weights: {p} {problem}" in refused("ImageReward", p)


# ------------------------------------------------------------------ configs vs the weights
def _edit_json(path, edit):
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    edit(cfg)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f)


@pytest.mark.parametrize("key, value, problem", [
    ("num_attention_heads", 7, "says num_attention_heads 7, which does not divide hidden_size 64"),
    ("num_attention_heads", "2", "says num_attention_heads '2', which is not a whole number"),
    ("hidden_size", 768, "says hidden_size 768 but the weights have 64 (the text encoder's width)"),
    ("num_hidden_layers", 12, "says num_hidden_layers 12 but the weights have 2"),
    ("vocab_size", 30524, f"says vocab_size 30524 but the weights have {vf.BERT_VOCAB_SIZE}"),
    ("intermediate_size", 3072, "says intermediate_size 3072 but the weights have 96"),
    ("max_position_embeddings", 512, "says max_position_embeddings 512 but the weights have 40"),
    ("layer_norm_eps", "small", "says layer_norm_eps 'small', which is not a small positive number"),
])
def test_med_config_is_checked_against_the_weights(tmp_path, key, value, problem):
    path, folder = make("ImageReward", tmp_path)
    _edit_json(folder / "med_config.json", lambda c: c.__setitem__(key, value))
    msg = refused("ImageReward", path)
    assert msg.startswith(f"ImageReward med_config.json: {folder / 'med_config.json'} {problem}"), msg
    assert THUDM_MED in msg and "or delete it" in msg


def test_med_config_encoder_width_is_not_checked(tmp_path):
    # the published med_config says 768 while ImageReward's cross-attention is 1024 wide
    path, folder = make("ImageReward", tmp_path)
    _edit_json(folder / "med_config.json", lambda c: c.__setitem__("encoder_width", 12345))
    assert load_verifier("ImageReward", str(path)).score(vf.images(2), "a cat").shape == (2,)


@pytest.mark.parametrize("section, key, value, problem", [
    ("text_cfg", "heads", 5, "says text_cfg.heads 5, which does not divide text_cfg.width 48"),
    ("vision_cfg", "head_width", 24, "says vision_cfg.head_width 24, which does not divide the image tower's width 64"),
    ("vision_cfg", "width", 1280, "says vision_cfg.width 1280 but the weights have 64"),
    ("vision_cfg", "layers", 32, "says vision_cfg.layers 32 but the weights have 2"),
    ("vision_cfg", "image_size", 224, "says vision_cfg.image_size 224 but the weights have 32"),
    ("text_cfg", "context_length", 64, "says text_cfg.context_length 64 but the weights have 77"),
    ("text_cfg", "vocab_size", 49408, f"says text_cfg.vocab_size 49408 but the weights have {vf.CLIP_VOCAB_SIZE}"),
    (None, "embed_dim", 1024, "says embed_dim 1024 but the weights have 32"),
])
@pytest.mark.parametrize("hub_layout", [False, True])
def test_open_clip_config_is_checked_against_the_weights(tmp_path, section, key, value, problem, hub_layout):
    path, folder = make("HPSv2.1", tmp_path)

    def edit(cfg):
        (cfg.setdefault(section, {}) if section else cfg)[key] = value
        if hub_layout:  # a hub open_clip_config.json: the model config under model_cfg
            inner = dict(cfg)
            cfg.clear()
            cfg.update({"model_cfg": inner, "preprocess_cfg": {"mean": [0.5] * 3}})

    _edit_json(folder / "open_clip_config.json", edit)
    msg = refused("HPSv2.1", path)
    assert msg.startswith(f"HPSv2.1 open_clip_config.json: {folder / 'open_clip_config.json'} {problem}"), msg
    assert LAION_H14 in msg and "delete it" in msg


def test_open_clip_config_in_hub_layout_is_read(tmp_path):
    path, folder = make("HPSv2.1", tmp_path)
    _edit_json(folder / "open_clip_config.json", lambda c: c.update(
        {"model_cfg": {**c, "embed_dim": 32, "vision_cfg": {**c["vision_cfg"], "width": 64, "layers": 2}}}))
    v = load_verifier("HPSv2.1", str(path))
    assert v.model.clip.config.text_config.num_attention_heads == 2


@pytest.mark.parametrize("tower, key, value, problem", [
    ("text_config", "num_attention_heads", 5,
     "says text_config.num_attention_heads 5, which does not divide text_config.hidden_size 48"),
    ("vision_config", "num_attention_heads", 3,
     "says vision_config.num_attention_heads 3, which does not divide vision_config.hidden_size 64"),
    ("text_config", "num_hidden_layers", 12, "says text_config.num_hidden_layers 12 but the weights have 2"),
    ("vision_config", "hidden_size", 1024, "says vision_config.hidden_size 1024 but the weights have 64"),
    ("text_config", "vocab_size", 49408, f"says text_config.vocab_size 49408 but the weights have {vf.CLIP_VOCAB_SIZE}"),
    ("vision_config", "image_size", 224,
     "says vision_config.image_size 224 (with patch_size 8: 785 positions) but the weights have 17"),
    (None, "projection_dim", 768, "says projection_dim 768 but the weights have 32"),
])
def test_clip_config_is_checked_against_the_weights(tmp_path, tower, key, value, problem):
    path, folder = make("PickScore", tmp_path)
    _edit_json(folder / "config.json", lambda c: (c[tower] if tower else c).__setitem__(key, value))
    msg = refused("PickScore", path)
    assert msg.startswith(f"PickScore config.json: {folder / 'config.json'} {problem}"), msg
    assert "yuvalkirstain/PickScore_v1/resolve/main/config.json" in msg


def test_clip_config_of_another_model_type_is_named(tmp_path):
    path, folder = make("CLIPScore", tmp_path)
    _edit_json(folder / "config.json", lambda c: c.__setitem__("model_type", "siglip"))
    assert f"{folder / 'config.json'} describes a 'siglip' model, not a CLIP model" in refused("CLIPScore", path)


# ------------------------------------------------------------------ tokenizer files vs the weights
def test_tokenizer_larger_than_the_text_embedding_is_refused(tmp_path):
    # weights with fewer token rows than the tokenizer's ids: an IndexError at scoring otherwise
    folder = tmp_path / "hps"
    folder.mkdir()
    import torch
    torch.save({"state_dict": vf.openclip_state_dict(vocab=vf.CLIP_VOCAB_SIZE - 5)}, folder / "HPS_v2.1_compressed.pt")
    vf.write_clip_tokenizer(folder)
    msg = refused("HPSv2.1", folder / "HPS_v2.1_compressed.pt")
    assert f"the tokenizer in {folder} has {vf.CLIP_VOCAB_SIZE} tokens but the weights' text embedding " \
           f"has {vf.CLIP_VOCAB_SIZE - 5} rows" in msg and OPENAI_CLIP in msg


def test_tokenizer_end_token_must_be_where_the_model_reads(tmp_path):
    path, folder = make("PickScore", tmp_path)
    _edit_json(folder / "config.json", lambda c: c["text_config"].__setitem__("eos_token_id", 7))
    msg = refused("PickScore", path)
    assert f"has its end token at id {vf.CLIP_VOCAB_SIZE - 1} but the model reads the text feature at id 7" in msg


def test_merges_that_do_not_match_the_vocabulary_are_refused(tmp_path):
    path, folder = make("HPSv2.1", tmp_path)
    with open(folder / "merges.txt", "a", encoding="utf-8") as f:
        f.write("x yz\n")
    msg = refused("HPSv2.1", path)
    assert f"{folder / 'vocab.json'} + merges.txt is not a CLIP BPE vocabulary (no token(s) 'xyz')" in msg


def test_good_side_files_still_load(tmp_path):
    for name in ("ImageReward", "HPSv2.1", "PickScore", "CLIPScore", "Aesthetic"):
        path, _ = make(name, tmp_path / name)
        assert load_verifier(name, str(path)).score(vf.images(2), "a red cat").shape == (2,)
    assert os.path.isfile(tmp_path / "ImageReward" / "ImageReward" / "med_config.json")
