"""LoTTSVerifierLoader: load a verifier (ImageReward, HPSv2/v2.1, PickScore, CLIP score,
aesthetic) from ComfyUI's ``models/lotts_verifiers/`` folder as a ``LOTTS_VERIFIER``.

The model is wrapped in a ComfyUI ``ModelPatcher``: the pick node moves it to the GPU
through ComfyUI's memory manager and offloads it after scoring unless ``keep_loaded``.
"""

from __future__ import annotations

import logging
import os

import torch

import comfy.model_management as mm
import comfy.model_patcher
import comfy.utils
import folder_paths
from comfy_api.latest import io

from ..lotts.verifiers import SPECS, VERIFIER_NAMES, VerifierError, availability, load_verifier
from ..lotts.verifiers.download import download_official
from ..lotts.verifiers.weights import WEIGHT_EXTENSIONS
from . import inputs, search_aliases
from .checks import queue_time_check

FOLDER = "lotts_verifiers"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def _register_folder():
    default = os.path.join(folder_paths.models_dir, FOLDER)
    if FOLDER in folder_paths.folder_names_and_paths:
        paths, exts = folder_paths.folder_names_and_paths[FOLDER]
        folder_paths.folder_names_and_paths[FOLDER] = (paths, set(exts) | set(WEIGHT_EXTENSIONS) | {".json"})
        if default not in paths:
            folder_paths.add_model_folder_path(FOLDER, default)
    else:  # (paths, extensions): extra_model_paths.yaml entries are added to the same key
        folder_paths.folder_names_and_paths[FOLDER] = ([default], set(WEIGHT_EXTENSIONS) | {".json"})


_register_folder()


def weight_choices() -> list[str]:
    """Files and model folders in models/lotts_verifiers/ (first level and one below),
    plus every verifier's official name (absent ones give a clear error, or download)."""
    found = set()
    for base in folder_paths.get_folder_paths(FOLDER):
        if not os.path.isdir(base):
            continue
        for entry in sorted(os.listdir(base)):
            full = os.path.join(base, entry)
            if os.path.isdir(full):
                if os.path.isfile(os.path.join(full, "config.json")):
                    found.add(entry)
                for sub in sorted(os.listdir(full)):
                    if sub.endswith(WEIGHT_EXTENSIONS) and os.path.isfile(os.path.join(full, sub)) \
                            and not sub.startswith(("model", "pytorch_model")):
                        found.add(f"{entry}/{sub}")
            elif entry.endswith(WEIGHT_EXTENSIONS):
                found.add(entry)
    official = [s.default_weights for s in SPECS.values()]
    return official + sorted(found - set(official))


def resolve_weights(name: str) -> str | None:
    """A dropdown name -> its path, through folder_paths (files) or the folder's config.json."""
    path = folder_paths.get_full_path(FOLDER, name)
    if path is not None:
        return path
    cfg = folder_paths.get_full_path(FOLDER, name.rstrip("/") + "/config.json")
    return os.path.dirname(cfg) if cfg is not None else None


def comfy_tokenizer_dirs() -> list[str]:
    """ComfyUI's own copy of the CLIP BPE vocabulary (comfy/sd1_tokenizer), for CLIP verifiers
    whose weights come without tokenizer files (HPS, PickScore)."""
    import comfy.sd1_clip
    d = os.path.join(os.path.dirname(os.path.abspath(comfy.sd1_clip.__file__)), "sd1_tokenizer")
    return [d] if os.path.isdir(d) else []


def pick_dtype(precision: str, device) -> torch.dtype:
    if precision == "fp32":
        return torch.float32
    if precision == "fp16":
        return torch.float16
    if precision == "bf16":
        return torch.bfloat16
    return torch.float16 if mm.should_use_fp16(device, prioritize_performance=False) else torch.float32


class LoadedVerifier:
    """What travels on a LOTTS_VERIFIER socket: the core verifier, its ModelPatcher and
    whether to keep it on the GPU after scoring."""

    def __init__(self, verifier, patcher, keep_loaded: bool, name: str, weights: str):
        self.verifier, self.patcher, self.keep_loaded = verifier, patcher, keep_loaded
        self.name, self.weights = name, weights

    def load(self):
        # a full load: the verifier's plain nn.Modules do not support ComfyUI's partial
        # (lowvram) loading, which would leave some weights on the CPU
        mm.load_models_gpu([self.patcher], force_full_load=True)

    def offload(self):
        for i in range(len(mm.current_loaded_models) - 1, -1, -1):
            lm = mm.current_loaded_models[i]
            if lm.model is self.patcher:
                lm.model_unload()
                mm.current_loaded_models.pop(i)
        mm.soft_empty_cache()

    def score(self, images, prompt, batch_size=None):
        """Scores in chunks of ``batch_size`` images (None: the core default), honouring
        Cancel between chunks; the model is offloaded afterwards (unless keep_loaded),
        whether scoring finished, failed or was cancelled."""
        self.load()
        try:
            return self.verifier.score(images, prompt, batch_size,
                                       check_cancel=mm.throw_exception_if_processing_interrupted)
        finally:
            if not self.keep_loaded:
                self.offload()

    def __repr__(self):
        return f"<LOTTS_VERIFIER {self.name} ({self.weights}) keep_loaded={self.keep_loaded}>"


def _missing_message(verifier: str, weights: str) -> str:
    spec = SPECS[verifier]
    folders = folder_paths.get_folder_paths(FOLDER)
    kind = "folder" if spec.weights_kind == "folder" and weights == spec.default_weights else "file"
    return (f"'weights': {verifier} {kind} '{weights}' not found in {folders[0]}"
            + (f" (nor in {', '.join(folders[1:])})" if len(folders) > 1 else "")
            + f". Get it from {spec.source} and put it at "
            f"{os.path.join(folders[0], *spec.default_weights.split('/'))}, or set 'download' to "
            "'enabled' on this node to fetch the official files (opt-in).")


class LoTTSVerifierLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LoTTSVerifierLoader", display_name="LoTTS Verifier Loader",
            **search_aliases.schema_field("LoTTSVerifierLoader"),
            category=inputs.CATEGORY,
            description="Loads a verifier that scores images against a prompt (higher = "
                        "better): ImageReward, HPSv2, HPSv2.1, PickScore, CLIP score or the LAION "
                        "aesthetic predictor, from the original published weights in "
                        "models/lotts_verifiers/. Implemented on torch + transformers: no "
                        "verifier packages are installed. Connect it to LoTTS Verifier Pick.",
            inputs=[
                io.Combo.Input("verifier", options=list(VERIFIER_NAMES), tooltip=(
                    "Which verifier. ImageReward: ImageReward.pt (+ med_config.json, BERT "
                    "vocab.txt). HPSv2 / HPSv2.1: HPS_v2*_compressed.pt. PickScore: the "
                    "PickScore_v1 folder. CLIPScore: a transformers CLIP folder. Aesthetic: "
                    "sac+logos+ava1-l14-linearMSE.pth with a clip-vit-large-patch14 folder "
                    "beside it.")),
                io.Combo.Input("weights", options=weight_choices(), tooltip=(
                    "The weight file or folder in models/lotts_verifiers/ for the chosen "
                    "verifier. The official names are always listed; if the file is absent the "
                    "node says where to get it (or downloads it when 'download' is enabled).")),
                io.Combo.Input("precision", options=list(PRECISIONS), default="auto", tooltip=(
                    "Compute dtype. auto: fp16 on GPUs that run it well, else fp32. Scores are "
                    "always returned as fp32.")),
                io.Boolean.Input("keep_loaded", default=False, optional=True, tooltip=(
                    "Keep the verifier on the GPU after scoring (faster repeated picks, uses "
                    "VRAM). Off: it is offloaded right after each pick.")),
                io.Combo.Input("download", options=["disabled", "enabled"], default="disabled",
                               optional=True, tooltip=(
                    "Opt-in: when the official weights are missing, download them from their "
                    "official source into models/lotts_verifiers/ (with progress; a partial "
                    "download resumes; checked against the server's sha256 or size). Off by "
                    "default: nothing is ever downloaded unless you enable this.")),
            ],
            outputs=[inputs.Verifier.Output(display_name="verifier",
                                            tooltip="The loaded verifier, for LoTTS Verifier "
                                                    "Pick.")])

    @classmethod
    def validate_inputs(cls, verifier, weights, precision, download="disabled"):
        return queue_time_check(cls, locals())

    @classmethod
    def execute(cls, *, verifier, weights, precision, keep_loaded=False, download="disabled"):
        reason = availability().get(verifier, f"unknown verifier '{verifier}'")
        if reason:
            raise RuntimeError(f"'verifier': {reason}")
        path = resolve_weights(weights)
        if path is None and download == "enabled" and weights == SPECS[verifier].default_weights:
            root = folder_paths.get_folder_paths(FOLDER)[0]
            bar = comfy.utils.ProgressBar(100)

            def progress(rel, done, total):
                if total:
                    bar.update_absolute(int(100 * done / total), 100)
                mm.throw_exception_if_processing_interrupted()

            logging.info("LoTTS: downloading the official %s weights into %s", verifier, root)
            download_official(verifier, root, progress=progress)
            path = resolve_weights(weights)
        if path is None:
            raise FileNotFoundError(_missing_message(verifier, weights))
        device = mm.get_torch_device()
        offload = mm.text_encoder_offload_device()
        dtype = pick_dtype(precision, device)
        try:
            v = load_verifier(verifier, path, dtype=dtype, device=offload,
                              tokenizer_dirs=comfy_tokenizer_dirs())
        except VerifierError as e:
            raise ValueError(f"'weights' = '{weights}' ({verifier}): {e}") from None
        patcher = comfy.model_patcher.ModelPatcher(v.model, load_device=device, offload_device=offload)
        return io.NodeOutput(LoadedVerifier(v, patcher, bool(keep_loaded), verifier, weights))
