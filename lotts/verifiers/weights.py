"""Reading weight files safely: safetensors, or ``torch.load(weights_only=True)``.

Nothing here unpickles arbitrary objects. A checkpoint that needs more than plain tensors
and containers is refused with a message pointing at the one-time, explicit conversion
(``python -m lotts.verifiers.convert FILE``), which the user runs on a file they trust.
"""

from __future__ import annotations

import os
import pickle
import zipfile

import torch

from .base import VerifierError
from .side_files import impostor, read_json_object

WEIGHT_EXTENSIONS = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


def load_state_dict(path: str, what: str = "weights") -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from a .safetensors or a torch checkpoint (weights only).

    A torch checkpoint wrapping its weights as ``{'state_dict': ...}`` or ``{'model': ...}``
    is unwrapped; a ``module.`` prefix (DataParallel) is stripped.
    """
    if not os.path.isfile(path):
        raise VerifierError(f"{what}: file not found: {path}")
    size = os.path.getsize(path)
    if size == 0:
        raise VerifierError(f"{what}: '{os.path.basename(path)}' is empty (0 bytes; an interrupted download?). "
                            f"Delete it and download it again: {path}")
    problem = impostor(path)
    if problem:  # an HTML page or a Git LFS pointer saved under the weights' name
        raise VerifierError(f"{what}: {path} {problem}. Download the weights again (the file, not its page)")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        try:
            sd = load_file(path, device="cpu")
        except Exception as e:
            raise VerifierError(f"{what}: '{os.path.basename(path)}' is not a readable safetensors file "
                                f"(corrupt or truncated?): {type(e).__name__}: {e}") from None
    else:
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True, mmap=_can_mmap(path))
        except Exception as e:  # noqa: BLE001 -- any failure here means "not a usable checkpoint"
            text = str(e)
            if isinstance(e, pickle.UnpicklingError) and "Unsupported global" in text:
                glob = text[text.find("Unsupported global"):].split(" was ")[0]
                raise VerifierError(
                    f"{what}: '{os.path.basename(path)}' holds Python objects besides tensors ({glob}), so "
                    f"it is not loaded (only weights_only=True loading is allowed). If you trust the file, "
                    f"convert it once to safetensors with:  python -m lotts.verifiers.convert \"{path}\"  "
                    f"(run in the pack folder), then pick the .safetensors file.") from None
            first = text.strip().splitlines()[-1] if text.strip() else ""
            raise VerifierError(f"{what}: '{os.path.basename(path)}' is not a readable checkpoint "
                                f"(corrupt or truncated?): {type(e).__name__}: {first[:200]}") from None
    return flatten_state_dict(sd, what, os.path.basename(path))


def _can_mmap(path: str) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def flatten_state_dict(sd, what: str = "weights", name: str = "") -> dict[str, torch.Tensor]:
    if isinstance(sd, dict):
        for key in ("state_dict", "model", "module"):
            if key in sd and isinstance(sd[key], dict) and not isinstance(sd[key], torch.Tensor):
                sd = sd[key]
                break
    if not isinstance(sd, dict) or not sd:
        raise VerifierError(f"{what}: '{name}' holds no state dict (got {type(sd).__name__})")
    out = {}
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            continue
        if k.startswith("module."):
            k = k[len("module."):]
        out[k] = v
    if not out:
        raise VerifierError(f"{what}: '{name}' holds no tensors")
    return out


def load_hf_folder_state_dict(folder: str, what: str) -> dict[str, torch.Tensor]:
    """The weights of a Hugging Face model folder: model.safetensors (sharded or not),
    else pytorch_model.bin (weights only)."""
    for single in ("model.safetensors", "pytorch_model.bin"):
        p = os.path.join(folder, single)
        if os.path.isfile(p):
            return load_state_dict(p, what)
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        p = os.path.join(folder, index)
        if os.path.isfile(p):
            weight_map = read_json_object(p, what).get("weight_map")
            if not isinstance(weight_map, dict):
                raise VerifierError(f"{what}: {p} has no 'weight_map': not a sharded-weights index")
            shards = sorted(set(weight_map.values()))
            sd = {}
            for s in shards:
                sd.update(load_state_dict(os.path.join(folder, s), what))
            return sd
    raise VerifierError(f"{what}: no weights in folder {folder} (expected model.safetensors or pytorch_model.bin)")


def load_strict(module: torch.nn.Module, sd: dict, what: str, ignore=("position_ids",)) -> None:
    """``load_state_dict(strict=True)`` with a readable error: wrong architecture or file."""
    sd = {k: v for k, v in sd.items() if not any(k.endswith(i) for i in ignore)}
    own = module.state_dict()
    missing = [k for k in own if k not in sd and not any(k.endswith(i) for i in ignore)]
    unexpected = [k for k in sd if k not in own]
    shape = [f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
             for k in sd if k in own and sd[k].shape != own[k].shape]
    if missing or unexpected or shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if shape:
            parts.append(f"{len(shape)} of the wrong shape (e.g. {shape[:2]})")
        raise VerifierError(f"{what}: the file does not match this verifier's architecture: "
                            + "; ".join(parts) + ". Is it the right file for this verifier?")
    for k, b in module.named_buffers():
        if k not in sd and k in own:
            sd[k] = own[k]
    module.load_state_dict(sd, strict=True)


def convert_to_safetensors(src: str, dst: str | None = None) -> str:
    """One-time conversion of a trusted pickled checkpoint to safetensors.

    This is the only place that unpickles with ``weights_only=False``; it runs only when
    the user calls it explicitly on a file they trust (never while loading a verifier).
    """
    from safetensors.torch import save_file
    dst = dst or os.path.splitext(src)[0] + ".safetensors"
    obj = torch.load(src, map_location="cpu", weights_only=False)  # explicit, user-invoked
    sd = flatten_state_dict(obj, "convert", os.path.basename(src))
    save_file({k: v.contiguous() for k, v in sd.items()}, dst)
    return dst
