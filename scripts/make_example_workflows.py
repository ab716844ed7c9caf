"""Writes the UI-format example workflows in example_workflows/ from the node schemas.

Run with ComfyUI's python (it reads the real INPUT_TYPES of ComfyUI's and the pack's
nodes, so widget order and sockets are right by construction):

    COMFYUI_PATH=~/ComfyUI ~/ComfyUI/.venv/bin/python scripts/make_example_workflows.py

tests/e2e/test_example_workflows.py queues every file in example_workflows/ on a real
server; tests/host/test_example_workflows_current.py checks the files equal this
script's output, so the two never drift apart.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OUT_DIR = os.path.join(REPO, "example_workflows")
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


def load_schemas():
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from comfy_host import load_pack, require_comfyui
    require_comfyui()
    import nodes
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    load_pack()
    return nodes.NODE_CLASS_MAPPINGS


class Graph:
    def __init__(self, schemas):
        self.schemas = schemas
        self.nodes, self.links = [], []

    def _spec(self, type_):
        cls = self.schemas[type_]
        spec = cls.INPUT_TYPES()
        inputs = []
        for section in ("required", "optional"):
            for name, value in spec.get(section, {}).items():
                kind = value[0]
                opts = value[1] if len(value) > 1 and isinstance(value[1], dict) else {}
                if kind == "COMBO":  # V3 nodes: the options travel in the input's dict
                    kind = list(opts.get("options", []))
                is_widget = (isinstance(kind, list) or kind in WIDGET_TYPES) and not opts.get("forceInput")
                inputs.append((name, "COMBO" if isinstance(kind, list) else kind, is_widget, opts,
                               kind[0] if isinstance(kind, list) and kind else None))
        outputs = list(zip(cls.RETURN_NAMES if getattr(cls, "RETURN_NAMES", None) else cls.RETURN_TYPES,
                           cls.RETURN_TYPES))
        return inputs, outputs

    def node(self, type_, pos, widgets=None, title=None, width=320):
        widgets = dict(widgets or {})
        inputs, outputs = self._spec(type_)
        node = {"id": len(self.nodes) + 1, "type": type_, "pos": list(pos), "flags": {},
                "order": len(self.nodes), "mode": 0, "inputs": [], "outputs": [],
                "properties": {"Node name for S&R": type_}, "widgets_values": []}
        for name, kind, is_widget, opts, first in inputs:
            if is_widget:
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
        rows = len(node["inputs"]) + len(node["widgets_values"]) + len(outputs)
        node["size"] = [width, 46 + 24 * rows]
        if title:
            node["title"] = title
        node["_widget_names"] = [n for n, _, w, _, _ in inputs if w]
        self.nodes.append(node)
        return node

    def note(self, text, pos, size=(360, 160)):
        node = {"id": len(self.nodes) + 1, "type": "MarkdownNote", "pos": list(pos),
                "size": list(size), "flags": {}, "order": len(self.nodes), "mode": 0,
                "inputs": [], "outputs": [], "properties": {}, "widgets_values": [text],
                "color": "#432", "bgcolor": "#653"}
        self.nodes.append(node)
        return node

    def link(self, src, output, dst, input_name):
        out_idx = next(i for i, o in enumerate(src["outputs"]) if o["name"] == output or o["type"] == output)
        link_id = len(self.links) + 1
        kind = src["outputs"][out_idx]["type"]
        slot = next((i for i, s in enumerate(dst["inputs"]) if s["name"] == input_name), None)
        if slot is None:  # a widget fed by a link: add it as a widget input
            if input_name not in dst.get("_widget_names", []):
                raise KeyError(f"{dst['type']} has no input {input_name}")
            dst["inputs"].append({"name": input_name, "type": kind, "widget": {"name": input_name},
                                  "link": None})
            slot = len(dst["inputs"]) - 1
        dst["inputs"][slot]["link"] = link_id
        src["outputs"][out_idx]["links"].append(link_id)
        self.links.append([link_id, src["id"], out_idx, dst["id"], slot, kind])

    def to_json(self):
        nodes = []
        for n in self.nodes:
            n = dict(n)
            n.pop("_widget_names", None)
            nodes.append(n)
        return {"last_node_id": len(nodes), "last_link_id": len(self.links), "nodes": nodes,
                "links": self.links, "groups": [], "config": {},
                "extra": {"ds": {"scale": 0.75, "offset": [40, 40]}}, "version": 0.4}


def _loaders(g, ckpt, width, height, latent_node, guidance, negative, x0=0):
    """Checkpoint, prompt (one text for the encoder, the localizer and the verifier),
    positive/negative conditioning and the empty latent; returns them."""
    ckpt_node = g.node("CheckpointLoaderSimple", (x0, 0), {"ckpt_name": ckpt})
    prompt = g.node("PrimitiveStringMultiline", (x0, 160),
                    {"value": "a portrait photo of an old fisherman mending a net, detailed hands"},
                    title="Prompt")
    pos = g.node("CLIPTextEncode", (x0, 360), title="Positive")
    neg = g.node("CLIPTextEncode", (x0, 500), {"text": negative}, title="Negative")
    latent = g.node(latent_node, (x0, 660), {"width": width, "height": height, "batch_size": 1})
    g.link(ckpt_node, "CLIP", pos, "clip")
    g.link(ckpt_node, "CLIP", neg, "clip")
    g.link(prompt, "STRING", pos, "text")
    if guidance is not None:
        guided = g.node("FluxGuidance", (x0, 800), {"guidance": guidance})
        g.link(pos, "CONDITIONING", guided, "conditioning")
        pos = guided
    return ckpt_node, prompt, pos, neg, latent


def lotts_pipeline(schemas, ckpt, width, height, steps, cfg, start_step, end_step, title,
                   sampler="euler", scheduler="normal", latent_node="EmptyLatentImage",
                   guidance=None, negative="blurry, lowres, deformed", why_t0=""):
    """Stock loaders -> fan-out -> decode -> localizer (+preview) -> refine -> harmonize -> save."""
    g = Graph(schemas)
    x = [0, 420, 840, 1260, 1680]
    g.note(f"# {title}\n\nLocalized test-time scaling (LoTTS): sample N candidates, find each "
           "one's weak regions from the model's own attention, re-sample only there, then "
           "harmonize the whole image for a few steps.\n\nStages run left to right. Pick the "
           "best result by eye in the Save node, or add LoTTS Verifier Pick.", (x[0], -260), (400, 220))
    ckpt_node, prompt, pos, neg, latent = _loaders(g, ckpt, width, height, latent_node,
                                                   guidance, negative, x[0])

    g.note("## 1. Seed fan-out\nN candidates from seeds seed..seed+N-1 (candidate i = KSampler "
           "with seed + i).", (x[1], -180), (360, 120))
    fan = g.node("LoTTSSeedFanOut", (x[1], 0), {"seed": 0, "candidates": 4, "steps": steps,
                                                "cfg": cfg, "sampler_name": sampler,
                                                "scheduler": scheduler})
    for src, out, inp in ((ckpt_node, "MODEL", "model"), (pos, "CONDITIONING", "positive"),
                          (neg, "CONDITIONING", "negative"), (latent, "LATENT", "latent_image")):
        g.link(src, out, fan, inp)
    decode_c = g.node("VAEDecode", (x[1], 380), title="Decode candidates")
    g.link(fan, "candidates", decode_c, "samples")
    g.link(ckpt_node, "VAE", decode_c, "vae")

    g.note("## 2. Defect localizer\nContrasts the attention of 'A low-quality image of {p}' "
           "against 'A high-quality image of {p}', propagates it with self-attention, adds the "
           "prompt's attention as a prior and keeps the top mask_ratio. The preview shows what "
           "will be re-sampled (bright = weak).", (x[2], -220), (380, 180))
    loc = g.node("LoTTSDefectLocalizer", (x[2], 0), {"mask_ratio": 0.5, "prior_weight": 0.5,
                                                     "probe_step": int(steps * 0.75), "seed": 0,
                                                     "steps": steps, "scheduler": scheduler})
    g.link(ckpt_node, "MODEL", loc, "model")
    g.link(ckpt_node, "CLIP", loc, "clip")
    g.link(ckpt_node, "VAE", loc, "vae")
    g.link(prompt, "STRING", loc, "prompt")
    g.link(fan, "candidates", loc, "candidates")
    preview = g.node("LoTTSMaskPreview", (x[2], 460), {"opacity": 0.5})
    g.link(decode_c, "IMAGE", preview, "images")
    g.link(loc, "mask", preview, "mask")
    g.link(loc, "heatmap", preview, "heatmap")

    g.note(f"## 3. Masked refine\nRe-noise each candidate to start_step (t0) and re-denoise only "
           f"inside its mask, k = 2 times with new noise, up to end_step. Output: N x k latents, "
           f"candidate-major.\n\nt0 = {start_step} of {steps}: {why_t0}", (x[3], -240), (360, 200))
    ref = g.node("LoTTSMaskedRefine", (x[3], 0), {"seed": 100, "refinements": 2, "steps": steps,
                                                  "cfg": cfg, "sampler_name": sampler,
                                                  "scheduler": scheduler, "start_step": start_step,
                                                  "end_step": end_step})
    for src, out, inp in ((ckpt_node, "MODEL", "model"), (pos, "CONDITIONING", "positive"),
                          (neg, "CONDITIONING", "negative"), (fan, "candidates", "candidates"),
                          (loc, "mask", "mask")):
        g.link(src, out, ref, inp)

    g.note("## 4. Harmonize\nThe last steps on the whole image, without the mask, so the "
           "re-sampled regions blend with the rest.", (x[4], -180), (360, 130))
    harm = g.node("LoTTSHarmonize", (x[4], 0), {"seed": 200, "steps": steps, "cfg": cfg,
                                                "sampler_name": sampler, "scheduler": scheduler,
                                                "start_step": end_step, "add_noise": False})
    for src, out, inp in ((ckpt_node, "MODEL", "model"), (pos, "CONDITIONING", "positive"),
                          (neg, "CONDITIONING", "negative"), (ref, "refined", "latent")):
        g.link(src, out, harm, inp)
    decode_r = g.node("VAEDecode", (x[4], 400), title="Decode refined")
    g.link(harm, "latent", decode_r, "samples")
    g.link(ckpt_node, "VAE", decode_r, "vae")
    save = g.node("SaveImage", (x[4], 520), {"filename_prefix": "LoTTS/refined"})
    g.link(decode_r, "IMAGE", save, "images")
    return g.to_json()


def _verifier(g, pos):
    g.note("Verifier weights: put ImageReward.pt (+ med_config.json, vocab.txt) in "
           "models/lotts_verifiers/ImageReward/ -- see the README, 'Verifiers'.",
           (pos[0], pos[1] - 150), (340, 120))
    return g.node("LoTTSVerifierLoader", pos, {"verifier": "ImageReward",
                                               "weights": "ImageReward/ImageReward.pt",
                                               "precision": "auto"})


def _lotts_sampler(g, loaders, ver, steps, cfg, sampler, scheduler, start_step, end_step):
    """A LoTTS Sampler wired to the loaders and the verifier."""
    ckpt_node, prompt, pos, neg, latent = loaders
    lotts = g.node("LoTTSSampler", (420, 0), {
        "seed": 0, "candidates": 4, "refinements": 2, "depth": 1, "steps": steps, "cfg": cfg,
        "sampler_name": sampler, "scheduler": scheduler, "start_step": start_step,
        "harmonize_steps": steps - end_step, "mask_ratio": 0.5, "prior_weight": 0.5})
    for src, out, inp in ((ckpt_node, "MODEL", "model"), (ckpt_node, "CLIP", "clip"),
                          (ckpt_node, "VAE", "vae"), (pos, "CONDITIONING", "positive"),
                          (neg, "CONDITIONING", "negative"), (prompt, "STRING", "prompt"),
                          (ver, "LOTTS_VERIFIER", "verifier"), (latent, "LATENT", "latent_image")):
        g.link(src, out, lotts, inp)
    return lotts


def one_node(schemas, ckpt, width, height, steps, cfg, start_step, end_step, title,
             sampler="euler", scheduler="normal", latent_node="EmptyLatentImage", guidance=None,
             negative="blurry, lowres, deformed", why_t0=""):
    """LoTTS Sampler in place of a KSampler: loaders -> LoTTSSampler -> save best."""
    g = Graph(schemas)
    g.note(f"# {title}\n\nLoTTS Sampler runs the whole pipeline: N candidates, defect "
           "localization, k masked refinements each, harmonization, and a verifier pick over "
           "every sample (the unrefined candidates compete too). Its report lists the NFE "
           f"each stage spent.\n\nt0 = start_step = {start_step} of {steps}: {why_t0}",
           (0, -300), (420, 240))
    ckpt_node, prompt, pos, neg, latent = _loaders(g, ckpt, width, height, latent_node,
                                                   guidance, negative)
    ver = _verifier(g, (420, 700))
    lotts = _lotts_sampler(g, (ckpt_node, prompt, pos, neg, latent), ver, steps, cfg, sampler,
                           scheduler, start_step, end_step)
    save = g.node("SaveImage", (880, 0), {"filename_prefix": "LoTTS/best"})
    g.link(lotts, "image", save, "images")
    every = g.node("PreviewImage", (880, 380), title="Every sample, best first")
    g.link(lotts, "all_images", every, "images")
    return g.to_json()


def versus_best_of_n(schemas, ckpt, width, height, steps, cfg, start_step, end_step, title,
                     sampler="euler", scheduler="normal", latent_node="EmptyLatentImage",
                     guidance=None, negative="blurry, lowres, deformed", why_t0=""):
    """LoTTS and Best-of-N side by side at equal NFE (the report sets Best-of-N's M)."""
    g = Graph(schemas)
    g.note(f"# {title}\n\nTop: LoTTS Sampler. Bottom: Best-of-N with the same verifier, its "
           "sample count M set from LoTTS's report (match_budget) so both spend the same "
           "number of denoiser evaluations (NFE). Compare the two pictures and the scores on "
           "the nodes.", (0, -300), (420, 220))
    ckpt_node, prompt, pos, neg, latent = _loaders(g, ckpt, width, height, latent_node,
                                                   guidance, negative)
    ver = _verifier(g, (420, 1100))
    lotts = _lotts_sampler(g, (ckpt_node, prompt, pos, neg, latent), ver, steps, cfg, sampler,
                           scheduler, start_step, end_step)
    bon = g.node("LoTTSBestOfN", (420, 560), {
        "seed": 1000, "steps": steps, "cfg": cfg, "sampler_name": sampler,
        "scheduler": scheduler, "samples": 8})
    for src, out, inp in ((ckpt_node, "MODEL", "model"), (ckpt_node, "VAE", "vae"),
                          (pos, "CONDITIONING", "positive"), (neg, "CONDITIONING", "negative"),
                          (prompt, "STRING", "prompt"), (ver, "LOTTS_VERIFIER", "verifier"),
                          (latent, "LATENT", "latent_image"), (lotts, "report", "match_budget")):
        g.link(src, out, bon, inp)
    save_l = g.node("SaveImage", (880, 0), {"filename_prefix": "LoTTS/lotts_best"}, title="LoTTS best")
    g.link(lotts, "image", save_l, "images")
    save_b = g.node("SaveImage", (880, 560), {"filename_prefix": "LoTTS/best_of_n_best"},
                    title="Best-of-N best")
    g.link(bon, "best", save_b, "images")
    return g.to_json()


# t0 per backbone family. The paper reports SD2.1 ~ 25/50, SDXL ~ 15/50, FLUX ~ 1 of its
# short schedule: the stronger the model, the earlier (noisier) it can restart and still
# keep the unmasked context coherent. We keep those fractions of the schedule.
WORKFLOWS = {
    "lotts_sd15.json": dict(
        ckpt="v1-5-pruned-emaonly.safetensors", width=512, height=512, steps=30, cfg=7.5,
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
}


# One-node and side-by-side variants reuse the families' settings.
VARIANTS = {
    "lotts_sampler_sd15.json": (one_node, "lotts_sd15.json", "LoTTS in one node (SD1.5)"),
    "lotts_sampler_sdxl.json": (one_node, "lotts_sdxl.json", "LoTTS in one node (SDXL)"),
    "lotts_vs_best_of_n_sd15.json": (versus_best_of_n, "lotts_sd15.json",
                                     "LoTTS vs Best-of-N at equal NFE (SD1.5)"),
}


def build_all(schemas):
    out = {name: lotts_pipeline(schemas, **kw) for name, kw in WORKFLOWS.items()}
    for name, (build, family, title) in VARIANTS.items():
        out[name] = build(schemas, **{**WORKFLOWS[family], "title": title})
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


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for name, wf in build_all(load_schemas()).items():
        with open(os.path.join(OUT_DIR, name), "w") as f:
            json.dump(wf, f, indent=1)
            f.write("\n")
        thumbnail(wf, os.path.join(OUT_DIR, name[:-len(".json")] + ".jpg"))
        print("wrote", os.path.join("example_workflows", name), "+ .jpg")


if __name__ == "__main__":
    main()
