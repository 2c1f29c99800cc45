"""Speech clips made by the project itself (lite Kokoro TTS), for tests that need real audio.

Clips are cached as 16-bit wav files under the system temp dir (keyed by text and voice), so a test
session synthesises each sentence once and later sessions reuse it. Import the pytest fixtures from
here in test modules: ``from tests.audio_clips import en_speech, zh_speech``.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

EN_TEXT = "The quick brown fox jumps over the lazy dog. Yesterday I went to the market and bought fresh apples."
ZH_TEXT = "今天天气很好，我们一起去公园散步吧。明天下午三点在图书馆见面。"
SAMPLE_RATE = 24000
CLIP_VERSION = 2                  # bump when the lite TTS output changes
CACHE = Path(os.environ.get("STEPEDIT_TEST_CLIPS", Path(tempfile.gettempdir()) / "stepedit-lite-clips"))

_tts = None


def speech(text: str, voice: str = "jm_kumo") -> np.ndarray:
    """24 kHz float32 speech for ``text`` from the lite TTS (cached on disk)."""
    global _tts
    key = hashlib.sha1(f"{CLIP_VERSION}|{voice}|{text}".encode()).hexdigest()[:16]
    path = CACHE / f"{key}.wav"
    if path.is_file():
        wav, sr = sf.read(path, dtype="float32")
        assert sr == SAMPLE_RATE
        return wav
    if _tts is None:
        from stepedit_core.lite.tts import KokoroTTS
        _tts = KokoroTTS()
    wav = _tts.synthesize(text, voice=voice)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.wav")
    sf.write(tmp, wav, SAMPLE_RATE, subtype="PCM_16")
    os.replace(tmp, path)
    return sf.read(path, dtype="float32")[0]


def with_pauses(wav: np.ndarray, pause_s: float = 1.2, split_at: float = 0.5) -> np.ndarray:
    """Silence before, in the middle (at a low-energy point near ``split_at``) and after the speech."""
    n = len(wav)
    lo, hi = int(n * (split_at - 0.1)), int(n * (split_at + 0.1))
    frame = 240
    energies = [np.mean(wav[i:i + frame] ** 2) for i in range(lo, hi, frame)]
    cut = lo + frame * int(np.argmin(energies))
    gap = np.zeros(int(pause_s * SAMPLE_RATE), np.float32)
    return np.concatenate([gap, wav[:cut], gap, wav[cut:], gap]).astype(np.float32)


def add_noise(wav: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """``wav`` plus pink-ish noise and a 120 Hz hum at ``snr_db`` (relative to the whole clip)."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(len(wav))
    pink = np.convolve(white, np.ones(8) / 8, mode="same") + 0.3 * white
    t = np.arange(len(wav)) / SAMPLE_RATE
    noise = pink + 0.5 * np.sin(2 * np.pi * 120 * t)
    noise *= np.sqrt(np.mean(wav ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    return (wav + noise).astype(np.float32)


@pytest.fixture(scope="session")
def en_speech() -> np.ndarray:
    return speech(EN_TEXT)


@pytest.fixture(scope="session")
def zh_speech() -> np.ndarray:
    return speech(ZH_TEXT)
