"""The smallest checkpoints ComfyUI's ``CheckpointLoaderSimple`` accepts, random weights.

Built from ComfyUI's own classes (run this with ComfyUI's python), saved as safetensors
under the real key names of a single-file checkpoint. One builder per model family:

``sd15`` (~180 MB), detected as ``supported_models.SD15``:

* ``model.diffusion_model.*``   U-Net: model_channels=320, context_dim=768, conv proj_in,
                                one level, one resblock, 1 transformer block; fp16.
* ``cond_stage_model.transformer.text_model.*``  the full CLIP-L text model in HF layout
                                (its size is fixed by ComfyUI's config).
* ``first_stage_model.taesd_*`` TAESD (4 latent channels), the smallest VAE ComfyUI
                                detects; fp16.

``sd3`` (~1 GB), detected as ``supported_models.SD3`` (the class SD3 and SD3.5 share):

* ``model.diffusion_model.*``   MMDiT, depth 3 (hidden 192, 3 heads of 64: ComfyUI derives
                                both from the depth), 16 latent channels, patch 2, RMS
                                q/k norm (SD3.5 Large) and one image-only attention in
                                block 1 (SD3.5 Medium's ``x_block_self_attn``); fp16.
* ``text_encoders.clip_l.*`` / ``text_encoders.clip_g.*``  the full CLIP-L and CLIP-G
                                (OpenCLIP bigG) text models ComfyUI hard-codes for SD3;
                                no T5 (SD3 runs without it: 77 CLIP tokens).
* ``first_stage_model.taesd_*`` TAESD with 16 latent channels (TAESD3's layout); fp16.

Text encoders: 2-D weights in float8_e4m3fn (half the size; ComfyUI upcasts them on
load), the rest fp16. Never commit a result. Tests build each once and cache it under
``~/.cache/lotts-tests/<version>/``:

    python tests/e2e/tiny_checkpoint.py [--family sd15|sd3] [--out PATH] [--seed N] [--verify]
    python tests/e2e/tiny_checkpoint.py --family sd3 --cached   # print the cache path, build if absent

``COMFYUI_PATH`` (or the ComfyUI this repo sits in) must be importable; this module puts
it on ``sys.path`` itself.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable

SD15_UNET_CONFIG = {  # what comfy.model_detection.detect_unet_config reads back from the keys
    "use_checkpoint": False,
    "image_size": 32,
    "use_spatial_transformer": True,
    "legacy": False,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [1],
    "channel_mult": [1],
    "transformer_depth": [1],
    "transformer_depth_output": [1, 1],
    "transformer_depth_middle": 1,
    "use_linear_in_transformer": False,
    "context_dim": 768,
    "adm_in_channels": None,
    "use_temporal_attention": False,
    "use_temporal_resblock": False,
}

SD3_DEPTH = 3
SD3_POS_EMBED_MAX = 32  # token grid up to 32x32: images up to 512 px
SD3_UNET_CONFIG = {  # ditto; hidden size = 64 * depth, heads = depth (ComfyUI's rule)
    "in_channels": 16,
    "out_channels": 16,
    "patch_size": 2,
    "depth": SD3_DEPTH,
    "input_size": None,
    "adm_in_channels": 768 + 1280,  # pooled CLIP-L + CLIP-G
    "context_embedder_config": {"target": "torch.nn.Linear",
                                "params": {"in_features": 4096, "out_features": 64 * SD3_DEPTH}},
    "num_patches": SD3_POS_EMBED_MAX ** 2,
    "pos_embed_max_size": SD3_POS_EMBED_MAX,
    "pos_embed_scaling_factor": None,
    "qk_norm": "rms",
    "x_block_self_attn_layers": [1],
}


def cache_dir() -> str:
    base = os.environ.get("LOTTS_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lotts-tests")
    return base


def _setup_comfy_path() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    tests_dir = os.path.dirname(here)
    if tests_dir not in sys.path:
        sys.path.append(tests_dir)
    import comfy_host  # noqa: E402  (tests/comfy_host.py)
    path = comfy_host.find_comfyui()
    if path is None:
        raise SystemExit("ComfyUI not found: set COMFYUI_PATH=<ComfyUI checkout>")
    if path not in sys.path:
        sys.path.insert(0, path)
    from comfy.cli_args import args
    args.cpu = True  # before comfy.model_management: no CUDA probing


# Layers the original models zero-initialise (residual outputs): kept small here so the
# residual stream stays O(1) and the denoiser's prediction has roughly unit variance.
_RESIDUAL_OUT = ("out_layers.3", "proj_out", "out.2", "attn1.to_out.0", "attn2.to_out.0",
                 "ff.net.2")
# MMDiT's: attention and MLP outputs, and the adaLN modulations (their gates)
_MMDIT_RESIDUAL_OUT = ("attn.proj", "attn2.proj", "mlp.fc2", "adaLN_modulation.1")


def _is_norm(module) -> bool:
    import torch
    return isinstance(module, (torch.nn.LayerNorm, torch.nn.GroupNorm)) or \
        type(module).__name__.endswith("Norm")  # RMSNorm (MMDiT's q/k norm), T5LayerNorm


def _init_module_weights(module, gen, residual_out=_RESIDUAL_OUT) -> None:
    """Fill every parameter (comfy ops leave them EMPTY): norms 1/0, the rest small normal."""
    import torch
    with torch.no_grad():
        for mod_name, mod in module.named_modules():
            own = dict(mod.named_parameters(recurse=False))
            is_norm = _is_norm(mod)
            for name, p in own.items():
                if is_norm:
                    p.fill_(1.0 if name == "weight" else 0.0)
                elif name == "bias":
                    p.zero_()
                elif p.dim() >= 2:
                    if isinstance(mod, torch.nn.Embedding):
                        std = 0.02
                    else:
                        fan_in = p[0].numel()
                        std = 1.0 / math.sqrt(fan_in)  # LeCun: unit-variance pre-activations
                        if mod_name.endswith(residual_out):
                            std *= 0.2
                    p.copy_(torch.randn(p.shape, generator=gen) * std)
                else:
                    p.zero_()
        if hasattr(module, "vae_scale"):  # TAESD's (x - shift) * scale
            module.vae_scale.fill_(1.0)
            module.vae_shift.fill_(0.0)


def _text_encoder_tensor(key: str, v):
    """fp8 for 2-D weights (the bulk), fp16 for embeddings and 1-D tensors."""
    import torch
    if key.endswith("position_ids"):
        return v.to(torch.int64)
    if v.dim() == 2 and "embeddings" not in key:
        return v.to(torch.float8_e4m3fn)
    return v.to(torch.float16)


def _taesd(latent_channels: int, gen) -> dict:
    import torch
    import comfy.taesd.taesd
    taesd = comfy.taesd.taesd.TAESD(latent_channels=latent_channels)
    _init_module_weights(taesd, gen)
    return {"first_stage_model." + k: v.to(torch.float16) for k, v in taesd.state_dict().items()}


def _diffusion_model(config_class: str, unet_config: dict, gen, residual_out=_RESIDUAL_OUT):
    """comfy.supported_models.<config_class>'s denoiser, every weight initialised."""
    import torch
    import comfy.supported_models
    cfg = getattr(comfy.supported_models, config_class)(dict(unet_config))
    cfg.set_inference_dtype(torch.float32, None)
    dm = cfg.get_model({}, "", device=torch.device("cpu")).diffusion_model
    _init_module_weights(dm, gen, residual_out)
    return dm


def _sd15_state_dict(seed: int) -> dict:
    import torch
    import comfy.sd1_clip

    gen = torch.Generator().manual_seed(seed)
    out = {}

    dm = _diffusion_model("SD15", SD15_UNET_CONFIG, gen)
    for k, v in dm.state_dict().items():
        out["model.diffusion_model." + k] = v.to(torch.float16)

    clip = comfy.sd1_clip.SD1ClipModel(device="cpu", dtype=torch.float32)
    _init_module_weights(clip, gen)
    for k, v in clip.state_dict().items():
        # clip_l.transformer.text_model.* -> cond_stage_model.transformer.text_model.*
        if not k.startswith("clip_l.transformer.text_model."):
            continue  # text_projection / logit_scale: SD1 checkpoints have none
        key = "cond_stage_model." + k[len("clip_l."):]
        out[key] = _text_encoder_tensor(key, v)

    out.update(_taesd(4, gen))
    return out


def _sd3_state_dict(seed: int) -> dict:
    import torch
    import comfy.text_encoders.sd3_clip
    from comfy.ldm.modules.diffusionmodules.mmdit import get_2d_sincos_pos_embed_torch

    gen = torch.Generator().manual_seed(seed)
    out = {}

    dm = _diffusion_model("SD3", SD3_UNET_CONFIG, gen, _MMDIT_RESIDUAL_OUT)
    with torch.no_grad():  # a buffer the checkpoint fills: SD3's fixed sin-cos table
        n = SD3_POS_EMBED_MAX
        dm.pos_embed.copy_(get_2d_sincos_pos_embed_torch(dm.hidden_size, n, n).reshape(1, n * n, -1))
    for k, v in dm.state_dict().items():
        out["model.diffusion_model." + k] = v.to(torch.float16)

    # fp16 while building: CLIP-G alone is 695 M parameters
    te_cls = comfy.text_encoders.sd3_clip.sd3_clip(clip_l=True, clip_g=True, t5=False)
    te = te_cls(device="cpu", dtype=torch.float16)
    _init_module_weights(te, gen)
    for k, v in te.state_dict().items():  # clip_l.transformer.*, clip_g.transformer.*, ...
        key = "text_encoders." + k
        out[key] = _text_encoder_tensor(key, v)
    del te

    out.update(_taesd(16, gen))
    return out


@dataclass(frozen=True)
class Family:
    name: str
    version: str  # the cache key: bump when the layout or the init changes
    filename: str
    state_dict: Callable[[int], dict]
    config_class: str  # comfy.supported_models.<this> is what detection must give
    latent_channels: int
    probe_sigma: float  # a mid-schedule sigma for the direct denoiser call in verify()
    stands_in_for: tuple[str, ...] = ()  # substrings of the real checkpoints' file names


FAMILIES = {
    "sd15": Family("sd15", "sd15-tiny-v1", "tiny_sd15.safetensors", _sd15_state_dict,
                   "SD15", 4, 5.0),
    "sd3": Family("sd3", "sd3-tiny-v1", "tiny_sd3.safetensors", _sd3_state_dict,
                  "SD3", 16, 0.5, stands_in_for=("sd3",)),
}
DEFAULT_FAMILY = "sd15"  # stands in for everything else (SDXL, and DiTs without a tiny one)


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown checkpoint family {name!r}; known: {sorted(FAMILIES)}") from None


def family_for(ckpt_name: str) -> str:
    """The tiny family that stands in for the real checkpoint ``ckpt_name`` (a file name
    as a workflow's loader holds it, e.g. "sd3.5_large_fp8_scaled.safetensors" -> "sd3")."""
    low = os.path.basename(str(ckpt_name)).lower()
    for fam in FAMILIES.values():
        if any(s in low for s in fam.stands_in_for):
            return fam.name
    return DEFAULT_FAMILY


def cached_path(name: str = "sd15", seed: int = 0) -> str:
    fam = family(name)
    path = os.path.join(cache_dir(), fam.version, fam.filename)
    return path if seed == 0 else path.replace(".safetensors", f"_seed{seed}.safetensors")


def build(path: str, name: str = "sd15", seed: int = 0) -> str:
    """Write the tiny checkpoint of family ``name`` to ``path`` (atomically); return ``path``."""
    _setup_comfy_path()
    from safetensors.torch import save_file
    fam = family(name)
    sd = {k: v.contiguous() for k, v in fam.state_dict(seed).items()}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        save_file(sd, tmp, metadata={"lotts_tiny_checkpoint": fam.version, "seed": str(seed)})
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def ensure_cached(name: str = "sd15", seed: int = 0) -> str:
    """The cached checkpoint's path, built on first use (keyed by the family's version)."""
    path = cached_path(name, seed)
    if not os.path.isfile(path):
        build(path, name, seed)
    return path


def verify(path: str, name: str = "sd15", steps: int = 1, size: int = 64) -> dict:
    """Load via comfy.sd.load_checkpoint_guess_config (what CheckpointLoaderSimple does),
    check the detected model, run a KSampler on a ``size`` px latent and decode it."""
    _setup_comfy_path()
    import torch
    import comfy.sd
    import comfy.sample
    import comfy.supported_models
    fam = family(name)
    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(path)[:4]
    config = model.model.model_config
    assert type(config) is getattr(comfy.supported_models, fam.config_class), type(config)
    assert clip is not None and vae is not None
    assert vae.latent_channels == fam.latent_channels, vae.latent_channels
    tokens = clip.tokenize("a photo of a cat")
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    assert torch.isfinite(cond).all(), "text encoder output not finite"
    positive = [[cond, {"pooled_output": pooled}]]
    negative = [[torch.zeros_like(cond), {"pooled_output": torch.zeros_like(pooled)}]]
    latent = torch.zeros(1, fam.latent_channels, size // 8, size // 8)
    noise = comfy.sample.prepare_noise(latent, 0)
    samples = comfy.sample.sample(model, noise, steps, 4.5, "euler", "normal", positive, negative,
                                  latent, denoise=1.0, disable_pbar=True, seed=0)
    assert samples.shape == latent.shape, samples.shape
    assert torch.isfinite(samples).all(), "KSampler output not finite"
    with torch.no_grad():
        x = torch.randn(latent.shape)
        kw = {"c_crossattn": cond}
        if config.unet_config.get("adm_in_channels"):
            kw["y"] = pooled
        eps = model.model.apply_model(x, torch.tensor([fam.probe_sigma]), **kw)
        image = vae.decode(samples)
    assert torch.isfinite(eps).all(), "denoiser output not finite"
    assert torch.isfinite(image).all(), "VAE decode not finite"
    assert tuple(image.shape[1:3]) == (size, size), image.shape
    return {"model": type(config).__name__, "cond_shape": tuple(cond.shape),
            "cond_std": float(cond.std()), "eps_std": float(eps.std()),
            "latent_std": float(samples.std()), "image_shape": tuple(image.shape),
            "image_mean": float(image.mean()), "image_std": float(image.std())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", default="sd15", choices=sorted(FAMILIES))
    ap.add_argument("--out", help="output path (default: the cache path)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cached", action="store_true",
                    help="build into the cache only if absent; print the path")
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    ap.add_argument("--verify", action="store_true", help="load it and run one KSampler step")
    a = ap.parse_args(argv)
    t0 = time.time()
    if a.out:
        path = build(a.out, a.family, a.seed)
    elif a.force:
        path = build(cached_path(a.family, a.seed), a.family, a.seed)
    else:
        path = ensure_cached(a.family, a.seed)
    built = time.time() - t0
    if a.verify:
        print(verify(path, a.family), file=sys.stderr)
    print(f"built/found in {built:.1f}s, {os.path.getsize(path) / 1e6:.0f} MB", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
