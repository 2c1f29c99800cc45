"""The lite clone keeps word endings (-ed, -s) even when the prompt voice forces the strongest formant warp.

The prompt is the project's own examples/prompt_en.wav, played faster or slower (pitch and formants move
together, like a smaller or larger speaker), so the voice match must warp the envelope to its limits; the
clone's whisper transcript must still carry every inflected word.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from stepedit_core.interface import AudioClip, CloneRequest
from stepedit_core.lite import voice
from stepedit_core.lite.engine import LiteEngine

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TEXT = "She walked home, watched the birds and cleaned the windows."
INFLECTED = ("walked", "watched", "birds", "cleaned", "windows")


@pytest.fixture(scope="module")
def engine():
    return LiteEngine()


def _speaker(factor: float) -> AudioClip:
    """prompt_en.wav played ``factor`` times faster: pitch and formants scaled by ``factor``."""
    clip = AudioClip.from_file(EXAMPLES / "prompt_en.wav")
    n = int(len(clip.samples) / factor)
    x = np.interp(np.arange(n) * factor, np.arange(len(clip.samples)), clip.samples).astype(np.float32)
    return AudioClip.from_array(x, clip.sample_rate)


@pytest.mark.parametrize("factor,warp", [(1.25, voice.WARP_MAX), (0.8, voice.WARP_MIN)])
def test_clone_keeps_inflections_under_formant_warp(engine, factor, warp):
    prompt_text = (EXAMPLES / "prompt_en.txt").read_text(encoding="utf-8").strip()
    result = engine.clone(CloneRequest(_speaker(factor), prompt_text, TEXT, seed=3))
    assert result.metadata["formant_warp"] == pytest.approx(warp)       # the warp really is at its limit
    heard = re.findall(r"[a-z']+", engine.transcribe(result.audio, "en").lower())
    missing = [w for w in INFLECTED if w not in heard]
    assert not missing, f"ending lost at warp {result.metadata['formant_warp']:.2f}: {missing} in {heard}"


def test_transcribe_refuses_silence_and_noise_at_once(engine):
    """Whisper loops for a minute on near-silence; the lite engine answers before it runs."""
    from stepedit_core.errors import InvalidInputError  # noqa: PLC0415
    rng = np.random.default_rng(1)
    sr = 16000
    for wav in (1e-4 * rng.standard_normal(10 * sr), 0.3 * rng.standard_normal(10 * sr)):
        t0 = time.perf_counter()
        with pytest.raises(InvalidInputError, match="no speech found"):
            engine.transcribe(AudioClip.from_array(wav.astype(np.float32), sr))
        assert time.perf_counter() - t0 < 5.0          # whisper itself would take ~60 s


def test_lite_clone_refuses_a_steady_tone_as_prompt(engine):
    from stepedit_core.errors import InvalidInputError  # noqa: PLC0415
    sr = 16000
    t = np.arange(3 * sr) / sr
    square = AudioClip.from_array((0.5 * np.sign(np.sin(2 * np.pi * 200 * t))).astype(np.float32), sr)
    with pytest.raises(InvalidInputError, match="steady sound .*not speech"):
        engine.clone(CloneRequest(square, "a prompt", "Hello there.", seed=1))
