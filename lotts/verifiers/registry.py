"""Which verifiers exist, what each needs, and loading one by name.

A verifier whose optional dependency is missing is *disabled*, with a message saying what
to install; importing this package and using the other verifiers still works.
"""

from __future__ import annotations

import importlib
import importlib.util

import torch

from .base import VerifierError, VerifierUnavailable


from .specs import SPECS, VERIFIER_NAMES, VerifierSpec  # noqa: F401  (re-exported)


def _missing(spec: VerifierSpec) -> list[str]:
    out = []
    for pkg in spec.requires:
        try:
            if importlib.util.find_spec(pkg) is None:
                out.append(pkg)
        except (ImportError, ValueError):
            out.append(pkg)
    return out


def availability() -> dict[str, str | None]:
    """``{name: None}`` when usable, else ``{name: reason}``."""
    out = {}
    for name, spec in SPECS.items():
        miss = _missing(spec)
        out[name] = None if not miss else (
            f"the {name} verifier is disabled: it needs the Python package(s) {', '.join(miss)} "
            f"(pip install {' '.join(miss)}); the other verifiers still work")
    return out


def load_verifier(name: str, path: str, dtype: torch.dtype = torch.float32, device="cpu",
                  tokenizer_dirs=()):
    """Load verifier ``name`` from ``path`` (a file or folder). Raises ``VerifierError``
    for bad/missing files and ``VerifierUnavailable`` for a missing dependency."""
    spec = SPECS.get(name)
    if spec is None:
        raise VerifierError(f"'verifier': unknown verifier '{name}'; choose one of {', '.join(VERIFIER_NAMES)}")
    reason = availability()[name]
    if reason:
        raise VerifierUnavailable(reason)
    try:
        mod = importlib.import_module(f".{spec.module}", __package__)
    except ImportError as e:
        raise VerifierUnavailable(f"the {name} verifier is disabled: {e}") from None
    return getattr(mod, spec.loader)(path, dtype=dtype, device=device,
                                     tokenizer_dirs=tuple(tokenizer_dirs), **spec.kwargs)
