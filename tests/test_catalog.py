"""Edit catalogue: the official option lists (config/edit_config.py) and their labels."""
import pytest

from stepedit_core import catalog
from stepedit_core.errors import InvalidInputError


def test_edit_types():
    assert set(catalog.EDIT_TYPES) == {"clone", "emotion", "style", "speed", "paralinguistic", "denoise", "vad"}


def test_emotions_are_the_official_list():
    expected = ("happy, angry, sad, humour, confusion, disgusted, empathy, embarrass, fear, surprised, excited, "
                "depressed, coldness, admiration, remove").split(", ")
    assert list(catalog.EMOTIONS) == expected
    assert len([e for e in catalog.EMOTIONS if e != "remove"]) == 14


def test_styles_are_the_official_list_in_order():
    expected = ("serious, arrogant, child, older, girl, pure, sister, sweet, ethereal, whisper, gentle, recite, "
                "generous, act_coy, warm, shy, comfort, authority, chat, radio, soulful, story, vivid, program, news, "
                "advertising, roar, murmur, shout, deeply, loudly, remove, exaggerated").split(", ")
    assert list(catalog.STYLES) == expected


def test_speeds_tags_and_language_tags():
    assert catalog.SPEEDS == ("faster", "slower", "more faster", "more slower")
    assert [catalog.tag_token(t) for t in catalog.PARALINGUISTIC_TAGS] == [
        "[Breathing]", "[Laughter]", "[Surprise-oh]", "[Confirmation-en]", "[Uhm]", "[Surprise-ah]",
        "[Surprise-wa]", "[Sigh]", "[Question-ei]", "[Dissatisfaction-hnn]"]
    assert catalog.LANGUAGE_TAGS == ("Sichuanese", "Cantonese", "Japanese", "Korean")


def test_types_without_options():
    for t in ("clone", "paralinguistic", "denoise", "vad"):
        assert catalog.options_for(t) == ()
    for t in ("paralinguistic", "denoise", "vad"):
        assert catalog.check_edit(t, None) is None
    with pytest.raises(InvalidInputError, match="cloning is not an edit of audio"):      # as every door says
        catalog.check_edit("clone", None)


@pytest.mark.parametrize("edit_type", ["emotion", "style", "speed"])
def test_every_option_has_english_and_chinese_labels(edit_type):
    for option in catalog.options_for(edit_type):
        label = catalog.OPTION_LABELS[option]
        assert label("en") and label("zh") and label("zh") != label("en")
        assert all("\u4e00" <= ch <= "\u9fff" for ch in label("zh")), label("zh")


def test_type_and_tag_labels_complete():
    assert set(catalog.EDIT_TYPE_LABELS) == set(catalog.EDIT_TYPES)
    assert set(catalog.TAG_LABELS) == set(catalog.ACCEPTED_TAGS) | set(catalog.PARALINGUISTIC_TAGS)
    assert catalog.EDIT_TYPE_LABELS["emotion"]("zh-CN") == "情感"


def test_bad_edit_type_and_option():
    with pytest.raises(InvalidInputError, match="unknown edit type"):
        catalog.check_edit("pitch", None)
    with pytest.raises(InvalidInputError, match="happy"):
        catalog.check_edit("emotion", "cheerful")
    with pytest.raises(InvalidInputError):
        catalog.check_edit("speed", None)
