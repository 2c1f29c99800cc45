"""A small deterministic engine for the app tests: numpy DSP, no models, the full Engine interface.

Every output depends only on its inputs and its seed, so replaying a recipe reproduces takes bit for bit:
- clone: one tone per character of the target text (pitch from the prompt's zero-crossing rate and the
  character), with seeded noise;
- emotion / style: a seeded pitch shift (resampling) plus a tremolo; speed: resampling by the official
  option's ratio; denoise: a moving average; vad: silent stretches shortened;
- paralinguistic: a short seeded noise burst inserted where each [tag] falls in the new text;
- transcribe: a fixed sentence that names the clip's duration;
- transcribe_words (the take check): the text of a take this engine made, heard word for word, with the
  last word "dropped" when the take's seed is a multiple of DROP_EVERY (a model that loses words now and then,
  for the auto-retry tests); evenly spaced word times; other clips are heard as the fixed sentence.
"""
from __future__ import annotations

import re
import time
import zlib

import numpy as np

from stepedit_core import catalog
from stepedit_core.checks import Heard, Word
from stepedit_core.interface import (AudioClip, Capabilities, CloneRequest, EditRequest, Engine, EngineResult,
                                     edit_result_text)

SR = 24000
TONE_SECONDS = 0.06           # per character of target text
STREAM_CHARS = 8              # characters of target text per streamed chunk
SPEED = {"faster": 0.8, "slower": 1.25, "more faster": 0.65, "more slower": 1.5}
_TAG = re.compile(r"\[([A-Za-z-]+)\]")
DROP_EVERY = 3


def _rng(seed: int, *salt: object) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(repr(salt).encode())])


def _stretch(x: np.ndarray, factor: float) -> np.ndarray:
    n = max(1, int(round(len(x) * factor)))
    return np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x).astype(np.float32)


class FakeEngine(Engine):
    def __init__(self, *, unsupported: tuple[str, ...] = (), max_input_seconds: float = 30.0,
                 transcribe: bool = True, fail_with: Exception | None = None, device: str = "cpu",
                 stream_delay: float = 0.0):
        self.unsupported = unsupported
        self.device = device
        self.max_input_seconds = max_input_seconds
        self._can_transcribe = transcribe
        self.fail_with = fail_with        # raised by the next clone/edit (then cleared), to test error paths
        self.calls: list[str] = []
        self._made: dict[bytes, tuple[str, int]] = {}     # audio digest -> (text, seed) of takes made here
        self.stream_delay = stream_delay  # seconds before each streamed chunk (a slow engine, for the browser)
        self.chunks_streamed = 0

    def capabilities(self) -> Capabilities:
        return Capabilities(
            engine="fake", display_name="Fake engine (tests)", clone=catalog.CLONE not in self.unsupported,
            edit_options={t: catalog.OPTIONS[t] for t in catalog.AUDIO_EDIT_TYPES if t not in self.unsupported},
            transcribe=self._can_transcribe, approximate=True, max_input_seconds=self.max_input_seconds,
            device=self.device, notes="Deterministic numpy DSP for tests.")

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            exc, self.fail_with = self.fail_with, None
            raise exc

    def transcribe(self, clip: AudioClip, language: str | None = None) -> str:
        if not self._can_transcribe:
            return super().transcribe(clip, language)
        self.calls.append("transcribe")
        return f"a fake transcript of {clip.duration:.1f} seconds"

    def _remember(self, result: EngineResult) -> EngineResult:
        self._made[_digest(result.audio.samples)] = (result.text, result.seed)
        return result

    def transcribe_words(self, clip: AudioClip, language: str | None = None) -> Heard:
        text, seed = self._made.get(_digest(clip.samples), (None, 1))
        if text is None:
            text = self.transcribe(clip, language) if self._can_transcribe else ""
        words = _TAG.sub(" ", text).split()
        if seed % DROP_EVERY == 0 and len(words) > 1:
            words = words[:-1]
        step = clip.duration / max(1, len(words))
        return Heard(" ".join(words), language, tuple(Word(w, i * step, (i + 1) * step) for i, w in enumerate(words)))

    def _clone(self, request: CloneRequest, progress) -> EngineResult:
        self.calls.append("clone")
        self._maybe_fail()
        progress(0.1, "encoding the prompt")
        prompt = request.prompt_audio.resampled(SR)
        zcr = float(np.mean(np.abs(np.diff(np.signbit(prompt).astype(np.int8))))) if len(prompt) > 1 else 0.0
        base = 120.0 + 2000.0 * zcr
        rng = _rng(request.seed, "clone", request.target_text)
        n = int(TONE_SECONDS * SR)
        t = np.arange(n) / SR
        env = np.hanning(n).astype(np.float32)
        pieces = []
        for ch in request.target_text:
            f = base * (1.0 + (ord(ch) % 12) / 24.0) * (1.0 + 0.02 * rng.standard_normal())
            pieces.append(0.3 * env * np.sin(2 * np.pi * f * t) if not ch.isspace() else np.zeros(n))
        wav = np.concatenate(pieces).astype(np.float32) + 0.003 * rng.standard_normal(n * len(pieces))
        progress(1.0, "done")
        return self._remember(EngineResult(audio=AudioClip(np.clip(wav, -1, 1).astype(np.float32), SR),
                                           text=request.target_text, seed=request.seed, edit_type=catalog.CLONE,
                                           timings={"clone": 0.0}))

    def _edit_once(self, clip: AudioClip, audio_text: str, request: EditRequest, seed: int, iteration: int,
                   progress) -> EngineResult:
        self.calls.append(request.edit_type)
        self._maybe_fail()
        x = clip.resampled(SR)
        kind, info = request.edit_type, request.edit_info
        rng = _rng(seed, kind, info)
        progress(0.5, kind)
        if kind in (catalog.EMOTION, catalog.STYLE):
            shift = 1.0 + 0.1 * rng.uniform(-1, 1)
            y = _stretch(x, shift)
            y = y * (1.0 + 0.3 * np.sin(2 * np.pi * (3 + zlib.crc32(info.encode()) % 5) * np.arange(len(y)) / SR))
        elif kind == catalog.SPEED:
            y = _stretch(x, SPEED[info])
        elif kind == catalog.DENOISE:
            y = np.convolve(x, np.ones(5, np.float32) / 5, mode="same")
        elif kind == catalog.VAD:
            loud = np.abs(x) > 0.01
            keep = loud | (np.convolve(loud, np.ones(SR // 10), mode="same") > 0)
            y = x[keep] if keep.any() else x
        elif kind == catalog.PARALINGUISTIC:
            text = request.new_text or ""
            cuts = [m.start() / max(len(text), 1) for m in _TAG.finditer(text)]
            pieces, prev = [], 0
            for c in cuts:
                at = int(c * len(x))
                pieces += [x[prev:at], 0.2 * rng.standard_normal(SR // 5).astype(np.float32)]
                prev = at
            y = np.concatenate(pieces + [x[prev:]])
        else:
            raise AssertionError(kind)
        y = np.clip(y + 0.001 * rng.standard_normal(len(y)), -1, 1).astype(np.float32)
        return self._remember(EngineResult(audio=AudioClip(y, SR), text=edit_result_text(request, audio_text),
                                           seed=seed, edit_type=kind, edit_info=info, iteration=iteration,
                                           timings={kind: 0.0}))

    def _stream_pieces(self, wav: np.ndarray, should_stop):
        """STREAM_CHARS characters of audio per chunk, each after ``stream_delay`` seconds."""
        step = STREAM_CHARS * int(TONE_SECONDS * SR)
        for start in range(0, len(wav), step):
            if should_stop():
                return
            time.sleep(self.stream_delay)
            self.chunks_streamed += 1
            yield wav[start:start + step]

    def _stream_clone(self, request: CloneRequest, should_stop):
        yield from self._stream_pieces(self._clone(request, lambda f, d: None).audio.samples, should_stop)

    def _stream_edit(self, request: EditRequest, should_stop):
        result = self._edit_once(request.audio, request.audio_text, request, request.seed, 1, lambda f, d: None)
        yield from self._stream_pieces(result.audio.samples, should_stop)

    def estimate_seconds(self, kind: str, audio_seconds: float, text_chars: int = 0, n_iterations: int = 1,
                         candidates: int = 1) -> float:
        return candidates * (1.0 + n_iterations * 0.1 * audio_seconds + 0.01 * text_chars)


def _digest(samples: np.ndarray) -> bytes:
    """Of the take's samples as the engine returned them (the app checks results before writing them)."""
    return zlib.crc32(np.ascontiguousarray(samples, np.float32).tobytes()).to_bytes(4, "little")
