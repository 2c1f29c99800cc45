"""Lite engine: a seed is a reading. Four consecutive seeds (the app's candidates) give four takes that differ
in intonation or timing, not only in noise; the same seed gives the same bytes; restorations ignore it."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from stepedit_core import catalog
from stepedit_core.interface import AudioClip, CloneRequest, EditRequest
from stepedit_core.lite import LiteEngine
from stepedit_core.lite.prosody import F0_CEIL, F0_FLOOR
from tests.audio_clips import EN_TEXT, SAMPLE_RATE, add_noise, en_speech  # noqa: F401 (fixtures)

SR = SAMPLE_RATE
SEEDS = (40, 41, 42, 43)
MIN_TIMING_S = 0.04          # a length difference a listener hears as a different pace
MIN_MELODY_ST = 0.5          # mean intonation difference (semitones) a listener hears as a different reading
F0_FRAME_MS = 5.0


def f0_contour(wav: np.ndarray) -> np.ndarray:
    """(T,) F0 in Hz per 5 ms frame, 0 when unvoiced."""
    import pyworld  # noqa: PLC0415
    x = np.asarray(wav, np.float64)
    f0, t = pyworld.dio(x, SR, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=F0_FRAME_MS)
    return pyworld.stonemask(x, f0, t, SR)


def melody_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |semitone difference| of two takes' F0 contours compared at the same fraction of their length."""
    fa, fb = f0_contour(a), f0_contour(b)
    n = min(len(fa), len(fb))
    ia, ib = np.linspace(0, len(fa) - 1, n).round().astype(int), np.linspace(0, len(fb) - 1, n).round().astype(int)
    fa, fb = fa[ia], fb[ib]
    both = (fa > 0) & (fb > 0)
    assert both.sum() > 50, "too few voiced frames to compare"
    return float(np.mean(np.abs(12 * np.log2(fa[both] / fb[both]))))


def assert_four_readings(takes: list[np.ndarray]) -> None:
    for (i, a), (j, b) in itertools.combinations(enumerate(takes), 2):
        timing = abs(len(a) - len(b)) / SR
        melody = melody_distance(a, b)
        assert timing >= MIN_TIMING_S or melody >= MIN_MELODY_ST, (SEEDS[i], SEEDS[j], timing, melody)


@pytest.fixture(scope="module")
def engine():
    return LiteEngine()


@pytest.fixture(scope="module")
def prompt(en_speech):
    return AudioClip.from_array(en_speech[: 4 * SR], SR)


def _clone(engine, prompt, seed):
    return engine.clone(CloneRequest(prompt_audio=prompt, prompt_text="the quick brown fox",
                                     target_text="Hello there, this is a short test of my new voice.",
                                     seed=seed)).audio.samples


def _edit(engine, wav, kind, info, seed, new_text=None):
    (res,) = engine.edit(EditRequest(audio=AudioClip.from_array(wav, SR), audio_text=EN_TEXT, edit_type=kind,
                                     edit_info=info, new_text=new_text, seed=seed))
    return res.audio.samples


def test_clone_seeds_give_different_readings_and_equal_seeds_equal_bytes(engine, prompt):
    takes = [_clone(engine, prompt, s) for s in SEEDS]
    assert_four_readings(takes)
    assert _clone(engine, prompt, SEEDS[1]).tobytes() == takes[1].tobytes()


@pytest.mark.parametrize("kind,info", [(catalog.EMOTION, "happy"), (catalog.STYLE, "whisper"),
                                       (catalog.EMOTION, catalog.REMOVE), (catalog.SPEED, "faster")])
def test_edit_seeds_give_different_readings(engine, en_speech, kind, info):
    takes = [_edit(engine, en_speech, kind, info, s) for s in SEEDS]
    if info == "whisper":                     # no F0 left to compare: the timing must differ
        for a, b in itertools.combinations(takes, 2):
            assert abs(len(a) - len(b)) / SR >= MIN_TIMING_S
    else:
        assert_four_readings(takes)
    assert _edit(engine, en_speech, kind, info, SEEDS[2]).tobytes() == takes[2].tobytes()


def test_paralinguistic_seeds_change_the_sound(engine, en_speech):
    new_text = EN_TEXT.replace("fox", "fox [Laughter]")
    takes = [_edit(engine, en_speech, catalog.PARALINGUISTIC, None, s, new_text) for s in SEEDS]
    for a, b in itertools.combinations(takes, 2):
        assert abs(len(a) - len(b)) / SR >= MIN_TIMING_S
    assert _edit(engine, en_speech, catalog.PARALINGUISTIC, None, SEEDS[0], new_text).tobytes() == takes[0].tobytes()


def test_restorations_ignore_the_seed(engine, en_speech):
    noisy = add_noise(en_speech, 10.0)
    for kind in (catalog.DENOISE, catalog.VAD):
        a, b = (_edit(engine, noisy, kind, None, s) for s in SEEDS[:2])
        assert a.tobytes() == b.tobytes()


def test_streamed_clone_follows_the_seed(engine, prompt):
    def streamed(seed):
        return np.concatenate(list(engine.stream_clone(CloneRequest(
            prompt_audio=prompt, prompt_text="the quick brown fox",
            target_text="Hello there, this is a short test of my new voice.", seed=seed))))
    a, b = streamed(SEEDS[0]), streamed(SEEDS[1])
    assert abs(len(a) - len(b)) / SR >= MIN_TIMING_S or melody_distance(a, b) >= MIN_MELODY_ST
    assert streamed(SEEDS[0]).tobytes() == a.tobytes()


def test_script_reroll_changes_the_line(engine, prompt, tmp_path):
    """Script tab: "Re-roll line" (a fresh seed) gives the line a different reading; the other line stays."""
    from stepedit_core.script import parse_script, render_script, reroll_line
    from stepedit_core.voices import VoiceLibrary
    lib = VoiceLibrary(tmp_path / "voices")
    lib.save("Ann", prompt, "the quick brown fox jumps over the lazy dog")
    script = parse_script("Ann: Good morning.\nAnn: See you soon, and have a lovely weekend.", voices=lib.names())
    render = render_script(engine, script, lib, seed=11)
    again = reroll_line(engine, render, 1, lib, seed=12)
    old, new = render.lines[1].audio, again.lines[1].audio
    assert abs(len(old) - len(new)) / SR >= MIN_TIMING_S or melody_distance(old, new) >= MIN_MELODY_ST
    assert again.lines[0].audio.tobytes() == render.lines[0].audio.tobytes()
