"""The pack's UI translations (locales/<lang>/, served by ComfyUI at /i18n): English is
what scripts/make_locales.py makes from the node schemas; every other language has
exactly English's keys, each a non-empty string."""

import importlib.util
import json
import os

import pytest

from comfy_host import REPO_ROOT, require_comfyui

require_comfyui()

path = os.path.join(REPO_ROOT, "scripts", "make_locales.py")
spec = importlib.util.spec_from_file_location("make_locales", path)
gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen)

LANGUAGES = sorted(d for d in os.listdir(gen.LOCALES) if d != "en"
                   and os.path.isdir(os.path.join(gen.LOCALES, d)))


def _read(lang, name):
    with open(os.path.join(gen.LOCALES, lang, name), encoding="utf-8") as f:
        return json.load(f)


def _paths(data, prefix=""):
    """{"a.b.c": leaf} of a nested dict."""
    out = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_paths(v, key + "."))
        else:
            out[key] = v
    return out


def test_english_matches_the_generator():
    built = gen.build_en(gen.node_schemas.object_info())
    for name, data in built.items():
        assert _read("en", name) == data, f"locales/en/{name} is stale: run scripts/make_locales.py"


def test_there_is_another_language():
    assert "zh" in LANGUAGES


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translation_is_complete(lang):
    for name in gen.FILES:
        en = _paths(_read("en", name))
        other = _paths(_read(lang, name))
        missing = sorted(set(en) - set(other))
        extra = sorted(set(other) - set(en))
        empty = sorted(k for k, v in other.items() if not isinstance(v, str) or not v.strip())
        assert not missing, f"locales/{lang}/{name} lacks {len(missing)} keys: {missing}"
        assert not extra, f"locales/{lang}/{name} has keys English no longer has: {extra}"
        assert not empty, f"locales/{lang}/{name}: empty or non-text values at {empty}"
