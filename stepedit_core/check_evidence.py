"""Per-word acoustic evidence for the take check: is each expected word really in the audio?

Whisper's language model writes back a word whose audio was cut out when the sentence makes it likely (issue #30:
"...what your country can do for you, ask..." with "you" cut is heard in full, "you" timed 0.16-0.2 s). The
transcript alone cannot tell, so every expected word gets evidence from the audio under the span the ASR aligned
to it:

- ``speech``: the fraction of the span's 10 ms frames that are speech (louder than the take's noise floor by
  SPEECH_OVER_FLOOR_DB and within SPEECH_BELOW_PEAK_DB of its loud frames). A word restored from context is
  aligned into the pause or splice where its audio was; a spoken word's span is mostly speech;
- ``relative``: the span's length against the take's own pace, ``duration / (syllables x seconds per syllable of
  all aligned words)`` (syllables by vowel groups in English, one per character in Mandarin). A restored word
  gets its span by taking time from its neighbours, so it is short for its syllables;
- ``voiced``: the fraction of the span's frames with a periodic (voiced) signal (normalised autocorrelation at a
  pitch lag). Reported, not judged: whisper's spans are too loose for it (intact words go down to 0.0).

A word is ``missing`` when it was not heard at all, has less than MIN_SPEECH speech under it, or is shorter than
MIN_RELATIVE_DURATION of its expected length (thresholds measured in BENCHMARKS.md "Word evidence": on 351 intact
words the lowest relative duration was 0.36 and the lowest speech fraction above zero 0.33, while 16 of 94 words
whisper wrote back after their audio was cut were under 0.3). The text level of a take with a missing word is
never green.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from .textnorm import edit_table, syllables

FRAME_S = 0.01                 # 10 ms analysis frames
NOISE_PERCENTILE = 10          # the take's noise floor: its 10th-percentile frame level
LOUD_PERCENTILE = 95           # its loud frames
SPEECH_OVER_FLOOR_DB = 12.0    # a speech frame is this far above the floor ...
SPEECH_BELOW_PEAK_DB = 35.0    # ... and no further than this below the loud frames
NARROW_RANGE_DB = 6.0          # a take with less range than the above (constant noise or tone): speech = the
                               # frames within 6 dB of its loud ones
VOICING_MIN_CORR = 0.45        # normalised autocorrelation at the best pitch lag for a voiced frame
PITCH_HZ = (70.0, 400.0)       # the lag range searched for voicing
MIN_SPEECH = 0.2               # a word whose span is < 20 % speech frames was not said (restored or cut)
MIN_RELATIVE_DURATION = 0.3    # ... or shorter than 0.3 of its syllables at the take's pace
SPAN_PAD_S = 0.02              # whisper's alignment is on a 20 ms grid: look one step either side


@dataclass(frozen=True)
class WordEvidence:
    word: str                  # the expected word (Mandarin: character), normalised spoken form
    heard: str | None          # the heard token aligned to it; None = deleted
    start: float | None        # seconds, the aligned span (None when deleted or not timed)
    end: float | None
    syllables: int
    speech: float | None       # fraction of the span's frames that are speech
    voiced: float | None       # fraction of the span's frames that are voiced
    missing: bool
    reason: str = ""           # "deleted" | "no speech" | "too short" | ""
    relative: float | None = None   # span length / (syllables x the take's seconds per syllable)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("start", "end", "speech", "voiced", "relative"):
            if d[k] is not None:
                d[k] = round(float(d[k]), 3)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "WordEvidence":
        return cls(**{k: d.get(k) for k in ("word", "heard", "start", "end", "syllables", "speech", "voiced",
                                             "missing", "relative")}, reason=str(d.get("reason", "")))


def frame_measures(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(speech, voiced): two (T,) bool arrays over the take's 10 ms frames."""
    x = np.asarray(samples, np.float64).reshape(-1)
    hop = max(1, int(sample_rate * FRAME_S))
    n = len(x) // hop
    if n == 0:
        return np.zeros(0, bool), np.zeros(0, bool)
    frames = x[:n * hop].reshape(n, hop)
    db = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    floor, loud = np.percentile(db, NOISE_PERCENTILE), np.percentile(db, LOUD_PERCENTILE)
    speech = (db > min(floor + SPEECH_OVER_FLOOR_DB, loud - NARROW_RANGE_DB)) & (db > loud - SPEECH_BELOW_PEAK_DB)
    return speech, speech & _voiced(x, sample_rate, hop, n)


def _voiced(x: np.ndarray, sample_rate: int, hop: int, n: int) -> np.ndarray:
    """(n,) frames whose 30 ms window correlates with itself one pitch period later (normalised >= threshold)."""
    win = 3 * hop
    lo, hi = int(sample_rate / PITCH_HZ[1]), int(sample_rate / PITCH_HZ[0])
    padded = np.pad(x, (0, win + hi))
    idx = np.arange(n)[:, None] * hop + np.arange(win)[None, :]
    seg = padded[idx]                                                   # (n, win)
    seg = seg - seg.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(seg, 2 * win, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :win]              # (n, win) autocorrelation
    ac = ac / (ac[:, :1] + 1e-12)
    hi = min(hi, win - 1)
    best = ac[:, lo:hi].max(axis=1) if hi > lo else np.zeros(n)
    return best >= VOICING_MIN_CORR


def align_pairs(ref: Sequence[str], hyp: Sequence[str]) -> list[int | None]:
    """For each ``ref`` token, the index of the ``hyp`` token the Levenshtein alignment pairs it with (equal or
    substituted), or None when it was deleted."""
    n, m = len(ref), len(hyp)
    d = edit_table(ref, hyp)
    out: list[int | None] = [None] * n
    i, j = n, m
    while i and j:
        if d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            out[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return out


def word_evidence(expected: Sequence[str], heard: Sequence[tuple], samples: np.ndarray,
                  sample_rate: int, key=None) -> list[WordEvidence]:
    """Evidence for each ``expected`` token given the ``heard`` tokens as (text, start s, end s, syllables of the
    ASR word the token is part of); start / end None when the ASR gave no times (then only deletions count).
    Tokens are paired as ``key(token)`` (textnorm.sound_key: fuzzy pinyin for Mandarin)."""
    speech, voiced = frame_measures(samples, sample_rate)
    key = key or (lambda t: t)
    pairs = align_pairs([key(t) for t in expected], [key(h[0]) for h in heard])
    spans = {(h[1], h[2]): h[3] for h in heard if h[1] is not None and h[2] is not None}   # one per ASR word
    per_syllable = sum(b - a for a, b in spans) / max(1, sum(spans.values()))           # the take's pace, s
    out = []
    for word, j in zip(expected, pairs):
        n_syl = syllables(word)
        if j is None:
            out.append(WordEvidence(word, None, None, None, n_syl, None, None, True, "deleted"))
            continue
        text, start, end, word_syl = heard[j][:4]
        if start is None or end is None or speech.size == 0 or per_syllable <= 0:
            out.append(WordEvidence(word, text, start, end, n_syl, None, None, False))
            continue
        a = max(0, int(round((start - SPAN_PAD_S) / FRAME_S)))
        b = min(len(speech), max(a + 1, int(round((end + SPAN_PAD_S) / FRAME_S))))
        sp = float(speech[a:b].mean()) if b > a else 0.0
        vo = float(voiced[a:b].mean()) if b > a else 0.0
        rel = (end - start) / (max(1, word_syl) * per_syllable)
        reason = "no speech" if sp < MIN_SPEECH else "too short" if rel < MIN_RELATIVE_DURATION else ""
        out.append(WordEvidence(word, text, start, end, n_syl, sp, vo, bool(reason), reason, rel))
    return out


def text_measures(samples: np.ndarray, sample_rate: int, expected: str, metric: str, heard,
                  min_word_s: float) -> dict:
    """The take check's measures of one transcript ``heard`` (interface.Heard) of a take that should say
    ``expected``: WER / CER (``error_rate``), the error rate by sound, expected units deleted and substituted (by
    sound), heard words shorter than ``min_word_s`` (``rushed``), per-word evidence and the words without audio
    under them (``unsupported``)."""
    from .textnorm import (align_counts, heard_tokens, scored_error_rate, sound_error_rate,  # noqa: PLC0415
                           sound_key, sound_tokens)
    if not expected:
        err = 0.0 if not heard.text.strip() else 1.0
        return {"heard": heard, "error_rate": err, "sound_error_rate": err, "deleted": 0, "substituted": 0,
                "rushed": (), "unsupported": (), "evidence": ()}
    key = sound_key(metric)
    subs, deleted, _ = align_counts(sound_tokens(expected, metric), sound_tokens(heard.text, metric), key)
    evidence = tuple(word_evidence(sound_tokens(expected, metric), heard_tokens(heard, metric), samples,
                                   sample_rate, key))
    return {"heard": heard, "error_rate": scored_error_rate(expected, heard.text, metric),
            "sound_error_rate": sound_error_rate(expected, heard.text, metric), "deleted": deleted,
            "substituted": subs, "rushed": tuple(w.text for w in heard.words
                                                 if w.end - w.start < min_word_s and w.text.strip()),
            "unsupported": tuple(e.word for e in evidence if e.missing and e.heard is not None),
            "evidence": evidence}
