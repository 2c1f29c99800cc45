"""The 2026 paralinguistic vocabulary: spellings, mapping to the selected model, lite rendering."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from stepedit_core import catalog, tags
from stepedit_core.errors import InvalidInputError, UnsupportedEditError
from stepedit_core.listen.dsp import active_rms_db
from stepedit_core.lite.nonverbal import RECIPES, SpeakerVoice, synthesise_sound
from stepedit_core.lite.paralinguistic import new_slots, parse_tags
from stepedit_core.lite.prosody import analyse
from stepedit_core.script.grammar import parse_script
from tests.audio_clips import SAMPLE_RATE, en_speech  # noqa: F401 (fixture)

SR = SAMPLE_RATE


def test_the_22_tags_of_the_official_readme():
    assert len(catalog.PARALINGUISTIC_TAGS_2026) == 22 == len(set(catalog.PARALINGUISTIC_TAGS_2026))
    assert {"clears throat", "Surprise-yo", "Question-yi", "cough", "snort"} <= set(catalog.PARALINGUISTIC_TAGS_2026)
    # every older spelling is still accepted; Breathing / Laughter are the only ones spelled differently
    assert set(catalog.ACCEPTED_TAGS) - set(catalog.PARALINGUISTIC_TAGS_2026) == {"Breathing", "Laughter"}
    assert set(catalog.TAG_LABELS) == set(catalog.ACCEPTED_TAGS) | set(catalog.PARALINGUISTIC_TAGS)


def test_spellings_and_canonical_names():
    assert tags.spelled("LAUGHTER") == "Laughter" and tags.spelled("clears   Throat") == "clears throat"
    assert tags.canonical("Laughter") == "laugh" and tags.canonical("Breathing") == "breath"
    assert tags.canonical("Uhm") == "uhm" and tags.canonical("question-YI") == "Question-yi"
    with pytest.raises(InvalidInputError, match=r"\[yawn\]"):
        tags.canonical("yawn")


def test_text_goes_to_the_selected_vocabulary():
    text = "Well [laugh] fine [Breathing] ok [Question-yi] [ clears  throat ] [whisper]"
    assert tags.for_model(text, "2026") == "Well [laugh] fine [breath] ok [Question-yi] [clears throat] [whisper]"
    with pytest.raises(UnsupportedEditError, match="clears throat.*STEPEDIT_TAG_VOCABULARY=2026"):
        tags.for_model(text, "2025")
    assert tags.for_model("a [chuckle] b [Surprise-yo] c [inhale] d [Laughter]", "2025") == \
        "a [Laughter] b [Surprise-oh] c [Breathing] d [Laughter]"
    with pytest.raises(InvalidInputError, match="vocabulary"):
        tags.for_model("a [laugh]", "2027")


def test_vocabulary_and_revision_settings(monkeypatch):
    from stepedit_core import checkpoint
    from stepedit_core.runtime import EngineOptions
    monkeypatch.delenv(tags.VOCABULARY_ENV, raising=False)
    monkeypatch.delenv(checkpoint.REVISION_ENV, raising=False)
    assert EngineOptions().tag_vocabulary == "2025"
    assert checkpoint.selected_editx_revision() == checkpoint.EDITX_REVISION        # the pinned default
    monkeypatch.setenv(tags.VOCABULARY_ENV, "2026")
    monkeypatch.setenv(checkpoint.REVISION_ENV, "my-checked-revision")
    assert EngineOptions().tag_vocabulary == "2026"
    assert checkpoint.selected_editx_revision() == "my-checked-revision"
    monkeypatch.setenv(tags.VOCABULARY_ENV, "newest")
    with pytest.raises(InvalidInputError, match="newest"):
        EngineOptions()


def test_lite_parsing_treats_old_and_new_spellings_as_one_tag():
    units, slots = parse_tags("hello [clears throat] world [Question-oh]")
    assert units == ["hello", "world"] and [(s.tag, s.position) for s in slots] == [
        ("clears throat", 1), ("Question-oh", 2)]
    # a take that has [Laughter] after "hello" already realises [laugh] there
    assert new_slots("hello [Laughter] world", "hello [laugh] world [cough]")[0].tag == "cough"
    assert len(new_slots("hello [Laughter] world", "hello [laugh] world [cough]")) == 1


def test_script_grammar_accepts_every_spelling():
    script = parse_script("Alice: Hi [chuckle] there [Clears Throat] and [Laughter] bye [pause 0.5s]")
    text = " ".join(s.text for s in script.segments)
    assert "[chuckle]" in text and "[clears throat]" in text and "[Laughter]" in text


def _descriptor(y: np.ndarray, f0: float) -> np.ndarray:
    """Duration, the log power spectrum (STFT) in 3 time thirds x 12 log-spaced bands (150 Hz - 6 kHz), and the
    voiced share and F0 contour over the voiced frames (WORLD), 5 points x median F0."""
    hop, n_fft = SR // 100, 1024
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(y, n_fft // 2), n_fft)[::hop] * np.hanning(n_fft)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    hz = np.fft.rfftfreq(n_fft, 1 / SR)
    edges = np.geomspace(150, 6000, 13)
    band = np.stack([power[:, (hz >= lo) & (hz < hi)].sum(axis=1) for lo, hi in zip(edges[:-1], edges[1:])], 1)
    thirds = np.array_split(np.arange(len(band)), 3)
    shape = np.log10(np.stack([band[t].mean(axis=0) for t in thirds]) + 1e-10).ravel()
    shape -= shape.max()
    f0s = analyse(y.astype(np.float64), SR).f0
    voiced = f0s[f0s > 0] / f0 if np.any(f0s > 0) else np.zeros(2)
    contour = np.interp(np.linspace(0, 1, 5), np.linspace(0, 1, len(voiced)), voiced)
    return np.concatenate([[4 * np.log(len(y) / SR), 3 * np.mean(f0s > 0)], np.maximum(shape, -6), 3 * contour])


def test_every_tag_renders_audibly_and_distinctly(en_speech):
    """A sound per tag in two voices (the speaker, and the speaker 2 semitones higher): every sound of the second
    voice is nearest to the same tag's sound in the first (so no two tags sound alike), and each is audible."""
    voice_a = SpeakerVoice.from_world(analyse(en_speech, SR), en_speech)
    voice_b = dataclasses.replace(voice_a, f0=voice_a.f0 * 2 ** (2 / 12))
    names = list(catalog.PARALINGUISTIC_TAGS_2026)
    assert set(RECIPES) == set(names)
    ref = {n: _descriptor(synthesise_sound(n, voice_a), voice_a.f0) for n in names}
    confused = []
    for n in names:
        y = synthesise_sound(n, voice_b)
        assert 0.2 < len(y) / SR < 1.2 and np.all(np.isfinite(y)) and np.abs(y).max() < 1
        assert active_rms_db(y, SR) > voice_a.level_db - 30, n           # audible next to the speech
        d = _descriptor(y, voice_b.f0)
        nearest = min(names, key=lambda m: float(np.linalg.norm(ref[m] - d)))
        if nearest != n:
            confused.append((n, nearest))
    assert confused == []
    # old spellings give the same sound as their 2026 name
    assert np.array_equal(synthesise_sound("Laughter", voice_a), synthesise_sound("laugh", voice_a))


def test_tag_preview_knows_the_2026_tags():
    from app_ui import views
    html = views.tag_preview("Hello [cough] world [clears throat] [Yawns]")
    assert "tag-chip'>cough" in html and "tag-chip'>clears throat" in html and "Unknown tag(s): Yawns" in html


def test_the_neural_engine_sends_the_selected_spelling(tmp_path_factory, monkeypatch):
    """The tiny checkpoint engine: what reaches the edit instruction is re-spelled per vocabulary."""
    import logging

    import stepedit_core as sc
    from stepedit_core import engine as engine_mod
    from tests.tiny_checkpoint import build_tiny_checkpoint
    from tests.torch_threads import torch_threads

    logging.getLogger("stepedit_core.checkpoint").setLevel(logging.ERROR)
    eng = sc.load_engine("stepaudio", model_path=build_tiny_checkpoint(tmp_path_factory.mktemp("tiny_tags")))
    seen = []
    real = engine_mod.prompts.edit_instruction

    def spy(edit_type, edit_info, audio_text, text=None):
        seen.append((audio_text, text))
        return real(edit_type, edit_info, audio_text, text)

    monkeypatch.setattr(engine_mod.prompts, "edit_instruction", spy)
    clip = sc.AudioClip.from_array(0.1 * np.sin(np.linspace(0, 600, SR)).astype(np.float32), SR)
    request = sc.EditRequest(clip, "hello [Laughter] world", "paralinguistic", None,
                             "hello [Laughter] world [chuckle]", seed=3)
    with torch_threads(1):
        eng.with_options(constrained=True, max_new_tokens=10, tag_vocabulary="2025").edit(request)
        eng.with_options(constrained=True, max_new_tokens=10, tag_vocabulary="2026").edit(request)
        with pytest.raises(UnsupportedEditError, match="cough"):
            eng.with_options(tag_vocabulary="2025").edit(dataclasses.replace(request, new_text="hello [cough] world"))
    assert seen == [("hello [Laughter] world", "hello [Laughter] world [Laughter]"),
                    ("hello [laugh] world", "hello [laugh] world [chuckle]")]
