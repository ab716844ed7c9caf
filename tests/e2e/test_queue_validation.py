"""The server refuses a bad widget value of any LoTTS node when it is queued, before anything
runs -- as it refuses a stock KSampler's.

For every pack node (found in the example workflows, pointed at the tiny checkpoint), every
numeric input is queued once below its minimum and once above its maximum, and every
option input once with a value not in its list -- for the outputs that depend on the node:
each must answer HTTP 400 with ``node_errors`` for that node alone, every error naming the
input, and nothing may be queued or run. (A V3 node's ``validate_inputs`` switches ComfyUI's own
checks off for the inputs it names -- all of them when it takes ``**kwargs`` -- and
ComfyUI 0.3.64 never checks a V3 combo's options: nodes/checks.py queue_time_check.)
"""

from __future__ import annotations

import json
import os
import urllib.error

import pytest

import comfy_host
from comfy_server import NO_COMFYUI_REASON
from example_runs import for_cpu
from workflow_api import load_ui_workflow, ui_to_api

if comfy_host.find_comfyui() is None:
    comfy_host.host_missing(NO_COMFYUI_REASON)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Between them these hold every node of the pack.
WORKFLOWS = ("lotts_sd15.json", "lotts_sampler_sd15.json", "lotts_vs_best_of_n_sd15.json")


def bad_values(spec) -> list[tuple[str, object]]:
    """(what, value) pairs a schema input must refuse: below min, above max, off the list."""
    kind, opts = spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
    if kind == "COMBO" or isinstance(kind, list):
        return [("not in its list", "no_such_option")]
    out = []
    if kind in ("INT", "FLOAT") and opts.get("min") is not None:
        out.append(("below its minimum", opts["min"] - 1))
    if kind in ("INT", "FLOAT") and opts.get("max") is not None:
        out.append(("above its maximum", opts["max"] + 1))
    return out


def upstream(api: dict, node_id: str) -> set[str]:
    """``node_id`` and every node it reads from."""
    seen, todo = set(), [node_id]
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo += [v[0] for v in api[n]["inputs"].values() if isinstance(v, list)]
    return seen


def outputs_through(api: dict, node_id: str, info: dict) -> list[str]:
    """The output nodes that depend on ``node_id`` (it may be one itself)."""
    return [n for n, e in api.items() if info[e["class_type"]].get("output_node")
            and node_id in upstream(api, n)]


@pytest.fixture(scope="module")
def graphs(comfy, tiny_ckpt_for):
    """{node class: (API prompt, node id, the outputs that depend on it)} for every pack
    node."""
    info = comfy.object_info()
    found = {}
    for name in WORKFLOWS:
        api = ui_to_api(load_ui_workflow(os.path.join(REPO_ROOT, "example_workflows", name)), info)
        api = for_cpu(api, lambda _: tiny_ckpt_for("sd15"))
        for node_id, node in api.items():
            if node["class_type"].startswith("LoTTS") and node["class_type"] not in found:
                found[node["class_type"]] = (api, node_id, outputs_through(api, node_id, info))
    return found


def queue(comfy, prompt: dict, targets: list[str]) -> tuple[int, dict]:
    """POST /prompt asking for the ``targets`` outputs only (what the frontend sends when
    it queues selected outputs): an output node upstream of the bad node, e.g. the
    localizer's viewer before Mask Preview, is valid and would run."""
    body = {"prompt": prompt, "partial_execution_targets": targets}
    try:
        body = comfy.raw("POST", "/prompt", json.dumps(body).encode(),
                         {"Content-Type": "application/json"})
        return 200, json.loads(body)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def test_every_bad_widget_value_is_refused_at_queue_time(comfy, graphs, pack_node_ids):
    assert set(graphs) == set(pack_node_ids), "the workflows no longer hold every pack node"
    info = comfy.object_info()
    before = set(comfy.history())
    problems, tried = [], 0
    for class_type, (api, node_id, targets) in sorted(graphs.items()):
        inputs = info[class_type]["input"]
        for section in ("required", "optional"):
            for name, spec in (inputs.get(section) or {}).items():
                for what, value in bad_values(spec):
                    prompt = json.loads(json.dumps(api))
                    prompt[node_id]["inputs"][name] = value
                    status, answer = queue(comfy, prompt, targets)
                    tried += 1
                    errors = (answer.get("node_errors") or {})
                    own = (errors.get(node_id) or {}).get("errors") or []
                    case = f"{class_type}.{name} = {value!r} ({what})"
                    if status != 400:
                        problems.append(f"{case}: HTTP {status}, queued as {answer.get('prompt_id')}")
                        comfy.clear_queue()
                        comfy.interrupt()
                    elif set(errors) != {node_id} or not own:
                        problems.append(f"{case}: node_errors {sorted(errors)}: {answer.get('error')}")
                    elif not any(e.get("extra_info", {}).get("input_name") == name for e in own) \
                            or not all(name in e.get("details", "") for e in own):
                        problems.append(f"{case}: the errors do not name the input: {own}")
    assert tried > 50, tried
    assert not problems, f"{len(problems)} of {tried} bad values were not refused:\n" + "\n".join(problems)
    queue_state = comfy.queue_state()
    assert not queue_state["queue_running"] and not queue_state["queue_pending"], queue_state
    assert set(comfy.history()) == before, "a refused prompt ran"
