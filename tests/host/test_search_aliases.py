"""Search aliases (nodes/search_aliases.py): the words a user types in the node library.

The schema carries them only where the host's ``io.Schema`` has the field (feature-
detected, so ComfyUI 0.3.64, which has not, loads the pack unchanged); there the frontend
extension adds them from js/search_aliases.json, which must match the Python lists.
"""

import importlib.util
import json
import os
import sys

from comfy_host import REPO_ROOT, load_pack, pack_nodes, require_comfyui

require_comfyui()

import dataclasses  # noqa: E402

from comfy_api.latest import io  # noqa: E402

path = os.path.join(REPO_ROOT, "scripts", "make_locales.py")
spec = importlib.util.spec_from_file_location("make_locales", path)
gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen)

# What the users searched for and found nothing (each must find some LoTTS node).
USER_WORDS = ["test-time scaling", "best of n", "inference scaling", "refine", "defect mask",
              "localized"]


def _aliases_module():
    return sys.modules[load_pack().__name__ + ".nodes.search_aliases"]


def test_every_node_has_aliases_and_the_users_words_find_a_node():
    aliases = _aliases_module().ALIASES
    assert set(aliases) == set(pack_nodes()), "one alias list per node, no stale ids"
    for node_id, words in aliases.items():
        assert words and all(isinstance(w, str) and w.strip() == w and w for w in words), node_id
        assert len(set(map(str.lower, words))) == len(words), f"{node_id}: duplicate aliases"
    for word in USER_WORDS:
        assert any(word in words for words in aliases.values()), f"no node answers {word!r}"


def test_schema_field_is_feature_detected():
    """The host decides: its Schema has the field -> /object_info carries every node's list;
    it has not (0.3.64) -> the schema is built without it and the info has no such key."""
    mod = _aliases_module()
    has_field = "search_aliases" in {f.name for f in dataclasses.fields(io.Schema)}
    assert mod.host_has_search_aliases() == has_field
    for node_id, cls in pack_nodes().items():
        info = cls.GET_NODE_INFO_V1()
        if has_field:
            assert info["search_aliases"] == list(mod.ALIASES[node_id]), node_id
        else:
            assert "search_aliases" not in info, node_id
            assert mod.schema_field(node_id) == {}


def test_frontend_alias_file_matches_the_python_lists():
    with open(gen.SEARCH_ALIASES, encoding="utf-8") as f:
        on_disk = json.load(f)
    built = gen.search_aliases(gen.node_schemas.object_info())
    assert on_disk == built, "js/search_aliases.json is stale: run scripts/make_locales.py"
