"""HPSv2 prompts are tokenised as open_clip tokenises them: its cleaning (ftfy, HTML
entities, whitespace, lower case) included, for prompts a plain CLIP tokenizer gets wrong.
Expected ids come from ``verifier_fixtures.openclip_reference_ids`` (open_clip's algorithm
written out on its own) and, for one prompt, by hand."""

from __future__ import annotations

import json
import os

import pytest
import torch

import verifier_fixtures as vf
from lotts.verifiers import load_verifier

pytest.importorskip("transformers")
pytest.importorskip("ftfy")

pytestmark = pytest.mark.usefixtures("network_guard", "one_thread")

# Each of these gets other ids from open_clip than from a transformers CLIP tokenizer
# (which applies NFC and lower case only).
NEEDS_CLEANING = [
    "It’s a “fancy” cat",                   # curly quotes -> ' and "
    "cats &amp; dogs &amp;amp; birds",       # HTML entities, unescaped twice
    "a ﬁne ﬂower",                          # ligatures fi, fl
    "ＡＢＣ ｃａｔ　１２",                    # full-width letters and digits, ideographic space
    "cafÃ© on the red car",                  # mojibake, repaired by ftfy
    "the cat <end_of_text> dog",             # open_clip's end token written in a prompt
]
PLAIN = ["a photo of the red cat", "  a   photo\tof\nthe cat  ", "Big RED Dog's tree, 2 cars!"]


@pytest.fixture(scope="module")
def hps(tmp_path_factory):
    path = vf.make_hps(tmp_path_factory.mktemp("hps"), seed=2)
    return load_verifier("HPSv2.1", str(path)), os.path.dirname(path)


@pytest.mark.parametrize("prompt", NEEDS_CLEANING + PLAIN)
def test_ids_are_open_clip_ids(hps, prompt):
    v, folder = hps
    assert v.tokenizer(prompt)[0].tolist() == vf.openclip_reference_ids(prompt, folder, 77)


@pytest.mark.parametrize("prompt", NEEDS_CLEANING)
def test_prompts_need_the_cleaning(hps, prompt):
    """Without open_clip's cleaning these prompts get other ids: the test strings matter."""
    from transformers import CLIPTokenizerFast
    _, folder = hps
    plain = CLIPTokenizerFast.from_pretrained(folder, local_files_only=True)(prompt)["input_ids"]
    assert plain + [0] * (77 - len(plain)) != vf.openclip_reference_ids(prompt, folder, 77)


def test_ids_by_hand(hps):
    # "It’s the “cat”" -> it's the "cat" -> it | 's | the | " | cat | " ; the tiny merges
    # join t+h, th+e</w> and c+a, ca+t</w>
    v, folder = hps
    with open(os.path.join(folder, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    toks = ["<|startoftext|>", "i", "t</w>", "'", "s</w>", "the</w>", '"</w>', "cat</w>", '"</w>', "<|endoftext|>"]
    ids = v.tokenizer("It’s the “cat”")[0].tolist()
    assert ids == [vocab[t] for t in toks] + [0] * (77 - len(toks))


def test_long_prompts_truncate_keeping_the_end_token(hps):
    v, folder = hps
    ids = v.tokenizer(" ".join(["cat"] * 100))[0].tolist()
    assert len(ids) == 77 and ids[-1] == vf.CLIP_VOCAB_SIZE - 1 and ids[1:-1] == [ids[1]] * 75
    assert ids == vf.openclip_reference_ids(" ".join(["cat"] * 100), folder, 77)


def test_a_prompt_scores_as_its_cleaned_form(hps):
    v, _ = hps
    imgs = vf.images(3)
    a = v.score(imgs, "It’s a “fancy” ﬁsh &amp; a ＣＡＴ")
    b = v.score(imgs, 'it\'s a "fancy" fish & a cat')
    assert torch.equal(a, b)
