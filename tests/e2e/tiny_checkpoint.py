"""The smallest SD1.5 checkpoint ComfyUI's ``CheckpointLoaderSimple`` accepts, random weights.

Built from ComfyUI's own classes (run this with ComfyUI's python), saved as safetensors
under the real key names of an SD1.5 ``.ckpt``/``.safetensors``:

* ``model.diffusion_model.*``   U-Net: model_channels=320, context_dim=768, conv proj_in,
                                one level, one resblock, 1 transformer block (detected as
                                ``supported_models.SD15``); fp16.
* ``cond_stage_model.transformer.text_model.*``  the full CLIP-L text model in HF layout
                                (its size is fixed by ComfyUI's config); 2-D weights in
                                float8_e4m3fn, the rest fp16.
* ``first_stage_model.taesd_encoder.*`` / ``taesd_decoder.*``  TAESD, the smallest VAE
                                ComfyUI detects; fp16.

Never commit the result (it is ~180 MB). Tests build it once and cache it:

    python tests/e2e/tiny_checkpoint.py [--out PATH] [--seed N] [--verify]
    python tests/e2e/tiny_checkpoint.py --cached        # print the cache path, build if absent

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

# Bump when the layout or the init changes: the cache key.
VERSION = "sd15-tiny-v1"
FILENAME = "tiny_sd15.safetensors"

UNET_CONFIG = {  # what comfy.model_detection.detect_unet_config reads back from the keys
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


def cache_dir() -> str:
    base = os.environ.get("LOTTS_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lotts-tests")
    return base


def cached_path() -> str:
    return os.path.join(cache_dir(), VERSION, FILENAME)


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
# residual stream stays O(1) and the U-Net's eps prediction has roughly unit variance.
_RESIDUAL_OUT = ("out_layers.3", "proj_out", "out.2", "attn1.to_out.0", "attn2.to_out.0",
                 "ff.net.2")


def _init_module_weights(module, gen) -> None:
    """Fill every parameter (comfy ops leave them EMPTY): norms 1/0, the rest small normal."""
    import torch
    norm_types = (torch.nn.LayerNorm, torch.nn.GroupNorm)
    with torch.no_grad():
        for mod_name, mod in module.named_modules():
            own = dict(mod.named_parameters(recurse=False))
            is_norm = isinstance(mod, norm_types)
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
                        if mod_name.endswith(_RESIDUAL_OUT):
                            std *= 0.2
                    p.copy_(torch.randn(p.shape, generator=gen) * std)
                else:
                    p.zero_()
        if hasattr(module, "vae_scale"):  # TAESD's (x - shift) * scale
            module.vae_scale.fill_(1.0)
            module.vae_shift.fill_(0.0)


def _state_dicts(seed: int):
    import torch
    import comfy.supported_models
    import comfy.sd1_clip
    import comfy.taesd.taesd

    gen = torch.Generator().manual_seed(seed)
    out = {}

    cfg = comfy.supported_models.SD15(dict(UNET_CONFIG))
    cfg.set_inference_dtype(torch.float32, None)
    model = cfg.get_model({}, "", device=torch.device("cpu"))
    _init_module_weights(model.diffusion_model, gen)
    for k, v in model.diffusion_model.state_dict().items():
        out["model.diffusion_model." + k] = v.to(torch.float16)

    clip = comfy.sd1_clip.SD1ClipModel(device="cpu", dtype=torch.float32)
    _init_module_weights(clip, gen)
    for k, v in clip.state_dict().items():
        # clip_l.transformer.text_model.* -> cond_stage_model.transformer.text_model.*
        if not k.startswith("clip_l.transformer.text_model."):
            continue  # text_projection / logit_scale: SD1 checkpoints have none
        key = "cond_stage_model." + k[len("clip_l."):]
        if k.endswith("position_ids"):
            out[key] = v.to(torch.int64)
        elif v.dim() == 2 and "embeddings" not in k:
            out[key] = v.to(torch.float8_e4m3fn)
        else:
            out[key] = v.to(torch.float16)

    taesd = comfy.taesd.taesd.TAESD(latent_channels=4)
    _init_module_weights(taesd, gen)
    for k, v in taesd.state_dict().items():
        out["first_stage_model." + k] = v.to(torch.float16)
    return {k: v.contiguous() for k, v in out.items()}


def build_tiny_sd15(path: str, seed: int = 0) -> str:
    """Write the tiny checkpoint to ``path`` (atomically); return ``path``."""
    _setup_comfy_path()
    from safetensors.torch import save_file
    sd = _state_dicts(seed)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        save_file(sd, tmp, metadata={"lotts_tiny_checkpoint": VERSION, "seed": str(seed)})
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def ensure_cached(seed: int = 0) -> str:
    """The cached checkpoint's path, built on first use (keyed by VERSION; seed 0 only)."""
    path = cached_path()
    if seed != 0:
        path = path.replace(".safetensors", f"_seed{seed}.safetensors")
    if not os.path.isfile(path):
        build_tiny_sd15(path, seed)
    return path


def verify(path: str, steps: int = 1) -> dict:
    """Load via comfy.sd.load_checkpoint_guess_config and run a KSampler step + decode."""
    _setup_comfy_path()
    import torch
    import comfy.sd
    import comfy.sample
    import comfy.supported_models
    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(path)[:4]
    assert isinstance(model.model.model_config, comfy.supported_models.SD15), type(model.model.model_config)
    assert clip is not None and vae is not None
    tokens = clip.tokenize("a photo of a cat")
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    assert torch.isfinite(cond).all(), "CLIP output not finite"
    positive = [[cond, {"pooled_output": pooled}]]
    negative = [[torch.zeros_like(cond), {"pooled_output": torch.zeros_like(pooled)}]]
    latent = torch.zeros(1, 4, 8, 8)
    noise = comfy.sample.prepare_noise(latent, 0)
    samples = comfy.sample.sample(model, noise, steps, 7.0, "euler", "normal", positive, negative,
                                  latent, denoise=1.0, disable_pbar=True, seed=0)
    assert torch.isfinite(samples).all(), "KSampler output not finite"
    with torch.no_grad():
        x = torch.randn(1, 4, 8, 8)
        eps = model.model.apply_model(x, torch.tensor([5.0]), c_crossattn=cond)
        image = vae.decode(samples)
    assert torch.isfinite(eps).all(), "U-Net output not finite"
    assert torch.isfinite(image).all(), "VAE decode not finite"
    return {"cond_std": float(cond.std()), "eps_std": float(eps.std()),
            "latent_std": float(samples.std()), "image_shape": tuple(image.shape),
            "image_mean": float(image.mean()), "image_std": float(image.std())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="output path (default: the cache path)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cached", action="store_true",
                    help="build into the cache only if absent; print the path")
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    ap.add_argument("--verify", action="store_true", help="load it and run one KSampler step")
    a = ap.parse_args(argv)
    t0 = time.time()
    if a.out:
        path = build_tiny_sd15(a.out, a.seed)
    elif a.force:
        path = build_tiny_sd15(cached_path(), a.seed)
    else:
        path = ensure_cached(a.seed)
    built = time.time() - t0
    if a.verify:
        print(verify(path), file=sys.stderr)
    print(f"built/found in {built:.1f}s, {os.path.getsize(path) / 1e6:.0f} MB", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
