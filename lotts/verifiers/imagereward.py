"""ImageReward (Xu et al. 2023) in plain torch: BLIP ViT + BERT with cross-attention + MLP.

Module names follow the original code (``blip.visual_encoder``, ``blip.text_encoder``,
``mlp.layers``) so the published ``ImageReward.pt`` loads with ``strict=True`` (only the
``position_ids`` buffer is dropped). Sizes are read from the checkpoint's shapes; the
text encoder's head count and LayerNorm eps from ``med_config.json`` beside the weights
when present (else BERT-base's: 64-wide heads, eps 1e-12), whose sizes must then agree
with the checkpoint's (a config of another model is refused at load). Tokenised with the
``tokenizers`` WordPiece from bert-base-uncased's ``vocab.txt`` plus ImageReward's two
added tokens ``[DEC]`` ``[ENC]``, padded/truncated to 35 tokens.
"""

from __future__ import annotations

import glob
import math
import os
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import Verifier, VerifierError, normalize, resize_shorter_center_crop, to_nchw
from .download import official_url
from .side_files import ConfigCheck, read_json_object, read_text
from .weights import load_state_dict, load_strict

MEAN = 0.16717362830052426  # ImageReward's reward normalisation (ImageReward.py)
STD = 1.0333394966054072
MAX_TEXT_LEN = 35
VOCAB_URL = official_url("ImageReward", "vocab.txt")
VOCAB_SOURCE = f"Get bert-base-uncased's vocab.txt from {VOCAB_URL}"
MED_SOURCE = (f"Get the right one from {official_url('ImageReward', 'med_config.json')}, or delete it "
              "(it is optional: the sizes are read from the weights)")


# ---------------------------------------------------------------- vision (BLIP ViT)
class _PatchEmbed(nn.Module):
    def __init__(self, patch, width):
        super().__init__()
        self.proj = nn.Conv2d(3, width, patch, patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class _ViTAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, width * 3)
        self.proj = nn.Linear(width, width)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    def __init__(self, width, hidden):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, width, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.attn = _ViTAttention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        self.mlp = _Mlp(width, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, image_size, patch, width, depth, heads, hidden):
        super().__init__()
        self.image_size = image_size
        self.patch_embed = _PatchEmbed(patch, width)
        n = (image_size // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, width))
        self.blocks = nn.ModuleList([_Block(width, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=1e-6)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)
        x = x + self.pos_embed[:, :x.shape[1]]
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


# ---------------------------------------------------------------- text (BLIP med BERT)
class _Linear3(nn.Module):
    """BertSelfAttention: query/key/value (key/value from the image width when crossing)."""

    def __init__(self, hidden, heads, kv_width):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(kv_width, hidden)
        self.value = nn.Linear(kv_width, hidden)

    def forward(self, x, mask, kv=None):
        kv = x if kv is None else kv
        b, n, c = x.shape
        h = self.heads

        def split(t):
            return t.reshape(b, t.shape[1], h, c // h).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(kv)), split(self.value(kv))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return out.transpose(1, 2).reshape(b, n, c)


class _SelfOutput(nn.Module):
    def __init__(self, hidden, inner, eps):
        super().__init__()
        self.dense = nn.Linear(inner, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, hidden, heads, kv_width, eps):
        super().__init__()
        self.self = _Linear3(hidden, heads, kv_width)
        self.output = _SelfOutput(hidden, hidden, eps)

    def forward(self, x, mask, kv=None):
        return self.output(self.self(x, mask, kv), x)


class _Intermediate(nn.Module):
    def __init__(self, hidden, inner):
        super().__init__()
        self.dense = nn.Linear(hidden, inner)

    def forward(self, x):
        return F.gelu(self.dense(x))


class _BertLayer(nn.Module):
    def __init__(self, hidden, heads, inner, enc_width, eps):
        super().__init__()
        self.attention = _Attention(hidden, heads, hidden, eps)
        self.crossattention = _Attention(hidden, heads, enc_width, eps)
        self.intermediate = _Intermediate(hidden, inner)
        self.output = _SelfOutput(hidden, inner, eps)

    def forward(self, x, mask, enc, enc_mask):
        x = self.attention(x, mask)
        x = self.crossattention(x, enc_mask, enc)
        return self.output(self.intermediate(x), x)


class _Embeddings(nn.Module):
    def __init__(self, vocab, hidden, max_pos, eps):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden, padding_idx=0)
        self.position_embeddings = nn.Embedding(max_pos, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1], device=ids.device)
        return self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(pos)[None])


class _Encoder(nn.Module):
    def __init__(self, layers, **kw):
        super().__init__()
        self.layer = nn.ModuleList([_BertLayer(**kw) for _ in range(layers)])


class BertModel(nn.Module):
    def __init__(self, vocab, hidden, layers, *, heads, inner, max_pos, enc_width, eps):
        super().__init__()
        self.embeddings = _Embeddings(vocab, hidden, max_pos, eps)
        self.encoder = _Encoder(layers, hidden=hidden, heads=heads, inner=inner, enc_width=enc_width, eps=eps)

    def forward(self, input_ids, attention_mask, encoder_hidden_states):
        x = self.embeddings(input_ids)
        # BLIP's extended masks: (1 - mask) * -10000 added to the scores
        mask = ((1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0)
        for layer in self.encoder.layer:
            x = layer(x, mask, encoder_hidden_states, None)
        return x


class BLIP(nn.Module):
    def __init__(self, vit: dict, bert: dict, embed_dim: int):
        super().__init__()
        self.visual_encoder = VisionTransformer(**vit)
        self.text_encoder = BertModel(**bert)
        self.vision_proj = nn.Linear(vit["width"], embed_dim)  # unused by ImageReward; in its checkpoint
        self.text_proj = nn.Linear(bert["hidden"], embed_dim)


class RewardMLP(nn.Module):
    """ImageReward's / the LAION aesthetic predictor's head: Linear stack, no activations
    (indices 0, 2, 4, 6, 7 as in the originals; dropouts in between do nothing at eval)."""

    def __init__(self, dims=(768, 1024, 128, 64, 16, 1)):
        super().__init__()
        d = dims
        self.layers = nn.Sequential(
            nn.Linear(d[0], d[1]), nn.Dropout(0.2), nn.Linear(d[1], d[2]), nn.Dropout(0.2),
            nn.Linear(d[2], d[3]), nn.Dropout(0.1), nn.Linear(d[3], d[4]), nn.Linear(d[4], d[5]))

    def forward(self, x):
        return self.layers(x)

    @staticmethod
    def dims_from(sd: dict, prefix: str):
        try:
            return tuple([sd[f"{prefix}0.weight"].shape[1]] +
                         [sd[f"{prefix}{i}.weight"].shape[0] for i in (0, 2, 4, 6, 7)])
        except KeyError:
            return None


class ImageRewardModel(nn.Module):
    def __init__(self, vit: dict, bert: dict, embed_dim: int, mlp_dims):
        super().__init__()
        self.blip = BLIP(vit, bert, embed_dim)
        self.mlp = RewardMLP(mlp_dims)
        self.mean, self.std = MEAN, STD

    def forward(self, pixel_values, input_ids, attention_mask):
        image_embeds = self.blip.visual_encoder(pixel_values)
        out = self.blip.text_encoder(input_ids, attention_mask, image_embeds)
        reward = self.mlp(out[:, 0, :].to(self.mlp.layers[0].weight.dtype))
        return ((reward.float() - self.mean) / self.std).squeeze(-1)


# ---------------------------------------------------------------- config from the checkpoint
def default_heads(width: int) -> int:
    """BERT/ViT conventions: 64-wide heads (768 -> 12, ViT-L's 1024 -> 16); 1 head for
    widths that are not a multiple of 64 (tiny test models)."""
    return width // 64 if width >= 64 and width % 64 == 0 else 1


def config_from_state_dict(sd: dict, med_config: dict | None = None, med_path: str = "med_config.json"):
    """Module sizes from the checkpoint's shapes; head count and eps from ``med_config``,
    whose other sizes, when given, must match the checkpoint's."""
    what = "ImageReward weights"
    try:
        pe = sd["blip.visual_encoder.pos_embed"]
        conv = sd["blip.visual_encoder.patch_embed.proj.weight"]
        words = sd["blip.text_encoder.embeddings.word_embeddings.weight"]
        pos = sd["blip.text_encoder.embeddings.position_embeddings.weight"]
        cross_k = sd["blip.text_encoder.encoder.layer.0.crossattention.self.key.weight"]
        inner = sd["blip.text_encoder.encoder.layer.0.intermediate.dense.weight"].shape[0]
        vit_hidden = sd["blip.visual_encoder.blocks.0.mlp.fc1.weight"].shape[0]
        embed_dim = sd["blip.vision_proj.weight"].shape[0]
    except KeyError as e:
        raise VerifierError(f"{what}: the file is not an ImageReward checkpoint (no key {e}; "
                            "expected blip.visual_encoder.*, blip.text_encoder.*, mlp.layers.*). "
                            "Is it the right file for this verifier?") from None
    width, patch = conv.shape[0], conv.shape[-1]
    n = pe.shape[1] - 1
    grid = int(math.isqrt(n))
    depth = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"blip\.visual_encoder\.blocks\.(\d+)\.", k)))
    layers = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"blip\.text_encoder\.encoder\.layer\.(\d+)\.", k)))
    hidden = words.shape[1]
    med = med_config or {}
    check = ConfigCheck(med_path, "ImageReward med_config.json", MED_SOURCE)
    check.same("hidden_size", med.get("hidden_size"), hidden, "the text encoder's width")
    check.same("vocab_size", med.get("vocab_size"), words.shape[0], "rows of the word embeddings")
    check.same("num_hidden_layers", med.get("num_hidden_layers"), layers, "text encoder layers")
    check.same("intermediate_size", med.get("intermediate_size"), inner, "the text encoder's feed-forward width")
    check.same("max_position_embeddings", med.get("max_position_embeddings"), pos.shape[0],
               "rows of the position embeddings")
    heads = check.divides("num_attention_heads", med.get("num_attention_heads", default_heads(hidden)),
                          "hidden_size", hidden)
    eps = check.small_positive("layer_norm_eps", med.get("layer_norm_eps", 1e-12))
    vit = dict(image_size=grid * patch, patch=patch, width=width, depth=depth,
               heads=default_heads(width), hidden=vit_hidden)
    bert = dict(vocab=words.shape[0], hidden=hidden, layers=layers, heads=heads, inner=inner,
                max_pos=pos.shape[0], enc_width=cross_k.shape[1], eps=eps)
    mlp = RewardMLP.dims_from(sd, "mlp.layers.")
    if mlp is None:
        raise VerifierError(f"{what}: the file has no reward head (mlp.layers.*): is it a BLIP checkpoint "
                            "rather than ImageReward.pt?")
    return vit, bert, embed_dim, mlp


# ---------------------------------------------------------------- tokenizer
def find_vocab(weights_path: str, extra_dirs=()) -> str | None:
    """bert-base-uncased's vocab.txt: beside the weights, in a bert-base-uncased/ folder
    beside them, in the given folders, or in the user's Hugging Face cache (offline)."""
    here = os.path.dirname(os.path.abspath(weights_path))
    cands = [os.path.join(here, "vocab.txt"), os.path.join(here, "bert-base-uncased", "vocab.txt")]
    cands += [os.path.join(d, "vocab.txt") for d in extra_dirs]
    hf = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface")), "hub")
    for repo in ("models--google-bert--bert-base-uncased", "models--bert-base-uncased"):
        cands += sorted(glob.glob(os.path.join(hf, repo, "snapshots", "*", "vocab.txt")))
    for c in cands:
        if os.path.isfile(c):
            return c
    return None


class BlipTokenizer:
    """bert-base-uncased WordPiece + ``[DEC]`` ``[ENC]`` (BLIP's init_tokenizer), length 35."""

    def __init__(self, vocab_file: str, max_length: int = MAX_TEXT_LEN):
        from tokenizers import BertWordPieceTokenizer
        tokens = {line.strip() for line in read_text(vocab_file, "ImageReward vocab.txt", VOCAB_SOURCE).splitlines()}
        for t in ("[CLS]", "[SEP]", "[PAD]", "[UNK]"):
            if t not in tokens:
                raise VerifierError(f"ImageReward vocab.txt: {vocab_file} has no {t} token: not a BERT "
                                    f"vocab.txt. {VOCAB_SOURCE}")
        tok = BertWordPieceTokenizer(vocab_file, lowercase=True, clean_text=True,
                                     handle_chinese_chars=True, strip_accents=None)
        tok.add_special_tokens(["[DEC]", "[ENC]"])
        tok.enable_truncation(max_length)
        tok.enable_padding(length=max_length, pad_id=tok.token_to_id("[PAD]"), pad_token="[PAD]")
        self.tok, self.vocab_size, self.max_length = tok, tok.get_vocab_size(), max_length

    def __call__(self, prompt: str):
        enc = self.tok.encode(prompt)
        return (torch.tensor([enc.ids], dtype=torch.long),
                torch.tensor([enc.attention_mask], dtype=torch.long))


# ---------------------------------------------------------------- verifier
class ImageRewardVerifier(Verifier):
    name = "ImageReward"

    def __init__(self, model: ImageRewardModel, tokenizer: BlipTokenizer, dtype=torch.float32):
        super().__init__(model, dtype)
        self.tokenizer = tokenizer
        self.image_size = model.blip.visual_encoder.image_size

    def prepare(self, images, prompt):
        x = resize_shorter_center_crop(to_nchw(images), self.image_size)
        ids, mask = self.tokenizer(prompt)
        return {"pixel_values": normalize(x), "input_ids": ids, "attention_mask": mask}

    def forward(self, inputs):
        x = inputs["pixel_values"]
        b = x.shape[0]
        return self.model(x, inputs["input_ids"].expand(b, -1), inputs["attention_mask"].expand(b, -1))


def load_imagereward(path: str, dtype=torch.float32, device="cpu", tokenizer_dirs=(), **_):
    sd = load_state_dict(path, "ImageReward weights")
    med = None
    med_path = os.path.join(os.path.dirname(os.path.abspath(path)), "med_config.json")
    if os.path.isfile(med_path):
        med = read_json_object(med_path, "ImageReward med_config.json", MED_SOURCE)
    vit, bert, embed_dim, mlp = config_from_state_dict(sd, med, med_path)
    vocab = find_vocab(path, tokenizer_dirs)
    if vocab is None:
        raise VerifierError(
            f"ImageReward needs bert-base-uncased's tokenizer vocabulary 'vocab.txt', not found beside "
            f"the weights in {os.path.dirname(os.path.abspath(path))} (nor in a bert-base-uncased/ "
            f"folder there, nor in the Hugging Face cache). Put vocab.txt from {VOCAB_URL} next to "
            f"{os.path.basename(path)}, or enable the loader's download option.")
    tokenizer = BlipTokenizer(vocab)
    if tokenizer.vocab_size != bert["vocab"]:
        raise VerifierError(f"ImageReward vocab.txt: {vocab} gives {tokenizer.vocab_size} tokens "
                            f"(with [DEC] [ENC]) but the weights have {bert['vocab']}: not bert-base-uncased's "
                            f"vocab.txt? {VOCAB_SOURCE}")
    model = ImageRewardModel(vit, bert, embed_dim, mlp)
    load_strict(model, sd, "ImageReward weights")
    del sd
    return ImageRewardVerifier(model.to(device=device, dtype=dtype), tokenizer, dtype)
