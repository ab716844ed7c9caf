"""CLIP-based verifiers on a transformers ``CLIPModel``: HPSv2/v2.1, PickScore, CLIP score,
LAION aesthetic.

- HPSv2 / HPSv2.1: the published OpenCLIP ViT-H-14 checkpoints (``{'state_dict': ...}``,
  open_clip key names) are converted on load to a ``CLIPModel`` (q/k/v split from
  ``in_proj``, ``c_fc/c_proj`` -> ``fc1/fc2``, projections transposed) and loaded strictly.
  Score = cosine(image, text) as in ``hpsv2.score``; images resized (longer side) and
  zero-padded to square as open_clip's ``ResizeMaxSize``; prompts tokenised as open_clip
  does (its cleaning included, see ``openclip_tokenizer``).
- PickScore: a transformers CLIP folder (``PickScore_v1``); score = ``logit_scale.exp() *
  cosine`` as in its model card. CLIP score: same on any CLIP folder, ``100 * cosine``
  (torchmetrics' convention without its clamp at 0, so rankings stay informative).
- Aesthetic: the LAION improved-aesthetic-predictor MLP on L2-normalised CLIP ViT-L/14
  image embeddings (prompt unused).

transformers is imported lazily: without it these verifiers are disabled (see registry).
Side files (config.json, open_clip_config.json, tokenizer files) are read through
``side_files``: a wrong one is refused at load, naming it, and configs must agree with the
weights' shapes.
"""

from __future__ import annotations

import math
import os
import re

import torch

from .base import (Verifier, VerifierError, normalize, resize_longer_pad,
                   resize_shorter_center_crop, to_nchw)
from .download import official_url
from .imagereward import RewardMLP, default_heads
from .openclip_tokenizer import OpenClipTokenizer
from .side_files import ConfigCheck, read_json_object, read_text
from .weights import WEIGHT_EXTENSIONS, load_hf_folder_state_dict, load_state_dict, load_strict

CLIP_TOKENIZER_HINT = ("the CLIP BPE vocabulary (vocab.json + merges.txt, e.g. from "
                       "https://huggingface.co/openai/clip-vit-large-patch14; ComfyUI ships it in "
                       "comfy/sd1_tokenizer/)")
CLIP_TOKENIZER_SOURCE = ("Replace it with the file from https://huggingface.co/openai/clip-vit-large-patch14 "
                         "(the CLIP BPE vocabulary), or remove the tokenizer files there: ComfyUI's own copy "
                         "(comfy/sd1_tokenizer/) is used then")
OPEN_CLIP_CONFIG_SOURCE = ("It is optional: delete it and the sizes are read from the checkpoint; HPSv2's is "
                           "open_clip's ViT-H-14 config, e.g. open_clip_config.json from "
                           "https://huggingface.co/laion/CLIP-ViT-H-14-laion2B-s32B-b79K")
# the JSON files a transformers tokenizer folder may hold (each read when present)
TOKENIZER_JSON_FILES = ("vocab.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                        "added_tokens.json")


# ---------------------------------------------------------------- helpers
def _no_init():
    """A context that skips transformers' random init (weights are loaded right after)."""
    try:  # transformers >= 5
        from transformers.initialization import no_init_weights
    except ImportError:
        try:  # transformers 4.x
            from transformers.modeling_utils import no_init_weights
        except ImportError:  # pragma: no cover
            import contextlib
            return contextlib.nullcontext()
    return no_init_weights()


def _count(sd, pattern):
    """How many numbered blocks the keys matching ``pattern`` (one group: the index) hold."""
    idx = [int(m.group(1)) for k in sd if (m := re.match(pattern, k))]
    return 1 + max(idx) if idx else 0


def _build_clip(config):
    from transformers import CLIPModel
    with _no_init():
        model = CLIPModel(config)
    return model


def _is_tokenizer_dir(d: str) -> bool:
    return bool(d) and (os.path.isfile(os.path.join(d, "tokenizer.json")) or (
        os.path.isfile(os.path.join(d, "vocab.json")) and os.path.isfile(os.path.join(d, "merges.txt"))))


def find_clip_tokenizer(weights_path: str, extra_dirs=()) -> str | None:
    base = weights_path if os.path.isdir(weights_path) else os.path.dirname(os.path.abspath(weights_path))
    cands = [base, os.path.join(base, "tokenizer")]
    if not os.path.isdir(weights_path):
        stem = os.path.splitext(os.path.basename(weights_path))[0]
        cands.insert(0, os.path.join(base, stem + "_tokenizer"))
    cands += list(extra_dirs)
    for d in cands:
        if _is_tokenizer_dir(d):
            return d
    return None


class ClipTextTokenizer:
    """A transformers CLIP tokenizer (PickScore, CLIP score: their reference is transformers')."""

    def __init__(self, folder: str, max_length: int, what: str = "CLIP tokenizer", source: str = ""):
        try:
            from transformers import CLIPTokenizerFast as Tok
        except ImportError:  # pragma: no cover
            from transformers import CLIPTokenizer as Tok
        for name in TOKENIZER_JSON_FILES:  # a wrong file is named here, not in a bare JSON error
            if os.path.isfile(os.path.join(folder, name)):
                read_json_object(os.path.join(folder, name), what, source)
        if os.path.isfile(os.path.join(folder, "merges.txt")):
            read_text(os.path.join(folder, "merges.txt"), what, source)
        try:
            self.tok = Tok.from_pretrained(folder, local_files_only=True)
        except Exception as e:
            raise VerifierError(f"{what}: the tokenizer files in {folder} do not load ({type(e).__name__}: "
                                f"{e}). {source}".rstrip()) from None
        self.max_length = max_length
        self.vocab_size = len(self.tok)
        self.eos_token_id = self.tok.eos_token_id

    def __call__(self, prompt: str) -> torch.Tensor:
        ids = self.tok(prompt, padding="max_length", truncation=True, max_length=self.max_length,
                       return_tensors="pt")["input_ids"]
        return ids[:, :self.max_length]


def _feature(out):
    """``pooler_output`` of a vision/text tower output (a tuple in old versions)."""
    return out.pooler_output if hasattr(out, "pooler_output") else out[1]


def image_embeds(model, pixel_values):
    return model.visual_projection(_feature(model.vision_model(pixel_values=pixel_values)))


def text_embeds(model, input_ids):
    return model.text_projection(_feature(model.text_model(input_ids=input_ids)))


def _l2(x):
    return x / x.norm(dim=-1, keepdim=True)


# ---------------------------------------------------------------- verifiers
class ClipVerifier(Verifier):
    """cosine(image, text) * scale; subclasses pick the preprocessing and the scale."""

    name = "CLIPScore"
    pad_to_square = False

    def __init__(self, model, tokenizer: ClipTextTokenizer, dtype=torch.float32, scale=None):
        super().__init__(ClipHolder(model), dtype)
        self.tokenizer = tokenizer
        self.image_size = model.config.vision_config.image_size
        self.scale = scale

    def prepare(self, images, prompt):
        x = to_nchw(images)
        x = resize_longer_pad(x, self.image_size) if self.pad_to_square else \
            resize_shorter_center_crop(x, self.image_size)
        return {"pixel_values": normalize(x), "input_ids": self.tokenizer(prompt)}

    def forward(self, inputs):
        clip = self.model.clip
        img = _l2(image_embeds(clip, inputs["pixel_values"]).float())
        txt = _l2(text_embeds(clip, inputs["input_ids"]).float())
        scale = clip.logit_scale.float().exp() if self.scale is None else self.scale
        return scale * (img @ txt.T)[:, 0]


class HPSVerifier(ClipVerifier):
    name = "HPSv2"
    pad_to_square = True


class PickScoreVerifier(ClipVerifier):
    name = "PickScore"


class AestheticVerifier(Verifier):
    name = "Aesthetic"
    uses_prompt = False

    def __init__(self, model, dtype=torch.float32):
        super().__init__(model, dtype)
        self.image_size = model.clip.config.vision_config.image_size

    def prepare(self, images, prompt):
        return {"pixel_values": normalize(resize_shorter_center_crop(to_nchw(images), self.image_size))}

    def forward(self, inputs):
        emb = _l2(image_embeds(self.model.clip, inputs["pixel_values"]).float())
        return self.model.mlp(emb.to(self.model.mlp.layers[0].weight.dtype)).float().squeeze(-1)


class ClipHolder(torch.nn.Module):
    """A plain ``nn.Module`` around a transformers model, so hosts may set attributes such
    as ``device`` on it (ComfyUI's ModelPatcher does; ``PreTrainedModel.device`` is read-only)."""

    def __init__(self, clip):
        super().__init__()
        self.clip = clip


class _AestheticModel(torch.nn.Module):
    def __init__(self, clip, mlp):
        super().__init__()
        self.clip, self.mlp = clip, mlp


# ---------------------------------------------------------------- HF folders
def _shape(sd, key):
    return tuple(sd[key].shape) if key in sd else None


def check_clip_config(config, sd: dict, check: ConfigCheck):
    """A transformers ``CLIPConfig`` against a ``CLIPModel`` state dict's shapes (sizes,
    layer counts, heads dividing widths). Keys absent from ``sd`` are left to
    ``load_strict``, which names them."""
    t, v = config.text_config, config.vision_config
    tok, tpos = _shape(sd, "text_model.embeddings.token_embedding.weight"), \
        _shape(sd, "text_model.embeddings.position_embedding.weight")
    tfc, vfc = _shape(sd, "text_model.encoder.layers.0.mlp.fc1.weight"), \
        _shape(sd, "vision_model.encoder.layers.0.mlp.fc1.weight")
    conv, vpos = _shape(sd, "vision_model.embeddings.patch_embedding.weight"), \
        _shape(sd, "vision_model.embeddings.position_embedding.weight")
    vproj = _shape(sd, "visual_projection.weight")
    if None in (tok, tpos, tfc, vfc, conv, vpos, vproj):
        return
    check.same("text_config.vocab_size", t.vocab_size, tok[0], "rows of the token embedding")
    check.same("text_config.max_position_embeddings", t.max_position_embeddings, tpos[0],
               "rows of the text position embedding")
    check.same("vision_config.patch_size", v.patch_size, conv[-1], "the patch embedding")
    grid = check.whole("vision_config.image_size", v.image_size) // v.patch_size
    if grid * grid + 1 != vpos[0]:
        check.fail(f"says vision_config.image_size {v.image_size} (with patch_size {v.patch_size}: "
                   f"{grid * grid + 1} positions) but the weights have {vpos[0]} image position embeddings: "
                   "the file belongs to another model")
    for key, tower, prefix, width, inner in (("text_config", t, "text_model", tok[1], tfc[0]),
                                             ("vision_config", v, "vision_model", conv[0], vfc[0])):
        label = "text" if key == "text_config" else "image"
        check.same(f"{key}.hidden_size", tower.hidden_size, width, f"the {label} tower's width")
        check.same(f"{key}.num_hidden_layers", tower.num_hidden_layers,
                   _count(sd, prefix + r"\.encoder\.layers\.(\d+)\."), f"{label} tower layers")
        check.same(f"{key}.intermediate_size", tower.intermediate_size, inner, f"the {label} tower's feed-forward width")
        check.divides(f"{key}.num_attention_heads", tower.num_attention_heads, f"{key}.hidden_size", width)
    check.same("projection_dim", config.projection_dim, vproj[0], "rows of the visual projection")


def _read_clip_folder(folder: str, name: str, source: str):
    """A ``CLIPModel`` from a transformers folder; ``source`` says where its config.json comes from."""
    from transformers import CLIPConfig
    what = f"{name} weights"
    cfg_path = os.path.join(folder, "config.json")
    if not os.path.isfile(cfg_path):
        raise VerifierError(f"{what}: {folder} is not a transformers CLIP folder (no config.json)")
    check = ConfigCheck(cfg_path, f"{name} config.json", source)
    cfg = read_json_object(cfg_path, check.what, source)
    if cfg.get("model_type") != "clip":
        check.fail(f"describes a '{cfg.get('model_type')}' model, not a CLIP model ('model_type': 'clip'): "
                   "is it the right folder?")
    for tower in ("text_config", "vision_config"):  # before transformers' own (version-dependent) check
        part = cfg.get(tower) or cfg.get(tower + "_dict")
        if isinstance(part, dict) and "hidden_size" in part and "num_attention_heads" in part:
            check.divides(f"{tower}.num_attention_heads", part["num_attention_heads"], f"{tower}.hidden_size",
                          check.whole(f"{tower}.hidden_size", part["hidden_size"]), "in the same file")
    try:
        config = CLIPConfig.from_dict(cfg)
    except Exception as e:  # noqa: BLE001 -- whatever transformers objects to, name the file
        check.fail(f"is not a valid CLIP config ({type(e).__name__}: {e})")
    sd = load_hf_folder_state_dict(folder, what)
    check_clip_config(config, sd, check)
    model = _build_clip(config)
    load_strict(model, sd, what)
    return model


def _check_tokenizer_fits(tok, text_config, folder: str, what: str):
    """The tokenizer's ids must exist in the text embedding, and its end token must be
    where the model reads the text feature (else scoring fails or reads the wrong token)."""
    rows = text_config.vocab_size
    if tok.vocab_size > rows:
        raise VerifierError(f"{what}: the tokenizer in {folder} has {tok.vocab_size} tokens but the weights' "
                            f"text embedding has {rows} rows: not this model's tokenizer. {CLIP_TOKENIZER_SOURCE}")
    eos = tok.eos_token_id
    if text_config.eos_token_id == 2:  # transformers' legacy CLIP config: the text is read at the largest id
        if eos != tok.vocab_size - 1:
            raise VerifierError(f"{what}: the tokenizer in {folder} has its end token at id {eos}, not at its "
                                f"largest id {tok.vocab_size - 1} where this model reads the text feature: "
                                f"not a CLIP tokenizer? {CLIP_TOKENIZER_SOURCE}")
    elif eos != text_config.eos_token_id:
        raise VerifierError(f"{what}: the tokenizer in {folder} has its end token at id {eos} but the model "
                            f"reads the text feature at id {text_config.eos_token_id} (text_config.eos_token_id): "
                            f"not this model's tokenizer. {CLIP_TOKENIZER_SOURCE}")


def _tokenizer_for(path, model, what, tokenizer_dirs, kind=ClipTextTokenizer):
    d = find_clip_tokenizer(path, tokenizer_dirs)
    if d is None:
        where = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        raise VerifierError(f"{what}: no CLIP tokenizer found beside the weights in {where} (looked for "
                            f"tokenizer.json or vocab.json + merges.txt there and in tokenizer/). It needs "
                            f"{CLIP_TOKENIZER_HINT}.")
    text_config = model.config.text_config
    tok = kind(d, text_config.max_position_embeddings, what=f"{what} tokenizer", source=CLIP_TOKENIZER_SOURCE)
    _check_tokenizer_fits(tok, text_config, d, what)
    return tok


def load_pickscore(path, dtype=torch.float32, device="cpu", tokenizer_dirs=(), **_):
    model = _read_clip_folder(path, "PickScore", f"Get the right one from {official_url('PickScore', 'config.json')}")
    tok = _tokenizer_for(path, model, "PickScore", tokenizer_dirs)
    return PickScoreVerifier(model.to(device=device, dtype=dtype), tok, dtype, scale=None)


def load_clipscore(path, dtype=torch.float32, device="cpu", tokenizer_dirs=(), **_):
    model = _read_clip_folder(path, "CLIPScore", f"Get the right one from {official_url('CLIPScore', 'config.json')} "
                              "(or the config.json published with your CLIP weights)")
    tok = _tokenizer_for(path, model, "CLIPScore", tokenizer_dirs)
    v = ClipVerifier(model.to(device=device, dtype=dtype), tok, dtype, scale=100.0)
    return v


AESTHETIC_MLP_NAME = "sac+logos+ava1-l14-linearMSE.pth"
AESTHETIC_CLIP_DIR = "clip-vit-large-patch14"


def _aesthetic_files(path: str):
    """(mlp file, CLIP folder): ``path`` is the MLP file (CLIP folder beside it) or a folder
    holding both (config.json + weights, and an MLP file)."""
    if os.path.isdir(path):
        mlps = sorted(f for f in os.listdir(path) if f.endswith(WEIGHT_EXTENSIONS) and
                      not f.startswith(("model", "pytorch_model")))
        if not mlps:
            raise VerifierError(f"Aesthetic: no MLP file (e.g. {AESTHETIC_MLP_NAME}) in {path}")
        return os.path.join(path, mlps[0]), path
    base = os.path.dirname(os.path.abspath(path))
    for d in (os.path.join(base, AESTHETIC_CLIP_DIR), base):
        if os.path.isfile(os.path.join(d, "config.json")):
            return path, d
    raise VerifierError(
        f"Aesthetic needs the CLIP ViT-L/14 image encoder as a transformers folder "
        f"'{AESTHETIC_CLIP_DIR}/' (config.json + model.safetensors from "
        f"https://huggingface.co/openai/clip-vit-large-patch14) beside {os.path.basename(path)} in {base}; "
        f"not found. Enable the loader's download option or put it there.")


def _aesthetic_mlp(mlp_path):
    sd = load_state_dict(mlp_path, "Aesthetic MLP weights")
    dims = RewardMLP.dims_from(sd, "layers.")
    if dims is None:
        raise VerifierError(f"Aesthetic MLP weights: '{os.path.basename(mlp_path)}' is not the LAION "
                            "aesthetic predictor (expected keys layers.0/2/4/6/7.weight)")
    return sd, dims


def load_aesthetic(path, dtype=torch.float32, device="cpu", **_):
    if os.path.isfile(path):  # check the MLP file itself before looking for the CLIP folder
        _aesthetic_mlp(path)
    mlp_path, clip_dir = _aesthetic_files(path)
    sd, dims = _aesthetic_mlp(mlp_path)
    mlp = RewardMLP(dims)
    load_strict(mlp, sd, "Aesthetic MLP weights")
    clip = _read_clip_folder(clip_dir, "Aesthetic CLIP",
                             f"Get the right one from {official_url('Aesthetic', 'config.json')}")
    if clip.config.projection_dim != dims[0]:
        raise VerifierError(f"Aesthetic: the MLP takes {dims[0]}-d embeddings but the CLIP in {clip_dir} "
                            f"makes {clip.config.projection_dim}-d ones (it needs CLIP ViT-L/14)")
    return AestheticVerifier(_AestheticModel(clip, mlp).to(device=device, dtype=dtype), dtype)


# ---------------------------------------------------------------- HPS: OpenCLIP -> CLIPModel
def hps_config_from_state_dict(sd: dict, open_clip_cfg: dict | None = None,
                               cfg_path: str = "open_clip_config.json", name: str = "HPS"):
    """A ``CLIPConfig`` for an OpenCLIP checkpoint, sizes from its shapes; head counts from
    an open_clip model json beside the file (whose sizes must then match the checkpoint's),
    else ViT-H-14's conventions (head width 80 for a 1280-wide vision tower, else 64; 64
    for text). The json may be open_clip's model config or a hub ``open_clip_config.json``
    (the same under ``model_cfg``)."""
    from transformers import CLIPConfig
    try:
        conv = sd["visual.conv1.weight"]
        vpos = sd["visual.positional_embedding"]
        tok = sd["token_embedding.weight"]
        tpos = sd["positional_embedding"]
        proj = sd["visual.proj"]
        t_inner = sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
        v_inner = sd["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
    except KeyError as e:
        raise VerifierError(f"HPS weights: the file is not an OpenCLIP checkpoint (no key {e}; expected "
                            "visual.*, transformer.resblocks.*, token_embedding.*). Is it the right file "
                            "for this verifier?") from None
    vw, patch = conv.shape[0], conv.shape[-1]
    grid = int(math.isqrt(vpos.shape[0] - 1))
    tw = tok.shape[1]
    v_layers = _count(sd, r"visual\.transformer\.resblocks\.(\d+)\.")
    t_layers = _count(sd, r"transformer\.resblocks\.(\d+)\.")
    oc = open_clip_cfg or {}
    oc = oc["model_cfg"] if isinstance(oc.get("model_cfg"), dict) else oc
    check = ConfigCheck(cfg_path, f"{name} open_clip_config.json", OPEN_CLIP_CONFIG_SOURCE)
    vc, tc = oc.get("vision_cfg", {}), oc.get("text_cfg", {})
    for key, part in (("vision_cfg", vc), ("text_cfg", tc)):
        if not isinstance(part, dict):
            check.fail(f"has a '{key}' that is not an object ({{...}}): not an open_clip model config")
    image_size = vc.get("image_size")
    if isinstance(image_size, (list, tuple)) and len(set(image_size)) == 1:  # open_clip allows [224, 224]
        image_size = image_size[0]
    check.same("vision_cfg.width", vc.get("width"), vw, "the image tower's width")
    check.same("vision_cfg.layers", vc.get("layers"), v_layers, "image tower blocks")
    check.same("vision_cfg.patch_size", vc.get("patch_size"), patch, "the patch embedding")
    check.same("vision_cfg.image_size", image_size, grid * patch, "from the image position embeddings")
    check.same("text_cfg.width", tc.get("width"), tw, "the text tower's width")
    check.same("text_cfg.layers", tc.get("layers"), t_layers, "text tower blocks")
    check.same("text_cfg.context_length", tc.get("context_length"), tpos.shape[0], "rows of the text position embedding")
    check.same("text_cfg.vocab_size", tc.get("vocab_size"), tok.shape[0], "rows of the token embedding")
    check.same("embed_dim", oc.get("embed_dim"), proj.shape[1], "the projection's width")
    v_head = check.whole("vision_cfg.head_width", vc.get("head_width", 80 if vw == 1280 else vw // default_heads(vw)))
    if vw % v_head:
        check.fail(f"says vision_cfg.head_width {v_head}, which does not divide the image tower's width {vw}: "
                   "the heads must split it evenly")
    t_heads = check.divides("text_cfg.heads", tc.get("heads", default_heads(tw)), "text_cfg.width", tw)
    vision = dict(hidden_size=vw, intermediate_size=v_inner, num_hidden_layers=v_layers,
                  num_attention_heads=vw // v_head, image_size=grid * patch, patch_size=patch,
                  projection_dim=proj.shape[1], hidden_act="gelu", layer_norm_eps=1e-5)
    text = dict(vocab_size=tok.shape[0], hidden_size=tw, intermediate_size=t_inner,
                num_hidden_layers=t_layers, num_attention_heads=t_heads,
                max_position_embeddings=tpos.shape[0], projection_dim=proj.shape[1], hidden_act="gelu",
                layer_norm_eps=1e-5, bos_token_id=tok.shape[0] - 2, eos_token_id=tok.shape[0] - 1, pad_token_id=0)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=proj.shape[1])


def openclip_to_hf(sd: dict) -> dict:
    """Rename an OpenCLIP ``CLIP`` state dict to transformers ``CLIPModel`` keys."""
    out = {}
    for k, v in sd.items():
        if k in ("attn_mask", "visual.attn_mask") or k.endswith(".attn_mask"):
            continue
        if k.startswith("visual."):
            rest, tower, prefix = k[len("visual."):], "vision_model", "vision_model."
        else:
            rest, tower, prefix = k, "text_model", "text_model."
        m = re.match(r"transformer\.resblocks\.(\d+)\.(.+)", rest)
        if m:
            i, name = m.group(1), m.group(2)
            p = f"{prefix}encoder.layers.{i}."
            if name in ("attn.in_proj_weight", "attn.in_proj_bias"):
                kind = name.rsplit("_", 1)[1]
                for part, t in zip(("q_proj", "k_proj", "v_proj"), v.chunk(3, dim=0)):
                    out[f"{p}self_attn.{part}.{kind}"] = t
                continue
            name = (name.replace("attn.out_proj", "self_attn.out_proj").replace("ln_1", "layer_norm1")
                    .replace("ln_2", "layer_norm2").replace("mlp.c_fc", "mlp.fc1").replace("mlp.c_proj", "mlp.fc2"))
            out[p + name] = v
            continue
        simple = {
            "text_model": {"token_embedding.weight": "text_model.embeddings.token_embedding.weight",
                           "positional_embedding": "text_model.embeddings.position_embedding.weight",
                           "ln_final.weight": "text_model.final_layer_norm.weight",
                           "ln_final.bias": "text_model.final_layer_norm.bias",
                           "logit_scale": "logit_scale"},
            "vision_model": {"class_embedding": "vision_model.embeddings.class_embedding",
                             "positional_embedding": "vision_model.embeddings.position_embedding.weight",
                             "conv1.weight": "vision_model.embeddings.patch_embedding.weight",
                             "ln_pre.weight": "vision_model.pre_layrnorm.weight",
                             "ln_pre.bias": "vision_model.pre_layrnorm.bias",
                             "ln_post.weight": "vision_model.post_layernorm.weight",
                             "ln_post.bias": "vision_model.post_layernorm.bias"},
        }[tower]
        if rest in simple:
            out[simple[rest]] = v
        elif tower == "text_model" and rest == "text_projection":
            out["text_projection.weight"] = v.t().contiguous()
        elif tower == "vision_model" and rest == "proj":
            out["visual_projection.weight"] = v.t().contiguous()
        else:
            out["<unmapped>." + k] = v  # load_strict reports it as unexpected
    return out


def load_hps(path, dtype=torch.float32, device="cpu", tokenizer_dirs=(), name="HPSv2", **_):
    what = f"{name} weights"
    sd = load_state_dict(path, what)
    if any(k.startswith("vision_model.") for k in sd):  # already converted, transformers keys
        raise VerifierError(f"{what}: '{os.path.basename(path)}' has transformers CLIP keys; pick the original "
                            "OpenCLIP checkpoint (HPS_v2*.pt) or its safetensors conversion instead")
    oc = None
    oc_path = os.path.join(os.path.dirname(os.path.abspath(path)), "open_clip_config.json")
    if os.path.isfile(oc_path):
        oc = read_json_object(oc_path, f"{name} open_clip_config.json", OPEN_CLIP_CONFIG_SOURCE)
    config = hps_config_from_state_dict(sd, oc, oc_path, name)
    sd = openclip_to_hf(sd)
    model = _build_clip(config)
    load_strict(model, sd, what)
    del sd
    tok = _tokenizer_for(path, model, name, tokenizer_dirs, kind=OpenClipTokenizer)
    v = HPSVerifier(model.to(device=device, dtype=dtype), tok, dtype, scale=1.0)
    v.name = name
    return v
