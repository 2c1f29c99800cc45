"""Regenerate the example prompts with the project's own lite TTS: ``python examples/make_prompts.py``.

``prompt_noisy`` is the English sentence in the other stock voice with synthetic noise mixed in (pink-ish
noise and a 50 Hz hum at NOISY_SNR_DB, a fixed seed): the example to denoise. No downloaded recording."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from anywhere without installing

from stepedit_core.audio import write_wav
from stepedit_core.lite.tts import FEMALE_VOICE, MALE_VOICE, SAMPLE_RATE, KokoroTTS

HERE = Path(__file__).parent
PROMPTS = {
    "prompt_en": ("Good morning everyone. Today I want to tell you a short story about a curious little fox.",
                  MALE_VOICE),
    "prompt_zh": ("大家好，今天我想给你们讲一个关于小狐狸的故事。", FEMALE_VOICE),
    "prompt_noisy": ("I recorded this message on a busy street, so please forgive the noise behind my voice.",
                     FEMALE_VOICE),
}
NOISY_SNR_DB = 5.0          # speech-to-noise ratio of prompt_noisy (clearly noisy, still intelligible)
HUM_HZ, HUM_SHARE = 50.0, 0.3


def add_noise(wav: np.ndarray, snr_db: float = NOISY_SNR_DB, seed: int = 7) -> np.ndarray:
    """``wav`` plus pink-ish noise (white noise through a one-pole low-pass) and a mains hum at ``snr_db``."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(len(wav))
    pink = np.zeros_like(white)
    for i in range(1, len(white)):                 # y[n] = 0.95 y[n-1] + x[n]: energy tilted to low frequencies
        pink[i] = 0.95 * pink[i - 1] + white[i]
    hum = np.sin(2 * np.pi * HUM_HZ * np.arange(len(wav)) / SAMPLE_RATE)
    noise = (1 - HUM_SHARE) * pink / pink.std() + HUM_SHARE * hum / hum.std()
    gain = np.sqrt(np.mean(wav ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    out = wav + gain * noise
    return (out * min(1.0, 0.95 / np.abs(out).max())).astype(np.float32)


def main() -> None:
    tts = KokoroTTS()
    for name, (text, voice) in PROMPTS.items():
        wav = tts.synthesize(text, voice=voice)
        pad = np.zeros(int(0.15 * SAMPLE_RATE), np.float32)
        wav = np.concatenate([pad, wav, pad])
        if name == "prompt_noisy":
            wav = add_noise(wav)
        assert 3.0 <= len(wav) / SAMPLE_RATE <= 8.0, (name, len(wav) / SAMPLE_RATE)
        write_wav(HERE / f"{name}.wav", wav, SAMPLE_RATE)
        (HERE / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
        print(f"{name}: {len(wav) / SAMPLE_RATE:.1f} s, voice {voice}")


if __name__ == "__main__":
    main()
