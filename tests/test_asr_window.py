"""The take check's whisper decode (stepedit_core.listen.asr, ``fast=True``): one window the length of the clip
(not whisper's padded 30 s), word times from the alignment, and a bounded re-decode when greedy loops."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stepedit_core.interface import AudioClip
from stepedit_core.listen import asr as asr_mod
from stepedit_core.listen.metrics import error_rate

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def whisper():
    return asr_mod.WhisperASR()


@pytest.fixture()
def encoded_frames(whisper, monkeypatch):
    """The frame counts the encoder is called with."""
    model = whisper._load()
    seen: list[int] = []
    real = model.encode

    def encode(features):
        seen.append(int(features.shape[-1]))
        return real(features)
    monkeypatch.setattr(model, "encode", encode)
    return seen


def _example(lang: str) -> tuple[AudioClip, str]:
    return (AudioClip.from_file(ROOT / "examples" / f"prompt_{lang}.wav"),
            (ROOT / "examples" / f"prompt_{lang}.txt").read_text(encoding="utf-8").strip())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_short_take_is_encoded_once_over_a_short_window(whisper, encoded_frames, lang):
    clip, text = _example(lang)                                   # 6.1 s of speech
    t = whisper.transcribe(clip.samples, clip.sample_rate, lang, word_timestamps=True, fast=True)
    assert encoded_frames == [asr_mod.MIN_WINDOW_S * asr_mod.FRAMES_PER_S]        # 10 s, not 30 s
    assert t.language == lang and error_rate(text, t.text) <= 0.10, t.text
    starts = [w.start for w in t.words]
    assert starts == sorted(starts) and all(0 <= w.start < w.end <= clip.duration + 0.1 for w in t.words)
    # punctuation rides on its word (faster-whisper's merge), so no "word" is a bare mark
    assert all(w.text.strip(" ,.!?，。！？") for w in t.words)
    assert "".join(w.text for w in t.words).replace(" ", "") == t.text.replace(" ", "")


def test_the_window_grows_with_the_take_and_long_takes_are_cut_at_pauses(whisper, encoded_frames):
    clip, text = _example("en")
    x = clip.samples
    twice = np.concatenate([x, x])                               # 12.2 s -> a 14 s window (+1 s, even)
    whisper.transcribe(twice, clip.sample_rate, "en", fast=True)
    assert encoded_frames == [14 * asr_mod.FRAMES_PER_S]
    five = np.concatenate([x] * 5)                               # 30.5 s: more than one window
    t = whisper.transcribe(five, clip.sample_rate, "en", word_timestamps=True, fast=True)
    assert len(encoded_frames) == 3 and max(encoded_frames) <= asr_mod.MAX_CHUNK_S * asr_mod.FRAMES_PER_S
    assert error_rate(" ".join([text] * 5), t.text) <= 0.10, t.text
    starts = [w.start for w in t.words]                          # one clock across the pieces
    assert starts == sorted(starts) and t.words[-1].end > 28.0 and t.words[-1].end <= len(five) / clip.sample_rate + 0.1


class _Looping:
    """A CTranslate2 whisper whose greedy decode loops on one token; sampling decodes normally."""

    def __init__(self, real, loop_token: int):
        self._real, self._loop, self.calls = real, loop_token, []

    def __getattr__(self, name):
        return getattr(self._real, name)

    def generate(self, encoded, prompts, **options):
        self.calls.append(options)
        result = self._real.generate(encoded, prompts, **options)
        if options.get("sampling_temperature"):
            return result

        class Looped:
            sequences_ids = [[self._loop] * (options["max_length"] - len(prompts[0]))]
        return [Looped]


def test_a_greedy_loop_is_decoded_again_within_the_token_budget(whisper, monkeypatch):
    clip, text = _example("en")
    model = whisper._load()
    from faster_whisper.tokenizer import Tokenizer   # noqa: PLC0415
    loop_token = Tokenizer(model.hf_tokenizer, True, task="transcribe", language="en").encode(" new")[0]
    fake = _Looping(model.model, loop_token)
    monkeypatch.setattr(model, "model", fake)
    t = whisper.transcribe(clip.samples, clip.sample_rate, "en", fast=True)
    greedy, sampled = fake.calls[0], fake.calls[1]
    budget = asr_mod.TOKENS_BASE + int(asr_mod.TOKENS_PER_S * clip.duration)
    assert greedy["max_length"] <= budget + 8 and "sampling_temperature" not in greedy   # 8: prompt tokens
    assert sampled["sampling_temperature"] == asr_mod.LOOP_TEMPERATURES[0]
    assert "new new new" not in t.text and error_rate(text, t.text) <= 0.25, t.text
