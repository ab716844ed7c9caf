"""Writes the node help pages the frontend's Node Info panel shows: js/docs/<NodeId>.md.

The frontend asks ``/extensions/<pack folder>/docs/<NodeId>/<locale>.md``, then
``/extensions/<pack folder>/docs/<NodeId>.md``; ComfyUI serves ``/extensions/<pack folder>/``
from the pack's WEB_DIRECTORY (``js/``). A page has the format of ComfyUI's own embedded
docs: the description, an inputs table (type, required, default, range, tooltip), an
outputs table, and a picture where it helps. The tables come from the node schemas as
/object_info serves them (node_schemas.py); the prose and the pictures from
scripts/node_docs.toml. Relative image links resolve against ``.../docs/`` (the frontend's
base URL for a pack's pages), hence ``images/<file>``.

Run with ComfyUI's python after changing a node:

    COMFYUI_PATH=~/ComfyUI ~/ComfyUI/.venv/bin/python scripts/make_node_docs.py

tests/host/test_node_docs_current.py checks the committed pages equal this script's output.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import node_schemas  # noqa: E402

DOCS_DIR = os.path.join(REPO, "js", "docs")
IMAGES = "images"
PROSE = os.path.join(HERE, "node_docs.toml")
STAGES = ["Seed fan-out", "Defect localizer", "Masked refine", "Harmonize", "Verifier pick"]
CONTROL_AFTER_GENERATE = ("control_after_generate", "COMBO", "No", "-",
                          "fixed / increment / decrement / randomize",
                          "What the frontend does to the seed after each run.")


def load_prose() -> dict:
    return node_schemas.read_toml(PROSE)


def _cell(value) -> str:
    text = str(value).replace("\n", " ").replace("|", "\\|").strip()
    return text or "-"


def _number(v) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return f"{v:.1f}"
    return str(v)


def _range(name, kind, opts, info, overrides) -> str:
    if name in overrides:
        return overrides[name]
    if isinstance(kind, list):
        ksampler = dict((n, k) for _, n, k, _ in node_schemas.inputs(info["KSampler"]))
        if kind == ksampler["sampler_name"]:
            return "ComfyUI's samplers (as in KSampler)"
        if kind == ksampler["scheduler"]:
            return "ComfyUI's schedulers (as in KSampler)"
        return " / ".join(map(str, kind))
    if kind in ("INT", "FLOAT") and ("min" in opts or "max" in opts):
        lo, hi = _number(opts.get("min", "-inf")), _number(opts.get("max", "inf"))
        step = f" (step {_number(opts['step'])})" if "step" in opts and kind == "FLOAT" else ""
        return f"{lo} ~ {hi}{step}"
    if kind == "STRING":
        return "text, multiline" if opts.get("multiline") else "text"
    if kind == "BOOLEAN":
        return "true / false"
    return "-"


def _default(kind, opts) -> str:
    if "default" in opts:
        d = opts["default"]
        if isinstance(d, bool):
            return "true" if d else "false"
        if isinstance(d, str):
            return f"`{d}`" if d else "(empty)"
        return _number(d)
    if isinstance(kind, list) and kind:
        return f"`{kind[0]}`"
    return "-"


def input_rows(node: dict, info: dict, overrides: dict) -> list[tuple]:
    rows = []
    for section, name, kind, opts in node_schemas.inputs(node):
        type_ = "COMBO" if isinstance(kind, list) else kind
        rows.append((name, type_, "Yes" if section == "required" else "No", _default(kind, opts),
                     _range(name, kind, opts, info, overrides), opts.get("tooltip", "")))
        if opts.get("control_after_generate"):
            rows.append(CONTROL_AFTER_GENERATE)
    return rows


def _table(header, rows) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def page(name: str, node: dict, info: dict, prose: dict, pack: dict) -> str:
    """The markdown help page of one pack node."""
    p = prose[name]
    lines = [f"# {node['display_name']}", "",
             f"`{name}` · category **{node['category']}** · {pack['name']} {pack['version']}", "",
             node.get("description") or "", ""]
    if "stage" in p:
        stage = p["stage"]
        what = ("all five LoTTS stages in one node" if stage == "all"
                else f"stage {stage} of 5 of LoTTS: {STAGES[stage - 1].lower()}")
        lines += [f"![This node is {what}]({IMAGES}/lotts_stage_{stage}.png)", ""]
    lines += [p["about"].strip(), ""]
    if "picture" in p:
        file, alt = p["picture"]
        lines += [f"![{alt}]({IMAGES}/{file})", ""]
    lines += ["## Inputs", ""]
    lines += _table(["Parameter", "Data Type", "Required", "Default", "Range/Options", "Description"],
                    input_rows(node, info, p.get("options", {})))
    tips = node.get("output_tooltips") or [None] * len(node["output"])
    lines += ["", "## Outputs", ""]
    lines += _table(["Output", "Data Type", "Description"],
                    [(n, t, tip or "") for n, t, tip in zip(node["output_name"], node["output"], tips)])
    if node.get("output_node"):
        lines += ["", "An output node: it shows its result on the node, and runs even with "
                      "nothing connected to its outputs."]
    return "\n".join(lines).rstrip() + "\n"


def check_prose(prose: dict, info: dict, names: list[str]) -> None:
    missing = [n for n in names if n not in prose or "about" not in prose[n]]
    extra = [n for n in prose if n not in names]
    if missing or extra:
        raise ValueError(f"scripts/node_docs.toml: no 'about' for {missing}; not a pack node: {extra}")
    for n in names:
        inputs = {name for _, name, _, _ in node_schemas.inputs(info[n])}
        stale = sorted(set(prose[n].get("options", {})) - inputs)
        if stale:
            raise ValueError(f"scripts/node_docs.toml: {n}.options names no input of the node: {stale}")
        pic = prose[n].get("picture")
        if pic and not os.path.isfile(os.path.join(DOCS_DIR, IMAGES, pic[0])):
            raise ValueError(f"scripts/node_docs.toml: {n}.picture {pic[0]} is not in js/docs/images/")


def build_all(info: dict) -> dict:
    """{file name under js/docs/: markdown} for every pack node."""
    prose = load_prose()
    names = node_schemas.pack_nodes(info)
    check_prose(prose, info, names)
    project = node_schemas.pyproject()["project"]
    pack = {"name": "LoTTS", "version": f"(`{project['name']}` {project['version']})"}
    return {f"{n}.md": page(n, info[n], info, prose, pack) for n in names}


def stage_picture(stage, path: str) -> None:
    """The five stages top to bottom, ``stage`` (1..5 or "all") highlighted; narrow, to read
    well in the frontend's side panel."""
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.load_default(size=17)
    w, row, pad = 320, 34, 8
    img = Image.new("RGB", (w, pad + row * len(STAGES)), (32, 34, 40))
    d = ImageDraw.Draw(img)
    for i, label in enumerate(STAGES):
        y = pad + i * row
        on = stage == "all" or stage == i + 1
        d.rounded_rectangle((pad, y, w - pad, y + row - pad), radius=7,
                            fill=(58, 96, 160) if on else (48, 50, 58),
                            outline=(150, 190, 255) if on else (80, 82, 90), width=2)
        d.text((pad + 12, y + (row - pad) / 2), f"{i + 1}.  {label}", font=font, anchor="lm",
               fill=(255, 255, 255) if on else (150, 150, 160))
    img.save(path, optimize=True)


def main():
    os.makedirs(os.path.join(DOCS_DIR, IMAGES), exist_ok=True)
    for name, text in build_all(node_schemas.object_info()).items():
        with open(os.path.join(DOCS_DIR, name), "w", encoding="utf-8") as f:
            f.write(text)
        print("wrote", os.path.join("js", "docs", name))
    for stage in [1, 2, 3, 4, 5, "all"]:
        stage_picture(stage, os.path.join(DOCS_DIR, IMAGES, f"lotts_stage_{stage}.png"))
    print("wrote js/docs/images/lotts_stage_*.png")


if __name__ == "__main__":
    main()
