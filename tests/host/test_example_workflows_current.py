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


def test_example_workflows_match_the_generator():
    gen = load_generator()
    built = gen.build_all(gen.load_schemas())
    shipped = sorted(f for f in os.listdir(gen.OUT_DIR) if f.endswith(".json"))
    assert shipped == sorted(built), "run scripts/make_example_workflows.py"
    for name, workflow in built.items():
        with open(os.path.join(gen.OUT_DIR, name)) as f:
            assert json.load(f) == json.loads(json.dumps(workflow)), \
                f"{name} is stale: run scripts/make_example_workflows.py"
        assert os.path.isfile(os.path.join(gen.OUT_DIR, name[:-5] + ".jpg")), f"{name}: no thumbnail"
