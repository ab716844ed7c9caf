"""Writes the UI-format example workflows in example_workflows/ from the node schemas.

Run with ComfyUI's python (it reads ComfyUI's and the pack's node schemas as /object_info
serves them, node_schemas.py, so widget order and sockets are right by construction):

    COMFYUI_PATH=~/ComfyUI ~/ComfyUI/.venv/bin/python scripts/make_example_workflows.py

The layout is computed: nodes stand in columns, each saved at least as big as the frontend
will make it (min_size) with room for what a run adds, so nothing overlaps and every widget
shows at the saved zoom. Loader nodes carry the model download metadata the frontend offers
for missing files (properties.models), every node its source pack (cnr_id, ver).

It also writes the staged pipeline as a subgraph blueprint, subgraphs/<name>.json: one
subgraph node whose inside is fan-out -> localizer -> refine -> harmonize -> pick. Hosts
that serve custom nodes' blueprints (ComfyUI 0.10: GET /global_subgraphs lists every
custom_nodes/<pack>/subgraphs/*.json) put it in the node library under "Subgraph
Blueprints"; anywhere, the file opens as a workflow (drag it onto the canvas).

tests/e2e/test_example_workflows.py queues every file in example_workflows/ on a real
server; tests/host/test_example_workflows_current.py checks the files equal this
script's output, so the two never drift apart; tests/host/test_example_workflow_layout.py
checks no two boxes overlap, tests/e2e/test_workflow_layout.py the same in both frontends.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OUT_DIR = os.path.join(REPO, "example_workflows")
BLUEPRINT_DIR = os.path.join(REPO, "subgraphs")
sys.path[:0] = [HERE, REPO]
import node_schemas  # noqa: E402
from lotts.verifiers.download import OFFICIAL_FILES  # noqa: E402  (pure python, no torch)

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}


def load_schemas():
    """/object_info of ComfyUI's nodes and the pack's (node_schemas.py), with NEWER_NODES
    where this ComfyUI predates them."""
    return {**NEWER_NODES, **node_schemas.object_info()}


# ---------------------------------------------------------------- model download metadata
# properties.models of the loader nodes: what the frontend offers to download when a file
# is missing. The checkpoints are the files (name and URL) ComfyUI's official templates use.
CHECKPOINTS = {
    "v1-5-pruned-emaonly-fp16.safetensors":
        "https://huggingface.co/Comfy-Org/stable-diffusion-v1-5-archive/resolve/main/"
        "v1-5-pruned-emaonly-fp16.safetensors?download=true",
    "sd_xl_base_1.0.safetensors":
        "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/"
        "sd_xl_base_1.0.safetensors?download=true",
    "flux1-dev-fp8.safetensors":
        "https://huggingface.co/Comfy-Org/flux1-dev/resolve/main/flux1-dev-fp8.safetensors?download=true",
    "flux1-schnell-fp8.safetensors":
        "https://huggingface.co/Comfy-Org/flux1-schnell/resolve/main/"
        "flux1-schnell-fp8.safetensors?download=true",
    "sd3.5_large_fp8_scaled.safetensors":
        "https://huggingface.co/Comfy-Org/stable-diffusion-3.5-fp8/resolve/main/"
        "sd3.5_large_fp8_scaled.safetensors?download=true",
}
# Backbones ComfyUI's templates load from split files (diffusion model, text encoder,
# VAE): the files and URLs those templates use.
SPLIT_MODELS = {
    "qwen_image": {
        "unet": ("qwen_image_fp8_e4m3fn.safetensors",
                 "https://huggingface.co/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/"
                 "diffusion_models/qwen_image_fp8_e4m3fn.safetensors"),
        "clip": ("qwen_2.5_vl_7b_fp8_scaled.safetensors",
                 "https://huggingface.co/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/"
                 "text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors"),
        "clip_type": "qwen_image",
        "vae": ("qwen_image_vae.safetensors",
                "https://huggingface.co/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/"
                "vae/qwen_image_vae.safetensors"),
        "shift": 3.1},
    "chroma": {
        "unet": ("Chroma1-HD.safetensors",
                 "https://huggingface.co/lodestones/Chroma1-HD/resolve/main/Chroma1-HD.safetensors"),
        "clip": ("t5xxl_fp8_e4m3fn_scaled.safetensors",
                 "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/"
                 "t5xxl_fp8_e4m3fn_scaled.safetensors"),
        "clip_type": "chroma",
        "vae": ("ae.safetensors",
                "https://huggingface.co/Comfy-Org/Lumina_Image_2.0_Repackaged/resolve/main/"
                "split_files/vae/ae.safetensors"),
        "shift": None},
    # ComfyUI 0.3.75+ (Z-Image, FLUX.2: added upstream in late November 2025): the files
    # their templates load
    "z_image_turbo": {
        "unet": ("z_image_turbo_bf16.safetensors",
                 "https://huggingface.co/Comfy-Org/z_image_turbo/resolve/main/split_files/"
                 "diffusion_models/z_image_turbo_bf16.safetensors"),
        "clip": ("qwen_3_4b.safetensors",
                 "https://huggingface.co/Comfy-Org/z_image_turbo/resolve/main/split_files/"
                 "text_encoders/qwen_3_4b.safetensors"),
        "clip_type": "lumina2",
        "vae": ("ae.safetensors",
                "https://huggingface.co/Comfy-Org/z_image_turbo/resolve/main/split_files/"
                "vae/ae.safetensors"),
        "shift": 3.0},
    "flux2_dev": {
        "unet": ("flux2_dev_fp8mixed.safetensors",
                 "https://huggingface.co/Comfy-Org/flux2-dev/resolve/main/split_files/"
                 "diffusion_models/flux2_dev_fp8mixed.safetensors"),
        "clip": ("mistral_3_small_flux2_fp8.safetensors",
                 "https://huggingface.co/Comfy-Org/flux2-dev/resolve/main/split_files/"
                 "text_encoders/mistral_3_small_flux2_fp8.safetensors"),
        "clip_type": "flux2",
        "vae": ("flux2-vae.safetensors",
                "https://huggingface.co/Comfy-Org/flux2-dev/resolve/main/split_files/"
                "vae/flux2-vae.safetensors"),
        "shift": None},
}
# Nodes of a newer ComfyUI than the oldest the pack supports, as ComfyUI 0.10 serves them in
# /object_info: the workflows that need them are generated the same on every host (and
# say which ComfyUI they need); a host that has the node uses its own schema.
NEWER_NODES = {
    "EmptyFlux2LatentImage": {  # ComfyUI 0.3.75+
        "input": {"required": {
            "width": ["INT", {"default": 1024, "min": 16, "max": 16384, "step": 16}],
            "height": ["INT", {"default": 1024, "min": 16, "max": 16384, "step": 16}],
            "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}]}},
        "input_order": {"required": ["width", "height", "batch_size"]},
        "output": ["LATENT"], "output_name": ["LATENT"], "name": "EmptyFlux2LatentImage",
        "display_name": "Empty Flux 2 Latent", "category": "latent"},
}
VERIFIER_WEIGHTS = "ImageReward/ImageReward.pt"


def verifier_models(verifier: str, weights: str) -> list[dict]:
    """The verifier loader's file, from the pack's own download table (the frontend matches
    a model entry to a widget value, so only the file the ``weights`` widget names)."""
    return [{"name": dest, "url": url, "directory": "lotts_verifiers"}
            for url, dest, _ in OFFICIAL_FILES[verifier] if dest == weights]


def node_sources() -> dict:
    """properties.cnr_id / ver per node kind: the pack's registry id and version for its
    nodes (what the frontend uses to name and find a missing node's pack), comfy-core at
    the oldest ComfyUI the pack supports for ComfyUI's own, as the official templates do."""
    meta = node_schemas.pyproject()
    comfy = re.search(r"[0-9][0-9.]*", meta["tool"]["comfy"]["requires-comfyui"]).group(0)
    return {"pack": {"cnr_id": meta["project"]["name"], "ver": meta["project"]["version"]},
            "core": {"cnr_id": "comfy-core", "ver": comfy}}


# ---------------------------------------------------------------- node sizes, as the frontend
# makes them. On load both frontends (1.27.10, 1.58.1) set each node to max(saved size,
# computeSize()); computeSize() is, in canvas px (LiteGraph constants in brackets):
#   height = max(socket inputs, outputs) * 20 [NODE_SLOT_HEIGHT] + 6
#            + (sum of widget rows + 8, if the node has widgets)
#   widget row = 20 [NODE_WIDGET_HEIGHT] + 4; a multiline text box 50 (its CSS minimum) + 4;
#   a linked multiline box on a LoTTS node 24 + 4 (js/lotts.js shrinks it to one row).
# The title bar [NODE_TITLE_HEIGHT = 30] sits above pos. The width is an upper bound of the
# title's and the slot labels' text (about 7 px a character at the canvas font). Saving
# nodes at least this big means the frontend never grows one into its neighbour;
# tests/e2e/test_workflow_layout.py checks it against both frontends.
TITLE_H = 30
SLOT_H = 20
WIDGET_ROW = 24
TEXT_BOX = 54
LINKED_TEXT_BOX = 28
NOTE_MIN_H = 90
# Room the frontend takes below a node after a run: the on-node views of js/lotts.js
# (viewer 280, score gallery up to 420, each + 4) and the image previews of output nodes.
IMAGE_PREVIEW = 260
AFTER_RUN = {"LoTTSDefectLocalizer": 284, "LoTTSSampler": 284 + 424, "LoTTSVerifierPick": 424,
             "LoTTSBestOfN": 424, "LoTTSMaskPreview": IMAGE_PREVIEW, "SaveImage": IMAGE_PREVIEW,
             "PreviewImage": IMAGE_PREVIEW}
GAP = 40  # between nodes (below the reserved room), and between columns
NODE_W = 320


def _is_multiline(kind, opts) -> bool:
    return kind == "STRING" and bool(opts.get("multiline"))


def widget_rows(node: dict, info: dict) -> list[tuple[str, int]]:
    """[(widget name, height)] of a UI node's widgets, as the frontend stacks them."""
    schema = info.get(node["type"])
    if schema is None:  # frontend-only nodes (notes)
        return []
    linked = {i["widget"]["name"] for i in node.get("inputs") or []
              if i.get("widget") and i.get("link") is not None}
    rows = []
    for _, name, kind, opts in node_schemas.inputs(schema):
        if not is_widget(kind, opts):
            continue
        if _is_multiline(kind, opts):
            small = name in linked and schema.get("lotts_pack_node")
            rows.append((name, LINKED_TEXT_BOX if small else TEXT_BOX))
        else:
            rows.append((name, WIDGET_ROW))
        if opts.get("control_after_generate"):
            rows.append(("control_after_generate", WIDGET_ROW))
    return rows


def min_size(node: dict, info: dict) -> list[int]:
    """An upper bound of what the frontend's computeSize() gives this UI node (no title)."""
    if node["type"] == "MarkdownNote":
        return [200, NOTE_MIN_H]
    sockets = [i for i in node.get("inputs") or [] if not i.get("widget")]
    outs = node.get("outputs") or []
    height = max(len(sockets), len(outs)) * SLOT_H + 6
    rows = widget_rows(node, info)
    if rows:
        height += sum(h for _, h in rows) + 8
    label = lambda slot: len(slot.get("label") or slot["name"])  # noqa: E731
    slots_w = max([(label(sockets[i]) if i < len(sockets) else 0) +
                   (label(outs[i]) if i < len(outs) else 0)
                   for i in range(max(len(sockets), len(outs)))] + [0])
    title = node.get("title") or info.get(node["type"], {}).get("display_name") or node["type"]
    width = max(8 * len(title) + 60, 7 * slots_w + 60)
    return [width, height]


def is_widget(kind, opts) -> bool:
    return (isinstance(kind, list) or kind in WIDGET_TYPES) and not opts.get("forceInput")


def note_height(text: str, width: int) -> int:
    """A MarkdownNote's height for ``text`` at ``width``, 1.2x what both frontends need (their
    markdown is 10 px text on 12 px lines, ~5.2 px a character; headings taller; a 10 px gap
    after each paragraph; the box sits 22 px inside the node; measured in
    tests/e2e/test_workflow_layout.py)."""
    per_line = max(10, int((width - 30) / 5.2))
    h = 30
    for para in text.split("\n"):
        if not para.strip():
            continue
        line = 30 if para.startswith("# ") else 22 if para.startswith("## ") else 12
        h += line * max(1, math.ceil(len(para) / per_line)) + 10
    return max(NOTE_MIN_H, int(1.2 * h) + 22)


class Loaded:
    """Where MODEL, CLIP and VAE come from when they are not one checkpoint's outputs (split
    loaders): ``link`` takes it in place of a node."""

    def __init__(self, **outputs):
        self.outputs = outputs  # {"MODEL": node, "CLIP": node, "VAE": node}


class Graph:
    def __init__(self, info):
        self.info = info
        self.sources = node_sources()
        self.nodes, self.links = [], []

    def _spec(self, type_):
        schema = self.info[type_]
        inputs = []
        for _, name, kind, opts in node_schemas.inputs(schema):
            inputs.append((name, "COMBO" if isinstance(kind, list) else kind, is_widget(kind, opts),
                           opts, kind[0] if isinstance(kind, list) and kind else None))
        outputs = list(zip(schema["output_name"], schema["output"]))
        return inputs, outputs

    def node(self, type_, widgets=None, title=None, width=NODE_W, models=None, extra_h=0):
        """A node (placed later by layout()); ``extra_h`` makes it taller than its minimum
        (the frontend gives the room to its text box)."""
        widgets = dict(widgets or {})
        inputs, outputs = self._spec(type_)
        source = self.sources["pack" if self.info[type_].get("lotts_pack_node") else "core"]
        node = {"id": len(self.nodes) + 1, "type": type_, "pos": [0, 0], "flags": {},
                "order": len(self.nodes), "mode": 0, "inputs": [], "outputs": [],
                "properties": {"Node name for S&R": type_, **source}, "widgets_values": []}
        if models:
            node["properties"]["models"] = models
        for name, kind, is_widget_, opts, first in inputs:
            if is_widget_:
                fallback = first if kind == "COMBO" else {"STRING": "", "INT": 0, "FLOAT": 0.0,
                                                          "BOOLEAN": False}.get(kind)
                value = widgets.pop(name, opts.get("default", fallback))
                node["widgets_values"].append(value)
                if opts.get("control_after_generate"):
                    node["widgets_values"].append("fixed")
            else:
                node["inputs"].append({"name": name, "type": kind, "link": None})
        if widgets:
            raise KeyError(f"{type_} has no widget(s) {sorted(widgets)}")
        for i, (name, kind) in enumerate(outputs):
            node["outputs"].append({"name": name, "type": kind, "links": [], "slot_index": i})
        if title:
            node["title"] = title
        node["_widget_names"] = [n for n, _, w, _, _ in inputs if w]
        node["_layout"] = {"width": width, "extra_h": extra_h}
        self.nodes.append(node)
        return node

    def note(self, text, width=360):
        node = {"id": len(self.nodes) + 1, "type": "MarkdownNote", "pos": [0, 0],
                "flags": {}, "order": len(self.nodes), "mode": 0,
                "inputs": [], "outputs": [], "properties": {}, "widgets_values": [text],
                "color": "#432", "bgcolor": "#653"}
        node["_layout"] = {"width": width, "height": note_height(text, width)}
        self.nodes.append(node)
        return node

    def link(self, src, output, dst, input_name):
        if isinstance(src, Loaded):
            src = src.outputs[output]
        out_idx = self._output(src, output)
        link_id = len(self.links) + 1
        kind = src["outputs"][out_idx]["type"]
        slot = self._input(dst, input_name, kind, link_id)
        src["outputs"][out_idx]["links"].append(link_id)
        self.links.append([link_id, src["id"], out_idx, dst["id"], slot, kind])

    @staticmethod
    def _output(src, output) -> int:
        return next(i for i, o in enumerate(src["outputs"]) if o["name"] == output or o["type"] == output)

    @staticmethod
    def _input(dst, input_name, kind, link_id) -> int:
        """The slot of ``dst``'s input ``input_name``, now fed by ``link_id``."""
        slot = next((i for i, s in enumerate(dst["inputs"]) if s["name"] == input_name), None)
        if slot is None:  # a widget fed by a link: add it as a widget input
            if input_name not in dst.get("_widget_names", []):
                raise KeyError(f"{dst['type']} has no input {input_name}")
            dst["inputs"].append({"name": input_name, "type": kind, "widget": {"name": input_name},
                                  "link": None})
            slot = len(dst["inputs"]) - 1
        dst["inputs"][slot]["link"] = link_id
        return slot

    # A subgraph's inside links to its input node (id -10) and output node (id -20).
    SUBGRAPH_IN, SUBGRAPH_OUT = -10, -20

    def link_from_input(self, index, kind, dst, input_name):
        """Link the subgraph's input ``index`` (of type ``kind``) to ``dst.input_name``."""
        link_id = len(self.links) + 1
        slot = self._input(dst, input_name, kind, link_id)
        self.links.append([link_id, self.SUBGRAPH_IN, index, dst["id"], slot, kind])
        return link_id

    def link_to_output(self, src, output, index):
        """Link ``src.output`` to the subgraph's output ``index``."""
        out_idx = self._output(src, output)
        link_id = len(self.links) + 1
        src["outputs"][out_idx]["links"].append(link_id)
        kind = src["outputs"][out_idx]["type"]
        self.links.append([link_id, src["id"], out_idx, self.SUBGRAPH_OUT, index, kind])
        return link_id

    def size(self, node) -> list[int]:
        """The size saved for a node: at least the frontend's minimum (min_size)."""
        lay = node["_layout"]
        if node["type"] == "MarkdownNote":
            return [lay["width"], lay["height"]]
        w, h = min_size(node, self.info)
        return [max(lay["width"], w), h + lay["extra_h"]]

    def layout(self, columns, header=None):
        """Place nodes in columns, left to right, each stacked top-down: a node's box is its
        title bar, its body and the room it takes after a run (AFTER_RUN), then GAP.
        ``header`` notes (one per column, or None) sit in a band above all columns."""
        header = header or [None] * len(columns)
        for n in self.nodes:
            n["size"] = self.size(n)
        band = max([TITLE_H + h["size"][1] for h in header if h] + [0])
        x = 0
        for head, col in zip(header, columns):
            width = max(n["size"][0] for n in ([head] if head else []) + col)
            if head:
                head["pos"] = [x, TITLE_H]
            y = band + GAP if band else 0
            for n in col:
                n["pos"] = [x, y + TITLE_H]
                y += TITLE_H + n["size"][1] + AFTER_RUN.get(n["type"], 0) + GAP
            x += width + GAP
        placed = [n for n in self.nodes if n in sum(columns, []) or n in header]
        if len(placed) != len(self.nodes):
            raise ValueError("layout() must place every node exactly once")

    def to_json(self):
        nodes = []
        for n in self.nodes:
            nodes.append({k: v for k, v in n.items() if not k.startswith("_")})
        # Open at a zoom where every widget is drawn (above the frontend's low-quality
        # threshold, 0.6), the top-left corner of the graph in view beside the frontend's
        # side bar and below its tab bar (1.58.1: ~55 and ~40 px).
        scale = 0.75
        left = min(n["pos"][0] for n in nodes)
        top = min(n["pos"][1] - TITLE_H for n in nodes)
        offset = [round(80 / scale - left, 2), round(60 / scale - top, 2)]
        return {"last_node_id": len(nodes), "last_link_id": len(self.links), "nodes": nodes,
                "links": self.links, "groups": [], "config": {},
                "extra": {"ds": {"scale": scale, "offset": offset}}, "version": 0.4}


def _model_loaders(g, ckpt):
    """The checkpoint loader, or for a split-file backbone (SPLIT_MODELS) the diffusion
    model, text encoder and VAE loaders (and the model's shift); returns (the node or
    Loaded that gives MODEL / CLIP / VAE, the loader nodes)."""
    if ckpt in CHECKPOINTS:
        node = g.node("CheckpointLoaderSimple", {"ckpt_name": ckpt},
                      models=[{"name": ckpt, "url": CHECKPOINTS[ckpt], "directory": "checkpoints"}])
        return node, [node]
    files = SPLIT_MODELS[ckpt]

    def model(key, directory):
        return [{"name": files[key][0], "url": files[key][1], "directory": directory}]

    unet = g.node("UNETLoader", {"unet_name": files["unet"][0]},
                  models=model("unet", "diffusion_models"))
    clip = g.node("CLIPLoader", {"clip_name": files["clip"][0], "type": files["clip_type"]},
                  models=model("clip", "text_encoders"))
    vae = g.node("VAELoader", {"vae_name": files["vae"][0]}, models=model("vae", "vae"))
    nodes, model_out = [unet], unet
    if files["shift"] is not None:
        model_out = g.node("ModelSamplingAuraFlow", {"shift": files["shift"]})
        g.link(unet, "MODEL", model_out, "model")
        nodes.append(model_out)
    return Loaded(MODEL=model_out, CLIP=clip, VAE=vae), nodes + [clip, vae]


def _loaders(g, ckpt, width, height, latent_node, guidance, negative):
    """Models, prompt (one text for the encoder, the localizer and the verifier),
    positive/negative conditioning and the empty latent; returns them and their column."""
    ckpt_node, loader_nodes = _model_loaders(g, ckpt)
    prompt = g.node("PrimitiveStringMultiline",
                    {"value": "a portrait photo of an old fisherman mending a net, detailed hands"},
                    title="Prompt", extra_h=40)
    pos = g.node("CLIPTextEncode", title="Positive")
    neg = g.node("CLIPTextEncode", {"text": negative}, title="Negative", extra_h=20)
    latent = g.node(latent_node, {"width": width, "height": height, "batch_size": 1})
    g.link(ckpt_node, "CLIP", pos, "clip")
    g.link(ckpt_node, "CLIP", neg, "clip")
    g.link(prompt, "STRING", pos, "text")
    column = [*loader_nodes, prompt, pos, neg, latent]
    if guidance is not None:
        guided = g.node("FluxGuidance", {"guidance": guidance})
        g.link(pos, "CONDITIONING", guided, "conditioning")
        pos = guided
        column.append(guided)
    return (ckpt_node, prompt, pos, neg, latent), column


def _decode(g, src, output, ckpt_node, title):
    node = g.node("VAEDecode", title=title)
    g.link(src, output, node, "samples")
    g.link(ckpt_node, "VAE", node, "vae")
    return node


VERIFIER_NOTE = ("Verifier weights: put ImageReward.pt (+ med_config.json, vocab.txt) in "
                 "models/lotts_verifiers/ImageReward/, or set the loader's download to "
                 "enabled -- see the README, 'Verifiers'.")


def _verifier_loader(g):
    return g.node("LoTTSVerifierLoader", {"verifier": "ImageReward", "weights": VERIFIER_WEIGHTS,
                                          "precision": "auto"},
                  models=verifier_models("ImageReward", VERIFIER_WEIGHTS))


def _verifier_pick(g, images, prompt, prefix: str, ranked_title: str):
    """Verifier Loader -> Verifier Pick over ``images`` -> Save Image (the best) and Preview
    Image (every image, best first); returns (loader, pick, save, preview)."""
    ver = _verifier_loader(g)
    pick = g.node("LoTTSVerifierPick", {"top_k": 1})
    g.link(ver, "LOTTS_VERIFIER", pick, "verifier")
    g.link(images, "IMAGE", pick, "images")
    g.link(prompt, "STRING", pick, "prompt")
    save = g.node("SaveImage", {"filename_prefix": prefix}, title="Save the best")
    g.link(pick, "best", save, "images")
    ranked = g.node("PreviewImage", title=ranked_title)
    g.link(pick, "ranked", ranked, "images")
    return ver, pick, save, ranked


def lotts_pipeline(info, ckpt, width, height, steps, cfg, start_step, end_step, title,
                   sampler="euler", scheduler="normal", latent_node="EmptyLatentImage",
                   guidance=None, negative="blurry, lowres, deformed", why_t0=""):
    """Stock loaders -> fan-out -> localizer (+preview) -> refine -> harmonize -> verifier
    pick over the candidates and their refinements -> save the winner, preview the ranking."""
    g = Graph(info)
    intro = g.note(f"# {title}\n\nLocalized test-time scaling (LoTTS): sample N candidates, "
                   "find each one's weak regions from the model's own attention, re-sample only "
                   "there, harmonize the whole image for a few steps, and let a verifier pick "
                   "the best of every sample.\n\nStages run left to right.", width=400)
    (ckpt_node, prompt, pos, neg, latent), loaders = _loaders(g, ckpt, width, height,
                                                              latent_node, guidance, negative)

    note1 = g.note("## 1. Seed fan-out\nN candidates from seeds seed..seed+N-1 (candidate i = "
                   "KSampler with seed + i).")
    fan = g.node("LoTTSSeedFanOut", {"seed": 0, "candidates": 4, "steps": steps, "cfg": cfg,
                                     "sampler_name": sampler, "scheduler": scheduler})
    for src, out, inp in ((ckpt_node, "MODEL", "model"), (pos, "CONDITIONING", "positive"),
                          (neg, "CONDITIONING", "negative"), (latent, "LATENT", "latent_image")):
        g.link(src, out, fan, inp)
    decode_c = _decode(g, fan, "candidates", ckpt_node, "Decode candidates")

    note2 = g.note("## 2. Defect localizer\nContrasts the attention of 'A low-quality image of "
                   "{p}' against 'A high-quality image of {p}', propagates it with "
                   "self-attention, adds the prompt's attention as a prior and keeps the top "
                   "mask_ratio. The preview shows what will be re-sampled (bright = weak).")
    loc = g.node("LoTTSDefectLocalizer", {"mask_ratio": 0.5, "prior_weight": 0.5,
                                          "probe_step": int(steps * 0.75), "seed": 0,
                                          "steps": steps, "scheduler": scheduler})
    g.link(ckpt_node, "MODEL", loc, "model")
    g.link(ckpt_node, "CLIP", loc, "clip")
    g.link(ckpt_node, "VAE", loc, "vae")
    g.link(prompt, "STRING", loc, "prompt")
    g.link(fan, "candidates", loc, "candidates")
    g.link(pos, "CONDITIONING", loc, "positive")  # the probe sees what sampling saw
    preview = g.node("LoTTSMaskPreview", {"opacity": 0.5})
    g.link(decode_c, "IMAGE", preview, "images")
    g.link(loc, "mask", preview, "mask")
    g.link(loc, "heatmap", preview, "heatmap")

    note3 = g.note(f"## 3. Masked refine\nRe-noise each candidate to start_step (t0) and "
                   f"re-denoise only inside its mask, k = 2 times with new noise, up to "
                   f"end_step. Output: N x k latents, candidate-major.\n\nt0 = {start_step} of "
                   f"{steps}: {why_t0}")
    ref = g.node("LoTTSMaskedRefine", {"seed": 100, "refinements": 2, "steps": steps, "cfg": cfg,
                                       "sampler_name": sampler, "scheduler": scheduler,
                                       "start_step": start_step, "end_step": end_step})
    for src, out, inp in ((ckpt_node, "MODEL", "model"), (pos, "CONDITIONING", "positive"),
                          (neg, "CONDITIONING", "negative"), (fan, "candidates", "candidates"),
                          (loc, "mask", "mask")):
        g.link(src, out, ref, inp)

    note4 = g.note("## 4. Harmonize\nThe last steps on the whole image, without the mask, so "
                   "the re-sampled regions blend with the rest. Image Batch then joins the "
                   "N x k refinements and the N candidates for the verifier.")
    harm = g.node("LoTTSHarmonize", {"seed": 200, "steps": steps, "cfg": cfg,
                                     "sampler_name": sampler, "scheduler": scheduler,
                                     "start_step": end_step, "add_noise": False})
    for src, out, inp in ((ckpt_node, "MODEL", "model"), (pos, "CONDITIONING", "positive"),
                          (neg, "CONDITIONING", "negative"), (ref, "refined", "latent")):
        g.link(src, out, harm, inp)
    decode_r = _decode(g, harm, "latent", ckpt_node, "Decode refined")
    joined = g.node("ImageBatch", title="Refinements + candidates")
    g.link(decode_r, "IMAGE", joined, "image1")
    g.link(decode_c, "IMAGE", joined, "image2")

    note5 = g.note("## 5. Verifier pick\nScores every sample against the prompt -- the "
                   "refinements and the unrefined candidates compete -- and saves the best; "
                   "the preview shows them all, best first, and the node their scores.\n\n"
                   + VERIFIER_NOTE)
    ver, pick, save, ranked = _verifier_pick(g, joined, prompt, "LoTTS/best",
                                             "Every sample, best first")

    g.layout([loaders, [fan, decode_c], [loc, preview], [ref], [harm, decode_r, joined],
              [ver, pick, save, ranked]],
             header=[intro, note1, note2, note3, note4, note5])
    return g.to_json()


def _lotts_sampler(g, loaders, ver, steps, cfg, sampler, scheduler, start_step, end_step):
    """A LoTTS Sampler wired to the loaders and the verifier."""
    ckpt_node, prompt, pos, neg, latent = loaders
    lotts = g.node("LoTTSSampler", {
        "seed": 0, "candidates": 4, "refinements": 2, "depth": 1, "steps": steps, "cfg": cfg,
        "sampler_name": sampler, "scheduler": scheduler, "start_step": start_step,
        "harmonize_steps": steps - end_step, "mask_ratio": 0.5, "prior_weight": 0.5})
    for src, out, inp in ((ckpt_node, "MODEL", "model"), (ckpt_node, "CLIP", "clip"),
                          (ckpt_node, "VAE", "vae"), (pos, "CONDITIONING", "positive"),
                          (neg, "CONDITIONING", "negative"), (prompt, "STRING", "prompt"),
                          (ver, "LOTTS_VERIFIER", "verifier"), (latent, "LATENT", "latent_image")):
        g.link(src, out, lotts, inp)
    return lotts


def one_node(info, ckpt, width, height, steps, cfg, start_step, end_step, title,
             sampler="euler", scheduler="normal", latent_node="EmptyLatentImage", guidance=None,
             negative="blurry, lowres, deformed", why_t0=""):
    """LoTTS Sampler in place of a KSampler: loaders -> LoTTSSampler -> save best."""
    g = Graph(info)
    intro = g.note(f"# {title}\n\nLoTTS Sampler runs the whole pipeline: N candidates, defect "
                   "localization, k masked refinements each, harmonization, and a verifier pick "
                   "over every sample (the unrefined candidates compete too). Its report lists "
                   f"the NFE each stage spent.\n\nt0 = start_step = {start_step} of {steps}: "
                   f"{why_t0}", width=420)
    loaders, column = _loaders(g, ckpt, width, height, latent_node, guidance, negative)
    ver_note = g.note(VERIFIER_NOTE)
    ver = _verifier_loader(g)
    lotts = _lotts_sampler(g, loaders, ver, steps, cfg, sampler, scheduler, start_step, end_step)
    save = g.node("SaveImage", {"filename_prefix": "LoTTS/best"})
    g.link(lotts, "image", save, "images")
    every = g.node("PreviewImage", title="Every sample, best first")
    g.link(lotts, "all_images", every, "images")
    g.layout([column + [ver_note, ver], [lotts], [save, every]], header=[intro, None, None])
    return g.to_json()


def versus_best_of_n(info, ckpt, width, height, steps, cfg, start_step, end_step, title,
                     sampler="euler", scheduler="normal", latent_node="EmptyLatentImage",
                     guidance=None, negative="blurry, lowres, deformed", why_t0=""):
    """LoTTS and Best-of-N side by side at equal NFE (the report sets Best-of-N's M)."""
    g = Graph(info)
    intro = g.note(f"# {title}\n\nLeft: LoTTS Sampler. Right: Best-of-N with the same "
                   "verifier, its sample count M set from LoTTS's report (match_budget) so both "
                   "spend the same number of denoiser evaluations (NFE). Compare the two "
                   "pictures and the scores on the nodes.", width=420)
    loaders, column = _loaders(g, ckpt, width, height, latent_node, guidance, negative)
    ckpt_node, prompt, pos, neg, latent = loaders
    ver_note = g.note(VERIFIER_NOTE)
    ver = _verifier_loader(g)
    lotts = _lotts_sampler(g, loaders, ver, steps, cfg, sampler, scheduler, start_step, end_step)
    bon = g.node("LoTTSBestOfN", {"seed": 1000, "steps": steps, "cfg": cfg,
                                  "sampler_name": sampler, "scheduler": scheduler, "samples": 8})
    for src, out, inp in ((ckpt_node, "MODEL", "model"), (ckpt_node, "VAE", "vae"),
                          (pos, "CONDITIONING", "positive"), (neg, "CONDITIONING", "negative"),
                          (prompt, "STRING", "prompt"), (ver, "LOTTS_VERIFIER", "verifier"),
                          (latent, "LATENT", "latent_image"), (lotts, "report", "match_budget")):
        g.link(src, out, bon, inp)
    save_l = g.node("SaveImage", {"filename_prefix": "LoTTS/lotts_best"}, title="LoTTS best")
    g.link(lotts, "image", save_l, "images")
    save_b = g.node("SaveImage", {"filename_prefix": "LoTTS/best_of_n_best"},
                    title="Best-of-N best")
    g.link(bon, "best", save_b, "images")
    g.layout([column + [ver_note, ver], [lotts], [bon], [save_l, save_b]],
             header=[intro, None, None, None])
    return g.to_json()


def fix_image(info, ckpt, steps, cfg, start_step, end_step, title, sampler="euler",
              scheduler="normal", negative="blurry, lowres, deformed", **_):
    """Fix an image you already have: its weak regions are found, re-sampled k times, and
    the original competes with its refinements in the verifier pick."""
    g = Graph(info)
    intro = g.note(f"# {title}\n\nLoad an image and describe it in the prompt. The localizer "
                   "finds its weak regions, Masked Refine re-samples only there (k = 4 times), "
                   "Harmonize blends them, and the verifier picks the best of the refinements "
                   "AND the original -- so the result is never worse than your image by the "
                   "verifier's measure. Put a noise mask on the latent (Set Latent Noise Mask) "
                   "to allow changes only inside it.", width=420)
    ckpt_node = g.node("CheckpointLoaderSimple", {"ckpt_name": ckpt},
                       models=[{"name": ckpt, "url": CHECKPOINTS[ckpt], "directory": "checkpoints"}])
    # Load Image shows its picture (and an upload button) as soon as it loads: 344 px in
    # frontend 1.27.10
    image = g.node("LoadImage", {"image": "example.png"}, title="Your image", extra_h=272)
    prompt = g.node("PrimitiveStringMultiline", {"value": "a photo of a cat sitting on a chair"},
                    title="Prompt (what the image shows)", extra_h=40)
    pos = g.node("CLIPTextEncode", title="Positive")
    neg = g.node("CLIPTextEncode", {"text": negative}, title="Negative", extra_h=20)
    enc = g.node("VAEEncode")
    g.link(ckpt_node, "CLIP", pos, "clip")
    g.link(ckpt_node, "CLIP", neg, "clip")
    g.link(prompt, "STRING", pos, "text")
    g.link(image, "IMAGE", enc, "pixels")
    g.link(ckpt_node, "VAE", enc, "vae")
    loc = g.node("LoTTSDefectLocalizer", {"mask_ratio": 0.3, "prior_weight": 0.5,
                                          "probe_step": int(steps * 0.75), "seed": 0,
                                          "steps": steps, "scheduler": scheduler})
    for src, out, inp in ((ckpt_node, "MODEL", "model"), (ckpt_node, "CLIP", "clip"),
                          (ckpt_node, "VAE", "vae"), (prompt, "STRING", "prompt"),
                          (enc, "LATENT", "candidates"), (pos, "CONDITIONING", "positive")):
        g.link(src, out, loc, inp)
    preview = g.node("LoTTSMaskPreview", {"opacity": 0.5})
    g.link(image, "IMAGE", preview, "images")
    g.link(loc, "mask", preview, "mask")
    g.link(loc, "heatmap", preview, "heatmap")
    ref = g.node("LoTTSMaskedRefine", {"seed": 0, "refinements": 4, "steps": steps, "cfg": cfg,
                                       "sampler_name": sampler, "scheduler": scheduler,
                                       "start_step": start_step, "end_step": end_step})
    for src, out, inp in ((ckpt_node, "MODEL", "model"), (pos, "CONDITIONING", "positive"),
                          (neg, "CONDITIONING", "negative"), (enc, "LATENT", "candidates"),
                          (loc, "mask", "mask")):
        g.link(src, out, ref, inp)
    harm = g.node("LoTTSHarmonize", {"seed": 0, "steps": steps, "cfg": cfg,
                                     "sampler_name": sampler, "scheduler": scheduler,
                                     "start_step": end_step, "add_noise": False})
    for src, out, inp in ((ckpt_node, "MODEL", "model"), (pos, "CONDITIONING", "positive"),
                          (neg, "CONDITIONING", "negative"), (ref, "refined", "latent")):
        g.link(src, out, harm, inp)
    decode = _decode(g, harm, "latent", ckpt_node, "Decode refinements")
    joined = g.node("ImageBatch", title="Original + refinements")
    g.link(image, "IMAGE", joined, "image1")   # the original is image 0 of the pick
    g.link(decode, "IMAGE", joined, "image2")
    ver, pick, save, ranked = _verifier_pick(g, joined, prompt, "LoTTS/fixed",
                                             "Original and refinements, best first")
    ver_note = g.note(VERIFIER_NOTE)
    g.layout([[ckpt_node, image, prompt, pos, neg, enc], [loc, preview], [ref, harm, decode],
              [joined, ver_note, ver, pick], [save, ranked]],
             header=[intro, None, None, None, None])
    return g.to_json()


# t0 per backbone family. The paper reports SD2.1 ~ 25/50, SDXL ~ 15/50, FLUX ~ 1 of its
# short schedule: the stronger the model, the earlier (noisier) it can restart and still
# keep the unmasked context coherent. We keep those fractions of the schedule.
WORKFLOWS = {
    "lotts_sd15.json": dict(
        ckpt="v1-5-pruned-emaonly-fp16.safetensors", width=512, height=512, steps=30, cfg=7.5,
        start_step=15, end_step=27, title="LoTTS on SD1.5",
        why_t0="half-way, the paper's SD2.1 choice (25 of 50)."),
    "lotts_sdxl.json": dict(
        ckpt="sd_xl_base_1.0.safetensors", width=1024, height=1024, steps=30, cfg=7.0,
        start_step=9, end_step=27, title="LoTTS on SDXL",
        why_t0="30% in, the paper's SDXL choice (15 of 50)."),
    "lotts_flux_dev.json": dict(
        ckpt="flux1-dev-fp8.safetensors", width=1024, height=1024, steps=20, cfg=1.0,
        start_step=4, end_step=18, title="LoTTS on FLUX.1-dev", sampler="euler",
        scheduler="simple", latent_node="EmptySD3LatentImage", guidance=3.5, negative="",
        why_t0="20% in: FLUX fixes layout in its first steps, so an early restart (the paper "
               "uses ~1 step of FLUX's short schedule) still re-draws details freely."),
    "lotts_flux_schnell.json": dict(
        ckpt="flux1-schnell-fp8.safetensors", width=1024, height=1024, steps=4, cfg=1.0,
        start_step=1, end_step=3, title="LoTTS on FLUX.1-schnell", sampler="euler",
        scheduler="simple", latent_node="EmptySD3LatentImage", negative="",
        why_t0="step 1 of 4, the paper's FLUX choice."),
    "lotts_sd35.json": dict(
        ckpt="sd3.5_large_fp8_scaled.safetensors", width=1024, height=1024, steps=28, cfg=4.5,
        start_step=8, end_step=25, title="LoTTS on SD3.5 Large", sampler="euler",
        scheduler="sgm_uniform", latent_node="EmptySD3LatentImage", negative="",
        why_t0="30% in, as for SDXL: a flow model of similar strength."),
    "lotts_qwen_image.json": dict(
        ckpt="qwen_image", width=1328, height=1328, steps=20, cfg=2.5, start_step=4,
        end_step=18, title="LoTTS on Qwen-Image", sampler="euler", scheduler="simple",
        latent_node="EmptySD3LatentImage", negative="",
        why_t0="20% in, as for FLUX: a strong flow model fixes the layout early."),
    "lotts_chroma.json": dict(
        ckpt="chroma", width=1024, height=1024, steps=26, cfg=4.0, start_step=6, end_step=23,
        title="LoTTS on Chroma", sampler="euler", scheduler="simple",
        latent_node="EmptySD3LatentImage", negative="low quality, bad anatomy, blurry",
        why_t0="about 25% in: Chroma is FLUX-derived but sampled with real CFG and more "
               "steps."),
    "lotts_z_image_turbo.json": dict(
        ckpt="z_image_turbo", width=1024, height=1024, steps=8, cfg=1.0, start_step=2,
        end_step=7, title="LoTTS on Z-Image Turbo (needs ComfyUI 0.3.75 or newer)",
        sampler="res_multistep", scheduler="simple", latent_node="EmptySD3LatentImage",
        negative="",
        why_t0="step 2 of 8, as for FLUX.1-schnell: a distilled few-step model fixes the "
               "layout in its first steps."),
    "lotts_flux2_dev.json": dict(
        ckpt="flux2_dev", width=1024, height=1024, steps=20, cfg=1.0, start_step=4,
        end_step=18, title="LoTTS on FLUX.2-dev (needs ComfyUI 0.3.75 or newer)",
        sampler="euler", scheduler="simple", latent_node="EmptyFlux2LatentImage",
        guidance=4.0, negative="",
        why_t0="20% in, as for FLUX.1-dev."),
}


# One-node and side-by-side variants reuse the families' settings.
VARIANTS = {
    "lotts_sampler_sd15.json": (one_node, "lotts_sd15.json", "LoTTS in one node (SD1.5)"),
    "lotts_sampler_sdxl.json": (one_node, "lotts_sdxl.json", "LoTTS in one node (SDXL)"),
    "lotts_vs_best_of_n_sd15.json": (versus_best_of_n, "lotts_sd15.json",
                                     "LoTTS vs Best-of-N at equal NFE (SD1.5)"),
    "lotts_fix_image_sd15.json": (fix_image, "lotts_sd15.json", "Fix an existing image (SD1.5)"),
}


BLUEPRINT_NAME = "LoTTS staged pipeline"
# The blueprint's sockets: (name, type, [(stage, input)...]) in, (name, stage, output) out.
BLUEPRINT_INPUTS = [
    ("model", "MODEL", [("fan", "model"), ("loc", "model"), ("ref", "model"), ("harm", "model")]),
    ("clip", "CLIP", [("loc", "clip")]),
    ("vae", "VAE", [("loc", "vae"), ("dec_c", "vae"), ("dec_r", "vae")]),
    ("positive", "CONDITIONING", [("fan", "positive"), ("loc", "positive"), ("ref", "positive"),
                                  ("harm", "positive")]),
    ("negative", "CONDITIONING", [("fan", "negative"), ("ref", "negative"), ("harm", "negative")]),
    ("latent_image", "LATENT", [("fan", "latent_image")]),
    ("verifier", "LOTTS_VERIFIER", [("pick", "verifier")]),
    ("prompt", "STRING", [("loc", "prompt"), ("pick", "prompt")]),
]
BLUEPRINT_OUTPUTS = [("best", "pick", "best"), ("best_latent", "pick", "best_latent"),
                     ("ranked", "pick", "ranked"), ("mask", "loc", "mask")]
BLUEPRINT_DESCRIPTION = (
    "LoTTS, stage by stage, in one block: Seed Fan-Out (N candidates) -> Defect Localizer "
    "(each candidate's weak regions) -> Masked Refine (k re-samples inside the mask) -> "
    "Harmonize (the last steps on the whole image) -> Verifier Pick (the best of the "
    "refinements and the candidates). Connect a checkpoint's model, clip and vae, the "
    "positive and negative conditioning, an empty latent, a LoTTS Verifier Loader and the "
    "prompt text; open the subgraph to change N, k, steps, cfg, t0 or the mask ratio.")


def _stable_id(*parts) -> str:
    """A UUID that is the same on every run (the generated file must not change)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "lotts-comfyui/" + "/".join(parts)))


def staged_blueprint(info, steps, cfg, start_step, end_step, sampler="euler",
                     scheduler="normal", **_):
    """The staged pipeline as a subgraph blueprint (the frontend's format: a workflow whose
    root is one subgraph node; the inside in ``definitions.subgraphs``)."""
    g = Graph(info)
    stage = {
        "fan": g.node("LoTTSSeedFanOut", {"seed": 0, "candidates": 4, "steps": steps, "cfg": cfg,
                                          "sampler_name": sampler, "scheduler": scheduler}),
        "loc": g.node("LoTTSDefectLocalizer", {"mask_ratio": 0.5, "prior_weight": 0.5,
                                               "probe_step": int(steps * 0.75), "seed": 0,
                                               "steps": steps, "scheduler": scheduler}),
        "ref": g.node("LoTTSMaskedRefine", {"seed": 100, "refinements": 2, "steps": steps,
                                            "cfg": cfg, "sampler_name": sampler,
                                            "scheduler": scheduler, "start_step": start_step,
                                            "end_step": end_step}),
        "harm": g.node("LoTTSHarmonize", {"seed": 200, "steps": steps, "cfg": cfg,
                                          "sampler_name": sampler, "scheduler": scheduler,
                                          "start_step": end_step, "add_noise": False}),
        "dec_c": g.node("VAEDecode", title="Decode candidates"),
        "dec_r": g.node("VAEDecode", title="Decode refined"),
        "joined": g.node("ImageBatch", title="Refinements + candidates"),
        "pick": g.node("LoTTSVerifierPick", {"top_k": 1}),
    }
    for src, out, dst, inp in (("fan", "candidates", "loc", "candidates"),
                               ("fan", "candidates", "ref", "candidates"),
                               ("loc", "mask", "ref", "mask"), ("ref", "refined", "harm", "latent"),
                               ("fan", "candidates", "dec_c", "samples"),
                               ("harm", "latent", "dec_r", "samples"),
                               ("dec_r", "IMAGE", "joined", "image1"),
                               ("dec_c", "IMAGE", "joined", "image2"),
                               ("joined", "IMAGE", "pick", "images")):
        g.link(stage[src], out, stage[dst], inp)
    inputs, outputs = [], []
    for index, (name, kind, targets) in enumerate(BLUEPRINT_INPUTS):
        links = [g.link_from_input(index, kind, stage[n], inp) for n, inp in targets]
        inputs.append({"id": _stable_id("in", name), "name": name, "type": kind,
                       "linkIds": links, "localized_name": name})
    for index, (name, src, out) in enumerate(BLUEPRINT_OUTPUTS):
        link = g.link_to_output(stage[src], out, index)
        kind = g.links[link - 1][5]
        outputs.append({"id": _stable_id("out", name), "name": name, "type": kind,
                        "linkIds": [link], "localized_name": name})
    g.layout([[stage["fan"], stage["dec_c"]], [stage["loc"]], [stage["ref"]],
              [stage["harm"], stage["dec_r"], stage["joined"]], [stage["pick"]]])
    inner = g.to_json()
    right = max(n["pos"][0] + n["size"][0] for n in inner["nodes"])
    subgraph_id = _stable_id("subgraph", BLUEPRINT_NAME)
    definition = {
        "id": subgraph_id, "version": 1,
        "state": {"lastGroupId": 0, "lastNodeId": len(inner["nodes"]),
                  "lastLinkId": len(inner["links"]), "lastRerouteId": 0},
        "revision": 0, "config": {}, "name": BLUEPRINT_NAME, "category": "LoTTS",
        "description": BLUEPRINT_DESCRIPTION,
        "inputNode": {"id": Graph.SUBGRAPH_IN, "bounding": [-200, 0, 120, 40 + 20 * len(inputs)]},
        "outputNode": {"id": Graph.SUBGRAPH_OUT,
                       "bounding": [right + 80, 0, 120, 40 + 20 * len(outputs)]},
        "inputs": inputs, "outputs": outputs, "widgets": [],
        "nodes": inner["nodes"], "groups": [],
        "links": [dict(zip(("id", "origin_id", "origin_slot", "target_id", "target_slot", "type"), link))
                  for link in inner["links"]],
        "extra": {},
    }
    node = {"id": 1, "type": subgraph_id, "pos": [0, 0], "size": [320, 40 + 22 * len(inputs)],
            "flags": {}, "order": 0, "mode": 0, "title": BLUEPRINT_NAME,
            "inputs": [{"name": i["name"], "localized_name": i["name"], "type": i["type"], "link": None}
                       for i in inputs],
            "outputs": [{"name": o["name"], "localized_name": o["name"], "type": o["type"], "links": []}
                        for o in outputs],
            "properties": {}, "widgets_values": []}
    return {"id": _stable_id("workflow", BLUEPRINT_NAME), "revision": 0, "last_node_id": 1,
            "last_link_id": 0, "nodes": [node], "links": [], "groups": [],
            "definitions": {"subgraphs": [definition]}, "config": {},
            "extra": {"ds": {"scale": 1, "offset": [100, 100]},
                      "BlueprintDescription": BLUEPRINT_DESCRIPTION,
                      "BlueprintSearchAliases": ["test-time scaling", "best of n", "refine",
                                                 "defect mask", "localized"]},
            "version": 0.4}


def build_all(info):
    out = {name: lotts_pipeline(info, **kw) for name, kw in WORKFLOWS.items()}
    for name, (build, family, title) in VARIANTS.items():
        out[name] = build(info, **{**WORKFLOWS[family], "title": title})
    return out


def thumbnail(workflow: dict, path: str) -> None:
    """A 400x300 diagram of the workflow's LoTTS stages (no generated image is shown:
    the pack ships no sample pictures it did not make)."""
    from PIL import Image, ImageDraw
    types = [n["type"] for n in workflow["nodes"] if n["type"].startswith("LoTTS")
             and n["type"] != "LoTTSVerifierLoader"]
    title = next((n["widgets_values"][0].splitlines()[0].lstrip("# ") for n in workflow["nodes"]
                  if n["type"] == "MarkdownNote"), "LoTTS")
    img = Image.new("RGB", (400, 300), (24, 26, 32))
    d = ImageDraw.Draw(img)
    d.text((16, 14), title[:52], fill=(240, 240, 240))
    d.text((16, 32), "workflow diagram", fill=(150, 150, 160))
    y = 60
    for t in types:
        d.rounded_rectangle((24, y, 376, y + 30), radius=6, fill=(58, 74, 110), outline=(120, 150, 210))
        d.text((36, y + 9), t.replace("LoTTS", "LoTTS "), fill=(255, 255, 255))
        y += 38
        if y > 262:
            break
    img.save(path, quality=90)


def build_blueprints(info):
    """{file name: blueprint} of subgraphs/."""
    return {f"{BLUEPRINT_NAME}.json": staged_blueprint(info, **WORKFLOWS["lotts_sd15.json"])}


def main():
    os.makedirs(BLUEPRINT_DIR, exist_ok=True)
    for name, bp in build_blueprints(load_schemas()).items():
        with open(os.path.join(BLUEPRINT_DIR, name), "w") as f:
            json.dump(bp, f, indent=1)
            f.write("\n")
        print("wrote", os.path.join("subgraphs", name))
    os.makedirs(OUT_DIR, exist_ok=True)
    for name, wf in build_all(load_schemas()).items():
        with open(os.path.join(OUT_DIR, name), "w") as f:
            json.dump(wf, f, indent=1)
            f.write("\n")
        thumbnail(wf, os.path.join(OUT_DIR, name[:-len(".json")] + ".jpg"))
        print("wrote", os.path.join("example_workflows", name), "+ .jpg")


if __name__ == "__main__":
    main()
