"""LoTTS for ComfyUI: localized test-time scaling (arXiv:2511.19917) as ComfyUI nodes.

This file only registers: the nodes live in ``nodes/``, the method's math in ``lotts/``.
Every node is a V3 node (``comfy_api.latest.io.ComfyNode``), registered through the V3
entry point ``comfy_entrypoint``. ComfyUI 0.3.64's loader (nodes.py, load_custom_node)
reads NODE_CLASS_MAPPINGS first and only falls back to comfy_entrypoint when a module has
no mappings, so the pack exports the entry point alone.
"""

from .nodes import comfy_entrypoint

WEB_DIRECTORY = "./js"

__all__ = ["comfy_entrypoint", "WEB_DIRECTORY"]
