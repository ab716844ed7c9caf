"""UI-format workflow JSON (what ComfyUI's frontend saves) -> API-format prompt.

Pure python, no ComfyUI import: the node schemas come from ``/object_info`` (a live
server's, or a fixture snapshot). Mirrors the frontend's ``graphToPrompt``:

* ``widgets_values`` are positional over the node's *widget* inputs, in ``input_order``
  (required, then optional). A widget input is one whose type is INT, FLOAT, STRING,
  BOOLEAN, COMBO or an option list, and that is not ``forceInput``.
* After every INT/COMBO widget with ``control_after_generate`` (and, for old schemas, any
  INT named ``seed``/``noise_seed``) the frontend stores one extra value, the control
  widget's mode ("fixed", "randomize", "increment", "decrement"). After a COMBO with
  ``image_upload``/``video_upload``/``audio_upload``/``animated_image_upload`` it may store
  one more (the upload button's value, e.g. "image", or null). Neither goes to the API.
  Both layouts (with and without the upload value) are accepted; any other length
  mismatch raises (``strict=False`` maps positionally instead, like the frontend).
* ``widgets_values`` may also be a dict keyed by input name (some custom nodes).
* A linked input becomes ``[str(origin_id), origin_slot]``, overriding the widget value
  (widgets converted to sockets keep their stored value in ``widgets_values``).
* ``Reroute`` nodes are followed upstream; a link from a ``PrimitiveNode`` becomes that
  primitive's value; ``Note``/``MarkdownNote``/``PrimitiveNode``/``Reroute`` never appear.
* Muted nodes (mode 2) are dropped, and so is every input linked to them (ComfyUI then
  reports the missing input if it was required). Bypassed nodes (mode 4) are dropped and
  a link from one is re-routed to the bypassed node's input of the same type: first the
  input at the same index as the output slot, then the first input of that type.
* Subgraphs and legacy group nodes are not supported (raise NotImplementedError).
"""

from __future__ import annotations

import copy
import json
import math

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CONTROL_VALUES = {"fixed", "randomize", "increment", "decrement"}
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload")
VIRTUAL_NODES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
MODE_MUTED, MODE_BYPASS = 2, 4


class WorkflowError(ValueError):
    pass


# ----------------------------------------------------------------------------- schema
def _spec_type_and_opts(spec) -> tuple[object, dict]:
    if not isinstance(spec, (list, tuple)) or not spec:
        return spec, {}
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return spec[0], opts


def is_widget_input(spec) -> bool:
    typ, opts = _spec_type_and_opts(spec)
    if opts.get("forceInput"):
        return False
    return isinstance(typ, list) or typ in WIDGET_TYPES


def widget_slots(schema: dict) -> list[tuple[str, str | None]]:
    """[(input name, extra)]: the node's widgets in the frontend's order, where ``extra`` is
    None, "control" (a control_after_generate value follows) or "upload"."""
    inputs = schema.get("input") or {}
    order = schema.get("input_order") or {}
    slots = []
    for section in ("required", "optional"):
        specs = inputs.get(section) or {}
        names = order.get(section) or list(specs)
        for name in names:
            spec = specs.get(name)
            if spec is None or not is_widget_input(spec):
                continue
            typ, opts = _spec_type_and_opts(spec)
            extra = None
            if opts.get("control_after_generate") or (
                    typ == "INT" and name in ("seed", "noise_seed")
                    and "control_after_generate" not in opts):
                extra = "control"
            elif any(opts.get(f) for f in UPLOAD_FLAGS):
                extra = "upload"
            slots.append((name, extra))
    return slots


def map_widgets_values(node_type: str, schema: dict, values, strict: bool = True) -> dict:
    """Assign a UI node's ``widgets_values`` to its widget input names."""
    slots = widget_slots(schema)
    if values is None:
        return {}
    if isinstance(values, dict):
        names = {n for n, _ in slots}
        return {k: v for k, v in values.items() if k in names}
    values = list(values)

    def layout(with_upload: bool):
        out = []
        for name, extra in slots:
            out.append((name, False))
            if extra == "control" or (extra == "upload" and with_upload):
                out.append((name, True))
        return out

    candidates = [layout(True), layout(False)]
    chosen = next((c for c in candidates if len(c) == len(values)), None)
    if chosen is None:
        if strict:
            raise WorkflowError(
                f"{node_type}: {len(values)} widgets_values {values!r} do not fit its widgets "
                f"{[n + ('+' + e if e else '') for n, e in slots]} (schema changed since the "
                f"workflow was saved?)")
        chosen = candidates[0]
    result = {}
    for (name, is_extra), value in zip(chosen, values):
        if is_extra:
            if strict and slots and dict(slots)[name] == "control" and \
                    value not in CONTROL_VALUES and value is not None:
                raise WorkflowError(f"{node_type}: value {value!r} after {name!r} is not a "
                                    f"control_after_generate mode {sorted(CONTROL_VALUES)}")
            continue
        result[name] = value
    return result


# ----------------------------------------------------------------------------- graph
def _links_by_id(workflow: dict) -> dict:
    out = {}
    for link in workflow.get("links") or []:
        if isinstance(link, dict):
            lid, o, os_, t, ts = (link["id"], link["origin_id"], link["origin_slot"],
                                  link["target_id"], link["target_slot"])
        else:
            lid, o, os_, t, ts = link[:5]
        out[lid] = {"id": lid, "origin_id": o, "origin_slot": os_, "target_id": t,
                    "target_slot": ts}
    return out


def ui_to_api(workflow: dict, object_info: dict, strict: bool = True) -> dict:
    """Convert a UI workflow (dict) to the API prompt dict ``{id: {class_type, inputs}}``."""
    if (workflow.get("definitions") or {}).get("subgraphs"):
        raise NotImplementedError("workflows with subgraphs are not supported")
    nodes = {n["id"]: n for n in workflow.get("nodes") or []}
    links = _links_by_id(workflow)
    for n in nodes.values():
        t = n.get("type")
        if t not in VIRTUAL_NODES and t not in object_info:
            if isinstance(t, str) and t.startswith("workflow>"):
                raise NotImplementedError(f"group node {t!r} is not supported")
            raise WorkflowError(f"node {n['id']}: unknown node type {t!r} "
                                "(not in /object_info: is its pack loaded?)")

    def resolve(link_id, want_type):
        """Follow a link upstream through reroutes and bypassed nodes.
        Returns ("link", origin_id, slot), ("value", v), ("drop",) (the origin is muted or
        gone: the input is removed, widget value included, as the frontend does) or None
        (nothing upstream: the widget value, if any, stays)."""
        seen = set()
        link = links.get(link_id)
        while link is not None:
            if link["id"] in seen:
                raise WorkflowError(f"link cycle at link {link['id']}")
            seen.add(link["id"])
            origin = nodes.get(link["origin_id"])
            if origin is None:
                return ("drop",)
            otype = origin.get("type")
            if otype == "Reroute":
                ins = origin.get("inputs") or []
                link = links.get(ins[0].get("link")) if ins else None
                continue
            if otype == "PrimitiveNode":
                vals = origin.get("widgets_values") or []
                return ("value", vals[0]) if vals else None
            if otype in ("Note", "MarkdownNote"):
                return None
            mode = origin.get("mode", 0)
            if mode == MODE_MUTED:
                return ("drop",)
            if mode == MODE_BYPASS:
                ins = origin.get("inputs") or []
                order = [link["origin_slot"]] + list(range(len(ins)))
                nxt = None
                for idx in order:
                    if 0 <= idx < len(ins) and ins[idx].get("type") == want_type:
                        nxt = links.get(ins[idx].get("link"))
                        break
                if nxt is None:
                    return None
                link = nxt
                continue
            return ("link", str(link["origin_id"]), int(link["origin_slot"]))
        return None

    api = {}
    for nid, n in sorted(nodes.items(), key=lambda kv: kv[0]):
        t = n.get("type")
        if t in VIRTUAL_NODES or n.get("mode", 0) in (MODE_MUTED, MODE_BYPASS):
            continue
        schema = object_info[t]
        inputs = map_widgets_values(t, schema, n.get("widgets_values"), strict=strict)
        for inp in n.get("inputs") or []:
            if inp.get("link") is None:
                continue
            r = resolve(inp["link"], inp.get("type"))
            name = (inp.get("widget") or {}).get("name") or inp.get("name")
            if r is None:
                continue
            if r[0] == "drop":
                inputs.pop(name, None)
            elif r[0] == "value":
                inputs[name] = r[1]
            else:
                inputs[name] = [r[1], r[2]]
        entry = {"class_type": t, "inputs": inputs}
        if n.get("title"):
            entry["_meta"] = {"title": n["title"]}
        api[str(nid)] = entry
    # Inputs linked to nodes that are not in the prompt go (as the frontend drops them).
    for entry in api.values():
        for k, v in list(entry["inputs"].items()):
            if _is_link(v) and v[0] not in api:
                del entry["inputs"][k]
    return api


def _is_link(v) -> bool:
    return isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int)


def load_ui_workflow(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        wf = json.load(f)
    if "nodes" not in wf:
        raise WorkflowError(f"{path}: not a UI-format workflow (no 'nodes'); API-format files "
                            "belong elsewhere")
    return wf


# ----------------------------------------------------------------------------- overrides
def override_inputs(api: dict, overrides: dict) -> dict:
    """``{class_type or "*": {input: value or callable(old) -> new}}``; only literal
    (non-linked) inputs that exist are changed, plus inputs absent under a class_type key."""
    out = copy.deepcopy(api)
    for entry in out.values():
        for key in (entry["class_type"], "*"):
            for name, value in (overrides.get(key) or {}).items():
                if name in entry["inputs"] and _is_link(entry["inputs"][name]):
                    continue
                if key == "*" and name not in entry["inputs"]:
                    continue
                entry["inputs"][name] = value(entry["inputs"].get(name)) if callable(value) \
                    else value
    return out


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


SPLIT_LOADERS = {"UNETLoader": 0, "CLIPLoader": 1, "VAELoader": 2}  # -> checkpoint output


def split_loaders_to_checkpoint(api: dict) -> dict:
    """A prompt whose model comes from one UNETLoader, one CLIPLoader and one VAELoader, with
    a CheckpointLoaderSimple (of the diffusion model's file name, for ``shrink_for_cpu`` to
    map to a tiny checkpoint) in their place, every link re-pointed at its outputs (MODEL 0,
    CLIP 1, VAE 2). Other prompts are returned as they are."""
    found = {t: [nid for nid, e in api.items() if e["class_type"] == t] for t in SPLIT_LOADERS}
    if not all(len(ids) == 1 for ids in found.values()):
        return api
    unet = found["UNETLoader"][0]
    moved = {found[t][0]: out for t, out in SPLIT_LOADERS.items()}
    for nid in moved:
        if nid != unet:
            del api[nid]
    api[unet] = {"class_type": "CheckpointLoaderSimple",
                 "inputs": {"ckpt_name": api[unet]["inputs"]["unet_name"]}}
    for entry in api.values():
        for name, value in entry["inputs"].items():
            if _is_link(value) and value[0] in moved:
                entry["inputs"][name] = [unet, moved[value[0]]]
    return api


def shrink_for_cpu(api: dict, ckpt_name, size: int = 64, steps: int = 2,
                   extra: dict | None = None) -> dict:
    """Make a workflow cheap on CPU.

    * every literal ``ckpt_name`` -> ``ckpt_name`` (the tiny checkpoint), or, if
      ``ckpt_name`` is callable, -> ``ckpt_name(old name)`` (a tiny checkpoint per model
      family: tiny_checkpoint.family_for); split loaders (a diffusion model, a text encoder
      and a VAE loaded apart: Qwen-Image, Chroma) -> one checkpoint loader of the tiny
      checkpoint for the diffusion model's file (split_loaders_to_checkpoint);
    * every node with literal INT width and height -> longest side ``size`` (aspect kept,
      multiples of 8);
    * step counts scaled by ``steps / S`` (S = the largest literal ``steps`` in the prompt):
      ``steps`` and ``*_steps`` inputs -> max(1, round(v * ratio)); step *indices*
      (``*_step``: start_at_step, end_at_step, probe_step, start_step, end_step…) ->
      floor(v * ratio) clamped below the node's new step count, and any index at or past
      the node's old count (e.g. end_at_step 10000) -> the new count. Monotone, so
      start <= end stays true (distinct indices may merge when ``steps`` is tiny);
    * then ``extra`` overrides (see override_inputs).
    """
    out = split_loaders_to_checkpoint(copy.deepcopy(api))
    all_steps = [e["inputs"]["steps"] for e in out.values() if _is_int(e["inputs"].get("steps"))]
    s_max = max(all_steps, default=0)
    ratio = steps / s_max if s_max > steps else 1.0
    for entry in out.values():
        ins = entry["inputs"]
        if "ckpt_name" in ins and not _is_link(ins["ckpt_name"]):
            ins["ckpt_name"] = ckpt_name(ins["ckpt_name"]) if callable(ckpt_name) else ckpt_name
        w, h = ins.get("width"), ins.get("height")
        if _is_int(w) and _is_int(h) and max(w, h) > size:
            scale = size / max(w, h)
            ins["width"] = max(8, int(round(w * scale / 8)) * 8)
            ins["height"] = max(8, int(round(h * scale / 8)) * 8)
        if ratio == 1.0:
            continue
        old_n = ins["steps"] if _is_int(ins.get("steps")) else s_max
        new_n = max(1, int(round(old_n * ratio)))
        for name, v in list(ins.items()):
            if not _is_int(v):
                continue
            if name == "steps" or name.endswith("_steps"):
                ins[name] = max(1, int(round(v * ratio)))
            elif name.endswith("_step"):
                ins[name] = new_n if v >= old_n else min(new_n - 1, int(math.floor(v * ratio)))
    return override_inputs(out, extra or {})
