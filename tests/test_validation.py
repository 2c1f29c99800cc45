"""stepedit_core.validation: the one place every door checks its input (limits, messages, header-first audio)."""
from __future__ import annotations

import io
import math
import time

import numpy as np
import pytest
import soundfile as sf

from stepedit_core import validation as V
from stepedit_core.audio import load_audio
from stepedit_core.errors import AudioDecodeError, InvalidInputError
from stepedit_core.interface import AudioClip, CloneRequest, EditRequest
from tests.fake_engine import FakeEngine
from tests.hostile_inputs import _patch_flac_total_samples


def test_text_is_cleaned_and_needs_words():
    assert V.check_text(" he\x00llo\u200b wor\x07ld\n", "the text") == "hello world"
    for junk in ("😀🎉", "?!...", "\u200b\u200d", "[Laughter]", "\x00\x00"):
        with pytest.raises(InvalidInputError, match="no words to speak|is empty"):
            V.check_text(junk, "the target text", speech=True)
    with pytest.raises(InvalidInputError, match="999-letter word"):
        V.check_text("a" * 999, "the target text", speech=True)
    assert V.check_text("你好" * 400, "the target text", speech=True)      # CJK has no spaces: not a "word"
    with pytest.raises(InvalidInputError, match="too long \\(10000 characters; at most 1000\\)"):
        V.check_text("x" * 10000, "the text")
    with pytest.raises(InvalidInputError, match="must be text"):
        V.check_text(12, "the text")


@pytest.mark.parametrize("value", [math.nan, math.inf, 1.5, "3", True, None, 2**31, [1]])
def test_numbers_refuse_what_is_not_a_whole_number_in_range(value):
    with pytest.raises(InvalidInputError, match="whole number"):
        V.check_iterations(value if value != "3" else "three")
    if value not in (None,) and not (isinstance(value, float) and value < 0):
        with pytest.raises(InvalidInputError, match="seed"):
            V.check_seed(value if value != "3" else "x")


def test_seed_negative_means_random_and_edit_names_are_exact():
    assert V.check_seed(-1) is None and V.check_seed(-0.5) is None and V.check_seed(7.0) == 7
    for bad in ("EMOTION", "emotion ", "", "clone", None):
        with pytest.raises(InvalidInputError, match="unknown edit type .*use one of emotion"):
            V.check_edit_type(bad)
    with pytest.raises(InvalidInputError, match="needs an option"):
        V.check_edit_info("emotion", "")
    assert V.check_edit_info("vad", "anything") is None
    long = V.shown("x" * 5000)
    assert len(long) <= 40


def test_bomb_header_is_refused_without_decoding(tmp_path):
    small = io.BytesIO()
    sf.write(small, np.zeros((48000, 2), np.int16), 48000, format="FLAC")
    bomb = tmp_path / "bomb.flac"
    bomb.write_bytes(_patch_flac_total_samples(small.getvalue(), 10 * 60 * 384000, 384000, 2))
    t0 = time.perf_counter()
    with pytest.raises(InvalidInputError, match="bomb.flac has a sample rate of 384000 Hz"):
        load_audio(bomb)
    assert time.perf_counter() - t0 < 1.0
    long = tmp_path / "long.flac"
    long.write_bytes(_patch_flac_total_samples(small.getvalue(), 20 * 60 * 48000, 48000, 2))
    with pytest.raises(InvalidInputError, match=r"long.flac is 20.0 min long; at most 120 s"):
        load_audio(long)
    with pytest.raises(InvalidInputError, match="is 20.0 min long; at most 30 s"):
        V.probe_audio(long, max_seconds=30)


def test_zero_samples_and_paths_in_messages(tmp_path):
    empty = tmp_path / "nothing.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioDecodeError, match="nothing.wav is empty") as err:
        load_audio(empty)
    assert str(tmp_path) not in str(err.value)
    assert V.scrub_paths("Error opening '/srv/upload/ab12/x.wav': bad") == "Error opening 'x.wav': bad"


def test_silence_and_steady_tones_are_not_voices():
    sr = 16000
    t = np.arange(2 * sr) / sr
    rng = np.random.default_rng(0)
    for wav in (np.zeros(2 * sr), 1e-4 * rng.standard_normal(2 * sr), 0.5 * np.sign(np.sin(2 * np.pi * 200 * t)),
                0.3 * rng.standard_normal(2 * sr), np.full(2 * sr, 0.5)):
        with pytest.raises(InvalidInputError, match="no speech found"):
            V.check_voice_like(wav.astype(np.float32), sr, "the prompt audio")
    speechy = 0.3 * np.sin(2 * np.pi * 150 * t) * np.clip(np.sin(2 * np.pi * 3 * t), 0.02, 1)
    V.check_voice_like(speechy.astype(np.float32), sr, "the prompt audio")


def test_engines_validate_through_the_same_functions():
    eng = FakeEngine()
    sr = 16000
    t = np.arange(sr) / sr
    clip = AudioClip.from_array((0.3 * np.sin(2 * np.pi * 150 * t) * (0.55 + 0.45 * np.sin(2 * np.pi * 3 * t)))
                                .astype(np.float32), sr)
    with pytest.raises(InvalidInputError, match="the target text has no words to speak"):
        eng.clone(CloneRequest(clip, "a prompt", "😀😀", seed=1))
    with pytest.raises(InvalidInputError, match="unknown edit type 'EMOTION'"):
        eng.edit(EditRequest(clip, "x", "EMOTION", "happy"))
    silent = AudioClip.from_array(np.zeros(sr, np.float32), sr)
    with pytest.raises(InvalidInputError, match="prompt audio is silent"):
        eng.clone(CloneRequest(silent, "a prompt", "hello", seed=1))


def test_lite_transcription_has_a_work_estimate():
    """The lite engine's transcription estimate (whisper seconds per audio second) is checked in the same
    place as clone and edit work; its longest accepted input stays within the cap."""
    from stepedit_core import catalog
    from stepedit_core.interface import check_work
    from stepedit_core.listen.asr import SECONDS_PER_AUDIO_S
    from stepedit_core.lite.engine import MAX_INPUT_SECONDS, LiteEngine
    eng = LiteEngine()
    caps = eng.capabilities()
    assert eng.estimate_seconds(catalog.TRANSCRIBE, 30.0) == pytest.approx(30.0 * SECONDS_PER_AUDIO_S)
    check_work(eng, catalog.TRANSCRIBE, MAX_INPUT_SECONDS)            # the longest input is accepted
    over = caps.max_request_seconds / SECONDS_PER_AUDIO_S + 5.0
    with pytest.raises(InvalidInputError, match=f"at most {caps.max_request_seconds:.0f} s"):
        check_work(eng, catalog.TRANSCRIBE, over)
