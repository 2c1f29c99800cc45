"""Lite engine: emotion / style presets, paralinguistic insertion, cloning and transcription."""
from __future__ import annotations

import difflib

import numpy as np
import pytest

from stepedit_core import catalog
from stepedit_core.errors import InvalidInputError
from stepedit_core.interface import AudioClip, CloneRequest, EditRequest
from stepedit_core.lite import LiteEngine
from stepedit_core.listen.dsp import active_rms_db
from stepedit_core.listen.metrics import error_rate, f0_stats, normalise_text
from stepedit_core.lite.nonverbal import RECIPES, SpeakerVoice, synthesise_sound
from stepedit_core.lite.paralinguistic import new_slots, parse_tags
from stepedit_core.lite.prosody import EMOTION_PRESETS, STYLE_PRESETS, analyse, preset_table
from tests.audio_clips import EN_TEXT, SAMPLE_RATE, ZH_TEXT, en_speech, zh_speech  # noqa: F401 (fixtures)

SR = SAMPLE_RATE
PRESETS = {**EMOTION_PRESETS, **STYLE_PRESETS}


def word_recall(ref: str, hyp: str) -> float:
    r, h = normalise_text(ref).split(), normalise_text(hyp).split()
    matched = sum(b.size for b in difflib.SequenceMatcher(a=r, b=h, autojunk=False).get_matching_blocks())
    return matched / max(1, len(r))


@pytest.fixture(scope="module")
def engine():
    return LiteEngine()


@pytest.fixture(scope="module")
def en_stats(en_speech):
    return f0_stats(en_speech, SR), active_rms_db(en_speech, SR)


def _edit(engine, wav, kind, info=None, n=1, text=EN_TEXT, new_text=None):
    return engine.edit(EditRequest(audio=AudioClip.from_array(wav, SR), audio_text=text, edit_type=kind,
                                   edit_info=info, new_text=new_text, n_iterations=n, seed=7))


def test_every_option_has_a_preset():
    names = {row["option"] for row in preset_table()}
    assert names == (set(catalog.EMOTIONS) | set(catalog.STYLES)) - {catalog.REMOVE}


@pytest.mark.parametrize("option", ["happy", "sad", "angry", "excited", "depressed", "child", "deeply", "murmur",
                                    "shout", "confusion"])
def test_preset_moves_in_its_direction(engine, en_speech, en_stats, option):
    kind = catalog.EMOTION if option in EMOTION_PRESETS else catalog.STYLE
    (res,) = _edit(engine, en_speech, kind, option)
    y, pr = res.audio.samples, PRESETS[option]
    (f_in, lvl_in), f_out = en_stats, f0_stats(y, SR)
    d_pitch = 12 * np.log2(f_out["median"] / f_in["median"])
    assert abs(d_pitch - pr.pitch_st) < 0.6 + 0.15 * abs(pr.pitch_st)
    if abs(pr.range - 1) >= 0.15:
        assert np.sign(f_out["range_st"] / f_in["range_st"] - 1) == np.sign(pr.range - 1)
    d_level = active_rms_db(y, SR) - lvl_in
    assert abs(d_level - pr.energy_db) < 1.5
    assert abs((len(en_speech) / len(y)) / pr.rate - 1) < 0.05


def test_whisper_style_removes_voicing(engine, en_speech, en_stats):
    (res,) = _edit(engine, en_speech, catalog.STYLE, "whisper")
    assert f0_stats(res.audio.samples, SR)["voiced"] < 0.5 * en_stats[0]["voiced"]


def test_iterations_grow_and_remove_moves_toward_neutral(engine, en_speech, en_stats):
    r1, r2 = _edit(engine, en_speech, catalog.EMOTION, "excited", n=2)
    m0 = en_stats[0]["median"]
    m1, m2 = f0_stats(r1.audio.samples, SR)["median"], f0_stats(r2.audio.samples, SR)["median"]
    assert m0 < m1 < m2
    (neutral,) = _edit(engine, r2.audio.samples, catalog.EMOTION, "remove")
    wide = f0_stats(r2.audio.samples, SR)["range_st"]
    assert abs(f0_stats(neutral.audio.samples, SR)["range_st"] - 4.0) < abs(wide - 4.0)


def test_prosody_edit_stays_intelligible(engine, en_speech):
    (res,) = _edit(engine, en_speech, catalog.EMOTION, "sad")
    assert error_rate(EN_TEXT, engine.transcribe(res.audio, "en")) <= 0.15


def test_nonverbal_sounds_follow_speaker_pitch(en_speech):
    sv = SpeakerVoice.from_world(analyse(en_speech, SR), en_speech)
    for tag in RECIPES:
        y = synthesise_sound(tag, sv)
        assert 0.2 < len(y) / SR < 1.2 and np.all(np.isfinite(y)) and np.abs(y).max() < 1
    uhm = f0_stats(synthesise_sound("Uhm", sv), SR)["median"]
    assert abs(12 * np.log2(uhm / sv.f0)) < 2.0


def test_tag_parsing():
    units, slots = parse_tags("你好[Laughter]世界 [breathing]")
    assert units == ["你", "好", "世", "界"] and [(s.tag, s.position) for s in slots] == [
        ("Laughter", 2), ("Breathing", 4)]
    assert new_slots("hello [Sigh] world", "hello [Sigh] world [Uhm]")[0].tag == "Uhm"


def test_paralinguistic_inserts_at_the_tagged_word(engine, en_speech):
    new_text = "The quick brown fox [Laughter] jumps over the lazy dog. Yesterday I went to the market and bought fresh apples."
    (res,) = _edit(engine, en_speech, catalog.PARALINGUISTIC, new_text=new_text)
    y = res.audio.samples
    assert res.text == new_text and res.metadata["inserted_tags"] == ["Laughter"]
    assert len(y) > len(en_speech) + 0.5 * SR
    n = min(len(y), len(en_speech))
    cut = int(np.flatnonzero(np.abs(y[:n] - en_speech[:n]) > 1e-3)[0]) / SR
    words = engine._asr.transcribe(en_speech, SR, "en", word_timestamps=True).words
    fox = next(w for w in words if "fox" in w.text.lower())
    jumps = next(w for w in words if "jump" in w.text.lower())
    assert fox.end - 0.12 <= cut <= jumps.start + 0.12
    # the words are all still there, in order (whisper may also spell the laugh out as syllables)
    assert word_recall(EN_TEXT, engine.transcribe(res.audio, "en")) >= 0.85
    # a second round with the same text inserts nothing more
    (again,) = _edit(engine, y, catalog.PARALINGUISTIC, text=new_text, new_text=new_text)
    assert len(again.audio.samples) == len(y)


def test_clone_mandarin_with_tags(engine, zh_speech):
    req = CloneRequest(prompt_audio=AudioClip.from_array(zh_speech, SR), prompt_text=ZH_TEXT,
                       target_text="[Cantonese]我们明天下午见面。[Laughter]好的。", seed=5)
    res = engine.clone(req)
    assert res.audio.sample_rate == SR and res.metadata["approximate"]
    assert res.metadata["language_tag_ignored"] == "Cantonese"
    hyp = engine.transcribe(res.audio, "zh")
    assert error_rate("我们明天下午见面。好的。", hyp) <= 0.2
    prompt_f0 = f0_stats(zh_speech, SR)["median"]
    assert abs(12 * np.log2(f0_stats(res.audio.samples, SR)["median"] / prompt_f0)) < 2.0


def test_clone_follows_a_higher_prompt_voice(engine, en_speech):
    from stepedit_core.lite.prosody import apply_preset, Preset
    higher = apply_preset(en_speech, SR, Preset(pitch_st=7.0, formant=1.1))
    res = engine.clone(CloneRequest(prompt_audio=AudioClip.from_array(higher, SR), prompt_text=EN_TEXT,
                                    target_text="Hello, nice to meet you.", seed=1))
    target = f0_stats(higher, SR)["median"]
    assert abs(12 * np.log2(f0_stats(res.audio.samples, SR)["median"] / target)) < 2.0
    assert error_rate("Hello, nice to meet you.", engine.transcribe(res.audio, "en")) <= 0.25


def test_transcribe_simplified_chinese(engine, zh_speech):
    text = engine.transcribe(AudioClip.from_array(zh_speech, SR))
    assert error_rate(ZH_TEXT, text) <= 0.15
    assert "图书馆" in text or "圖書館" not in text
    assert not any(ch in text for ch in ",?!;:"), text          # Mandarin punctuation is full-width


def test_zh_punctuation_only_after_han_characters():
    from stepedit_core.listen.asr import zh_punctuation
    assert zh_punctuation("大家好,今天我想, 讲个故事.") == "大家好，今天我想，讲个故事。"
    assert zh_punctuation("你好? Hello, world.") == "你好？Hello, world."
    assert zh_punctuation("版本3.5") == "版本3.5"


def test_clone_rejects_unspeakable_text(engine, en_speech):
    with pytest.raises(InvalidInputError):
        engine.clone(CloneRequest(prompt_audio=AudioClip.from_array(en_speech, SR), prompt_text=EN_TEXT,
                                  target_text="[Laughter]", seed=1))
