"""Lite engine: denoise, silence removal and speed on speech made by the lite TTS."""
from __future__ import annotations

import numpy as np
import pytest

from stepedit_core import catalog
from stepedit_core.errors import InvalidInputError, UnsupportedEditError
from stepedit_core.interface import AudioClip, EditRequest
from stepedit_core.lite import LiteEngine, strip_language_tag
from stepedit_core.listen.dsp import active_rms_db
from stepedit_core.listen.metrics import f0_stats, si_sdr
from stepedit_core.lite.timestretch import SPEED_RATIOS, time_stretch
from stepedit_core.lite.vad import speech_regions
from tests.audio_clips import SAMPLE_RATE, add_noise, en_speech, with_pauses, zh_speech  # noqa: F401 (fixtures)

SR = SAMPLE_RATE


@pytest.fixture(scope="module")
def engine():
    return LiteEngine()


def _edit(engine, wav, edit_type, info=None, n=1, text="some text"):
    req = EditRequest(audio=AudioClip.from_array(wav, SR), audio_text=text, edit_type=edit_type,
                      edit_info=info, n_iterations=n, seed=1)
    return engine.edit(req)


def test_capabilities_say_approximate(engine):
    caps = engine.capabilities()
    assert caps.engine == "lite" and caps.approximate and caps.clone and caps.transcribe
    assert "approximate" in caps.notes and "not modelled" in caps.notes
    for kind in (catalog.DENOISE, catalog.VAD, catalog.SPEED):
        assert caps.supports(kind)
    assert set(caps.edit_options[catalog.SPEED]) == set(catalog.SPEEDS)


@pytest.mark.parametrize("option", catalog.SPEEDS)
def test_speed_ratio_and_pitch(engine, en_speech, option):
    (res,) = _edit(engine, en_speech, catalog.SPEED, option)
    y = res.audio.samples
    assert res.audio.sample_rate == SR
    ratio = len(en_speech) / len(y)
    assert abs(ratio / SPEED_RATIOS[option] - 1) < 0.05
    f_in, f_out = f0_stats(en_speech, SR), f0_stats(y, SR)
    assert abs(f_out["median"] / f_in["median"] - 1) < 0.06          # pitch preserved
    assert abs(active_rms_db(y, SR) - active_rms_db(en_speech, SR)) < 1.5


def test_speed_iterations_stack(engine, zh_speech):
    results = _edit(engine, zh_speech, catalog.SPEED, "faster", n=2)
    assert len(results) == 2 and [r.iteration for r in results] == [1, 2]
    total = len(zh_speech) / len(results[-1].audio.samples)
    assert abs(total / SPEED_RATIOS["faster"] ** 2 - 1) < 0.05


def test_time_stretch_identity_and_bad_ratio():
    x = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    assert np.allclose(time_stretch(x, SR, 1.0), x)
    with pytest.raises(ValueError):
        time_stretch(x, SR, 0.0)


def test_vad_removes_silence_keeps_speech(engine, en_speech):
    padded = with_pauses(en_speech, pause_s=1.2)
    (res,) = _edit(engine, padded, catalog.VAD, text="")
    y = res.audio.samples
    removed = (len(padded) - len(y)) / SR
    assert removed > 0.85 * 3 * 1.2 - 0.4          # most of the 3.6 s of added silence is gone
    assert len(y) > 0.9 * len(en_speech)            # speech (and its short pauses) stays
    assert abs(active_rms_db(y, SR) - active_rms_db(en_speech, SR)) < 1.0
    # the speech regions of the input survive in order: total speech duration is preserved
    speech_in = sum(b - a for a, b in speech_regions(padded, SR))
    speech_out = sum(b - a for a, b in speech_regions(y, SR))
    assert speech_out > 0.9 * speech_in


def test_vad_iterations_shorten_pauses(engine, zh_speech):
    padded = with_pauses(zh_speech, pause_s=1.0)
    r1, r2 = _edit(engine, padded, catalog.VAD, n=2, text="")
    assert len(r2.audio.samples) <= len(r1.audio.samples) < len(padded)


def test_denoise_improves_snr(engine, en_speech):
    noisy = add_noise(en_speech, snr_db=5.0)
    (res,) = _edit(engine, noisy, catalog.DENOISE, text="")
    y = res.audio.samples
    assert len(y) == len(noisy)
    gain = si_sdr(en_speech, y) - si_sdr(en_speech, noisy)
    assert gain > 6.0, gain
    # time alignment: best lag of the cross-correlation is within 1 ms
    seg = slice(SR, 3 * SR)
    corr = np.correlate(y[seg], en_speech[SR - 240:3 * SR + 240], mode="valid")
    assert abs(int(np.argmax(corr)) - 240) <= 24


def test_edit_errors_are_typed(engine, en_speech):
    with pytest.raises(InvalidInputError):
        _edit(engine, en_speech, catalog.SPEED, "fastest")
    with pytest.raises(InvalidInputError):
        _edit(engine, en_speech, catalog.EMOTION, "happy", text="")     # transcript required
    with pytest.raises(InvalidInputError):
        _edit(engine, np.zeros(10, np.float32) + 0.1, catalog.DENOISE)   # too short: typed at decode time
    assert issubclass(UnsupportedEditError, InvalidInputError)


def test_strip_language_tag():
    assert strip_language_tag("[Sichuanese]你好") == ("你好", "Sichuanese")
    assert strip_language_tag("(cantonese) hi") == ("hi", "Cantonese")
    assert strip_language_tag("hello [Laughter]") == ("hello [Laughter]", None)
