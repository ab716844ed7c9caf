"""Tiny random-weight models of every image backbone ComfyUI v0.3.64 runs (host tier).

Each is built with ComfyUI's own config class (comfy.supported_models) and model class,
the config keys comfy/model_detection.py would read back from a real checkpoint, only
small: a few blocks, a few heads, narrow widths. Conditionings are hand-made tensors of
the width each model reads, with the options its model class needs (pooled output,
Llama hidden states, ...); tests that need a text encoder build it in tiny_text.py.

``FAMILIES[name]`` is a :class:`TinyFamily`; ``build()`` is cached per family.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch

from comfy_host import require_comfyui

require_comfyui()

import comfy.model_management as mm  # noqa: E402
import comfy.model_patcher  # noqa: E402
import comfy.supported_models as sm  # noqa: E402

from tiny_models import CONTEXT, init_weights, tiny_flux, tiny_sd3, tiny_unet  # noqa: E402


def _patcher(cfg_cls, config: dict, seed: int = 0):
    cfg = cfg_cls(config)
    cfg.set_inference_dtype(torch.float32, None)
    model = cfg.get_model({}, "", device=torch.device("cpu"))
    init_weights(model.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


@dataclass
class TinyFamily:
    """A tiny model of one family and how to condition it.

    ``channels``/``frames``: the latent (``frames`` 1: a 5-D ``(B, C, 1, H, W)`` latent,
    what ComfyUI hands Qwen-Image and Cosmos Predict2). ``text_width``: the conditioning's
    width; ``options(n_tokens, gen)``: the conditioning options the model needs besides the
    text tensor. ``refs``: reference-latent sizes (latent pixels) for the edit families.
    ``patch``/``latent_scale``/``order``: the facts this test checks the layout against,
    written here from the model code (not read from lotts/layouts.py).
    """
    name: str
    build: Callable
    channels: int
    text_width: int
    order: tuple[str, ...]
    patch: int = 2
    latent_scale: int = 8
    frames: int | None = None
    options: Callable = lambda n, g: {}
    refs: tuple[tuple[int, int], ...] = ()
    registers: int = 0
    pad_multiple: int = 0         # the model pads text and image token runs to a multiple of it
    text_pad: tuple = ()          # (side, length): the model pads the text tokens it is given
    needs: str | None = None      # the comfy.supported_models class a newer ComfyUI added
    blocks: tuple[str, ...] = ()  # module lists whose blocks make the joint / self+cross calls
    read: str | None = None       # the list whose second half the localizer reads
    even_only: bool = False       # the model itself refuses odd latent sides

    def size(self, h: int, w: int) -> tuple[int, int]:
        """A latent size given in 8x-VAE latent pixels, in this family's latent pixels (a
        pixel-space model's latent is the image: 8x as many)."""
        f = max(1, 8 // self.latent_scale)
        return h * f, w * f

    def latent(self, h: int, w: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
        """A random latent of ``h`` x ``w`` of this family's own latent pixels."""
        g = torch.Generator().manual_seed(seed)
        shape = (batch, self.channels) + ((self.frames,) if self.frames else ()) + (h, w)
        return torch.randn(shape, generator=g)

    def cond(self, n_tokens: int = 7, seed: int = 0) -> list:
        """A CONDITIONING with ``n_tokens`` text tokens (random embeddings)."""
        g = torch.Generator().manual_seed(1000 + seed)
        opts = dict(self.options(n_tokens, g))
        if self.refs:
            opts["reference_latents"] = [self.latent(*self.size(h, w), seed=77 + i)
                                         for i, (h, w) in enumerate(self.refs)]
        return [[torch.randn(1, n_tokens, self.text_width, generator=g), opts]]


def missing(name: str) -> str | None:
    """Why family ``name`` cannot be built on this ComfyUI (its class is newer), or None."""
    fam = FAMILIES.get(name)
    need = fam.needs if fam is not None else None
    if need and not hasattr(sm, need):
        return (f"this ComfyUI has no comfy.supported_models.{need} (a family a newer "
                f"ComfyUI added; tested on the 0.10 fork)")
    return None


def require(name: str) -> None:
    """Skip the calling test (one line) where this ComfyUI lacks family ``name``'s class."""
    import pytest
    why = missing(name)
    if why:
        pytest.skip(why)


def _pooled(width):
    return lambda n, g: {"pooled_output": torch.randn(1, width, generator=g)}


# Fields newer ComfyUI added to these models' parameter dataclasses, with the values its
# model_detection gives a checkpoint without them (the 0.10 fork: FLUX.2, HunyuanImage 2.1
# with vision input, Chroma Radiance's x0 prediction); set only where the host has them.
NEWER_FIELDS = {"txt_ids_dims": [], "vec_in_dim": None, "use_x0": False,
                "use_cond_type_embedding": False, "vision_in_dim": None, "meanflow_sum": False}


def host_config(params_class, config: dict) -> dict:
    """``config`` completed with the NEWER_FIELDS this host's ``params_class`` declares."""
    import dataclasses
    names = {f.name for f in dataclasses.fields(params_class)}
    return {**{k: v for k, v in NEWER_FIELDS.items() if k in names and k not in config}, **config}


def _no_pooled(n, g):  # T5-only encoders (Chroma): ComfyUI's CLIP Text Encode sets None
    return {"pooled_output": None}


def _llm_mask(n, g):  # Gemma / Qwen2.5 encoders return their attention mask (all ones)
    return {"attention_mask": torch.ones(1, n, dtype=torch.long)}


def _unet(kind):
    return lambda: tiny_unet(kind)


def _chroma(radiance=False):
    config = {"image_model": "chroma_radiance" if radiance else "chroma", "in_channels": 64,
              "out_channels": 64, "patch_size": 2, "context_in_dim": CONTEXT, "hidden_size": 64,
              "mlp_ratio": 2.0, "num_heads": 2, "depth": 2, "depth_single_blocks": 1,
              "axes_dim": [8, 12, 12], "theta": 10000, "qkv_bias": True, "in_dim": 64,
              "out_dim": 64, "hidden_dim": 64, "n_layers": 1}
    if radiance:
        config.update(in_channels=3, out_channels=3, patch_size=16, nerf_hidden_size=16,
                      nerf_mlp_ratio=2, nerf_depth=1, nerf_max_freqs=4, nerf_tile_size=0,
                      nerf_final_head_type="linear", nerf_embedder_dtype=torch.float32)
        import comfy.ldm.chroma_radiance.model as params
        config = host_config(params.ChromaRadianceParams, config)
    else:
        import comfy.ldm.chroma.model as params
        config = host_config(params.ChromaParams, config)
    return _patcher(sm.ChromaRadiance if radiance else sm.Chroma, config)


def _qwen():
    return _patcher(sm.QwenImage, {"image_model": "qwen_image", "in_channels": 64,
                                   "out_channels": 16, "num_layers": 4, "attention_head_dim": 32,
                                   "num_attention_heads": 2, "joint_attention_dim": CONTEXT,
                                   "axes_dims_rope": (8, 12, 12)})


def _lumina():
    return _patcher(sm.Lumina2, {"image_model": "lumina2", "patch_size": 2, "in_channels": 16,
                                 "dim": 64, "cap_feat_dim": CONTEXT, "n_layers": 4,
                                 "n_refiner_layers": 1, "n_heads": 4, "n_kv_heads": 2,
                                 "qk_norm": True, "axes_dims": [4, 6, 6],
                                 "axes_lens": [300, 512, 512], "multiple_of": 16})


def _hunyuan_image():
    import comfy.ldm.hunyuan_video.model as params
    return _patcher(sm.HunyuanImage21, host_config(params.HunyuanVideoParams, {
                                        "image_model": "hunyuan_video", "in_channels": 64,
                                        "out_channels": 64, "patch_size": [1, 1],
                                        "vec_in_dim": None, "context_in_dim": CONTEXT,
                                        "hidden_size": 64, "mlp_ratio": 2.0, "num_heads": 2,
                                        "depth": 2, "depth_single_blocks": 1,
                                        "axes_dim": [16, 16], "theta": 256, "qkv_bias": True,
                                        "guidance_embed": False, "byt5": True,
                                        "meanflow": False}))


def _cosmos():
    return _patcher(sm.CosmosT2IPredict2, {
        "image_model": "cosmos_predict2", "max_img_h": 240, "max_img_w": 240,
        "max_frames": 128, "in_channels": 16, "out_channels": 16, "patch_spatial": 2,
        "patch_temporal": 1, "model_channels": 64, "concat_padding_mask": True,
        "crossattn_emb_channels": CONTEXT, "pos_emb_cls": "rope3d", "pos_emb_learnable": True,
        "pos_emb_interpolation": "crop", "min_fps": 1, "max_fps": 30, "use_adaln_lora": True,
        "adaln_lora_dim": 16, "num_blocks": 4, "num_heads": 2,
        "extra_per_block_abs_pos_emb": False, "rope_h_extrapolation_ratio": 4.0,
        "rope_w_extrapolation_ratio": 4.0, "rope_t_extrapolation_ratio": 1.0,
        "extra_h_extrapolation_ratio": 1.0, "extra_w_extrapolation_ratio": 1.0,
        "extra_t_extrapolation_ratio": 1.0, "rope_enable_fps_modulation": False})


def _aura():
    return _patcher(sm.AuraFlow, {"max_seq": 16 * 16, "cond_seq_dim": CONTEXT,
                                  "n_double_layers": 2, "n_layers": 3, "dim": 64, "n_heads": 2,
                                  "global_conddim": 64})


def _omnigen():
    return _patcher(sm.Omnigen2, {"image_model": "omnigen2", "axes_dim_rope": [4, 6, 6],
                                  "axes_lens": [1024, 1664, 1664], "ffn_dim_multiplier": None,
                                  "hidden_size": 64, "in_channels": 16, "multiple_of": 16,
                                  "norm_eps": 1e-05, "num_attention_heads": 4, "num_kv_heads": 2,
                                  "num_layers": 4, "num_refiner_layers": 1, "out_channels": None,
                                  "patch_size": 2, "text_feat_dim": CONTEXT,
                                  "timestep_scale": 1000.0})


HIDREAM_LLAMA_LAYERS = [0, 1, 1, 1, 1, 1]  # one per block (2 double + 3 single) + one


def _hidream():
    return _patcher(sm.HiDream, {"image_model": "hidream", "attention_head_dim": 32,
                                 "axes_dims_rope": [16, 8, 8], "caption_channels": [CONTEXT, CONTEXT],
                                 "max_resolution": [64, 64], "in_channels": 16,
                                 "llama_layers": HIDREAM_LLAMA_LAYERS, "num_attention_heads": 2,
                                 "num_routed_experts": 2, "num_activated_experts": 1,
                                 "num_layers": 2, "num_single_layers": 3, "out_channels": 16,
                                 "patch_size": 2, "text_emb_dim": CONTEXT})


def _hidream_options(n, g):
    # Llama hidden states of every layer the model reads: (B, layers, tokens, width)
    return {"pooled_output": torch.randn(1, CONTEXT, generator=g),
            "conditioning_llama3": torch.randn(1, 2, HIDREAM_LLAMA_TOKENS, CONTEXT, generator=g)}


# --- families of newer ComfyUI (late 2025 on; tested on the 0.10 fork) -----------------------------

def _zimage():  # Z-Image (Turbo): a Lumina 2 model class with Z-Image's NextDiT facts
    # (width 256: its modulation reads a timestep embedding of min(width, 256))
    return _patcher(sm.ZImage, {"image_model": "lumina2", "patch_size": 2, "in_channels": 16,
                                "dim": 256, "cap_feat_dim": CONTEXT, "n_layers": 4,
                                "n_refiner_layers": 1, "n_heads": 8, "n_kv_heads": 8,
                                "qk_norm": True, "axes_dims": [8, 12, 12],
                                "axes_lens": [1536, 512, 512], "rope_theta": 256.0,
                                "ffn_dim_multiplier": 8.0 / 3.0, "z_image_modulation": True,
                                "time_scale": 1000.0, "pad_tokens_multiple": 32,
                                "multiple_of": 16})


FLUX2_CONTEXT = 3 * CONTEXT  # FLUX.2's encoders stack three hidden layers of the LLM


def _flux2():  # model_detection's FLUX.2 facts (patch 1, 4 RoPE axes, global modulation)
    return _patcher(sm.Flux2, {"image_model": "flux2", "in_channels": 128, "out_channels": 128,
                               "patch_size": 1, "vec_in_dim": None,
                               "context_in_dim": FLUX2_CONTEXT, "hidden_size": 64,
                               "mlp_ratio": 3.0, "num_heads": 2, "depth": 4,
                               "depth_single_blocks": 1, "axes_dim": [8, 8, 8, 8],
                               "theta": 2000, "qkv_bias": False, "guidance_embed": True,
                               "txt_ids_dims": [3], "global_modulation": True,
                               "mlp_silu_act": True, "ops_bias": False,
                               "default_ref_method": "index", "ref_index_scale": 10.0})


def _kandinsky5():
    return _patcher(sm.Kandinsky5Image, {"image_model": "kandinsky5", "in_visual_dim": 16,
                                         "out_visual_dim": 16, "in_text_dim": CONTEXT,
                                         "in_text_dim2": CONTEXT, "time_dim": 32,
                                         "model_dim": 64, "ff_dim": 128, "visual_embed_dim": 64,
                                         "patch_size": (1, 2, 2), "num_text_blocks": 1,
                                         "num_visual_blocks": 4, "axes_dims": (8, 12, 12),
                                         "rope_scale_factor": (1.0, 1.0, 1.0)})


ANIMA_CONTEXT = 1024  # the LLM adapter's fixed width (comfy/ldm/anima/model.py)


def _anima():  # Cosmos Predict2's network with Anima's LLM adapter (its widths are fixed)
    return _patcher(sm.Anima, {
        "image_model": "anima", "max_img_h": 240, "max_img_w": 240,
        "max_frames": 128, "in_channels": 16, "out_channels": 16, "patch_spatial": 2,
        "patch_temporal": 1, "model_channels": 64, "concat_padding_mask": True,
        "crossattn_emb_channels": ANIMA_CONTEXT, "pos_emb_cls": "rope3d",
        "pos_emb_learnable": True, "pos_emb_interpolation": "crop", "min_fps": 1,
        "max_fps": 30, "use_adaln_lora": True, "adaln_lora_dim": 16, "num_blocks": 4,
        "num_heads": 2, "extra_per_block_abs_pos_emb": False,
        "rope_h_extrapolation_ratio": 4.0, "rope_w_extrapolation_ratio": 4.0,
        "rope_t_extrapolation_ratio": 1.0, "extra_h_extrapolation_ratio": 1.0,
        "extra_w_extrapolation_ratio": 1.0, "extra_t_extrapolation_ratio": 1.0,
        "rope_enable_fps_modulation": False})


def _anima_t5_ids(n, g):
    return {"t5xxl_ids": torch.randint(0, 32128, (n,), generator=g, dtype=torch.int),
            "t5xxl_weights": torch.ones(n)}


def _pixart():
    return _patcher(sm.PixArtSigma, {"image_model": "pixart_sigma", "num_heads": 2,
                                     "patch_size": 2, "hidden_size": 64, "in_channels": 4,
                                     "depth": 2, "model_max_length": 300,
                                     "micro_condition": False, "input_size": 128,
                                     "pe_interpolation": 2})


FLUX_BLOCKS = ("double_blocks", "single_blocks")
HIDREAM_LLAMA_TOKENS = 5
UNETS = ("sd15", "sd21v", "sdxl")

FAMILIES: dict[str, TinyFamily] = {f.name: f for f in (
    TinyFamily("sd15", _unet("sd15"), 4, CONTEXT, ()),
    TinyFamily("sd21v", _unet("sd21v"), 4, CONTEXT, ()),
    TinyFamily("sdxl", _unet("sdxl"), 4, CONTEXT, (),
               options=lambda n, g: {"pooled_output": torch.randn(1, CONTEXT // 2, generator=g)}),
    TinyFamily("sd3", tiny_sd3, 16, 4096, ("txt", "img"), options=_pooled(2 * CONTEXT),
               blocks=("joint_blocks",), read="joint_blocks"),
    TinyFamily("flux", tiny_flux, 16, CONTEXT, ("txt", "img"), options=_pooled(CONTEXT),
               blocks=FLUX_BLOCKS, read="double_blocks"),
    TinyFamily("flux_kontext", tiny_flux, 16, CONTEXT, ("txt", "img", "ref"),
               options=_pooled(CONTEXT), refs=((10, 12),), blocks=FLUX_BLOCKS,
               read="double_blocks"),
    TinyFamily("chroma", lambda: _chroma(False), 16, CONTEXT, ("txt", "img"), options=_no_pooled,
               blocks=FLUX_BLOCKS, read="double_blocks"),
    TinyFamily("chroma_radiance", lambda: _chroma(True), 3, CONTEXT, ("txt", "img"), patch=16,
               latent_scale=1, options=_no_pooled, blocks=FLUX_BLOCKS, read="double_blocks"),
    TinyFamily("qwen_image", _qwen, 16, CONTEXT, ("txt", "img"), frames=1,
               blocks=("transformer_blocks",), read="transformer_blocks"),
    TinyFamily("qwen_image_edit", _qwen, 16, CONTEXT, ("txt", "img", "ref"), frames=1,
               refs=((9, 13), (6, 6)), blocks=("transformer_blocks",), read="transformer_blocks"),
    TinyFamily("lumina2", _lumina, 16, CONTEXT, ("txt", "img"), options=_llm_mask,
               blocks=("layers",), read="layers"),
    TinyFamily("hunyuan_image", _hunyuan_image, 64, CONTEXT, ("img", "txt"), patch=1,
               latent_scale=32, blocks=FLUX_BLOCKS, read="double_blocks"),
    TinyFamily("cosmos_predict2", _cosmos, 16, CONTEXT, (), frames=1, even_only=True,
               blocks=("blocks",), read="blocks"),
    TinyFamily("auraflow", _aura, 4, CONTEXT, ("reg", "txt", "img"), registers=8,
               blocks=("double_layers", "single_layers"), read="double_layers"),
    TinyFamily("omnigen2", _omnigen, 16, CONTEXT, ("txt", "ref", "img"), refs=((8, 10),),
               options=_llm_mask, blocks=("layers",), read="layers"),
    TinyFamily("hidream", _hidream, 16, CONTEXT, ("img", "t5", "llama", "llama_k"),
               options=_hidream_options, blocks=("double_stream_blocks", "single_stream_blocks"),
               read="double_stream_blocks"),
    TinyFamily("zimage", _zimage, 16, CONTEXT, ("txt", "txt_pad", "img", "img_pad"),
               pad_multiple=32, options=_llm_mask, blocks=("layers",), read="layers",
               needs="ZImage"),
    TinyFamily("flux2", _flux2, 128, FLUX2_CONTEXT, ("txt", "img"), patch=1, latent_scale=16,
               text_pad=("head", 512), options=_no_pooled, blocks=FLUX_BLOCKS,
               read="double_blocks", needs="Flux2"),
    TinyFamily("flux2_edit", _flux2, 128, FLUX2_CONTEXT, ("txt", "img", "ref"), patch=1,
               latent_scale=16, text_pad=("head", 512), refs=((5, 7), (4, 4)),
               options=_no_pooled, blocks=FLUX_BLOCKS, read="double_blocks", needs="Flux2"),
    TinyFamily("kandinsky5_image", _kandinsky5, 16, CONTEXT, (), options=_pooled(CONTEXT),
               even_only=True,
               blocks=("visual_transformer_blocks",), read="visual_transformer_blocks",
               needs="Kandinsky5Image"),
    TinyFamily("anima", _anima, 16, ANIMA_CONTEXT, (), frames=1, even_only=True,
               blocks=("blocks",), read="blocks", needs="Anima"),
    # with T5 token ids, as Anima's text encoder makes them: the model's LLM adapter turns
    # the text into one embedding per T5 token, then pads it at the tail to 512
    TinyFamily("anima_t5", _anima, 16, ANIMA_CONTEXT, (), frames=1, even_only=True,
               options=_anima_t5_ids, text_pad=("tail", 512), blocks=("blocks",),
               read="blocks", needs="Anima"),
)}

def _hunyuan_video():  # a video model: no layout (the localizer names it and refuses)
    import comfy.ldm.hunyuan_video.model as params
    return _patcher(sm.HunyuanVideo, host_config(params.HunyuanVideoParams, {
                                      "image_model": "hunyuan_video", "in_channels": 16,
                                      "out_channels": 16, "patch_size": [1, 2, 2],
                                      "vec_in_dim": CONTEXT, "context_in_dim": CONTEXT,
                                      "hidden_size": 64, "mlp_ratio": 2.0, "num_heads": 2,
                                      "depth": 1, "depth_single_blocks": 1,
                                      "axes_dim": [8, 12, 12], "theta": 256, "qkv_bias": True,
                                      "guidance_embed": True, "byt5": False,
                                      "meanflow": False}))


REFUSED = {"pixart": _pixart, "hunyuan_video": _hunyuan_video}


@functools.lru_cache(maxsize=None)
def model(name: str):
    """The tiny model of family ``name`` (built once)."""
    if name in REFUSED:
        return REFUSED[name]()
    require(name)
    return FAMILIES[name].build()
