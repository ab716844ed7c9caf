"""HPSv2's text tokenizer: open_clip's ``SimpleTokenizer`` algorithm on the CLIP BPE files.

HPSv2 tokenises with open_clip, which cleans every prompt before BPE: ``ftfy.fix_text``
(mojibake, curly quotes, ligatures, full-width letters, NFC...), ``html.unescape`` twice,
whitespace runs collapsed to one space and stripped, then lower case. It then splits the
text with its regex (the ``regex`` module's Unicode classes) and byte-level BPE-encodes
each piece with CLIP's ``</w>`` end-of-word marker; ``<start_of_text>`` / ``<end_of_text>``
in a prompt are its special tokens. A transformers CLIP tokenizer only applies NFC and
lower case, so prompts with ``&amp;``, curly quotes, ligatures or full-width letters get
other ids (and other scores) there; this module follows open_clip for every prompt.

The vocabulary is the CLIP BPE one (``vocab.json`` + ``merges.txt``, or a ``tokenizer.json``
holding both): the same ids as open_clip's ``bpe_simple_vocab_16e6.txt.gz``. Needs ``ftfy``
(a requirement of the pack) and ``regex`` (a dependency of transformers).
"""

from __future__ import annotations

import html
import math
import os

import torch

from .base import VerifierError
from .side_files import read_json_object, read_text

SOT, EOT = "<start_of_text>", "<end_of_text>"        # open_clip's names (what a prompt may contain)
VOCAB_SOT, VOCAB_EOT = "<|startoftext|>", "<|endoftext|>"  # the same tokens' names in vocab.json
END_OF_WORD = "</w>"
# open_clip's split: its specials, English contractions, letter runs, single digits, other runs
SPLIT = r"""<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def clean(text: str) -> str:
    """open_clip's prompt cleaning: ftfy, HTML entities (twice), whitespace, lower case."""
    import ftfy
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).lower()


def byte_alphabet() -> list[str]:
    """The printable character standing for each byte 0..255 in byte-level BPE (GPT-2/CLIP):
    printable Latin-1 bytes stand for themselves, the others for code points from 256 up."""
    keep = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) | set(range(ord("®"), 256))
    out, extra = [], 0
    for b in range(256):
        if b in keep:
            out.append(chr(b))
        else:
            out.append(chr(256 + extra))
            extra += 1
    return out


class OpenClipTokenizer:
    """``tokenizer(prompt) -> (1, context_length)`` ids as open_clip's ``tokenize``: start
    token, BPE ids, end token, truncated to the context (the last one kept as the end
    token) and padded with 0."""

    def __init__(self, folder: str, context_length: int, what: str = "HPS tokenizer", source: str = ""):
        import regex
        self.vocab, merges, where = _read_bpe_files(folder, what, source)
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.byte_chars = byte_alphabet()
        missing = [t for t in (VOCAB_SOT, VOCAB_EOT) if t not in self.vocab]
        missing += [c + s for c in self.byte_chars for s in ("", END_OF_WORD) if c + s not in self.vocab][:3]
        missing += ["".join(p) for p in merges if "".join(p) not in self.vocab][:3]
        if missing:
            raise VerifierError(f"{what}: {where} is not a CLIP BPE vocabulary (no token(s) "
                                f"{', '.join(repr(t) for t in missing[:3])}). {source}".rstrip())
        self.sot_id, self.eot_id = self.vocab[VOCAB_SOT], self.vocab[VOCAB_EOT]
        self.context_length = int(context_length)
        self.vocab_size = 1 + max(self.vocab.values())
        self.eos_token_id = self.eot_id
        self._split = regex.compile(SPLIT, regex.IGNORECASE)
        self._cache: dict[str, list[int]] = {}

    def _bpe(self, piece: str) -> list[int]:
        """Merge the piece's characters (the last one marked end-of-word): always the pair of
        lowest merge rank next, every non-overlapping occurrence of it left to right."""
        word = list(piece[:-1]) + [piece[-1] + END_OF_WORD]
        while len(word) > 1:
            pair = min(zip(word, word[1:]), key=lambda p: self.ranks.get(p, math.inf))
            if pair not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if tuple(word[i:i + 2]) == pair:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return [self.vocab[t] for t in word]

    def encode(self, prompt: str) -> list[int]:
        ids = []
        for piece in self._split.findall(clean(prompt)):
            if piece in (SOT, EOT):
                ids.append(self.sot_id if piece == SOT else self.eot_id)
                continue
            chars = "".join(self.byte_chars[b] for b in piece.encode("utf-8"))
            if chars not in self._cache:
                self._cache[chars] = self._bpe(chars)
            ids += self._cache[chars]
        return ids

    def __call__(self, prompt: str) -> torch.Tensor:
        ids = [self.sot_id] + self.encode(prompt) + [self.eot_id]
        if len(ids) > self.context_length:
            ids = ids[:self.context_length]
            ids[-1] = self.eot_id
        out = torch.zeros(1, self.context_length, dtype=torch.long)
        out[0, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out


def _read_bpe_files(folder: str, what: str, source: str):
    """(vocab, merges, the file(s) read) from vocab.json + merges.txt, else tokenizer.json."""
    vocab_path, merges_path = os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")
    if os.path.isfile(vocab_path) and os.path.isfile(merges_path):
        vocab = read_json_object(vocab_path, what, source)
        lines = read_text(merges_path, what, source).splitlines()
        if lines and lines[0].startswith("#version"):
            lines = lines[1:]
        merges = []
        for n, line in enumerate(lines, 2):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise VerifierError(f"{what}: {merges_path} line {n} is not a merge (two tokens): "
                                    f"{line[:80]!r}. {source}".rstrip())
            merges.append(tuple(parts))
        where = f"{vocab_path} + merges.txt"
    else:
        where = os.path.join(folder, "tokenizer.json")
        model = read_json_object(where, what, source).get("model")
        if not isinstance(model, dict) or model.get("type") != "BPE":
            raise VerifierError(f"{what}: {where} holds no BPE model (model.type 'BPE'). {source}".rstrip())
        vocab = model.get("vocab")
        merges = [tuple(m.split(" ") if isinstance(m, str) else m) for m in model.get("merges") or []]
        if any(len(m) != 2 for m in merges):
            raise VerifierError(f"{what}: {where} has merges that are not token pairs. {source}".rstrip())
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise VerifierError(f"{what}: {where} does not map tokens to ids: not a CLIP BPE vocabulary. "
                            f"{source}".rstrip())
    return vocab, merges, where
