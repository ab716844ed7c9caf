"""The pack loads through ComfyUI's own custom-node loader and registers every node."""

from comfy_host import load_pack, require_comfyui

require_comfyui()

import nodes  # noqa: E402  (ComfyUI's)

EXPECTED = {"LoTTSSeedFanOut", "LoTTSDefectLocalizer", "LoTTSMaskPreview",
            "LoTTSMaskedRefine", "LoTTSHarmonize"}


def test_pack_registers_every_node_through_comfyui_loader():
    pack = load_pack()
    ids = set(pack.NODE_CLASS_MAPPINGS)
    assert EXPECTED <= ids
    for node_id in ids:
        assert node_id.startswith("LoTTS")
        assert nodes.NODE_CLASS_MAPPINGS[node_id] is pack.NODE_CLASS_MAPPINGS[node_id]
        assert node_id in pack.NODE_DISPLAY_NAME_MAPPINGS


def test_every_node_has_description_category_and_tooltips():
    pack = load_pack()
    for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
        assert getattr(cls, "DESCRIPTION", "").strip(), node_id
        assert cls.CATEGORY.startswith("LoTTS"), node_id
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, value in spec.get(section, {}).items():
                opts = value[1] if len(value) > 1 else {}
                assert opts.get("tooltip"), f"{node_id}.{name} has no tooltip"


def test_web_directory_is_registered():
    pack = load_pack()
    assert pack.WEB_DIRECTORY == "./js"
