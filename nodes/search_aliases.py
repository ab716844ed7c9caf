"""Other words a user types to find each node in the node library's search.

Nobody looking for "localized test-time scaling" types "LoTTS": they type "test-time
scaling", "best of n", "refine" or "defect mask". One list per node, here only:

* where the host's V3 schema has the field (``io.Schema(search_aliases=...)``, ComfyUI
  0.10 and later), ``schema_field`` hands the list to the schema and ComfyUI serves it
  in /object_info, where the frontend's search reads it;
* where it has not (ComfyUI 0.3.64), ``schema_field`` gives nothing, so the schema is
  exactly what that host accepts, and the pack's frontend extension fills the same lists
  in from ``js/search_aliases.json`` (written from ``ALIASES`` by
  scripts/make_locales.py; tests/host/test_search_aliases.py checks it is current).
"""

from __future__ import annotations

import inspect

from comfy_api.latest import io

TEST_TIME_SCALING = ("test-time scaling", "inference scaling", "localized test-time scaling")

ALIASES: dict[str, tuple[str, ...]] = {
    "LoTTSSeedFanOut": TEST_TIME_SCALING + ("seed fan-out", "multiple seeds", "candidates"),
    "LoTTSDefectLocalizer": TEST_TIME_SCALING + ("defect mask", "defect detection", "localized",
                                                 "attention mask", "heatmap", "weak regions"),
    "LoTTSMaskPreview": ("defect mask", "mask overlay", "heatmap overlay", "localized"),
    "LoTTSMaskedRefine": TEST_TIME_SCALING + ("refine", "localized refine", "masked resample",
                                              "inpaint refine", "defect mask"),
    "LoTTSHarmonize": ("refine", "harmonize", "global denoise", "test-time scaling"),
    "LoTTSVerifierLoader": ("verifier", "reward model", "ImageReward", "HPSv2", "PickScore",
                            "aesthetic score", "best of n"),
    "LoTTSVerifierPick": ("best of n", "pick best", "rank images", "reward model", "verifier",
                          "test-time scaling"),
    "LoTTSSampler": TEST_TIME_SCALING + ("best of n", "refine", "defect mask", "localized",
                                         "ksampler"),
    "LoTTSBestOfN": ("best of n", "best-of-n", "baseline") + TEST_TIME_SCALING,
}


def host_has_search_aliases() -> bool:
    """Does this host's ``io.Schema`` take ``search_aliases``?"""
    try:
        return "search_aliases" in inspect.signature(io.Schema).parameters
    except (TypeError, ValueError):
        return False


def schema_field(node_id: str) -> dict:
    """``{"search_aliases": [...]}`` for ``io.Schema(**...)`` where the host has the field,
    else ``{}``."""
    return {"search_aliases": list(ALIASES[node_id])} if host_has_search_aliases() else {}
