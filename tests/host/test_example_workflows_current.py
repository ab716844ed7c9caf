"""The shipped example workflows are exactly what scripts/make_example_workflows.py makes
from the live node schemas (so a changed node input cannot leave a stale workflow)."""

import importlib.util
import json
import os

from comfy_host import REPO_ROOT, require_comfyui

require_comfyui()


def load_generator():
    path = os.path.join(REPO_ROOT, "scripts", "make_example_workflows.py")
    spec = importlib.util.spec_from_file_location("make_example_workflows", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_shipped_equal_built(folder, built):
    """The .json files in ``folder`` are exactly the generator's ``built`` {name: graph}."""
    shipped = sorted(f for f in os.listdir(folder) if f.endswith(".json"))
    assert shipped == sorted(built), "run scripts/make_example_workflows.py"
    for name, graph in built.items():
        with open(os.path.join(folder, name)) as f:
            assert json.load(f) == json.loads(json.dumps(graph)), \
                f"{name} is stale: run scripts/make_example_workflows.py"


def test_example_workflows_match_the_generator():
    gen = load_generator()
    built = gen.build_all(gen.load_schemas())
    assert_shipped_equal_built(gen.OUT_DIR, built)
    for name in built:
        assert os.path.isfile(os.path.join(gen.OUT_DIR, name[:-5] + ".jpg")), f"{name}: no thumbnail"


def _upstream(wf, node_id, input_name):
    """The node feeding ``input_name`` of node ``node_id`` (None if unlinked)."""
    node = next(n for n in wf["nodes"] if n["id"] == node_id)
    link = next((i["link"] for i in node["inputs"] if i["name"] == input_name), None)
    origin = next((lk[1] for lk in wf["links"] if lk[0] == link), None)
    return next((n for n in wf["nodes"] if n["id"] == origin), None)


def _downstream(wf, node, output_name):
    out = next(o for o in node["outputs"] if o["name"] == output_name)
    targets = {lk[3] for lk in wf["links"] if lk[0] in out["links"]}
    return [n for n in wf["nodes"] if n["id"] in targets]


def test_staged_workflows_end_with_the_verifier_pick():
    """Every stage of the method is in each staged workflow: the verifier scores the
    refinements (fan-out -> ... -> harmonize, decoded) and the unrefined candidates
    together (Image Batch), the winner is saved and the ranking previewed."""
    gen = load_generator()
    staged = [name for name in gen.WORKFLOWS]
    assert staged
    for name in staged:
        with open(os.path.join(gen.OUT_DIR, name)) as f:
            wf = json.load(f)
        picks = [n for n in wf["nodes"] if n["type"] == "LoTTSVerifierPick"]
        assert len(picks) == 1, f"{name}: {len(picks)} Verifier Pick nodes"
        pick = picks[0]
        assert _upstream(wf, pick["id"], "verifier")["type"] == "LoTTSVerifierLoader", name
        assert _upstream(wf, pick["id"], "prompt")["type"] == "PrimitiveStringMultiline", name
        joined = _upstream(wf, pick["id"], "images")
        assert joined["type"] == "ImageBatch", name
        refined = _upstream(wf, _upstream(wf, joined["id"], "image1")["id"], "samples")
        candidates = _upstream(wf, _upstream(wf, joined["id"], "image2")["id"], "samples")
        assert (refined["type"], candidates["type"]) == ("LoTTSHarmonize", "LoTTSSeedFanOut"), name
        assert [n["type"] for n in _downstream(wf, pick, "best")] == ["SaveImage"], name
        assert [n["type"] for n in _downstream(wf, pick, "ranked")] == ["PreviewImage"], name


def test_subgraph_blueprint_matches_the_generator_and_is_one_subgraph_node():
    """subgraphs/<name>.json (what ComfyUI 0.10 serves from custom_nodes/<pack>/subgraphs/)
    is the generator's output; its root is the one subgraph node the frontend asks of a
    blueprint, every inner link is consistent, and each stage of the method is inside."""
    gen = load_generator()
    built = gen.build_blueprints(gen.load_schemas())
    assert_shipped_equal_built(gen.BLUEPRINT_DIR, built)
    for name, bp in built.items():
        (sub,) = bp["definitions"]["subgraphs"]
        (root,) = bp["nodes"]
        assert root["type"] == sub["id"] and bp["links"] == []
        assert [s["name"] for s in root["inputs"]] == [s["name"] for s in sub["inputs"]]
        assert [s["name"] for s in root["outputs"]] == [s["name"] for s in sub["outputs"]]
        types = [n["type"] for n in sub["nodes"]]
        for stage in ("LoTTSSeedFanOut", "LoTTSDefectLocalizer", "LoTTSMaskedRefine",
                      "LoTTSHarmonize", "LoTTSVerifierPick"):
            assert types.count(stage) == 1, (name, stage, types)
        nodes = {n["id"]: n for n in sub["nodes"]}
        for link in sub["links"]:
            if link["origin_id"] == gen.Graph.SUBGRAPH_IN:
                assert link["id"] in sub["inputs"][link["origin_slot"]]["linkIds"], link
            else:
                assert link["id"] in nodes[link["origin_id"]]["outputs"][link["origin_slot"]]["links"], link
            if link["target_id"] == gen.Graph.SUBGRAPH_OUT:
                assert sub["outputs"][link["target_slot"]]["linkIds"] == [link["id"]], link
            else:
                assert nodes[link["target_id"]]["inputs"][link["target_slot"]]["link"] == link["id"], link
        # every socket input of every stage is fed (widgets keep their values)
        for n in sub["nodes"]:
            for slot in n["inputs"]:
                optional = slot["name"] in ("latents", "masks") or slot.get("widget")  # the pick's
                assert slot["link"] is not None or optional, (n["type"], slot["name"])
