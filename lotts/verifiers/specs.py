"""The verifiers LoTTS knows: names, official weight files, where to get them, and what
each needs -- pure data (no torch), so clients such as the evaluation runner can read it
on a machine without torch."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VerifierSpec:
    name: str
    module: str            # submodule of lotts.verifiers holding the loader
    loader: str            # its loader function
    requires: tuple        # importable top-level packages
    default_weights: str   # the official file/folder name in models/lotts_verifiers/
    weights_kind: str      # "file" or "folder"
    source: str            # where users get the weights
    kwargs: dict = field(default_factory=dict)


SPECS = {s.name: s for s in (
    VerifierSpec("ImageReward", "imagereward", "load_imagereward", ("tokenizers",),
                 "ImageReward/ImageReward.pt", "file",
                 "https://huggingface.co/THUDM/ImageReward (ImageReward.pt, med_config.json) + "
                 "vocab.txt from https://huggingface.co/google-bert/bert-base-uncased"),
    # HPS tokenises as open_clip does: ftfy (its prompt cleaning) and regex (its split)
    VerifierSpec("HPSv2", "clip_models", "load_hps", ("transformers", "ftfy", "regex"), "HPS_v2_compressed.pt", "file",
                 "https://huggingface.co/xswu/HPSv2 (HPS_v2_compressed.pt)", {"name": "HPSv2"}),
    VerifierSpec("HPSv2.1", "clip_models", "load_hps", ("transformers", "ftfy", "regex"), "HPS_v2.1_compressed.pt",
                 "file",
                 "https://huggingface.co/xswu/HPSv2 (HPS_v2.1_compressed.pt)", {"name": "HPSv2.1"}),
    VerifierSpec("PickScore", "clip_models", "load_pickscore", ("transformers",), "PickScore_v1", "folder",
                 "https://huggingface.co/yuvalkirstain/PickScore_v1 (config.json + model weights)"),
    VerifierSpec("CLIPScore", "clip_models", "load_clipscore", ("transformers",), "clip-vit-large-patch14",
                 "folder", "https://huggingface.co/openai/clip-vit-large-patch14 (config.json, "
                 "model.safetensors, vocab.json, merges.txt)"),
    VerifierSpec("Aesthetic", "clip_models", "load_aesthetic", ("transformers",),
                 "sac+logos+ava1-l14-linearMSE.pth", "file",
                 "https://github.com/christophschuhmann/improved-aesthetic-predictor "
                 "(sac+logos+ava1-l14-linearMSE.pth) + the CLIP ViT-L/14 folder clip-vit-large-patch14/ "
                 "beside it (https://huggingface.co/openai/clip-vit-large-patch14)"),
)}

VERIFIER_NAMES = tuple(SPECS)
