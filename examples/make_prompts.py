"""Regenerate the example prompts with the project's own lite TTS: ``python examples/make_prompts.py``."""
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
}


def main() -> None:
    tts = KokoroTTS()
    for name, (text, voice) in PROMPTS.items():
        wav = tts.synthesize(text, voice=voice)
        pad = np.zeros(int(0.15 * SAMPLE_RATE), np.float32)
        wav = np.concatenate([pad, wav, pad])
        assert 3.0 <= len(wav) / SAMPLE_RATE <= 8.0, (name, len(wav) / SAMPLE_RATE)
        write_wav(HERE / f"{name}.wav", wav, SAMPLE_RATE)
        (HERE / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
        print(f"{name}: {len(wav) / SAMPLE_RATE:.1f} s, voice {voice}")


if __name__ == "__main__":
    main()
