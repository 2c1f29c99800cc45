"""Long inputs: split audio at pauses into pieces of at most 30 s, split texts to match, join with cross-fades.

The model is trained on clips under 30 s (GH:README.md "keep audio under 30 seconds"; vq06 cuts at 30 s,
the official app's 30 s limit), and the LLM window (8192 ids) must hold the prompt (41.67 audio tokens/s) plus the
answer. Longer requests are therefore processed piece by piece:

- **audio** (edits): cut at the quietest point (energy smoothed over PAUSE_SMOOTH_S) inside the window
  [start + MIN_PIECE_S, start + MAX_PIECE_S] of each piece, so every piece is at most MAX_PIECE_S long
  and cuts fall in pauses when there are any;
- **transcript** of each piece (edits): there is no forced aligner in the pipeline, so the transcript is
  split **proportionally**: piece k receives the share of words (CJK characters, Latin words) that matches
  its share of *voiced* time, and the cut is moved to the nearest punctuation mark within PUNCT_SNAP of the
  words. This is an approximation: a piece's text can be off by a few words, which the model mostly
  tolerates (the text is a reference, the audio tokens carry the content). A caller with an ASR can pass
  its own per-piece transcripts instead (``transcribe`` argument of :func:`split_transcript_for`);
- the **new text** of a paralinguistic edit is cut at the same words as the transcript (its ``[tags]`` go
  with the word before them);
- **clone target text**: split at sentence ends (。！？；… and .!?; followed by a space) and packed greedily
  into pieces of at most CLONE_PIECE_S estimated speaking time; an over-long sentence is cut at commas,
  then at words;
- **joining**: outputs are concatenated with an equal-power cross-fade of CROSSFADE_S.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .audio import crossfade_concat

MAX_PIECE_S = 30.0          # official limit per clip (README; vq06 30 s chunks)
MIN_PIECE_S = 10.0          # never cut closer than this to the previous cut (keeps pieces useful)
FRAME_S = 0.02              # energy frame
PAUSE_SMOOTH_S = 0.3        # pauses shorter than this count less than a long one
VOICED_DB = -35.0           # frames within 35 dB of the loudest count as voiced (transcript shares)
CROSSFADE_S = 0.05          # join cross-fade
PUNCT_SNAP = 0.2            # move a text cut to punctuation within 20 % of a piece's word count
CLONE_PIECE_S = 25.0        # clone target text per piece, estimated speaking time
CJK_CHAR_S = 0.25           # speaking-time estimates: ~4 CJK characters/s ...
WORD_S = 0.4                # ... ~2.5 Latin words/s
STREAM_TAIL_S = 0.5         # streaming phrases: never leave less than this (estimated) of a sentence alone

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
# A unit: a [tag], one CJK character, or a run of other non-space characters; trailing punctuation sticks.
_UNIT_RE = re.compile(rf"\[[^\]]*\]|[{_CJK}][^\s{_CJK}\w\[]*|[^\s{_CJK}\[]+")
_PUNCT = set("。！？；，、：…!?;,:.")
_SENTENCE_END_RE = re.compile(r"(?<=[。！？；…])|(?<=[.!?;])(?=\s)|(?<=[.!?;][\"'”’)）])(?=\s)")
_CLAUSE_END_RE = re.compile(r"(?<=[，、：,:])")


@dataclass(frozen=True)
class Span:
    """Samples [start, end) of one piece of a longer clip."""
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


def frame_db(wav: np.ndarray, sample_rate: int, frame_s: float = FRAME_S) -> np.ndarray:
    """Per-frame RMS level in dB relative to the loudest frame (floor -100 dB)."""
    n = max(1, int(frame_s * sample_rate))
    frames = len(wav) // n
    if frames == 0:
        return np.zeros(1, np.float32)
    rms = np.sqrt(np.mean(np.square(wav[:frames * n].reshape(frames, n), dtype=np.float64), axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-10))
    return np.maximum(db - db.max(), -100.0).astype(np.float32)


def split_at_pauses(wav: np.ndarray, sample_rate: int, *, max_s: float = MAX_PIECE_S,
                    min_s: float = MIN_PIECE_S) -> list[Span]:
    """Cut ``wav`` into consecutive spans of at most ``max_s`` seconds, each cut at the deepest pause
    (lowest smoothed energy) between ``min_s`` and ``max_s`` after the previous cut."""
    total = len(wav)
    max_len = int(max_s * sample_rate)
    if total <= max_len:
        return [Span(0, total)]
    hop = max(1, int(FRAME_S * sample_rate))
    db = frame_db(wav, sample_rate)
    k = max(1, int(PAUSE_SMOOTH_S / FRAME_S))
    smooth = np.convolve(db, np.ones(k) / k, mode="same")
    spans, start = [], 0
    min_len = min(int(min_s * sample_rate), max_len // 2)
    while total - start > max_len:
        lo = (start + min_len) // hop
        hi = (start + max_len) // hop            # the frame starting at hi*hop ends after the limit
        window = smooth[lo:hi]
        if len(window) == 0:
            cut = start + max_len
        else:
            # deepest pause; among equals the latest (longer pieces, fewer joins)
            best = lo + int(len(window) - 1 - np.argmin(window[::-1]))
            cut = min(best * hop + hop // 2, start + max_len)
        spans.append(Span(start, cut))
        start = cut
    spans.append(Span(start, total))
    return spans


def voiced_seconds(wav: np.ndarray, sample_rate: int, spans: Sequence[Span]) -> list[float]:
    """Voiced time of each span (frames within VOICED_DB of the clip's loudest frame)."""
    db = frame_db(wav, sample_rate)
    hop = max(1, int(FRAME_S * sample_rate))
    out = []
    for s in spans:
        frames = db[s.start // hop:max(s.start // hop + 1, s.end // hop)]
        out.append(float(np.sum(frames > VOICED_DB)) * FRAME_S)
    return out


def join_pieces(pieces: Sequence[np.ndarray], sample_rate: int, fade_s: float = CROSSFADE_S) -> np.ndarray:
    return crossfade_concat(list(pieces), sample_rate, fade_s)


# --- text ---------------------------------------------------------------------------------------------

def text_units(text: str) -> list[str]:
    """Words for splitting: [tags], single CJK characters (with trailing punctuation), Latin words."""
    return _UNIT_RE.findall(text)


def _unit_starts(text: str) -> list[int]:
    return [m.start() for m in _UNIT_RE.finditer(text)]


def _cut_text(text: str, cuts: Sequence[int]) -> list[str]:
    """Cut the original string before units ``cuts`` (keeps its spacing and punctuation untouched)."""
    starts = _unit_starts(text) + [len(text)]
    offsets = [0] + [starts[c] for c in cuts] + [len(text)]
    return [text[a:b].strip() for a, b in zip(offsets[:-1], offsets[1:])]


def _is_tag(unit: str) -> bool:
    return unit.startswith("[") and unit.endswith("]")


def _cut_points(units: Sequence[str], shares: Sequence[float]) -> list[int]:
    """Unit indices where each piece after the first starts, proportional to ``shares``, moved to the
    nearest punctuation within PUNCT_SNAP of a piece's units; non-decreasing."""
    n_units = len(units)
    total = float(sum(shares)) or 1.0
    cuts, acc = [], 0.0
    snap = max(1, int(PUNCT_SNAP * n_units / max(1, len(shares))))
    for share in shares[:-1]:
        acc += share
        target = int(round(acc / total * n_units))
        best = target
        for d in range(0, snap + 1):
            hits = [c for c in (target - d, target + d) if 0 < c < n_units and units[c - 1][-1] in _PUNCT]
            if hits:
                best = hits[0]
                break
        cuts.append(min(max(best, cuts[-1] if cuts else 0), n_units))
    return cuts


def split_text(text: str, shares: Sequence[float]) -> list[str]:
    """Split ``text`` into ``len(shares)`` parts whose word counts follow ``shares``."""
    if len(shares) <= 1:
        return [text]
    return _cut_text(text, _cut_points(text_units(text), shares))


def _bare(unit: str) -> str:
    return unit.strip("".join(_PUNCT) + "\"'“”‘’()（）")


def split_paired(audio_text: str, new_text: str, shares: Sequence[float]) -> tuple[list[str], list[str]]:
    """Split a transcript and its tagged new text (paralinguistic) at the same words.

    ``new_text`` is the transcript with ``[tags]`` inserted; its words are matched to the transcript's in
    order, and tags stay with the word before them. When the words differ (the text was also reworded), the
    new text is split proportionally on its own.
    """
    if len(shares) <= 1:
        return [audio_text], [new_text]
    a_units = text_units(audio_text)
    n_units = text_units(new_text)
    cuts = _cut_points(a_units, shares)
    a_parts = _cut_text(audio_text, cuts)
    word_at = [i for i, u in enumerate(n_units) if not _is_tag(u)]          # unit index of each word
    if [_bare(n_units[i]) for i in word_at] != [_bare(u) for u in a_units]:
        return a_parts, split_text(new_text, shares)
    positions = []
    for c in cuts:
        i = word_at[c - 1] + 1 if c > 0 else 0
        while 0 < i < len(n_units) and _is_tag(n_units[i]):
            i += 1
        positions.append(i)
    return a_parts, _cut_text(new_text, positions)


def speaking_seconds(text: str) -> float:
    """Rough speaking time: CJK_CHAR_S per CJK character, WORD_S per other word (punctuation is free)."""
    cjk = len(re.findall(rf"[{_CJK}]", text))
    runs = re.findall(rf"[^\s{_CJK}]+", re.sub(r"\[[^\]]*\]", " ", text))
    words = sum(1 for r in runs if re.search(r"[^\W_]", r))       # punctuation alone is not a word
    return cjk * CJK_CHAR_S + words * WORD_S


def split_sentences(text: str) -> list[str]:
    """Sentences, each keeping its end punctuation (zh 。！？；… and en .!?; before a space)."""
    return [s.strip() for s in _SENTENCE_END_RE.split(text) if s.strip()]


def _split_long(sentence: str, max_s: float) -> list[str]:
    if speaking_seconds(sentence) <= max_s:
        return [sentence]
    clauses = [c.strip() for c in _CLAUSE_END_RE.split(sentence) if c.strip()]
    if len(clauses) == 1:           # no commas: cut at words into equal-time parts
        n = int(np.ceil(speaking_seconds(sentence) / max_s))
        return [p for p in split_text(sentence, [1.0] * n) if p]
    return _pack([p for c in clauses for p in _split_long(c, max_s)], max_s)


def _join(a: str, b: str) -> str:
    """Concatenate two text pieces: no space between CJK, one space otherwise."""
    cjk = re.search(rf"[{_CJK}][^\w\s]*$", a) and re.match(rf"[{_CJK}]", b)
    return a + b if cjk else f"{a} {b}"


def _pack(parts: Sequence[str], max_s: float) -> list[str]:
    out: list[str] = []
    for p in parts:
        joined = _join(out[-1], p) if out else p
        if out and speaking_seconds(joined) <= max_s:
            out[-1] = joined
        else:
            out.append(p)
    return out


def split_target_text(text: str, max_s: float = CLONE_PIECE_S) -> list[str]:
    """Clone target text -> pieces of whole sentences of at most ``max_s`` estimated speaking time."""
    text = text.strip()
    if speaking_seconds(text) <= max_s:
        return [text]
    return _pack([p for s in split_sentences(text) for p in _split_long(s, max_s)], max_s)


def split_for_streaming(text: str, first_s: float, later_s: float, growth: float,
                        words: Callable[[str], list[str]] | None = None) -> list[str]:
    """Text -> phrases for incremental synthesis, each cut at a sentence end, a comma, else a word.

    Phrase k may last ``clamp(growth * (estimated speaking time of phrases 0..k-1), first_s, later_s)``:
    the first is short (early audio), and each later one grows with the audio already queued for playback,
    so a synthesiser with a fixed cost per call still keeps ahead of playback. ``words`` splits a sentence into
    units that must not be cut (e.g. CJK words from a segmenter); the default is :func:`text_units`
    (a CJK character or a Latin word)."""
    out: list[str] = []
    spoken = 0.0
    for sentence in split_sentences(text.strip()):
        units = [u for u in (words or text_units)(sentence) if u.strip()]
        while units:
            budget = min(later_s, max(first_s, growth * spoken))
            n = _phrase_units(units, budget)
            phrase = units[0]
            for u in units[1:n]:
                phrase = _join(phrase, u)
            units = units[n:]
            out.append(phrase)
            spoken += speaking_seconds(phrase)
    return out


def _phrase_units(units: Sequence[str], budget: float) -> int:
    """How many leading ``units`` form the next phrase: as many as fit ``budget`` seconds (at least one),
    ending at the last clause mark when that keeps at least a third of it; a tail shorter than STREAM_TAIL_S
    is not left on its own."""
    cum = np.cumsum([speaking_seconds(u) for u in units])
    if cum[-1] <= budget + STREAM_TAIL_S:
        return len(units)
    fit = max(1, int(np.searchsorted(cum, budget, side="right")))
    clauses = [n for n in range(1, fit + 1) if units[n - 1][-1] in _PUNCT and cum[n - 1] >= budget / 3]
    n = clauses[-1] if clauses else fit
    if cum[-1] - cum[n - 1] < STREAM_TAIL_S:
        return len(units)
    return n


def split_transcript_for(wav: np.ndarray, sample_rate: int, spans: Sequence[Span], text: str,
                         transcribe: Callable[[np.ndarray, int], str] | None = None) -> list[str]:
    """Per-span transcripts: from ``transcribe`` (an ASR) when given, else proportional to voiced time."""
    if len(spans) == 1:
        return [text]
    if transcribe is not None:
        return [transcribe(wav[s.start:s.end], sample_rate) for s in spans]
    return split_text(text, voiced_seconds(wav, sample_rate, spans))
