"""What the benchmark scripts share: the machine line and the real-architecture models.

Model builders import ComfyUI lazily: call them after comfy_host.require_comfyui().
"""

from __future__ import annotations

import platform

# comfy/model_detection.py, unet_config_from_diffusers_unet: SD15 (dtype set when built)
SD15_UNET = {'use_checkpoint': False, 'image_size': 32, 'out_channels': 4,
             'use_spatial_transformer': True, 'legacy': False, 'adm_in_channels': None,
             'in_channels': 4, 'model_channels': 320, 'num_res_blocks': [2, 2, 2, 2],
             'transformer_depth': [1, 1, 1, 1, 1, 1, 0, 0], 'channel_mult': [1, 2, 4, 4],
             'transformer_depth_middle': 1, 'use_linear_in_transformer': False,
             'context_dim': 768, 'num_heads': 8,
             'transformer_depth_output': [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
             'use_temporal_attention': False, 'use_temporal_resblock': False}


def clip_768_config(layers: int = 1) -> dict:
    """A CLIP-L-wide (768) text model with few layers: the real context the U-Net sees."""
    return {"architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 0,
            "dropout": 0.0, "eos_token_id": 49407, "hidden_act": "quick_gelu",
            "hidden_size": 768, "initializer_factor": 1.0, "initializer_range": 0.02,
            "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 77,
            "model_type": "clip_text_model", "num_attention_heads": 12,
            "num_hidden_layers": layers, "pad_token_id": 1, "projection_dim": 768,
            "torch_dtype": "float32", "vocab_size": 49408}


def sd15_unet(seed: int = 0):
    """ModelPatcher of the real SD1.5 U-Net (320 channels), random weights, fp32, CPU."""
    import torch
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models
    from tiny_models import init_weights

    cfg = comfy.supported_models.SD15(dict(SD15_UNET))
    cfg.set_inference_dtype(torch.float32, None)
    model = cfg.get_model({}, "", device=torch.device("cpu"))
    init_weights(model.diffusion_model, seed)  # comfy ops leave weights AND biases empty
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


def clip_768(layers: int = 1, seed: int = 0):
    """ComfyUI's CLIP (real SD1 tokenizer) around a 768-wide text model."""
    import torch
    import comfy.sd
    import comfy.sd1_clip
    from tiny_models import init_weights

    class Target:
        params = {"clip_model": comfy.sd1_clip.SDClipModel,
                  "textmodel_json_config": clip_768_config(layers)}
        clip = comfy.sd1_clip.SD1ClipModel
        tokenizer = comfy.sd1_clip.SD1Tokenizer

    clip = comfy.sd.CLIP(Target(), model_options={"dtype": torch.float32})
    init_weights(clip.cond_stage_model, seed)
    return clip


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
