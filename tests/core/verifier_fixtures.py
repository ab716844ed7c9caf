"""Tiny random verifier checkpoints in the ORIGINAL key layouts and file formats.

The key lists below are written out from the published checkpoints' layouts (not from
our modules), so a loader that drifts from the originals fails ``strict=True`` loading:
- ImageReward.pt: a plain torch state dict, ``blip.visual_encoder.*`` (BLIP/timm ViT),
  ``blip.text_encoder.*`` (BLIP med BERT, with its ``position_ids`` buffer),
  ``blip.vision_proj/text_proj``, ``mlp.layers.{0,2,4,6,7}``; plus med_config.json.
- HPS_v2*.pt: ``{'state_dict': <OpenCLIP CLIP keys>}`` (in_proj, c_fc/c_proj, ln_pre...).
- PickScore / CLIP folders: transformers ``CLIPModel.save_pretrained`` (config.json +
  model.safetensors) with tokenizer files.
- Aesthetic: ``{layers.N.weight/bias}`` torch file + a CLIP folder beside it.
Tokenisers are tiny synthetic vocabularies made here (no third-party vocab files).
"""

from __future__ import annotations

import json
import os

import torch

BERT_WORDS = ["a", "an", "the", "of", "photo", "cat", "dog", "red", "blue", "green", "on", "in",
              "house", "tree", "car", "sky", "big", "small", "##s", "##ing", "painting", "sunset"]


def write_bert_vocab(folder) -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "vocab.txt")
    toks = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + BERT_WORDS
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(toks) + "\n")
    return path


BERT_VOCAB_SIZE = 6 + len(BERT_WORDS) + 2  # + [DEC] [ENC]


def imagereward_state_dict(seed=0, vit_width=128, vit_depth=2, patch=16, image=32, hidden=64,
                           layers=2, inner=96, max_pos=40, embed=32, vocab=BERT_VOCAB_SIZE,
                           mlp=(64, 32, 16, 8)):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, s=0.2):
        return torch.randn(*shape, generator=g) * s

    def ln(p, n):
        sd[p + ".weight"] = 1 + r(n, s=0.05)
        sd[p + ".bias"] = r(n, s=0.05)

    def lin(p, o, i):
        sd[p + ".weight"] = r(o, i, s=1.0 / i ** 0.5)
        sd[p + ".bias"] = r(o, s=0.02)

    sd = {}
    v = "blip.visual_encoder."
    n = (image // patch) ** 2
    sd[v + "cls_token"] = r(1, 1, vit_width)
    sd[v + "pos_embed"] = r(1, n + 1, vit_width)
    sd[v + "patch_embed.proj.weight"] = r(vit_width, 3, patch, patch, s=0.05)
    sd[v + "patch_embed.proj.bias"] = r(vit_width, s=0.02)
    for i in range(vit_depth):
        b = f"{v}blocks.{i}."
        ln(b + "norm1", vit_width)
        lin(b + "attn.qkv", 3 * vit_width, vit_width)
        lin(b + "attn.proj", vit_width, vit_width)
        ln(b + "norm2", vit_width)
        lin(b + "mlp.fc1", 4 * vit_width, vit_width)
        lin(b + "mlp.fc2", vit_width, 4 * vit_width)
    ln(v + "norm", vit_width)
    t = "blip.text_encoder."
    sd[t + "embeddings.position_ids"] = torch.arange(max_pos).expand(1, -1)
    sd[t + "embeddings.word_embeddings.weight"] = r(vocab, hidden, s=1.0)
    sd[t + "embeddings.position_embeddings.weight"] = r(max_pos, hidden, s=0.5)
    ln(t + "embeddings.LayerNorm", hidden)
    for i in range(layers):
        b = f"{t}encoder.layer.{i}."
        for att, kv in (("attention", hidden), ("crossattention", vit_width)):
            lin(b + att + ".self.query", hidden, hidden)
            lin(b + att + ".self.key", hidden, kv)
            lin(b + att + ".self.value", hidden, kv)
            lin(b + att + ".output.dense", hidden, hidden)
            ln(b + att + ".output.LayerNorm", hidden)
        lin(b + "intermediate.dense", inner, hidden)
        lin(b + "output.dense", hidden, inner)
        ln(b + "output.LayerNorm", hidden)
    lin("blip.vision_proj", embed, vit_width)
    lin("blip.text_proj", embed, hidden)
    dims = (hidden,) + tuple(mlp) + (1,)
    for idx, (i, o) in zip((0, 2, 4, 6, 7), zip(dims[:-1], dims[1:])):
        # re-initialised head (the original init gives every image the same reward)
        sd[f"mlp.layers.{idx}.weight"] = r(o, i, s=1.5 / i ** 0.5)
        sd[f"mlp.layers.{idx}.bias"] = r(o, s=0.1)
    return sd


def make_imagereward(folder, seed=0, vocab=True, med_config=True, **kw) -> str:
    os.makedirs(folder, exist_ok=True)
    sd = imagereward_state_dict(seed, **kw)
    path = os.path.join(folder, "ImageReward.pt")
    torch.save(sd, path)
    if med_config:  # the sizes of the weights beside it (as the official file is for its weights)
        t = "blip.text_encoder."
        hidden = sd[t + "embeddings.word_embeddings.weight"].shape[1]
        layers = sum(1 for k in sd if k.startswith(t + "encoder.layer.") and
                     k.endswith(".output.LayerNorm.weight") and ".attention." not in k
                     and ".crossattention." not in k)
        with open(os.path.join(folder, "med_config.json"), "w") as f:
            json.dump({"architectures": ["BertModel"], "hidden_size": hidden, "num_attention_heads": 2,
                       "num_hidden_layers": layers, "layer_norm_eps": 1e-12,
                       "vocab_size": sd[t + "embeddings.word_embeddings.weight"].shape[0],
                       "add_cross_attention": True,
                       "encoder_width": sd[t + "encoder.layer.0.crossattention.self.key.weight"].shape[1]},
                      f)
    if vocab:
        write_bert_vocab(folder)
    return path


# ---------------------------------------------------------------- CLIP BPE (tiny, synthetic)
def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's byte -> character table, in CLIP's vocabulary order (as in its published code)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


CLIP_MERGES = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"), ("r", "e"), ("re", "d</w>"),
               ("t", "h"), ("th", "e</w>"), ("p", "h"), ("o", "t"), ("ph", "ot")]


def write_clip_tokenizer(folder) -> int:
    """vocab.json + merges.txt in CLIP's format; returns the vocabulary size."""
    os.makedirs(folder, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in CLIP_MERGES] + \
        ["<|startoftext|>", "<|endoftext|>"]
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in CLIP_MERGES) + "\n")
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
                   "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
                   "do_lower_case": True}, f)
    return len(vocab)


CLIP_VOCAB_SIZE = 2 * 256 + len(CLIP_MERGES) + 2


def openclip_reference_ids(text: str, tokenizer_dir, context_length: int = 77) -> list[int]:
    """The oracle for HPS tokenisation: open_clip's ``tokenize([text])[0]`` as its published
    SimpleTokenizer does it, step by step, on a CLIP vocab.json + merges.txt (written out
    here on its own, not shared with the pack): basic_clean (ftfy.fix_text, html.unescape
    twice, strip), whitespace_clean, lower; its regex split; byte-level BPE with </w>
    (lowest-rank pair first, via get_pairs and word.index as in the original); start/end
    tokens, truncation keeping the end token, zero padding."""
    import html
    import ftfy
    import regex
    with open(os.path.join(tokenizer_dir, "vocab.json"), encoding="utf-8") as f:
        encoder = json.load(f)
    with open(os.path.join(tokenizer_dir, "merges.txt"), encoding="utf-8") as f:
        merges = [tuple(line.split()) for line in f.read().split("\n")[1:] if line.strip()]
    bpe_ranks = dict(zip(merges, range(len(merges))))
    byte_encoder = _bytes_to_unicode()
    sot, eot = encoder["<|startoftext|>"], encoder["<|endoftext|>"]

    def get_pairs(word):
        return {(word[i], word[i + 1]) for i in range(len(word) - 1)}

    def bpe(token):
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = get_pairs(word)
        while pairs:
            bigram = min(pairs, key=lambda pair: bpe_ranks.get(pair, float("inf")))
            if bigram not in bpe_ranks:
                break
            first, second = bigram
            new_word, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            pairs = get_pairs(word) if len(word) > 1 else set()
        return word

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()   # basic_clean
    text = " ".join(text.split()).strip().lower()                       # whitespace_clean, lower
    pat = regex.compile(r"""<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                        regex.IGNORECASE)
    tokens = [sot]
    for token in regex.findall(pat, text):
        if token in ("<start_of_text>", "<end_of_text>"):  # open_clip's specials in its own vocab
            tokens.append(sot if token == "<start_of_text>" else eot)
            continue
        token = "".join(byte_encoder[b] for b in token.encode("utf-8"))
        tokens.extend(encoder[t] for t in bpe(token))
    tokens.append(eot)
    if len(tokens) > context_length:
        tokens = tokens[:context_length]
        tokens[-1] = eot
    return tokens + [0] * (context_length - len(tokens))


def openclip_state_dict(seed=0, vw=64, vlayers=2, patch=8, image=32, tw=48, tlayers=2, ctx=77,
                        vocab=CLIP_VOCAB_SIZE, embed=32):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, s=0.2):
        return torch.randn(*shape, generator=g) * s

    sd = {}

    def block(p, w):
        sd[p + "ln_1.weight"] = 1 + r(w, s=0.05)
        sd[p + "ln_1.bias"] = r(w, s=0.05)
        sd[p + "attn.in_proj_weight"] = r(3 * w, w, s=w ** -0.5)
        sd[p + "attn.in_proj_bias"] = r(3 * w, s=0.02)
        sd[p + "attn.out_proj.weight"] = r(w, w, s=w ** -0.5)
        sd[p + "attn.out_proj.bias"] = r(w, s=0.02)
        sd[p + "ln_2.weight"] = 1 + r(w, s=0.05)
        sd[p + "ln_2.bias"] = r(w, s=0.05)
        sd[p + "mlp.c_fc.weight"] = r(4 * w, w, s=w ** -0.5)
        sd[p + "mlp.c_fc.bias"] = r(4 * w, s=0.02)
        sd[p + "mlp.c_proj.weight"] = r(w, 4 * w, s=(4 * w) ** -0.5)
        sd[p + "mlp.c_proj.bias"] = r(w, s=0.02)

    sd["positional_embedding"] = r(ctx, tw, s=0.1)
    sd["text_projection"] = r(tw, embed, s=tw ** -0.5)
    sd["logit_scale"] = torch.tensor(4.6052)
    sd["visual.class_embedding"] = r(vw)
    sd["visual.positional_embedding"] = r((image // patch) ** 2 + 1, vw, s=0.1)
    sd["visual.proj"] = r(vw, embed, s=vw ** -0.5)
    sd["visual.conv1.weight"] = r(vw, 3, patch, patch, s=0.1)
    sd["visual.ln_pre.weight"] = 1 + r(vw, s=0.05)
    sd["visual.ln_pre.bias"] = r(vw, s=0.05)
    for i in range(vlayers):
        block(f"visual.transformer.resblocks.{i}.", vw)
    sd["visual.ln_post.weight"] = 1 + r(vw, s=0.05)
    sd["visual.ln_post.bias"] = r(vw, s=0.05)
    sd["token_embedding.weight"] = r(vocab, tw, s=0.5)
    for i in range(tlayers):
        block(f"transformer.resblocks.{i}.", tw)
    sd["ln_final.weight"] = 1 + r(tw, s=0.05)
    sd["ln_final.bias"] = r(tw, s=0.05)
    return sd


def make_hps(folder, seed=0, name="HPS_v2.1_compressed.pt", tokenizer=True, heads=(2, 2), **kw) -> str:
    os.makedirs(folder, exist_ok=True)
    sd = openclip_state_dict(seed, **kw)
    path = os.path.join(folder, name)
    torch.save({"state_dict": sd}, path)
    vw = sd["visual.conv1.weight"].shape[0]
    with open(os.path.join(folder, "open_clip_config.json"), "w") as f:
        json.dump({"vision_cfg": {"head_width": vw // heads[0]}, "text_cfg": {"heads": heads[1]}}, f)
    if tokenizer:
        write_clip_tokenizer(folder)
    return path


def make_hf_clip(folder, seed=0, tokenizer=True, vw=64, tw=48, embed=32, image=32, patch=8):
    from transformers import CLIPConfig, CLIPModel
    torch.manual_seed(seed)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=CLIP_VOCAB_SIZE, hidden_size=tw, intermediate_size=2 * tw,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
                         bos_token_id=CLIP_VOCAB_SIZE - 2, eos_token_id=CLIP_VOCAB_SIZE - 1, pad_token_id=1),
        vision_config=dict(hidden_size=vw, intermediate_size=2 * vw, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image, patch_size=patch),
        projection_dim=embed)
    model = CLIPModel(cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # the same values whatever transformers' init does
        for name, p in sorted(model.named_parameters()):
            if p.ndim == 1 and "norm" in name and name.endswith(".weight"):
                p.copy_(1 + 0.05 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel() if p.ndim > 1 else 1
                p.copy_(torch.randn(p.shape, generator=g) * fan_in ** -0.5)
        model.logit_scale.fill_(4.6052)
    model.save_pretrained(folder, safe_serialization=True)
    if tokenizer:
        write_clip_tokenizer(folder)
    return folder


def make_aesthetic(folder, seed=0, embed=32, **kw):
    os.makedirs(folder, exist_ok=True)
    make_hf_clip(os.path.join(folder, "clip-vit-large-patch14"), seed=seed, embed=embed, tokenizer=False, **kw)
    g = torch.Generator().manual_seed(seed + 1)
    dims = (embed, 64, 32, 16, 8, 1)
    sd = {}
    for idx, (i, o) in zip((0, 2, 4, 6, 7), zip(dims[:-1], dims[1:])):
        sd[f"layers.{idx}.weight"] = torch.randn(o, i, generator=g) * (2.0 / i ** 0.5)
        sd[f"layers.{idx}.bias"] = torch.randn(o, generator=g) * 0.1
    path = os.path.join(folder, "sac+logos+ava1-l14-linearMSE.pth")
    torch.save(sd, path)
    return path


def images(n=8, h=40, w=48, seed=0):
    """A deterministic, varied IMAGE batch (B, H, W, 3) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, h // 8, w // 8, 3, generator=g)
    up = torch.nn.functional.interpolate(base.permute(0, 3, 1, 2), size=(h, w), mode="bilinear",
                                         align_corners=False).permute(0, 2, 3, 1)
    return (up + 0.05 * torch.rand(n, h, w, 3, generator=g)).clamp(0, 1)


def write_regression_data(root, prompt="a photo of the red cat"):
    """(Re)generate the committed regression files in tests/core/data: tiny fixed-weight
    fp16 safetensors (a few KB, flat in data/ as .gitignore allows) with synthetic
    tokenisers beside them, and the scores our implementation gave when they were made.
    Run once by hand; the regression test then guards against silent drifts (and against
    transformers changing its random init, which these fixed files do not depend on).
    Head counts are the loaders' defaults (no config files needed)."""
    from safetensors.torch import save_file
    from lotts.verifiers import load_verifier
    root = os.fspath(root)
    os.makedirs(root, exist_ok=True)
    sd = imagereward_state_dict(7, vit_width=16, vit_depth=1, patch=4, image=8, hidden=16, layers=1,
                                inner=32, max_pos=36, embed=8, mlp=(16, 8, 8, 4))
    sd.pop("blip.text_encoder.embeddings.position_ids")
    ir = os.path.join(root, "verifier_imagereward_tiny.safetensors")
    save_file({k: v.half().contiguous() for k, v in sd.items()}, ir)
    ir_vocab = os.path.join(root, "verifier_imagereward_tiny_vocab")
    write_bert_vocab(ir_vocab)
    sd = openclip_state_dict(8, vw=16, vlayers=1, patch=4, image=8, tw=16, tlayers=1, ctx=20, embed=8)
    hps = os.path.join(root, "verifier_hps_tiny.safetensors")
    save_file({k: v.half().contiguous() for k, v in sd.items()}, hps)
    write_clip_tokenizer(os.path.join(root, "verifier_hps_tiny_tokenizer"))
    imgs = images(4, h=24, w=20, seed=11)
    expected = {
        "ImageReward": load_verifier("ImageReward", ir, tokenizer_dirs=[ir_vocab]).score(imgs, prompt).tolist(),
        "HPSv2.1": load_verifier("HPSv2.1", hps).score(imgs, prompt).tolist(),
    }
    with open(os.path.join(root, "verifier_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    return expected
