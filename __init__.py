"""LoTTS for ComfyUI: localized test-time scaling (arXiv:2511.19917) as ComfyUI nodes.

This file only registers: the nodes live in ``nodes/``, the method's math in ``lotts/``.
Classic registration (NODE_CLASS_MAPPINGS); the pack does not also export a V3
``comfy_entrypoint``, which would make ComfyUI ignore one of the two.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./js"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
