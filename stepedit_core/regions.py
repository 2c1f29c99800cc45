"""Region-limited edits: edit only the words you select; every other sample of the take stays as it was.

A selection is a word range of the take's transcript (word times from the ASR) or a time range. It is widened
to a *window* whose ends sit in pauses (the quietest 10 ms frame between the neighbouring words, or within
``PAUSE_SEARCH_S`` of a time range), at most ``MAX_WINDOW_S`` long. Only the window, plus ``FADE_S`` on each
side, goes through the engine (any :class:`~stepedit_core.interface.Engine`, any edit type but silence
removal); the engine's 24 kHz output is resampled to the take's rate, and joined back with linear cross-fades
of ``FADE_S``:

    take:   [ keep .......... ][fade][ window ........... ][fade][ keep ............ ]
    result: [ keep (identical)][ x-f][ engine output ..... ][ x-f][ keep (identical) ]

so samples before ``window_start - FADE_S`` and after ``window_end + FADE_S`` are the original samples,
bit for bit (the tail is shifted when the edit changes the window's length).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from . import audio as audio_io
from . import catalog
from .errors import InvalidInputError, UnsupportedEditError
from .interface import AudioClip, EditRequest, Engine, EngineResult, Progress, Word

FADE_S = 0.02                 # cross-fade at each join (same as audio.crossfade_concat's default)
PAUSE_SEARCH_S = 0.25         # how far past a time-range end to look for a pause
PAUSE_FRAME_S = 0.01          # energy frame used to find the quietest point
MIN_SELECTION_S = 0.12        # shorter than one syllable: a selection inside a single phoneme is refused
MAX_WINDOW_S = 30.0           # the official model's input limit for one piece
REGION_EDIT_TYPES = (catalog.EMOTION, catalog.STYLE, catalog.SPEED, catalog.PARALINGUISTIC, catalog.DENOISE)
_TAG = re.compile(r"\[[^\]]*\]")
_NORM = re.compile(r"[^\w\u3400-\u9fff]+")


@dataclass(frozen=True)
class Selection:
    """What the user picked: word indices (inclusive, 0-based) or a time range in seconds."""
    first_word: int | None = None
    last_word: int | None = None
    start_s: float | None = None
    end_s: float | None = None

    @property
    def by_words(self) -> bool:
        return self.first_word is not None or self.last_word is not None

    def describe(self) -> str:
        if self.by_words:
            return f"words {self.first_word}-{self.last_word}"
        return f"{self.start_s:.2f}-{self.end_s:.2f} s"


@dataclass(frozen=True)
class Window:
    start: int                  # samples at the take's rate: the edited span is [start, end)
    end: int
    sample_rate: int
    words: tuple[Word, ...]     # the transcript words inside the window
    selection: Selection

    @property
    def seconds(self) -> tuple[float, float]:
        return self.start / self.sample_rate, self.end / self.sample_rate

    def to_dict(self) -> dict:
        a, b = self.seconds
        sel = self.selection
        return {"window_s": [round(a, 4), round(b, 4)], "window_samples": [self.start, self.end],
                "sample_rate": self.sample_rate, "fade_s": FADE_S,
                "selection": ({"words": [sel.first_word, sel.last_word]} if sel.by_words
                              else {"seconds": [sel.start_s, sel.end_s]}),
                "text": " ".join(w.text for w in self.words)}


# ---------------------------------------------------------------------------- selection -> window
def _quietest(x: np.ndarray, sr: int, lo_s: float, hi_s: float) -> int:
    """Sample index of the centre of the quietest PAUSE_FRAME_S frame within [lo_s, hi_s]."""
    frame = max(1, int(PAUSE_FRAME_S * sr))
    lo, hi = max(0, int(lo_s * sr)), min(len(x), int(hi_s * sr))
    if hi - lo <= frame:
        return int(np.clip((lo + hi) // 2, 0, len(x)))
    seg = np.asarray(x[lo:hi], np.float64)
    energy = np.convolve(seg ** 2, np.ones(frame), mode="valid")    # (hi - lo - frame + 1,)
    return lo + int(np.argmin(energy)) + frame // 2


def check_seconds(a: float | None, b: float | None, duration: float) -> tuple[float, float]:
    """A time range (seconds) inside a clip of ``duration`` s and at least MIN_SELECTION_S long, or a clear
    InvalidInputError (missing end, not numbers, empty, outside the clip, inside a single sound)."""
    if a is None or b is None:
        raise InvalidInputError("give both a start and an end time")
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError("the start and end times must be numbers") from exc
    if not (np.isfinite(a) and np.isfinite(b)):
        raise InvalidInputError("the start and end times must be numbers")
    if b <= a:
        raise InvalidInputError(f"the selection is empty ({a:.2f}-{b:.2f} s)")
    if a < 0 or b > duration + 1e-6:
        raise InvalidInputError(f"{a:.2f}-{b:.2f} s is outside the clip, which is {duration:.2f} s long")
    if b - a < MIN_SELECTION_S:
        raise InvalidInputError(f"the selection ({a:.2f}-{b:.2f} s) is {1000 * (b - a):.0f} ms long, inside a "
                                f"single sound; select at least {1000 * MIN_SELECTION_S:.0f} ms")
    return a, b


def find_window(clip: AudioClip, words: Sequence[Word], selection: Selection,
                max_window_s: float = MAX_WINDOW_S) -> Window:
    """The window for ``selection``: cut at pauses, at most ``max_window_s``; clear errors for bad ranges."""
    x, sr, dur = clip.samples, clip.sample_rate, clip.duration
    words = tuple(words)
    if selection.by_words:
        first, last = selection.first_word, selection.last_word
        if first is None or last is None:
            raise InvalidInputError("select a first and a last word")
        if not words:
            raise InvalidInputError("the take's transcript has no word times to select from")
        if last < first:
            raise InvalidInputError(f"the selection is empty (word {first} to word {last})")
        if first < 0 or last >= len(words):
            raise InvalidInputError(f"words {first}-{last} are outside the transcript, which has "
                                    f"{len(words)} words (0-{len(words) - 1})")
        sel_start, sel_end = words[first].start, words[last].end
        lo_start = words[first - 1].end if first > 0 else 0.0
        hi_end = words[last + 1].start if last + 1 < len(words) else dur
    else:
        a, b = sel_start, sel_end = check_seconds(selection.start_s, selection.end_s, dur)
        lo_start, hi_end = max(0.0, a - PAUSE_SEARCH_S), min(dur, b + PAUSE_SEARCH_S)
    if sel_end - sel_start < MIN_SELECTION_S:
        raise InvalidInputError(f"the selection ({selection.describe()}) is {1000 * (sel_end - sel_start):.0f} ms "
                                f"long, inside a single sound; select at least {1000 * MIN_SELECTION_S:.0f} ms")
    start = 0 if lo_start <= 0 else _quietest(x, sr, lo_start, sel_start)
    end = len(x) if hi_end >= dur else _quietest(x, sr, sel_end, hi_end)
    if (end - start) / sr > max_window_s:
        raise InvalidInputError(f"the selection ({selection.describe()}) needs a {(end - start) / sr:.1f} s window; "
                                f"select at most {max_window_s:.0f} s")
    inside = tuple(w for w in words if w.end > start / sr and w.start < end / sr
                   and min(w.end, end / sr) - max(w.start, start / sr) >= 0.5 * (w.end - w.start))
    return Window(start=start, end=end, sample_rate=sr, words=inside, selection=selection)


# ---------------------------------------------------------------------------- splice
def splice(original: np.ndarray, window: Window, edited: np.ndarray) -> np.ndarray:
    """Put ``edited`` (the engine's output for original[start - fade : end + fade], at the take's rate) back.

    Samples before ``start - fade`` and after ``end + fade`` are copied unchanged; each join is a linear
    cross-fade of ``fade`` samples between the original and the edited audio."""
    x = np.asarray(original, np.float32)
    fade = int(FADE_S * window.sample_rate)
    a, b = max(0, window.start - fade), min(len(x), window.end + fade)
    fa, fb = window.start - a, b - window.end              # fade lengths actually available at each side
    y = np.asarray(edited, np.float32)
    fa, fb = min(fa, len(y) // 2), min(fb, len(y) // 2)
    head, tail = x[:a], x[b:]
    mid = y.copy()
    if fa:
        ramp = np.linspace(0.0, 1.0, fa, dtype=np.float32)
        mid[:fa] = x[a:a + fa] * (1 - ramp) + y[:fa] * ramp
    if fb:
        ramp = np.linspace(1.0, 0.0, fb, dtype=np.float32)
        mid[len(y) - fb:] = y[len(y) - fb:] * ramp + x[b - fb:b] * (1 - ramp)
    return np.concatenate([head, mid, tail]).astype(np.float32)


# ---------------------------------------------------------------------------- texts
def _norm_words(text: str) -> list[str]:
    return [w for w in _NORM.sub(" ", _TAG.sub(" ", text).lower()).split() if w]


def _tokens(text: str) -> list[tuple[str, str]]:
    """(kind, token) pairs: ("tag", "[Laughter]") or ("word", normalised word), in order; CJK split per char."""
    out = []
    for m in re.finditer(r"\[[^\]]*\]|[^\s\[]+", text):
        if m.group().startswith("["):
            out.append(("tag", m.group()))
        else:
            for w in _norm_words(m.group()):
                out += [("word", c) for c in w] if re.search(r"[\u3400-\u9fff]", w) else [("word", w)]
    return out


def _render(tokens: list[tuple[str, str]], cjk: bool) -> str:
    return ("" if cjk else " ").join(t for _, t in tokens)


def window_new_text(window_text: str, new_text: str) -> str:
    """The selection's words with the [tags] of ``new_text`` (which may be the whole take's text with tags or
    just the selection with tags). Raises when the selection cannot be found or a tag lies outside it."""
    target = [t for k, t in _tokens(window_text) if k == "word"]
    toks = _tokens(new_text)
    words_at = [i for i, (k, _) in enumerate(toks) if k == "word"]
    seq = [toks[i][1] for i in words_at]
    cjk = bool(re.search(r"[\u3400-\u9fff]", window_text))
    for s in range(len(seq) - len(target) + 1):
        if target and seq[s:s + len(target)] == target:
            lo, hi = words_at[s], words_at[s + len(target) - 1]
            while hi + 1 < len(toks) and toks[hi + 1][0] == "tag":      # tags right after the last word
                hi += 1
            outside = [t for i, (k, t) in enumerate(toks) if k == "tag" and not lo <= i <= hi]
            if outside:
                raise InvalidInputError(f"{', '.join(outside)} is outside the selected words "
                                        f"({window_text!r}); select the words around it")
            if not any(k == "tag" for k, _ in toks[lo:hi + 1]):
                raise InvalidInputError("the new text has no [tag] inside the selected words")
            return _render(toks[lo:hi + 1], cjk)
    raise InvalidInputError(f"the selected words ({window_text!r}) are not in the new text {new_text!r}")


def region_new_text(full_text: str, window_text: str, region_text: str) -> str:
    """The take's whole text after a paralinguistic region edit: the selected words of ``full_text`` with the
    tags of ``region_text`` (the selection with [tags]) put in after the word they follow."""
    target = [t for k, t in _tokens(window_text) if k == "word"]
    tags: dict[int, list[str]] = {}         # index (within the selection) of the word a tag follows -> tags
    n = -1
    for k, t in _tokens(region_text):
        if k == "word":
            n += 1
        else:
            tags.setdefault(n, []).append(t)
    # (start, end) character spans of full_text's words, normalised like _tokens (tags skipped)
    spans, seq = [], []
    for m in re.finditer(r"\[[^\]]*\]|[\u3400-\u9fff]|[^\s\[\u3400-\u9fff]+", full_text):
        for w in ([] if m.group().startswith("[") else _norm_words(m.group())):
            spans.append((m.start(), m.end()))
            seq.append(w)
    for s in range(len(seq) - len(target) + 1):
        if target and seq[s:s + len(target)] == target:
            pieces, prev = [], 0
            sep = "" if re.search(r"[\u3400-\u9fff]", seq[s]) else " "
            for j, tag_list in sorted(tags.items()):
                at = spans[s + j][1] if j >= 0 else spans[s][0]
                pieces += [full_text[prev:at], (sep if j >= 0 else "") + " ".join(tag_list) + (sep if j < 0 else "")]
                prev = at
            return "".join(pieces + [full_text[prev:]]).strip()
    return full_text


def _window_request(request: EditRequest, window: Window, clip: AudioClip) -> EditRequest:
    """The engine request for the window: its words as the transcript (and its part of the new text)."""
    text = " ".join(w.text for w in window.words).strip() or request.audio_text
    if re.search(r"[\u3400-\u9fff]", text):
        text = text.replace(" ", "")
    new_text = request.new_text
    if request.edit_type == catalog.PARALINGUISTIC:
        if not (new_text or "").strip():
            raise InvalidInputError("give the text with [tags] where the sounds go")
        new_text = window_new_text(text, new_text)
    return replace(request, audio=clip, audio_text=text, new_text=new_text)


# ---------------------------------------------------------------------------- the edit
def check_region_edit_type(edit_type: str) -> None:
    """Silence removal works on the whole take (it moves every pause); the other edits take a selection."""
    if edit_type not in REGION_EDIT_TYPES:
        raise UnsupportedEditError(f"the {edit_type} edit works on the whole take, not a selection; "
                                   f"selections take {', '.join(REGION_EDIT_TYPES)}")


def region_edit(engine: Engine, request: EditRequest, words: Sequence[Word], selection: Selection,
                progress: Progress | None = None) -> list[EngineResult]:
    """Edit only the window around ``selection`` of ``request.audio``; one result per round (round k edits the
    window of round k-1's output). ``words`` are the take's transcript words with times (``Checker.heard``)."""
    check_region_edit_type(request.edit_type)
    clip = request.audio
    caps = engine.capabilities()
    window = find_window(clip, words, selection, min(MAX_WINDOW_S, caps.max_input_seconds))
    sr = clip.sample_rate
    fade = int(FADE_S * sr)
    a, b = max(0, window.start - fade), min(len(clip.samples), window.end + fade)
    piece = AudioClip(samples=np.ascontiguousarray(clip.samples[a:b]), sample_rate=sr)
    sub = _window_request(request, window, piece)
    results = engine.edit(sub, progress)
    out = []
    for r in results:      # round k's output is already stacked on round k-1's (engine.edit); splice each alone
        y = audio_io.resample(r.audio.samples, r.audio.sample_rate, sr) if r.audio.sample_rate != sr \
            else r.audio.samples
        text = request.audio_text
        if request.edit_type == catalog.PARALINGUISTIC:
            text = region_new_text(request.audio_text, sub.audio_text, sub.new_text or "")
        meta = {**dict(r.metadata), "region": window.to_dict()}
        out.append(replace(r, audio=AudioClip(samples=splice(clip.samples, window, y), sample_rate=sr),
                           text=text, metadata=meta))
    return out
