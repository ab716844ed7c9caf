"""The pack loads through ComfyUI's own custom-node loader and registers every node, all
of them V3 nodes, through the V3 entry point."""

from comfy_host import load_pack, pack_nodes, registry, require_comfyui

require_comfyui()

import comfy.samplers  # noqa: E402
from comfy_api.latest import io  # noqa: E402

EXPECTED = {"LoTTSSeedFanOut", "LoTTSDefectLocalizer", "LoTTSMaskPreview", "LoTTSMaskedRefine",
            "LoTTSHarmonize", "LoTTSVerifierLoader", "LoTTSVerifierPick", "LoTTSSampler",
            "LoTTSBestOfN"}


def test_pack_registers_every_node_through_comfyui_loader():
    pack = load_pack()
    assert not hasattr(pack, "NODE_CLASS_MAPPINGS")  # else ComfyUI ignores comfy_entrypoint
    found = pack_nodes()
    assert set(found) == EXPECTED
    for node_id, cls in found.items():
        assert issubclass(cls, io.ComfyNode), node_id
        assert registry().NODE_CLASS_MAPPINGS[node_id] is cls
        assert registry().NODE_DISPLAY_NAME_MAPPINGS[node_id].startswith("LoTTS")


def test_every_node_has_description_category_and_tooltips():
    for node_id, cls in pack_nodes().items():
        schema = cls.GET_SCHEMA()
        assert schema.description.strip() and schema.category == "LoTTS", node_id
        for i in schema.inputs:
            assert i.tooltip, f"{node_id}.{i.id} has no tooltip"
        for o in schema.outputs:
            assert o.tooltip and o.display_name, f"{node_id} output {o.display_name}"


def test_batch_safe_samplers_are_comfyui_samplers():
    """The one list of batch-safe (and single-call) samplers names real samplers."""
    import sys
    schedule = sys.modules[load_pack().__name__ + ".lotts.schedule"]
    assert schedule.BATCH_SAFE_SAMPLERS <= set(comfy.samplers.KSampler.SAMPLERS)
    assert schedule.SINGLE_CALL_SAMPLERS <= set(comfy.samplers.KSampler.SAMPLERS)
    assert "euler" in schedule.BATCH_SAFE_SAMPLERS and "euler_ancestral" not in schedule.BATCH_SAFE_SAMPLERS


def test_web_directory_is_registered():
    pack = load_pack()
    assert pack.WEB_DIRECTORY == "./js"
