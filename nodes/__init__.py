"""The ComfyUI layer: one module per node, each exporting its two mapping dicts.

Node ids are public API (saved workflows store them): never rename one.
"""

from importlib import import_module

# Module names, in the order the nodes appear in the "LoTTS" menu.
_NODE_MODULES = (
    "fan_out",
    "localizer",
    "mask_preview",
    "masked_refine",
    "harmonize",
    "verifier_loader",
    "verifier_pick",
    "lotts_sampler",
    "best_of_n",
)

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
for _name in _NODE_MODULES:
    _module = import_module(f".{_name}", __name__)
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)
