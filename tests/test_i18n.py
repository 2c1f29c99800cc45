"""Every visible label of the ④ Script tab and the voice-library panel (and the clone tab's saved-voice picker)
is translatable: an ``I18nData`` key with an English and a distinct Chinese string (app_ui/i18n.py)."""
from __future__ import annotations

import json
import re

import gradio as gr
import pytest
from gradio.i18n import I18nData

from app_ui.i18n import STRINGS
from tests.fake_engine import FakeEngine

CJK = re.compile(r"[\u4e00-\u9fff]")
PREFIX = "__i18n__"


def _key(value) -> str | None:
    """The translation key of a label / button text, or None for plain (untranslated) text."""
    if isinstance(value, I18nData):
        return value.key
    if isinstance(value, str) and value.startswith(PREFIX):
        return json.loads(value[len(PREFIX):])["key"]
    return None


def _texts(block, hidden: bool = False):
    """(component, what, value) of every user-visible text under ``block``; hidden columns are skipped."""
    for child in getattr(block, "children", []):
        invisible = hidden or getattr(child, "visible", True) is False
        if invisible:
            continue
        if isinstance(child, (gr.Button, gr.Markdown)) and child.value:
            yield child, "value", child.value
        elif getattr(child, "label", None) is not None:
            yield child, "label", child.label
        if isinstance(child, gr.Dropdown):
            for shown, _ in child.choices:
                yield child, "choice", shown
        yield from _texts(child, invisible)


@pytest.fixture(scope="module")
def demo():
    import app  # noqa: PLC0415
    return app.build_demo(FakeEngine())


def _tab(demo, tab_id: str) -> gr.Tab:
    (tab,) = [b for b in demo.blocks.values() if isinstance(b, gr.Tab) and b.id == tab_id]
    return tab


def test_every_script_tab_label_has_a_chinese_translation(demo):
    tab = _tab(demo, "tab-script")
    assert _key(tab.label) == "tab_script"
    seen = []
    for component, what, value in _texts(tab):
        key = _key(value)
        assert key is not None, f"untranslated {what} of {type(component).__name__}: {value!r}"
        en, zh = STRINGS[key]
        assert en != zh and CJK.search(zh), (key, en, zh)
        seen.append(key)
    # the panel's own keys are all on screen (a dropped widget would hide an untranslated replacement)
    for key in ("script", "script_render", "script_master", "script_lines", "script_reroll", "script_edit",
                "script_use_take", "script_replay", "voice_help", "voice_save", "voice_rename", "voice_delete",
                "voice_export", "voice_import", "type.emotion", "opt.happy"):
        assert key in seen, key
    assert len(seen) >= 30


def test_clone_tab_voice_picker_is_translated(demo):
    (pick,) = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "voice-pick"]
    assert _key(pick.label) == "voice_pick" and CJK.search(STRINGS["voice_pick"][1])


LITERAL = re.compile(r"^(\[(Sichuanese|Cantonese|Japanese|Korean)\]|#\d|EN|中文)$")   # typed tags, numbers, the switch
BOTH = re.compile(r'<span class="ui-en" lang="en">.*[A-Za-z].*</span><span class="ui-zh" lang="zh">.*[\u4e00-\u9fff]')


def test_every_tab_and_the_header_are_translated(demo):
    """The first screen and every tab: each visible label is a translation key with a Chinese string, except
    literal text (the language tags a user types, candidate numbers, the EN / 中文 switch itself) and the
    computed base-take summary, which carries both languages (i18n.both)."""
    header = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "header"][0]
    blocks = [header] + [_tab(demo, i) for i in ("tab-clone", "tab-edit", "tab-para", "tab-script")]
    keys = set()
    for block in blocks:
        for component, what, value in _texts(block):
            key = _key(value)
            if key is None:
                assert LITERAL.match(str(value)) or BOTH.search(str(value)), \
                    f"untranslated {what} of {type(component).__name__}: {value!r}"
                continue
            en, zh = STRINGS[key]
            assert CJK.search(zh), (key, zh)
            keys.add(key)
    for key in ("title", "tagline", "advanced", "seed", "n_candidates", "max_tries", "threshold", "voice_pick",
                "examples", "generate", "stream"):
        assert key in keys, key
    assert [_key(_tab(demo, i).label) for i in ("tab-clone", "tab-edit", "tab-para", "tab-script")] == [
        "tab_clone", "tab_edit", "tab_para", "tab_script"]


def test_the_sample_script_has_a_chinese_version():
    en, zh = STRINGS["script_sample"]
    assert "Ethan:" in en and "Ethan:" in zh and CJK.search(zh)


def test_computed_engine_notes_and_table_headers_have_chinese():
    """The engine note is computed from the engine's capabilities: both engines give their name and note in
    Chinese too, the note shows them, and the CSS draws a Chinese header for every column of the script table."""
    from app_ui import views  # noqa: PLC0415
    from app_ui.i18n import LANG_CSS  # noqa: PLC0415
    from app_ui.script_tab import TABLE_HEADERS  # noqa: PLC0415
    from stepedit_core.engine import NOTES_ZH as REAL_NOTES_ZH  # noqa: PLC0415
    from stepedit_core.lite import LiteEngine  # noqa: PLC0415
    caps = LiteEngine().capabilities()
    for text in (caps.notes_zh, caps.display_name_zh, REAL_NOTES_ZH):
        assert CJK.search(text), text
    note = views.engine_note(caps)
    zh = re.findall(r'<span class="ui-zh" lang="zh">(.*?)</span>', note)
    assert zh and all(CJK.search(z) for z in zh)
    assert caps.display_name_zh in zh and caps.notes_zh.replace("'", "&#x27;") in zh
    for header in TABLE_HEADERS[1:]:                         # "#" needs no translation
        assert f'th[title="{header}"] .header.text::after {{ content: "' in LANG_CSS, header
