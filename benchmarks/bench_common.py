"""What the benchmark scripts share: starting ComfyUI in-process, the real-architecture
models, the machine line, and the peak-memory method.

Device: CPU unless ``LOTTS_BENCH_DEVICE=gpu`` (then ComfyUI picks its GPU as a server
would, with PyTorch SDPA attention, and memory figures come from torch.cuda's peak
counter instead of the process's peak RSS). Model builders import ComfyUI lazily: call
them after :func:`start_comfyui`.

Precision: what ComfyUI's checkpoint loader picks for that model on this device
(:func:`pick_dtype` "auto": fp16 for SD1.5/SDXL and bf16 for FLUX on a recent NVIDIA GPU,
fp32 on a CPU), or a forced one ("fp32", "fp16", "bf16": weights and arithmetic in it;
"fp16-cast": fp16 weights computed in fp32, ComfyUI's manual cast).

``LOTTS_BENCH_SCALE=tiny``: every model keeps its architecture -- all blocks, layers and
attention levels -- at about 1/10 of its width, so the GPU settings' code paths (sizes,
dtypes, stages, batching) can be run through on a CPU in minutes (run_all.sh's "sim"
mode). Figures from it mean nothing; that it runs to the end does.
"""

from __future__ import annotations

import ctypes
import datetime
import gc
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "host"),
           os.path.join(ROOT, "tests", "core")):
    if _p not in sys.path:
        sys.path.append(_p)

MIB = 1 << 20
GPU = os.environ.get("LOTTS_BENCH_DEVICE", "cpu").lower() in ("gpu", "cuda")
TINY = os.environ.get("LOTTS_BENCH_SCALE", "full").lower() == "tiny"
DTYPES = ("auto", "fp32", "fp16", "bf16", "fp16-cast")

# comfy/model_detection.py, unet_config_from_diffusers_unet: SD15 (dtype set when built)
SD15_UNET = {'use_checkpoint': False, 'image_size': 32, 'out_channels': 4,
             'use_spatial_transformer': True, 'legacy': False, 'adm_in_channels': None,
             'in_channels': 4, 'model_channels': 320, 'num_res_blocks': [2, 2, 2, 2],
             'transformer_depth': [1, 1, 1, 1, 1, 1, 0, 0], 'channel_mult': [1, 2, 4, 4],
             'transformer_depth_middle': 1, 'use_linear_in_transformer': False,
             'context_dim': 768, 'num_heads': 8,
             'transformer_depth_output': [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
             'use_temporal_attention': False, 'use_temporal_resblock': False}

# the same file's SDXL base config (2.57 G parameters)
SDXL_UNET = {'use_checkpoint': False, 'image_size': 32, 'out_channels': 4,
             'use_spatial_transformer': True, 'legacy': False, 'num_classes': 'sequential',
             'adm_in_channels': 2816, 'in_channels': 4, 'model_channels': 320,
             'num_res_blocks': [2, 2, 2], 'transformer_depth': [0, 0, 2, 2, 10, 10],
             'channel_mult': [1, 2, 4], 'transformer_depth_middle': 10,
             'use_linear_in_transformer': True, 'context_dim': 2048, 'num_head_channels': 64,
             'transformer_depth_output': [0, 0, 0, 2, 2, 2, 10, 10, 10],
             'use_temporal_attention': False, 'use_temporal_resblock': False}


def start_comfyui(pack: bool = True, attention: str = "pytorch"):
    """Import the real ComfyUI in-process (and load the pack through its custom-node
    loader); exits with the reason when it cannot. Returns the pack module (or None).

    ``attention``: "pytorch" (SDPA, what ComfyUI picks on NVIDIA GPUs; the tests' choice)
    or "default" (what ComfyUI picks on this device with no flag)."""
    import comfy_host
    path = comfy_host.find_comfyui()
    if path and (GPU or attention != "pytorch"):
        # comfy_host sets --cpu and SDPA before model_management is imported; importing
        # it first with other flags lets ComfyUI pick its GPU / kernel as a server would
        sys.path.insert(0, path)
        from comfy.cli_args import args
        args.cpu = not GPU
        args.use_pytorch_cross_attention = attention == "pytorch"
        import comfy.model_management  # noqa: F401
        import comfy.ldm.modules.attention  # noqa: F401  (the kernel is chosen on import)
    found, reason = comfy_host._import_comfyui()
    if found is None:
        sys.exit(f"this benchmark needs ComfyUI: {reason}")
    return comfy_host.load_pack() if pack else None


def run_node(node_id: str, *args, **kwargs):
    """A pack node run as ComfyUI runs it (tests/comfy_host.run_node): an io.NodeOutput."""
    import comfy_host
    return comfy_host.run_node(node_id, *args, **kwargs)


def synchronize() -> None:
    """Wait for the GPU (no-op on a CPU): a timer read after it has seen the work."""
    import torch
    if GPU and torch.cuda.is_available():
        torch.cuda.synchronize()


class ModelCalls:
    """Counts and times the model calls of a clone of ``model`` (``.model``): calls, images
    (batch sizes summed: NFE), seconds inside them, and the input shape of each. On a GPU
    each call is bracketed by synchronisations, so its seconds are the device's (the
    waits this adds are what the sampler's own per-step host-to-device copy costs)."""

    def __init__(self, model):
        calls = self

        def wrapper(apply_model, args):
            # a plain function, not a bound method: ModelPatcher.clone() deep-copies
            # model_options, and deepcopy would copy a bound method's instance with it
            synchronize()
            t = time.perf_counter()
            out = apply_model(args["input"], args["timestep"], **args["c"])
            synchronize()
            calls.seconds += time.perf_counter() - t
            calls.shapes.append(tuple(args["input"].shape))
            return out

        self.model = model.clone()
        self.model.set_model_unet_function_wrapper(wrapper)
        self.reset()

    def reset(self):
        self.seconds, self.shapes = 0.0, []

    @property
    def calls(self) -> int:
        return len(self.shapes)

    @property
    def images(self) -> int:
        return sum(s[0] for s in self.shapes)


def clip_768_config(layers: int = 1) -> dict:
    """A CLIP-L-wide (768) text model with few layers: the real context the U-Net sees."""
    return {"architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 0,
            "dropout": 0.0, "eos_token_id": 49407, "hidden_act": "quick_gelu",
            "hidden_size": 768, "initializer_factor": 1.0, "initializer_range": 0.02,
            "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 77,
            "model_type": "clip_text_model", "num_attention_heads": 12,
            "num_hidden_layers": layers, "pad_token_id": 1, "projection_dim": 768,
            "torch_dtype": "float32", "vocab_size": 49408}


def pick_dtype(config, params: int, choice: str = "auto"):
    """``(weight dtype, manual-cast dtype or None, label)`` for a model of ``config`` (a
    supported_models class instance) with ``params`` parameters.

    "auto": what ComfyUI's checkpoint loader picks on this device (comfy/sd.py:
    ``unet_dtype`` over the config's supported dtypes, then ``unet_manual_cast``).
    "fp32"/"fp16"/"bf16": weights and arithmetic in that dtype. "fp16-cast": fp16
    weights computed in fp32.
    """
    import torch
    import comfy.model_management as mm
    named = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if choice == "auto":
        supported = list(config.supported_inference_dtypes)
        weight = mm.unet_dtype(model_params=params, supported_dtypes=supported)
        cast = mm.unet_manual_cast(weight, mm.get_torch_device(), supported)
        how = "ComfyUI's choice on this device"
    elif choice == "fp16-cast":
        weight, cast, how = torch.float16, torch.float32, "forced"
    elif choice in named:
        weight, cast, how = named[choice], None, "forced"
    else:
        raise ValueError(f"dtype must be one of {DTYPES}, got {choice!r}")
    short = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
    label = short.get(weight, str(weight))
    if cast is not None and cast != weight:
        label += f" weights computed in {short.get(cast, str(cast))}"
    return weight, cast, f"{label} ({how})"


def _build(config_cls, model_config: dict, seed: int, dtype: str, params: int):
    """ModelPatcher of a real architecture with random weights, built where ComfyUI's
    checkpoint loader builds it (on the GPU when it has room: ``unet_inital_load_device``)
    and filled there. Returns ``(patcher, dtype label)``."""
    import torch
    import comfy.model_management as mm
    import comfy.model_patcher
    from tiny_models import init_weights

    cfg = config_cls(dict(model_config))
    weight, cast, label = pick_dtype(cfg, params, dtype)
    cfg.set_inference_dtype(weight, cast)
    device = mm.unet_inital_load_device(params, weight) if GPU else torch.device("cpu")
    model = cfg.get_model({}, "", device=device)
    init_weights(model.diffusion_model, seed)  # comfy ops leave weights AND biases empty
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                               offload_device=mm.unet_offload_device())
    return patcher, label


def _narrow(config: dict, **full_keys) -> dict:
    """``config`` at ~1/10 of its width when LOTTS_BENCH_SCALE=tiny (see the module)."""
    return dict(config, **full_keys) if TINY else dict(config)


def sd15_unet(seed: int = 0, dtype: str = "fp32"):
    """The real SD1.5 U-Net (320 channels, 860 M parameters), random weights.
    Returns ``(patcher, dtype label)``."""
    import comfy.supported_models
    return _build(comfy.supported_models.SD15, _narrow(SD15_UNET, model_channels=32), seed,
                  dtype, 860_000_000)


def sdxl_unet(seed: int = 0, dtype: str = "fp32"):
    """The real SDXL base U-Net (2.57 G parameters), random weights.
    Returns ``(patcher, dtype label)``."""
    import comfy.supported_models
    return _build(comfy.supported_models.SDXL, _narrow(SDXL_UNET, model_channels=32), seed,
                  dtype, 2_570_000_000)


# FLUX.1-dev's width (3072, 24 heads of 128, its rotary axes) at 1/10 of its depth: 2 of
# its 19 double-stream and 4 of its 38 single-stream blocks (1.3 G parameters). Per model
# call a block costs what FLUX's does; fewer blocks only make the fixed costs around them
# weigh more. Text width: the tiny T5/CLIP pair of the host tests (real tokenizers).
FLUX_DIT = {"image_model": "flux", "in_channels": 16, "out_channels": 16, "patch_size": 2,
            "vec_in_dim": 64, "context_in_dim": 64, "hidden_size": 3072, "mlp_ratio": 4.0,
            "num_heads": 24, "depth": 2, "depth_single_blocks": 4, "axes_dim": [16, 56, 56],
            "theta": 10000, "qkv_bias": True, "guidance_embed": True}


def flux_dit(seed: int = 0, dtype: str = "auto"):
    """A FLUX-class DiT (see FLUX_DIT), random weights. Returns ``(patcher, dtype label)``."""
    import comfy.supported_models
    return _build(comfy.supported_models.Flux, _narrow(FLUX_DIT, hidden_size=256, num_heads=2),
                  seed, dtype, 1_300_000_000)


def flux_clip(seed: int = 0):
    """FLUX's CLIP object: real CLIP-L and T5 tokenizers, tiny encoders (tests' helper)."""
    from tiny_models import tiny_flux_clip
    return tiny_flux_clip(seed)


def unet_params(model) -> int:
    return sum(p.numel() for p in model.model.diffusion_model.parameters())


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

    # on a GPU the dtype ComfyUI picks for text encoders there (fp16), else fp32
    clip = comfy.sd.CLIP(Target(), model_options={} if GPU else {"dtype": torch.float32})
    init_weights(clip.cond_stage_model, seed)
    return clip


def encode(clip, text: str):
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))


def tiny_imagereward():
    """A tiny random-weight ImageReward checkpoint, loaded by LoTTS Verifier Loader."""
    import tempfile
    import folder_paths
    import verifier_fixtures as vf
    root = tempfile.mkdtemp(prefix="bench_verifiers_")
    vf.make_imagereward(os.path.join(root, "ImageReward"))
    folder_paths.add_model_folder_path("lotts_verifiers", root, is_default=True)
    return run_node("LoTTSVerifierLoader", "ImageReward", "ImageReward/ImageReward.pt",
                    "auto" if GPU else "fp32").result[0]


# --- the machine ---------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_name() -> str:
    import torch
    if GPU and torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    return f"CPU {cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def comfyui_version() -> str:
    import comfy_host
    path = comfy_host.find_comfyui()
    try:
        with open(os.path.join(path or "", "comfyui_version.py")) as f:
            for line in f:
                if line.startswith("__version__"):
                    return "v" + line.split("=", 1)[1].strip().strip("\"'")
    except OSError:
        pass
    return "unknown"


def load_average() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine_line() -> str:
    """One line naming the device, software and how busy the machine is."""
    import torch
    return (f"{datetime.date.today().isoformat()}; {device_name()}; torch {torch.__version__}, "
            f"python {platform.python_version()}, ComfyUI {comfyui_version()}; load average "
            f"(1/5/15 min) {load_average()} on {os.cpu_count()} cores")


# --- peak memory (B2 (c), B3) ----------------------------------------------------------------
#
# Each figure runs in its own subprocess. On CPU glibc's mmap threshold is fixed at
# 128 KiB (MALLOC_MMAP_THRESHOLD_), so every tensor above it is its own mapping, returned
# to the OS when freed (RSS follows live tensors); after a warm-up run everything is
# freed, malloc_trim(0), the kernel's peak-RSS counter reset (echo 5 >
# /proc/self/clear_refs, which resets VmHWM) and the baseline read. The figure is the
# peak during the measured run minus that baseline. On a GPU: torch.cuda's allocated
# bytes, peak counter reset the same way.

def _status(field: str) -> int:
    """A /proc/self/status memory field in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


class PeakMemory:
    """``start()`` after the warm-up; ``peak()`` after the measured run: bytes above the
    baseline at ``start()``."""

    def start(self) -> None:
        import torch
        gc.collect()
        if GPU and torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        self.base = _status("VmRSS")

    def peak(self) -> int:
        import torch
        if GPU and torch.cuda.is_available():
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - self.base
        return _status("VmHWM") - self.base


def run_child(script: str, args: list[str]) -> dict:
    """Run ``script --child ARGS`` in a fresh process (same python) and return the JSON
    dict it printed on its last ``RESULT`` line."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(128 * 1024), PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, os.path.abspath(script), *args], env=env,
                          capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"child {' '.join(args)} failed ({proc.returncode})")
    return json.loads(lines[-1][len("RESULT "):])


def child_result(result: dict) -> None:
    print("RESULT " + json.dumps(result), flush=True)
