"""Tiny random-weight models built from ComfyUI's own classes (host tier).

Real architectures, real config classes, real ModelPatcher; only the sizes are small.
ComfyUI's ops leave weights uninitialised (torch.empty), so every parameter is filled
from a seeded generator: same seed, same model.
"""

from __future__ import annotations

import math

import torch

from comfy_host import require_comfyui

require_comfyui()

import comfy.model_base  # noqa: E402
import comfy.model_management as mm  # noqa: E402
import comfy.model_patcher  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.sd1_clip  # noqa: E402
import comfy.supported_models  # noqa: E402

CONTEXT = 64  # text width of the tiny CLIP = the U-Nets' context_dim


def init_weights(module: torch.nn.Module, seed: int) -> None:
    """Fill every parameter from a generator seeded with ``seed``, on the device the
    module is on (a model built on a GPU, as ComfyUI builds large models there, is filled
    there: fast; the values then differ from a CPU build's)."""
    first = next(module.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    g = torch.Generator(device=device).manual_seed(seed)

    def randn(shape):
        return torch.randn(shape, generator=g, device=device)

    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 0 or p.numel() == 0:
                continue  # scalars (logit scales) are initialised by their modules
            if p.ndim == 1:
                p.copy_(torch.ones_like(p) if name.endswith("weight") and "norm" in name.lower()
                        else randn(p.shape) * 0.02)
            else:
                fan_in = p[0].numel()
                p.copy_(randn(p.shape) / math.sqrt(fan_in))
        # float buffers a checkpoint would fill (MMDiT's pos_embed is torch.empty): left
        # as they are, they hold whatever memory held -- sometimes NaN
        for name, b in module.named_buffers():
            if b.is_floating_point() and b.numel():
                b.copy_(torch.randn(b.shape, generator=g, device=device).to(b.device) * 0.02)


def _unet_config(kind: str) -> dict:
    base = dict(use_checkpoint=False, image_size=32, out_channels=4, use_spatial_transformer=True,
                legacy=False, in_channels=4, model_channels=32, num_res_blocks=[1, 1, 1],
                channel_mult=[1, 2, 2], context_dim=CONTEXT, use_temporal_attention=False,
                use_temporal_resblock=False)
    if kind in ("sd15", "sd21v"):
        base.update(adm_in_channels=None, transformer_depth=[1, 1, 1], transformer_depth_middle=1,
                    transformer_depth_output=[1, 1, 1, 1, 1, 1], num_heads=2,
                    use_linear_in_transformer=kind == "sd21v")
        if kind == "sd21v":  # SD2.x forces 64-channel heads: widen so every level has one
            base["model_channels"] = 64
    elif kind == "sdxl":
        # pooled width: the tiny CLIP-G's 32 (CONTEXT // 2), + 6 x 256 size embeddings
        base.update(adm_in_channels=CONTEXT // 2 + 6 * 256, num_classes="sequential",
                    transformer_depth=[0, 1, 2], transformer_depth_middle=2,
                    transformer_depth_output=[0, 0, 1, 1, 2, 2], num_head_channels=16,
                    use_linear_in_transformer=True)
    else:
        raise ValueError(kind)
    return base


def tiny_unet(kind: str = "sd15", seed: int = 0):
    """A ModelPatcher around a small SD1.5 / SD2.1-v / SDXL U-Net."""
    cfg_cls = {"sd15": comfy.supported_models.SD15, "sd21v": comfy.supported_models.SD20,
               "sdxl": comfy.supported_models.SDXL}[kind]
    cfg = cfg_cls(_unet_config(kind))
    cfg.set_inference_dtype(torch.float32, None)
    if kind == "sd21v":
        model = comfy.model_base.BaseModel(cfg, model_type=comfy.model_base.ModelType.V_PREDICTION,
                                           device=torch.device("cpu"))
    else:
        model = cfg.get_model({}, "", device=torch.device("cpu"))
    init_weights(model.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


def tiny_clip(seed: int = 0):
    """A CLIP (ComfyUI's CLIP object, real SD1 tokenizer) with a 2-layer, 64-wide text model."""
    config = {"architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 0,
              "dropout": 0.0, "eos_token_id": 49407, "hidden_act": "quick_gelu",
              "hidden_size": CONTEXT, "initializer_factor": 1.0, "initializer_range": 0.02,
              "intermediate_size": 2 * CONTEXT, "layer_norm_eps": 1e-05,
              "max_position_embeddings": 77, "model_type": "clip_text_model",
              "num_attention_heads": 2, "num_hidden_layers": 2, "pad_token_id": 1,
              "projection_dim": CONTEXT, "torch_dtype": "float32", "vocab_size": 49408}

    class Target:
        params = {"clip_model": comfy.sd1_clip.SDClipModel, "textmodel_json_config": config}
        clip = comfy.sd1_clip.SD1ClipModel
        tokenizer = comfy.sd1_clip.SD1Tokenizer

    clip = comfy.sd.CLIP(Target(), model_options={"dtype": torch.float32})
    init_weights(clip.cond_stage_model, seed)
    return clip


def encode(clip, text: str):
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))


# --- DiTs ------------------------------------------------------------------------------

import comfy.text_encoders.flux  # noqa: E402
import comfy.text_encoders.t5  # noqa: E402
import comfy.text_encoders.sd3_clip  # noqa: E402
import comfy.sdxl_clip  # noqa: E402

FLUX_HEADS = 2


def flux1_config(config: dict) -> dict:
    """A FLUX.1 config as this host's model_detection completes it: newer ComfyUI (with
    FLUX.2) added a required FluxParams field ``txt_ids_dims``, [] for FLUX.1."""
    import dataclasses
    import comfy.ldm.flux.model
    fields = {f.name for f in dataclasses.fields(comfy.ldm.flux.model.FluxParams)}
    return dict(config, txt_ids_dims=[]) if "txt_ids_dims" in fields else config


def tiny_flux(seed: int = 0, guidance: bool = True):
    """FLUX (dev-style with guidance, or schnell-style) at hidden 64: 4 double, 1 single block."""
    config = {"image_model": "flux", "in_channels": 16, "out_channels": 16, "patch_size": 2,
              "vec_in_dim": CONTEXT, "context_in_dim": CONTEXT, "hidden_size": 64,
              "mlp_ratio": 2.0, "num_heads": FLUX_HEADS, "depth": 4, "depth_single_blocks": 1,
              "axes_dim": [8, 12, 12], "theta": 10000, "qkv_bias": True,
              "guidance_embed": guidance}
    cls = comfy.supported_models.Flux if guidance else comfy.supported_models.FluxSchnell
    cfg = cls(flux1_config(config))
    cfg.set_inference_dtype(torch.float32, None)
    model = cfg.get_model({}, "", device=torch.device("cpu"))
    init_weights(model.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


T5_CONFIG = {"d_ff": 2 * CONTEXT, "d_kv": 16, "d_model": CONTEXT, "decoder_start_token_id": 0,
             "dropout_rate": 0.0, "eos_token_id": 1, "dense_act_fn": "gelu_pytorch_tanh",
             "initializer_factor": 1.0, "is_encoder_decoder": True, "is_gated_act": True,
             "layer_norm_epsilon": 1e-06, "model_type": "t5", "num_decoder_layers": 1,
             "num_heads": 4, "num_layers": 2, "output_past": True, "pad_token_id": 0,
             "relative_attention_num_buckets": 32, "tie_word_embeddings": False,
             "vocab_size": 32128}


class _TinyFluxTextEncoders(comfy.text_encoders.flux.FluxClipModel):
    """FLUX's text-encoder pair (CLIP-L pooled + T5 sequence), both tiny."""

    def __init__(self, device="cpu", dtype=None, model_options={}):
        torch.nn.Module.__init__(self)
        self.clip_l = comfy.sd1_clip.SDClipModel(
            device=device, dtype=dtype, return_projected_pooled=False,
            textmodel_json_config=_clip_config(), model_options=model_options)
        self.t5xxl = comfy.sd1_clip.SDClipModel(
            device=device, dtype=dtype, textmodel_json_config=dict(T5_CONFIG),
            special_tokens={"end": 1, "pad": 0}, model_class=comfy.text_encoders.t5.T5,
            model_options={**model_options, "model_name": "t5xxl"})
        self.dtypes = {dtype}


def _clip_config(layers: int = 2):
    return {"architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 0,
            "dropout": 0.0, "eos_token_id": 49407, "hidden_act": "quick_gelu",
            "hidden_size": CONTEXT, "initializer_factor": 1.0, "initializer_range": 0.02,
            "intermediate_size": 2 * CONTEXT, "layer_norm_eps": 1e-05,
            "max_position_embeddings": 77, "model_type": "clip_text_model",
            "num_attention_heads": 2, "num_hidden_layers": layers, "pad_token_id": 1,
            "projection_dim": CONTEXT, "torch_dtype": "float32", "vocab_size": 49408}


def tiny_flux_clip(seed: int = 0):
    """ComfyUI's CLIP object with FLUX's real tokenizers (CLIP-L + T5) and tiny encoders."""
    class Target:
        params = {}
        clip = _TinyFluxTextEncoders
        tokenizer = comfy.text_encoders.flux.FluxTokenizer

    clip = comfy.sd.CLIP(Target(), model_options={"dtype": torch.float32})
    init_weights(clip.cond_stage_model, seed)
    return clip


class _TinySD3TextEncoders(comfy.text_encoders.sd3_clip.SD3ClipModel):
    """SD3's CLIP-L + CLIP-G pair (no T5, a configuration SD3 supports), both tiny."""

    def __init__(self, device="cpu", dtype=None, model_options={}):
        torch.nn.Module.__init__(self)
        self.clip_l = comfy.sd1_clip.SDClipModel(
            layer="hidden", layer_idx=-2, device=device, dtype=dtype, layer_norm_hidden_state=False,
            return_projected_pooled=False, textmodel_json_config=_clip_config(3),
            model_options=model_options)
        self.clip_g = comfy.sd1_clip.SDClipModel(
            layer="hidden", layer_idx=-2, device=device, dtype=dtype, layer_norm_hidden_state=False,
            textmodel_json_config=_clip_config(3), return_projected_pooled=True,
            model_options={**model_options, "model_name": "clip_g"})
        self.t5xxl = None
        self.dtypes = {dtype}


class _TinySDXLTextEncoders(comfy.sdxl_clip.SDXLClipModel):
    """SDXL's two text encoders (CLIP-L and CLIP-G, widths concatenated, pooled from G),
    each 32 wide so the concatenation matches the tiny U-Nets' context (64)."""

    def __init__(self, device="cpu", dtype=None, model_options={}):
        torch.nn.Module.__init__(self)
        half = {**_clip_config(3), "hidden_size": CONTEXT // 2, "intermediate_size": CONTEXT,
                "projection_dim": CONTEXT}
        self.clip_l = comfy.sd1_clip.SDClipModel(
            layer="hidden", layer_idx=-2, device=device, dtype=dtype, layer_norm_hidden_state=False,
            textmodel_json_config=dict(half), model_options=model_options)
        self.clip_g = comfy.sd1_clip.SDClipModel(
            layer="hidden", layer_idx=-2, device=device, dtype=dtype, layer_norm_hidden_state=False,
            textmodel_json_config=dict(half), return_projected_pooled=True,
            special_tokens={"start": 49406, "end": 49407, "pad": 0},
            model_options={**model_options, "model_name": "clip_g"})
        self.dtypes = {dtype}


def tiny_sdxl_clip(seed: int = 0):
    """ComfyUI's CLIP with SDXL's real two tokenizers and two tiny text encoders."""
    class Target:
        params = {}
        clip = _TinySDXLTextEncoders
        tokenizer = comfy.sdxl_clip.SDXLTokenizer

    clip = comfy.sd.CLIP(Target(), model_options={"dtype": torch.float32})
    init_weights(clip.cond_stage_model, seed)
    return clip


def tiny_sd3_clip(seed: int = 0):
    class Target:
        params = {}
        clip = _TinySD3TextEncoders
        tokenizer = comfy.text_encoders.sd3_clip.SD3Tokenizer

    clip = comfy.sd.CLIP(Target(), model_options={"dtype": torch.float32})
    init_weights(clip.cond_stage_model, seed)
    return clip


def tiny_sd3(seed: int = 0):
    """MMDiT (SD3 architecture) with depth 2 (hidden 128, 2 heads), pooled width 2 x 64."""
    config = {"in_channels": 16, "out_channels": 16, "patch_size": 2, "depth": 2,
              "input_size": None, "adm_in_channels": 2 * CONTEXT,
              "context_embedder_config": {"target": "torch.nn.Linear",
                                          "params": {"in_features": 4096, "out_features": 128}},
              "num_patches": 64 * 64, "pos_embed_max_size": 64, "pos_embed_scaling_factor": None,
              "x_block_self_attn_layers": [], "qk_norm": None}
    cfg = comfy.supported_models.SD3(config)
    cfg.set_inference_dtype(torch.float32, None)
    model = cfg.get_model({}, "", device=torch.device("cpu"))
    init_weights(model.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


def tiny_vae(latent_channels: int = 4, seed: int = 0):
    """ComfyUI's VAE object around TAESD (the smallest VAE it accepts), random weights."""
    import comfy.taesd.taesd
    g = torch.Generator().manual_seed(seed)
    module = comfy.taesd.taesd.TAESD(latent_channels=latent_channels)
    # comfy's ops leave weights AND biases uninitialised: fill both (scale/shift scalars
    # are real tensors and stay 1.0 / 0.0)
    sd = {k: (torch.randn(v.shape, generator=g) * 0.05 if v.ndim > 1 else
              torch.zeros_like(v) if v.ndim == 1 else v.clone())
          for k, v in module.state_dict().items()}
    return comfy.sd.VAE(sd=sd)
