"""LoTTSMaskPreview: see what will be re-sampled -- each candidate with its mask or
heatmap laid over it, shown on the node and passed on as an IMAGE."""

from __future__ import annotations

import nodes as comfy_nodes  # ComfyUI's nodes.py, for its PreviewImage saver
from comfy_api.latest import io

from ..lotts.preview import overlay
from . import inputs, search_aliases


class LoTTSMaskPreview(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LoTTSMaskPreview", display_name="LoTTS Mask Preview",
            **search_aliases.schema_field("LoTTSMaskPreview"),
            category=inputs.CATEGORY,
            description="Overlays each candidate's defect mask (red) or heatmap on the decoded "
                        "candidate, so you see which regions LoTTS will re-sample.",
            inputs=[
                io.Image.Input("images", tooltip="The decoded candidates (VAE Decode of the "
                                                 "fan-out)."),
                io.Mask.Input("mask", tooltip="The localizer's mask: one per candidate, or one "
                                              "for all."),
                io.Float.Input("opacity", default=0.5, min=0.0, max=1.0, step=0.05,
                               tooltip="How strongly the overlay covers the image."),
                io.Image.Input("heatmap", optional=True,
                               tooltip="The localizer's heatmap; when connected it is shown "
                                       "instead of the red mask."),
            ],
            outputs=[io.Image.Output(display_name="overlay",
                                     tooltip="The candidates with the overlay, one per "
                                             "candidate.")],
            is_output_node=True)

    @classmethod
    def execute(cls, *, images, mask, opacity, heatmap=None):
        n = images.shape[0]
        size = tuple(images.shape[1:3])
        if mask.ndim == 2:
            mask = mask.unsqueeze(0)
        if mask.shape[0] not in (1, n):
            raise ValueError(f"mask has {mask.shape[0]} masks for {n} images: give one per image.")
        if tuple(mask.shape[-2:]) != size:
            raise ValueError(f"mask is {mask.shape[-1]}x{mask.shape[-2]} but images are "
                             f"{size[1]}x{size[0]}: decode the same candidates the mask was "
                             "made for.")
        if heatmap is not None:
            if heatmap.shape[0] not in (1, n) or tuple(heatmap.shape[1:3]) != size:
                raise ValueError(f"heatmap {tuple(heatmap.shape)} does not match images "
                                 f"{tuple(images.shape)}.")
            layer = heatmap.expand(n, -1, -1, -1)
        else:
            layer = mask.expand(n, -1, -1)
        out = overlay(images, layer.to(images.device), opacity)
        ui = comfy_nodes.PreviewImage().save_images(out, filename_prefix="LoTTS_mask")["ui"]
        return io.NodeOutput(out, ui=ui)
