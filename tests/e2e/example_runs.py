"""Running an example workflow's API prompt on the e2e server, cheaply, and checking it ran.

Shared by test_example_workflows.py (prompts converted in Python) and
test_saved_workflows.py (prompts converted by the real frontend).
"""

from __future__ import annotations

import os

from workflow_api import shrink_for_cpu

# Step counts are scaled so the largest `steps` becomes STEPS (step indices such as
# probe_step / start_step / end_step scale along; 30 -> 4 maps the shipped 15/22/27 to
# 2/2/3, still a valid schedule).
STEPS = int(os.environ.get("LOTTS_E2E_STEPS", "4"))
# Candidate counts (LoTTSSeedFanOut.candidates, by input name) are capped: the cost is
# linear in them and 2 still exercises the per-candidate paths.
CANDIDATES = int(os.environ.get("LOTTS_E2E_CANDIDATES", "2"))
TIMEOUT = float(os.environ.get("LOTTS_E2E_WORKFLOW_TIMEOUT", "600"))


def for_cpu(api: dict, ckpt_name: str) -> dict:
    """The tiny checkpoint, 64 px longest side, steps scaled to STEPS, <= CANDIDATES."""
    return shrink_for_cpu(api, ckpt_name, size=64, steps=STEPS,
                          extra={"*": {"candidates": lambda n: min(n, CANDIDATES)
                                       if isinstance(n, int) else n}})


def provide_images(comfy, api: dict, size: int = 64) -> None:
    """A PNG in the server's input folder for every Load Image node, under the name the
    workflow gives (a small picture with some structure, so a localizer has edges)."""
    import io
    from PIL import Image, ImageDraw
    for node in api.values():
        if node["class_type"] == "LoadImage":
            img = Image.new("RGB", (size, size), (200, 180, 150))
            d = ImageDraw.Draw(img)
            d.ellipse((size // 5, size // 5, size * 3 // 4, size * 3 // 4), fill=(60, 90, 160))
            d.rectangle((size // 2, size // 8, size - 4, size // 3), fill=(30, 140, 60))
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            comfy.upload_image(buf.getvalue(), node["inputs"]["image"])


def run_and_check(comfy, api: dict, name: str) -> dict:
    """Queue ``api`` (already shrunk; its Load Image files provided), wait, and assert
    every output node produced output and every reported file exists; the history entry."""
    provide_images(comfy, api)
    entry = comfy.run(api, timeout=TIMEOUT)
    outputs = entry.get("outputs") or {}
    output_nodes = [nid for nid, e in api.items()
                    if comfy.object_info()[e["class_type"]].get("output_node")]
    assert output_nodes, f"{name} has no output node"
    missing = [nid for nid in output_nodes if nid not in outputs]
    assert not missing, f"{name}: output nodes {missing} produced nothing; outputs: {outputs}"
    files = comfy.output_files(entry)
    absent = [f["path"] for f in files if not os.path.isfile(f["path"])]
    assert not absent, f"{name}: reported output files missing on disk: {absent}"
    return entry
