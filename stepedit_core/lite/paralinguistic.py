"""Paralinguistic edit: put non-verbal sounds where the ``[tags]`` stand in the new text.

1. The new text is split into units (a CJK character or a Latin word) with the tags between them.
2. whisper word timestamps on the source audio give a time span per recognised unit; the text's units are
   aligned to them (difflib on normalised units), unmatched units interpolate between matched ones.
3. Each tag goes at the boundary between its neighbouring units, moved to the quietest 10 ms nearby,
   and the synthesised sound (``nonverbal``) is spliced in with short cross-fades and pauses.

Tags that the previous round's text already holds at the same place are not inserted again.
"""
from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .. import tags
from ..audio import crossfade_concat
from ..errors import InvalidInputError
from ..listen.asr import Word

TAG_PATTERN = tags.TAG_PATTERN          # every accepted spelling, 2025 and 2026
_UNIT = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[A-Za-z0-9]+(?:['’][A-Za-z]+)*")
SEARCH_S = 0.08            # quietest point searched within +-this of the word boundary
PAUSE_S = 0.06             # silence on each side of an inserted sound
JOIN_FADE_S = 0.01


@dataclass(frozen=True)
class TagSlot:
    tag: str               # the tag as listed in catalog.ACCEPTED_TAGS (either vocabulary)
    position: int          # number of text units before the tag


def parse_tags(text: str) -> tuple[list[str], list[TagSlot]]:
    """Units of ``text`` without tags, and every tag with its unit position."""
    units: list[str] = []
    slots: list[TagSlot] = []
    pos = 0
    for m in TAG_PATTERN.finditer(text):
        units += _units(text[pos:m.start()])
        name = tags.spelled(m.group(1))
        slots.append(TagSlot(name, len(units)))
        pos = m.end()
    units += _units(text[pos:])
    return units, slots


def _units(text: str) -> list[str]:
    return [u.lower().replace("’", "'") for u in _UNIT.findall(text)]


def new_slots(audio_text: str, new_text: str) -> list[TagSlot]:
    """Tags of ``new_text`` that ``audio_text`` does not already realise at the same place."""
    _, have = parse_tags(audio_text)
    _, want = parse_tags(new_text)
    remaining = Counter((tags.canonical(s.tag), s.position) for s in have)   # [Laughter] == [laugh]
    out = []
    for slot in want:
        key = (tags.canonical(slot.tag), slot.position)
        if remaining[key] > 0:
            remaining[key] -= 1
        else:
            out.append(slot)
    return out


def unit_times(words: tuple[Word, ...] | list[Word]) -> tuple[list[str], np.ndarray]:
    """Split ASR words into units; each unit gets (start, end) seconds (CJK characters share their word)."""
    units, spans = [], []
    for w in words:
        us = _units(w.text)
        if not us:
            continue
        edges = np.linspace(w.start, w.end, len(us) + 1)
        for k, u in enumerate(us):
            units.append(u)
            spans.append((edges[k], edges[k + 1]))
    return units, np.array(spans, dtype=float).reshape(-1, 2)


def boundary_times(text_units: list[str], asr_units: list[str], spans: np.ndarray, duration: float) -> np.ndarray:
    """Time (s) of each boundary 0..len(text_units) between text units, from the aligned ASR spans."""
    n = len(text_units)
    if len(asr_units) == 0 or n == 0:
        return np.linspace(0.0, duration, n + 1)
    starts = np.full(n, np.nan)
    ends = np.full(n, np.nan)
    matcher = difflib.SequenceMatcher(a=text_units, b=asr_units, autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            starts[a + k], ends[a + k] = spans[b + k]
    known = np.flatnonzero(~np.isnan(starts))
    if known.size == 0:               # nothing aligned: spread the units over the speech proportionally
        s0, s1 = spans[0, 0], spans[-1, 1]
        return np.linspace(s0, s1, n + 1)
    idx = np.arange(n)
    starts = np.interp(idx, known, starts[known])
    ends = np.interp(idx, known, ends[known])
    bounds = np.empty(n + 1)
    bounds[0] = starts[0]
    bounds[n] = ends[-1]
    bounds[1:n] = (ends[:-1] + starts[1:]) / 2
    return np.clip(bounds, 0.0, duration)


def quietest_point(wav: np.ndarray, sample_rate: int, t: float, search_s: float = SEARCH_S) -> int:
    """Sample index of the lowest-energy 10 ms frame within +-``search_s`` of ``t``."""
    frame = max(1, sample_rate // 100)
    centre = int(t * sample_rate)
    lo, hi = max(0, centre - int(search_s * sample_rate)), min(len(wav), centre + int(search_s * sample_rate))
    if hi - lo < 2 * frame:
        return int(np.clip(centre, 0, len(wav)))
    starts = np.arange(lo, hi - frame, frame // 2)
    energy = np.array([np.mean(wav[s:s + frame] ** 2) for s in starts])
    return int(starts[int(np.argmin(energy))] + frame // 2)


def room_tone(wav: np.ndarray, n: int) -> np.ndarray:
    """The quietest ``n`` samples of ``wav`` (its background): a pause filled with it keeps a recording's
    noise floor, where exact zeros would be an audible dropout."""
    if len(wav) < 2 * n or n == 0:
        return np.zeros(n, np.float32)
    energy = np.convolve(np.asarray(wav, np.float64) ** 2, np.ones(n), mode="valid")[::max(1, n // 4)]
    start = int(np.argmin(energy)) * max(1, n // 4)
    return np.asarray(wav[start:start + n], np.float32).copy()


def insert_sounds(wav: np.ndarray, sample_rate: int, cuts: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """Splice each (sample index, sound) into ``wav`` with pauses (of the clip's room tone) and cross-fades."""
    pause = room_tone(wav, int(PAUSE_S * sample_rate))
    pieces, prev = [], 0
    for at, sound in sorted(cuts, key=lambda c: c[0]):
        pieces.append(wav[prev:at])
        pieces += [pause, sound, pause]
        prev = at
    pieces.append(wav[prev:])
    return crossfade_concat([p for p in pieces if len(p)], sample_rate, fade_s=JOIN_FADE_S)


def place_tags(wav: np.ndarray, sample_rate: int, new_text: str, slots: list[TagSlot], words, sounds) -> np.ndarray:
    """Insert ``sounds[tag]`` for every slot; ``words`` are whisper word timestamps of ``wav``."""
    if not slots:
        return wav
    text_units, _ = parse_tags(new_text)
    if not text_units:
        raise InvalidInputError("the new text has no words to place the tags between")
    asr_units, spans = unit_times(words)
    bounds = boundary_times(text_units, asr_units, spans, len(wav) / sample_rate)
    cuts = [(quietest_point(wav, sample_rate, bounds[s.position]), sounds[s.tag]) for s in slots]
    return insert_sounds(wav, sample_rate, cuts)
