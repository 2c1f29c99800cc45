"""Region-limited edits (stepedit_core.regions): windows cut at pauses, bit-identical outside the window,
clear messages for bad selections, paralinguistic text mapping, any engine and any sample rate."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stepedit_core import catalog, regions
from stepedit_core.checks import Word
from stepedit_core.errors import InvalidInputError, UnsupportedEditError
from stepedit_core.interface import AudioClip, EditRequest
from tests.fake_engine import FakeEngine

ROOT = Path(__file__).resolve().parent.parent


def _speechlike(sr: int, n_words: int = 6, word_s: float = 0.4, gap_s: float = 0.15):
    """Tone bursts ("words") separated by near-silent gaps, and their word times."""
    rng = np.random.default_rng(0)
    pieces, words, t = [], [], 0.0
    for i in range(n_words):
        n, g = int(word_s * sr), int(gap_s * sr)
        tt = np.arange(n) / sr
        pieces.append(0.3 * np.hanning(n) * np.sin(2 * np.pi * (150 + 20 * i) * tt))
        words.append(Word(f"w{i}", t, t + word_s))
        pieces.append(0.001 * rng.standard_normal(g))
        t += word_s + gap_s
    return AudioClip(np.concatenate(pieces).astype(np.float32), sr), words


def _outside_identical(original: np.ndarray, edited: np.ndarray, window: dict, sr: int) -> tuple[int, int]:
    a, b = window["window_samples"]
    assert window["sample_rate"] == sr
    fade = int(regions.FADE_S * sr)
    head = max(0, a - fade)
    tail = max(0, len(original) - (b + fade))
    assert np.array_equal(edited[:head], original[:head])
    assert np.array_equal(edited[len(edited) - tail:], original[len(original) - tail:])
    return head, tail


@pytest.mark.parametrize("sr", [24000, 16000])
@pytest.mark.parametrize("kind,info", [(catalog.EMOTION, "happy"), (catalog.SPEED, "slower"),
                                       (catalog.STYLE, "whisper")])
def test_every_sample_outside_the_window_is_identical(sr, kind, info):
    clip, words = _speechlike(sr)
    req = EditRequest(clip, " ".join(w.text for w in words), kind, info, n_iterations=2, seed=5)
    out = regions.region_edit(FakeEngine(), req, words, regions.Selection(first_word=2, last_word=3))
    assert len(out) == 2
    for r in out:
        assert r.audio.sample_rate == sr and r.text == req.audio_text
        win = r.metadata["region"]
        a, b = win["window_s"]
        assert words[1].end <= a <= words[2].start and words[3].end <= b <= words[4].start   # cut in the pauses
        head, tail = _outside_identical(clip.samples, r.audio.samples, win, sr)
        assert head > 0 and tail > 0
        assert not np.array_equal(r.audio.samples[head:len(r.audio.samples) - tail],
                                  clip.samples[head:len(clip.samples) - tail])
    assert len(out[1].audio.samples) - len(clip.samples) != 0 or kind != catalog.SPEED


def test_time_range_and_the_clip_edges():
    clip, words = _speechlike(24000)
    r = regions.region_edit(FakeEngine(), EditRequest(clip, "x", catalog.EMOTION, "sad", seed=1), [],
                            regions.Selection(start_s=0.0, end_s=0.5))[0]
    assert r.metadata["region"]["window_s"][0] == 0.0
    _outside_identical(clip.samples, r.audio.samples, r.metadata["region"], 24000)
    last = regions.find_window(clip, words, regions.Selection(first_word=5, last_word=5))
    assert last.end == len(clip.samples) and last.words == (words[5],)


@pytest.mark.parametrize("selection,message", [
    (regions.Selection(start_s=2.0, end_s=9.0), "outside the clip"),
    (regions.Selection(start_s=-1.0, end_s=0.5), "outside the clip"),
    (regions.Selection(start_s=1.0, end_s=1.0), "empty"),
    (regions.Selection(start_s=1.0, end_s=1.05), "inside a single sound"),
    (regions.Selection(first_word=4, last_word=2), "empty"),
    (regions.Selection(first_word=0, last_word=6), "outside the transcript"),
    (regions.Selection(start_s=float("nan"), end_s=1.0), "numbers"),
])
def test_bad_selections_get_clear_messages(selection, message):
    clip, words = _speechlike(24000)
    with pytest.raises(InvalidInputError, match=message):
        regions.region_edit(FakeEngine(), EditRequest(clip, "x", catalog.EMOTION, "sad", seed=1), words, selection)


def test_window_limit_and_whole_take_edits_are_refused():
    clip, words = _speechlike(24000)
    with pytest.raises(InvalidInputError, match="at most 1 s"):
        regions.find_window(clip, words, regions.Selection(first_word=0, last_word=3), max_window_s=1.0)
    with pytest.raises(UnsupportedEditError, match="whole take"):
        regions.region_edit(FakeEngine(), EditRequest(clip, "x", catalog.VAD, seed=1), words,
                            regions.Selection(first_word=0, last_word=1))


def test_paralinguistic_texts_map_between_the_take_and_the_selection():
    full = "Good morning everyone. Today I want to tell you a short story about a curious little fox."
    assert regions.window_new_text("about a curious little", full.replace("curious", "curious [Laughter]")) == \
        "about a curious [Laughter] little"
    assert regions.region_new_text(full, "about a curious little", "about a curious [Laughter] little") == \
        full.replace("curious", "curious [Laughter]")
    assert regions.region_new_text("大家好，今天我想给你们讲一个关于小狐狸的故事。", "关于小狐狸", "关于小狐狸[Sigh]") == \
        "大家好，今天我想给你们讲一个关于小狐狸[Sigh]的故事。"
    with pytest.raises(InvalidInputError, match="outside the selected words"):
        regions.window_new_text("about a curious little", "[Sigh] " + full)
    with pytest.raises(InvalidInputError, match="no \\[tag\\]"):
        regions.window_new_text("about a curious little", full)


def test_lite_engine_region_edits_on_real_speech():
    from stepedit_core.checks import checker_for
    from stepedit_core.lite import LiteEngine
    engine = LiteEngine()
    clip = AudioClip.from_file(ROOT / "examples" / "prompt_en.wav")
    text = (ROOT / "examples" / "prompt_en.txt").read_text().strip()
    words = checker_for(engine).heard(clip, "en").words
    sel = regions.Selection(first_word=12, last_word=15)          # "about a curious little"
    for kind, info, new in ((catalog.EMOTION, "happy", None),
                            (catalog.PARALINGUISTIC, None, text.replace("curious", "curious [Laughter]"))):
        r = regions.region_edit(engine, EditRequest(clip, text, kind, info, new_text=new, seed=2), words, sel)[0]
        assert r.metadata["region"]["text"].startswith("about a curious")
        _outside_identical(clip.samples, r.audio.samples, r.metadata["region"], clip.sample_rate)
        if kind == catalog.PARALINGUISTIC:
            assert r.text == new and len(r.audio.samples) > len(clip.samples)
