"""Streaming for the lite engine: speech in pieces as soon as each is ready, the first piece short.

Clone: the target text is cut into phrases (``longform.split_for_streaming``) at sentence ends, commas or
word boundaries (jieba's words for Chinese, so no word is broken by a pause): a first phrase of at most
FIRST_PHRASE_S estimated speaking time, then phrases that grow with the audio already streamed
(PHRASE_GROWTH), up to LATER_PHRASE_S. Kokoro's cost per call is about a fixed part plus a part per second
of speech, so the growth keeps each phrase's synthesis shorter than the audio queued before it. Every
phrase is synthesised by Kokoro and moved toward the prompt voice on its own, so the first audio waits for
one short phrase, not the whole text. ``[tags]`` are synthesised between phrases in the voice of the speech
streamed so far.

Edit: local edits (speed, emotion, style, denoise) run on pieces of the clip cut at pauses
(``longform.split_at_pauses``): a first piece of at most FIRST_EDIT_S, then pieces of at most LATER_EDIT_S.
Silence removal and paralinguistic edits need the whole clip (pause statistics, word times), so they are
computed whole and streamed in ``interface.STREAM_CHUNK_S`` pieces.

Deliberate differences from the non-streamed take, the price of early audio: each phrase / piece gets its own
voice mapping (F0 statistics) and peak limit, and a cut mid-sentence becomes a short PHRASE_PAUSE_S pause.
The chunks' concatenation is the streamed take, bit for bit.
"""
from __future__ import annotations

import re
from typing import Callable, Iterator

import numpy as np

from .. import catalog, longform
from ..errors import InvalidInputError, StepEditError
from ..interface import CloneRequest, EditRequest, StopCheck, chunk_audio
from . import nonverbal, prosody, voice
from .denoise import denoise_span
from ..listen.dsp import peak_limit, resample
from ..listen.g2p import CJK
from .timestretch import SPEED_RATIOS, time_stretch
from .tts import SENTENCE_PAUSE_S
from .variation import CLONE_RATE_SPAN, Performance

FIRST_PHRASE_S = 1.0        # estimated speaking time of the first phrase (time to first audio ~0.6 s, 2 cores)
PHRASE_GROWTH = 1.2         # a later phrase lasts at most 1.2x the audio streamed before it (bench_streaming)
LATER_PHRASE_S = 8.0        # ... and at most this long
PHRASE_PAUSE_S = 0.1        # pause where a sentence was cut at a comma
WORD_CUT_PAUSE_S = 0.0      # ... and at a word: Kokoro's kept edges (2 x TRIM_KEEP_S) are the only gap
TAG_GAP_S = 0.08            # pause before a non-verbal sound (as in the non-streamed clone)
FIRST_EDIT_S, FIRST_EDIT_MIN_S = 2.0, 0.8     # first edit piece: cut at the deepest pause in [0.8, 2] s
LATER_EDIT_S, LATER_EDIT_MIN_S = 6.0, 3.0
LOCAL_EDITS = (catalog.SPEED, catalog.EMOTION, catalog.STYLE, catalog.DENOISE)
_SENTENCE_END = re.compile(r"[.!?;。！？；…]\s*$")
_CLAUSE_END = re.compile(r"[,:，、：]\s*$")


def _silence(seconds: float, sr: int) -> np.ndarray:
    return np.zeros(int(seconds * sr), np.float32)


def stream_clone(tts, target: voice.VoiceProfile, stock: str, request: CloneRequest, pieces: list[str],
                 tags: list[tuple[int, str]], sr: int, should_stop: StopCheck) -> Iterator[np.ndarray]:
    """Chunks of a clone: ``pieces`` are the texts between tags, ``tags`` (piece index, tag name) as in
    ``engine._split_tags``; ``target`` is the prompt's voice profile, ``stock`` the Kokoro voice."""
    spoken: list[np.ndarray] = []
    gap = None                                   # the pause that goes before the next chunk
    perf = Performance.from_seed(request.seed)
    tag_after = dict(tags)
    for k, piece in enumerate(pieces):
        for phrase in longform.split_for_streaming(piece, FIRST_PHRASE_S, LATER_PHRASE_S, PHRASE_GROWTH, words):
            if should_stop():
                return
            if not re.search(r"\w", phrase):
                continue
            y, _ = voice.adapt(tts.synthesize(phrase, voice=stock, speed=perf.rate(CLONE_RATE_SPAN)), sr, target,
                               perf)
            y = peak_limit(y)
            spoken.append(y)
            yield y if gap is None else np.concatenate([gap, y])
            gap = _silence(_pause_after(phrase), sr)
        if k in tag_after and spoken and not should_stop():
            sound = nonverbal.synthesise_sound(tag_after[k], nonverbal.SpeakerVoice.from_speech(
                np.concatenate(spoken), sr), perf)
            yield np.concatenate([_silence(TAG_GAP_S, sr), peak_limit(sound)])
            gap = _silence(TAG_GAP_S, sr)


def _pause_after(phrase: str) -> float:
    if _SENTENCE_END.search(phrase):
        return SENTENCE_PAUSE_S
    return PHRASE_PAUSE_S if _CLAUSE_END.search(phrase) else WORD_CUT_PAUSE_S


def words(sentence: str) -> list[str]:
    """Units a phrase cut must not split: jieba's words when the sentence has CJK characters (else
    ``longform.text_units``); punctuation sticks to the word before it."""
    if not re.search(rf"[{CJK}]", sentence):
        return longform.text_units(sentence)
    import jieba  # noqa: PLC0415  (a misaki.zh dependency, loaded with the Chinese G2P)
    jieba.setLogLevel(60)
    units: list[str] = []
    for token in jieba.lcut(sentence):
        if not token.strip():
            continue
        if units and not re.search(r"\w", token):
            units[-1] += token
        else:
            units.append(token)
    return units


def edit_pieces(x: np.ndarray, sr: int) -> list[longform.Span]:
    """Spans of ``x`` cut at pauses: a short first one (early audio), then longer ones."""
    first = longform.split_at_pauses(x, sr, max_s=FIRST_EDIT_S, min_s=FIRST_EDIT_MIN_S)[0]
    rest = longform.split_at_pauses(x[first.end:], sr, max_s=LATER_EDIT_S, min_s=LATER_EDIT_MIN_S)
    return [first] + [longform.Span(first.end + s.start, first.end + s.end) for s in rest if s.length > 0]


def _local_edit(kind: str, info: str | None, sr: int,
                seed: int | None) -> Callable[[np.ndarray, longform.Span], np.ndarray]:
    """The edit of one piece ``span`` of the clip ``x``."""
    perf = Performance.from_seed(seed)
    if kind == catalog.SPEED:
        return lambda x, s: time_stretch(x[s.start:s.end], sr, SPEED_RATIOS[info], perf)
    if kind in (catalog.EMOTION, catalog.STYLE):
        return lambda x, s: prosody.edit(x[s.start:s.end], sr, info, 1, seed)
    # denoise: the model runs with the neighbouring audio as context; alone, a piece's edges dropped
    # to exact zeros for up to 20 ms (a click mid-word at every seam)
    return lambda x, s: denoise_span(x, sr, s.start, s.end)


def stream_edit(edit_whole: Callable[[], np.ndarray], request: EditRequest, sr: int,
                should_stop: StopCheck) -> Iterator[np.ndarray]:
    """Chunks of one edit round; ``edit_whole()`` is the non-streamed round (for edits that need the whole
    clip)."""
    kind = request.edit_type
    try:
        if kind not in LOCAL_EDITS:
            out = edit_whole()
            yield from chunk_audio(out, sr, should_stop)
            return
        x = resample(request.audio.samples, request.audio.sample_rate, sr)
        apply = _local_edit(kind, request.edit_info, sr, request.seed)
        for span in edit_pieces(x, sr):
            if should_stop():
                return
            yield peak_limit(apply(x, span).astype(np.float32))
    except StepEditError:
        raise
    except Exception as exc:   # noqa: BLE001  (a DSP or native failure must not crash the stream)
        raise InvalidInputError(f"the lite {kind} edit failed: {exc}") from exc
