"""Tiny text encoders of every family whose tokenizer ships with ComfyUI (host tier).

ComfyUI's own CLIP object, tokenizer classes and text-encoder classes, shrunk through
ComfyUI's own config override (``model_options["<encoder>_model_config"]``, read by
comfy/sd1_clip.py): the tokenizers, chat templates and template cuts are the real ones.
Output width ``CONTEXT`` (64) matches the tiny models of tiny_backbones.py.

Where a tokenizer does not ship:
* Gemma 2 (Lumina 2) reads its SentencePiece model from the checkpoint
  (``tokenizer_data["spiece_model"]``): a tiny one is trained here with sentencepiece, with
  Gemma's special ids (pad 0, eos 1, bos 2) -- ComfyUI's Gemma tokenizer class runs on it;
* Llama 3.1 (HiDream) needs ``llama_tokenizer/tokenizer.json``, absent from this ComfyUI
  snapshot (HOST.md): no HiDream text encoder can be built here.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
from unittest import mock

import torch

from comfy_host import require_comfyui

require_comfyui()

import comfy.sd  # noqa: E402
import comfy.sd1_clip  # noqa: E402
import comfy.text_encoders.t5  # noqa: E402
import comfy.text_encoders.aura_t5 as aura_t5  # noqa: E402
import comfy.text_encoders.cosmos as cosmos  # noqa: E402
import comfy.text_encoders.hunyuan_image as hunyuan_image  # noqa: E402
import comfy.text_encoders.llama as llama  # noqa: E402
import comfy.text_encoders.lumina2 as lumina2  # noqa: E402
import comfy.text_encoders.omnigen2 as omnigen2  # noqa: E402
import comfy.text_encoders.pixart_t5 as pixart_t5  # noqa: E402
import comfy.text_encoders.qwen_image as qwen_image  # noqa: E402

from tiny_models import CONTEXT, init_weights, tiny_clip, tiny_flux_clip, tiny_sd3_clip  # noqa: E402
from tiny_models import T5_CONFIG, tiny_sdxl_clip  # noqa: E402

T5 = {"d_model": CONTEXT, "d_ff": 2 * CONTEXT, "d_kv": 16, "num_heads": 4, "num_layers": 2,
      "num_decoder_layers": 1}
# 4 layers: the encoders read the second- or third-to-last layer
LLM = {"hidden_size": CONTEXT, "intermediate_size": 2 * CONTEXT, "num_hidden_layers": 4,
       "num_attention_heads": 2, "num_key_value_heads": 1}


class TinyQwen25VL(llama.Qwen25_7BVLI):
    """Qwen2.5-VL's language model without its 0.6 B-parameter vision tower (these tests
    give it no image)."""

    def __init__(self, config_dict, dtype, device, operations):
        torch.nn.Module.__init__(self)
        config = llama.Qwen25_7BVLI_Config(**config_dict)
        self.num_layers = config.num_hidden_layers
        self.model = llama.Llama2_(config, device=device, dtype=dtype, ops=operations)
        self.visual = None
        self.dtype = dtype


def newer(module: str):
    """comfy.text_encoders.<module>, or None on a ComfyUI that predates it."""
    try:
        return importlib.import_module(f"comfy.text_encoders.{module}")
    except ImportError:
        return None


def _clip(te_class, tokenizer_class, model_options: dict, tokenizer_data=None, seed=0):
    class Target:
        params = {}
        clip = te_class
        tokenizer = tokenizer_class

    # every module that binds Qwen2.5-VL's class by name (newer ComfyUI imports it into
    # qwen_image and kandinsky5) builds the tiny one
    binds = [m for m in (llama, qwen_image, newer("kandinsky5"))
             if m is not None and hasattr(m, "Qwen25_7BVLI")]
    with contextlib.ExitStack() as stack:
        for m in binds:
            stack.enter_context(mock.patch.object(m, "Qwen25_7BVLI", TinyQwen25VL))
        clip = comfy.sd.CLIP(Target(), tokenizer_data=tokenizer_data or {},
                             model_options={"dtype": torch.float32, **model_options})
    init_weights(clip.cond_stage_model, seed)
    return clip


SPIECE_CORPUS = ("a photo of a cat on a chair", "A high-quality image of a red dog",
                 "A low-quality image of the sky", "blurry ugly bad good very", "cat chair dog")


@functools.lru_cache(maxsize=1)
def tiny_spiece_model() -> bytes:
    """A SentencePiece model trained on a few phrases, with Gemma's special ids."""
    import sentencepiece
    out = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(SPIECE_CORPUS * 20), model_writer=out, vocab_size=400,
        model_type="bpe", byte_fallback=True, pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        character_coverage=1.0, minloglevel=2)
    return out.getvalue()


def _chroma():
    return _clip(pixart_t5.pixart_te(), pixart_t5.PixArtTokenizer, {"t5xxl_model_config": T5})


def _qwen_image():
    return _clip(qwen_image.te(), qwen_image.QwenImageTokenizer,
                 {"qwen25_7b_model_config": {**LLM, "vocab_size": 152064}})


def _hunyuan_image():
    # the ByT5 encoder keeps its width (1472): the model's glyph mapper reads it
    return _clip(hunyuan_image.te(), hunyuan_image.HunyuanImageTokenizer,
                 {"qwen25_7b_model_config": {**LLM, "vocab_size": 152064},
                  "_model_config": {"num_layers": 1, "num_decoder_layers": 1, "d_ff": 64,
                                    "num_heads": 2}})


def _lumina():
    return _clip(lumina2.LuminaModel, lumina2.LuminaTokenizer,
                 {"gemma2_2b_model_config": {**LLM, "vocab_size": 400}},
                 tokenizer_data={"spiece_model": tiny_spiece_model()})


def _cosmos():
    return _clip(cosmos.te(), cosmos.CosmosT5Tokenizer, {"t5xxl_model_config": T5})


class TinyPileT5(aura_t5.PT5XlModel):
    """AuraFlow's Pile-T5 encoder, tiny: ComfyUI's own class's arguments with a small
    config (the 0.10 fork's class drops ``model_options``, so the config override that
    shrinks the other encoders cannot reach it)."""

    def __init__(self, device="cpu", layer="last", layer_idx=None, dtype=None, model_options={},
                 **kw):
        comfy.sd1_clip.SDClipModel.__init__(
            self, device=device, layer=layer, layer_idx=layer_idx,
            textmodel_json_config=dict(T5_CONFIG),
            dtype=dtype, special_tokens={"end": 2, "pad": 1},
            model_class=comfy.text_encoders.t5.T5, enable_attention_masks=True,
            zero_out_masked=True, model_options=model_options)


def _aura():
    return _clip(aura_t5.AuraT5Model, aura_t5.AuraT5Tokenizer, {"pile_t5xl_class": TinyPileT5})


def _omnigen():
    return _clip(omnigen2.te(), omnigen2.Omnigen2Tokenizer,
                 {"qwen25_3b_model_config": {**LLM, "vocab_size": 151936}})


# Qwen3's head width is a class constant (128) no config can shrink; the rest is tiny
QWEN3 = {**LLM, "vocab_size": 151936}


def _zimage():  # Qwen3-4B with Z-Image's chat template (its tokenizer ships with ComfyUI)
    z_image = newer("z_image")
    return _clip(z_image.te(), z_image.ZImageTokenizer, {"qwen3_4b_model_config": QWEN3})


def _flux2_klein():
    # FLUX.2 Klein's Qwen3-4B reads hidden layers 9, 18 and 27: 28 tiny layers. (FLUX.2
    # dev's Mistral-3 tokenizer comes inside its checkpoint, tokenizer_data["tekken_model"]:
    # none ships with ComfyUI, so dev's capture is tested on hand-made conditionings.)
    flux = newer("flux")
    return _clip(flux.klein_te(model_type="qwen3_4b"), flux.KleinTokenizer,
                 {"qwen3_4b_model_config": {**QWEN3, "num_hidden_layers": 28}})


def _kandinsky5():  # Qwen2.5-VL (its language model) + a tiny CLIP-L for the pooled vector
    k5 = newer("kandinsky5")
    return _clip(k5.te(), k5.Kandinsky5TokenizerImage,
                 {"qwen25_7b_model_config": {**LLM, "vocab_size": 152064},
                  "clip_l_model_config": {"hidden_size": CONTEXT, "intermediate_size": 2 * CONTEXT,
                                          "num_hidden_layers": 2, "num_attention_heads": 2,
                                          "projection_dim": CONTEXT}})


def _anima():
    # Qwen3-0.6B at its own width (1024): the model's LLM adapter reads that width
    anima = newer("anima")
    return _clip(anima.te(), anima.AnimaTokenizer,
                 {"qwen3_06b_model_config": {**QWEN3, "hidden_size": 1024,
                                             "intermediate_size": 128, "num_hidden_layers": 1,
                                             "num_attention_heads": 1, "num_key_value_heads": 1}})


BUILDERS = {
    "sd15": tiny_clip, "sd21v": tiny_clip, "sdxl": tiny_sdxl_clip, "sd3": tiny_sd3_clip, "flux": tiny_flux_clip,
    "flux_kontext": tiny_flux_clip, "chroma": _chroma, "chroma_radiance": _chroma,
    "qwen_image": _qwen_image, "qwen_image_edit": _qwen_image, "lumina2": _lumina,
    "hunyuan_image": _hunyuan_image, "cosmos_predict2": _cosmos, "auraflow": _aura,
    "omnigen2": _omnigen, "zimage": _zimage, "flux2": _flux2_klein, "flux2_edit": _flux2_klein,
    "kandinsky5_image": _kandinsky5, "anima": _anima,
}
NO_TOKENIZER = {"hidream": "Llama 3.1's tokenizer.json is not in this ComfyUI snapshot "
                           "(comfy/text_encoders/llama_tokenizer/), so no HiDream text encoder "
                           "can be built; its capture is tested with hand-made conditionings"}


@functools.lru_cache(maxsize=None)
def text_encoder(family: str):
    """ComfyUI's CLIP object for ``family`` with a tiny encoder (built once)."""
    return BUILDERS[family]()
