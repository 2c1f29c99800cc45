"""Word edits: change the words of a take like text (replace, insert, delete); only the changed span is new.

1. The take's text and the edited text are compared as units (an English word or a CJK character); the changed
   units form one span. No change, a tag in the new text, or a span over ``MAX_CHANGED_UNITS`` units or over
   ``MAX_CHANGED_SHARE`` of the take are refused (the latter with "use clone instead").
2. The take's units get times from its ASR words; the window is cut at the quietest point of the pause before and
   after the span (regions.py), an insertion is a zero-length window in the pause between its neighbours.
3. The new words are spoken by ``engine.clone`` with the take itself as the voice prompt and ``CONTEXT_UNITS``
   units of left and right context in the target text, so their prosody continues the sentence; the context is
   cut away at the quietest points between the heard words, and the rest is matched to the loudness of the words
   it replaces (or of its neighbours). A deletion becomes a pause of the take's own noise floor.
4. regions.splice joins it back: every sample outside the window and its cross-fades is the take's own.

:func:`verify` is the take check of a word edit: the ASR must hear the new words in the span, and the samples
outside the window must be bit-identical.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace

import numpy as np

from . import audio as audio_io
from . import regions
from .checks import Checker, Heard, Word
from .errors import InvalidInputError
from .interface import AudioClip, CloneRequest, Engine, EngineResult, Progress
from .textnorm import sound_key, sound_tokens

WORDS = "words"                     # the edit type the doors use for a word edit (not an engine edit type)
MAX_CHANGED_UNITS = 8               # units (words / CJK characters) in the changed span, old or new
MAX_CHANGED_SHARE = 0.5             # of the take's units
CONTEXT_UNITS = 2                   # units of context on each side in the generated sentence
PROMPT_MAX_S = 20.0                 # voice prompt: at most this much of the take around the edit
MIN_PAUSE_S, MAX_PAUSE_S = 0.12, 0.45   # the pause a deletion leaves
INSERT_PAD_S = 0.05                 # room tone on each side of inserted words
MAX_GAIN_DB = 12.0                  # loudness matching never moves the new words further than this
NOISE_FRAME_S = 0.05                # the take's noise floor: RMS of its quietest frame this long
FRICATIVE_PENALTY_DB = 40.0         # per unit of zero-crossing rate (a fricative's ~0.4 -> +16 dB)
BOUNDARY_SEARCH_S = 0.15            # how far into the neighbouring words a cut may move (whisper's times abut)
BOUNDARY_SLACK_S = 0.03             # ... and into the changed words
_UNIT = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[A-Za-z0-9]+(?:['’][A-Za-z]+)*")
_TAG = re.compile(r"\[[^\[\]]*\]")


class WordEditTooLarge(InvalidInputError):
    """The change is too large for a word edit: clone the sentence instead."""


@dataclass(frozen=True)
class Unit:
    text: str                       # as written
    norm: str                       # lower case, ’ -> '
    start: int                      # character span in its text
    end: int


@dataclass(frozen=True)
class Change:
    kind: str                       # replace | insert | delete
    first: int                      # old units [first, last) change ...
    last: int
    new_first: int                  # ... into new units [new_first, new_last)
    new_last: int
    old: tuple[Unit, ...]
    new: tuple[Unit, ...]

    def new_span(self, new_text: str) -> str:
        if self.new_first == self.new_last:
            return ""
        return new_text[self.new[self.new_first].start:self.new[self.new_last - 1].end]

    def describe(self) -> str:
        old = " ".join(u.text for u in self.old[self.first:self.last])
        new = " ".join(u.text for u in self.new[self.new_first:self.new_last])
        return {"replace": f"{old!r} -> {new!r}", "insert": f"+ {new!r}", "delete": f"- {old!r}"}[self.kind]


def units(text: str) -> tuple[Unit, ...]:
    return tuple(Unit(m.group(), m.group().lower().replace("’", "'"), m.start(), m.end())
                 for m in _UNIT.finditer(text))


def diff(old_text: str, new_text: str) -> Change:
    """The one span in which ``new_text`` differs from ``old_text``; clear refusals for no / too large a change."""
    if _TAG.search(new_text or ""):
        raise InvalidInputError("a word edit changes words; add [tags] with the paralinguistic edit")
    old, new = units(_TAG.sub(" ", old_text or "")), units(new_text or "")
    if not new:
        raise InvalidInputError("the new text has no words; to remove everything, record a new take")
    a, b = [u.norm for u in old], [u.norm for u in new]
    if a == b:
        raise InvalidInputError("the text did not change: edit the words of the transcript first")
    ops = [op for op in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes() if op[0] != "equal"]
    first, last, new_first, new_last = ops[0][1], ops[-1][2], ops[0][3], ops[-1][4]
    size = max(last - first, new_last - new_first)
    if size > MAX_CHANGED_UNITS or size > MAX_CHANGED_SHARE * max(len(a), 1):
        raise WordEditTooLarge(
            f"the change spans {size} words (a word edit takes at most {MAX_CHANGED_UNITS} words and at most "
            f"{MAX_CHANGED_SHARE:.0%} of the take, which has {len(a)}): use clone instead")
    kind = "insert" if first == last else "delete" if new_first == new_last else "replace"
    return Change(kind, first, last, new_first, new_last, old, new)


def unit_times(old: tuple[Unit, ...], heard: tuple[Word, ...], duration: float) -> np.ndarray:
    """(n, 2) start / end seconds of each unit of the take's text, from the ASR words (aligned by difflib; units
    the ASR missed are interpolated between their neighbours)."""
    asr, spans = [], []
    for w in heard:
        us = [m.group().lower().replace("’", "'") for m in _UNIT.finditer(w.text)]
        edges = np.linspace(w.start, w.end, len(us) + 1)
        asr += us
        spans += [(edges[k], edges[k + 1]) for k in range(len(us))]
    n = len(old)
    times = np.full((n, 2), np.nan)
    matcher = difflib.SequenceMatcher(a=[u.norm for u in old], b=asr, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            times[i1:i2] = spans[j1:j2]
        elif tag == "replace" and i2 - i1 == j2 - j1:      # misheard one for one ("park" as "parking")
            times[i1:i2] = spans[j1:j2]
        elif tag == "replace":       # misheard otherwise: the units share those words' time, by their letters
            lens = np.array([len(u.norm) for u in old[i1:i2]], np.float64)
            share = np.concatenate([[0.0], np.cumsum(lens)]) / lens.sum()
            edges = spans[j1][0] + (spans[j2 - 1][1] - spans[j1][0]) * share
            times[i1:i2] = np.stack([edges[:-1], edges[1:]], 1)
    known = np.flatnonzero(~np.isnan(times[:, 0]))
    if known.size == 0:
        edges = np.linspace(0.0, duration, n + 1)
        return np.stack([edges[:-1], edges[1:]], 1)
    idx = np.arange(n)
    return np.stack([np.interp(idx, known, times[known, 0]), np.interp(idx, known, times[known, 1])], 1)


def find_window(clip: AudioClip, change: Change, times: np.ndarray) -> regions.Window:
    """The span to regenerate, its ends at the quietest point of the pauses around the change."""
    x, sr = clip.samples, clip.sample_rate

    # an insertion removes nothing: its cut stays at the boundary of the two words it goes between
    start = boundary(x, sr, times, change.first,
                     reach=BOUNDARY_SLACK_S if change.kind == "insert" else BOUNDARY_SEARCH_S)
    end = start if change.kind == "insert" else boundary(x, sr, times, change.last, late=True)
    sel = regions.Selection(first_word=change.first, last_word=max(change.first, change.last - 1))
    inside = tuple(Word(u.text, *times[k]) for k, u in enumerate(change.old[change.first:change.last], change.first))
    return regions.Window(start=start, end=max(start, end), sample_rate=sr, words=inside, selection=sel)


def boundary(x: np.ndarray, sr: int, times: np.ndarray, k: int, late: bool = False,
             reach: float = BOUNDARY_SEARCH_S) -> int:
    """A cut between unit ``k - 1`` and unit ``k`` (0 / len(x) at the ends) at the quietest point near their ASR
    boundary. ASR word times are often off by 0.1 s, and a cut inside the words being replaced leaves part of
    them behind, so the search reaches ``reach`` (within the neighbouring word) away from the changed words
    (``late``: the cut after them) and only BOUNDARY_SLACK_S into them. An insertion removes nothing, so its cut
    and the cut before its generated words use ``reach`` = BOUNDARY_SLACK_S: reaching into the word before put
    the insertion before that word ("quick to review"; bench/word_edits.py). A replacement's two cuts before the
    new words reach alike, so that what the take loses of the word before, the generated piece brings back."""
    if k <= 0:
        return 0
    if k >= len(times):
        return len(x)
    (s0, e0), (s1, e1) = times[k - 1], times[k]
    if late:
        lo, hi = e0 - BOUNDARY_SLACK_S, min(e1, max(e0, s1) + reach)
    else:
        lo, hi = max(s0, min(e0, s1) - reach), s1 + BOUNDARY_SLACK_S
    return quiet_cut(x, sr, lo, max(hi, lo + 1.0 / sr))


def quiet_cut(x: np.ndarray, sr: int, lo_s: float, hi_s: float) -> int:
    """The centre of the 10 ms frame in [lo_s, hi_s] with the lowest level, where a frame's level is its energy
    in dB plus FRICATIVE_PENALTY_DB x its zero-crossing rate: a fricative ("s", "f") is quiet but not a pause,
    and a cut inside it leaves half a consonant behind ("the s|mall" -> "s" + "large" heard as "small")."""
    frame = max(1, int(regions.PAUSE_FRAME_S * sr))
    hop = max(1, frame // 4)
    lo, hi = max(0, int(lo_s * sr)), min(len(x), int(hi_s * sr))
    if hi - lo <= frame:
        return int(np.clip((lo + hi) // 2, 0, len(x)))
    starts = np.arange(lo, hi - frame + 1, hop)
    seg = np.asarray(x, np.float64)
    cost = [10 * np.log10(np.mean(seg[a:a + frame] ** 2) + 1e-12)
            + FRICATIVE_PENALTY_DB * np.mean(np.abs(np.diff(np.signbit(seg[a:a + frame]).astype(np.int8))))
            for a in starts]
    return int(starts[int(np.argmin(cost))] + frame // 2)


def noise_floor(x: np.ndarray, sr: int) -> float:
    frame = max(1, int(NOISE_FRAME_S * sr))
    if len(x) <= frame:
        return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0
    energy = np.convolve(np.square(np.asarray(x, np.float64)), np.ones(frame) / frame, mode="valid")
    return float(np.sqrt(energy.min()))


def room_tone(x: np.ndarray, sr: int, seconds: float, seed: int) -> np.ndarray:
    """``seconds`` of noise at the take's noise floor (a pause that sounds like the room, not digital zero)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(max(0, int(round(seconds * sr)))) * noise_floor(x, sr)).astype(np.float32)


def _rms(x: np.ndarray) -> float:
    """RMS of the louder half of 20 ms frames (speech, not the pauses between)."""
    x = np.asarray(x, np.float64)
    frames = [x[i:i + 480] for i in range(0, max(1, len(x) - 479), 480)]
    levels = np.sort([float(np.mean(f ** 2)) for f in frames if len(f)])
    return float(np.sqrt(np.mean(levels[len(levels) // 2:]))) if len(levels) else 0.0


def _prompt(clip: AudioClip, old: tuple[Unit, ...], times: np.ndarray, text: str, change: Change) -> tuple:
    """The take (or its ``PROMPT_MAX_S`` around the edit, cut between units) and the text it says."""
    if clip.duration <= PROMPT_MAX_S or not len(old):
        return clip, text
    centre = times[min(change.first, len(old) - 1)].mean()
    lo = int(np.searchsorted(times[:, 0], centre - PROMPT_MAX_S / 2))
    lo = max(0, min(lo, int(np.searchsorted(times[:, 1], times[-1, 1] - PROMPT_MAX_S))))
    hi = int(np.searchsorted(times[:, 1], times[lo, 0] + PROMPT_MAX_S, side="right"))
    a, b = int(times[lo, 0] * clip.sample_rate), int(times[hi - 1, 1] * clip.sample_rate)
    piece = AudioClip(samples=np.ascontiguousarray(clip.samples[a:b]), sample_rate=clip.sample_rate)
    return piece, text[old[lo].start:old[hi - 1].end]


def _speak(engine: Engine, checker: Checker, prompt: tuple, new_text: str, change: Change, seed: int | None,
           sr: int, progress: Progress) -> tuple[np.ndarray, EngineResult]:
    """The new words alone, at ``sr``: cloned with CONTEXT_UNITS units of context each side, context cut off."""
    new = change.new
    lo, hi = max(0, change.new_first - CONTEXT_UNITS), min(len(new), change.new_last + CONTEXT_UNITS)
    target = new_text[new[lo].start:new[hi - 1].end]
    result = engine.clone(CloneRequest(prompt_audio=prompt[0], prompt_text=prompt[1], target_text=target,
                                       seed=seed), lambda f, d: progress(0.2 + 0.5 * f, d))
    y = result.audio.samples
    rate = result.audio.sample_rate
    progress(0.75, "finding the new words")
    said = units(target)
    heard = checker.heard(result.audio, "zh" if re.search(r"[\u4e00-\u9fff]", target) else "en")
    t = unit_times(said, heard.words, result.audio.duration)
    k0, k1 = change.new_first - lo, change.new_last - lo           # the new words among the said units
    reach = BOUNDARY_SLACK_S if change.kind == "insert" else BOUNDARY_SEARCH_S     # as the take's window reaches
    a, b = boundary(y, rate, t, k0, reach=reach), boundary(y, rate, t, k1, late=True)
    piece = np.asarray(y[a:max(a + 1, b)], np.float32)
    if rate != sr:
        piece = audio_io.resample(piece, rate, sr)
    return _trim(piece, sr), result


def _trim(y: np.ndarray, sr: int, threshold_db: float = -40.0) -> np.ndarray:
    """Leading and trailing near-silence off (frames 30+ dB under the loudest), 10 ms kept each side."""
    frame = max(1, sr // 100)
    levels = np.array([np.sqrt(np.mean(np.square(y[i:i + frame]))) for i in range(0, len(y), frame)])
    if not len(levels) or levels.max() <= 0:
        return y
    loud = np.flatnonzero(20 * np.log10(levels / levels.max() + 1e-12) > threshold_db)
    a, b = max(0, (loud[0] - 1) * frame), min(len(y), (loud[-1] + 2) * frame)
    return y[a:b]


def word_edit(engine: Engine, clip: AudioClip, text: str, new_text: str, *, heard: Heard | None = None,
              checker: Checker | None = None, seed: int | None = None,
              progress: Progress | None = None) -> EngineResult:
    """``clip`` (saying ``text``) saying ``new_text``: only the changed span regenerated, the rest bit-identical.

    ``heard`` are the take's ASR words (the take check has them; transcribed when None); ``checker`` transcribes
    (default: checks.checker_for(engine))."""
    from .checks import checker_for  # noqa: PLC0415
    from .errors import UnsupportedEditError  # noqa: PLC0415
    from .interface import resolve_seed  # noqa: PLC0415
    progress = progress or (lambda fraction, desc: None)
    change = diff(text, new_text)
    caps = engine.capabilities()
    if change.kind != "delete" and not caps.clone:
        raise UnsupportedEditError(f"{caps.display_name} cannot speak new words (it cannot clone)")
    checker = checker or checker_for(engine)
    seed = resolve_seed(seed)
    progress(0.0, "locating the words")
    lang = "zh" if re.search(r"[\u4e00-\u9fff]", text or "") else "en"
    heard = heard if heard is not None else checker.heard(clip, lang)
    x, sr = np.asarray(clip.samples, np.float32), clip.sample_rate
    times = unit_times(change.old, tuple(heard.words), clip.duration)
    window = find_window(clip, change, times)
    start_s, end_s = window.start / sr, window.end / sr
    lead = max(0.0, times[change.first, 0] - start_s) if change.kind != "insert" else INSERT_PAD_S
    trail = max(0.0, end_s - times[change.last - 1, 1]) if change.kind != "insert" else INSERT_PAD_S
    info: dict = {"change": change.describe(), "kind": change.kind, "seed": seed}
    if change.kind == "delete":
        mid = room_tone(x, sr, float(np.clip(lead + trail, MIN_PAUSE_S, MAX_PAUSE_S)), seed)
    else:
        spoken, _ = _speak(engine, checker, _prompt(clip, change.old, times, text, change), new_text, change,
                           seed, sr, progress)
        ref = x[window.start:window.end] if change.kind == "replace" else \
            x[max(0, window.start - sr):window.start + sr]
        gain = 20 * np.log10((_rms(ref) + 1e-9) / (_rms(spoken) + 1e-9))
        info["gain_db"] = round(float(np.clip(gain, -MAX_GAIN_DB, MAX_GAIN_DB)), 2)
        spoken = (spoken * 10 ** (info["gain_db"] / 20)).astype(np.float32)
        mid = np.concatenate([room_tone(x, sr, lead, seed), spoken, room_tone(x, sr, trail, seed + 1)])
    fade = int(regions.FADE_S * sr)
    a, b = max(0, window.start - fade), min(len(x), window.end + fade)
    # the fade regions carry the take's own samples, so the cross-fades leave them unchanged
    y = regions.splice(x, window, np.concatenate([x[a:window.start], mid, x[window.end:b]]))
    info.update(window.to_dict(), identical_head=a, identical_tail=len(x) - b)
    progress(1.0, "done")
    return EngineResult(audio=AudioClip(samples=np.clip(y, -1.0, 1.0).astype(np.float32), sample_rate=sr),
                        text=" ".join(new_text.split()), seed=seed, edit_type=WORDS, edit_info=change.kind,
                        metadata={"engine": caps.engine, "word_edit": info})


def verify(before: AudioClip, after: EngineResult, text: str, checker: Checker) -> dict:
    """The take check of a word edit: samples outside the window unchanged, and the new words heard in the span.

    ``span_error_rate``: (new units not heard in place + heard units inserted in the span) / new units, compared
    by sound as the take check compares them ("ten" = "10"; Mandarin by fuzzy toneless pinyin); for a deletion,
    whether anything is still heard between its two neighbours (0 or 1)."""
    info = after.metadata["word_edit"]
    x, y = np.asarray(before.samples, np.float32), np.asarray(after.audio.samples, np.float32)
    head, tail = info["identical_head"], info["identical_tail"]
    outside = bool(np.array_equal(x[:head], y[:head]) and (tail == 0 or np.array_equal(x[len(x) - tail:],
                                                                                        y[len(y) - tail:])))
    change = diff(text, after.text)
    lang = "zh" if re.search(r"[\u4e00-\u9fff]", after.text) else "en"
    metric = "cer" if lang == "zh" else "wer"
    heard = checker.heard(after.audio, lang)
    key = sound_key(metric)
    got = [key(t) for w in heard.words for t in sound_tokens(w.text, metric)] if heard.words else \
        [key(t) for t in sound_tokens(heard.text, metric)]
    want, owner = [], []                 # the new text by sound ("ten" = "10", 在 = 再), each token's unit
    for k, u in enumerate(change.new):
        toks = sound_tokens(u.text, metric) or [u.norm]
        want += [key(t) for t in toks]
        owner += [k] * len(toks)
    lo = next((i for i, k in enumerate(owner) if k >= change.new_first), len(owner))
    hi = next((i for i, k in enumerate(owner) if k >= change.new_last), len(owner))
    errors = hi - lo
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=want, b=got, autojunk=False).get_opcodes():
        if tag == "equal":
            errors -= max(0, min(i2, hi) - max(i1, lo))
        elif tag == "insert" and lo <= i1 <= hi and (change.kind != "delete" or 0 < i1 < len(want)):
            errors += j2 - j1
    span = max(1, hi - lo)
    return {"outside_identical": outside, "span_error_rate": round(errors / span, 4) if hi > lo
            else float(errors > 0), "heard": heard.text, "expected": " ".join(u.text for u in change.new[
                change.new_first:change.new_last])}


def edit_take(engine: Engine, clip: AudioClip, text: str | None, new_text: str | None, *, seed: int | None = None,
              check: bool = True, checker: Checker | None = None, progress: Progress | None = None) -> EngineResult:
    """The one word-edit service every door calls: ``text`` is what the take says (heard when empty and the
    check can transcribe), ``new_text`` the edited transcript; with ``check`` the result carries :func:`verify`
    under ``metadata["word_edit"]["check"]``."""
    from .checks import checker_for  # noqa: PLC0415
    if not (new_text or "").strip():
        raise InvalidInputError("give the new text: the take's transcript with the words changed")
    checker = checker or checker_for(engine)
    lang = "zh" if re.search(r"[\u4e00-\u9fff]", new_text or "") else "en"
    heard = checker.heard(clip, lang)
    text = text if (text or "").strip() else heard.text
    out = word_edit(engine, clip, text, new_text, heard=heard, checker=checker, seed=seed, progress=progress)
    if check:
        info = {**out.metadata["word_edit"], "check": verify(clip, out, text, checker)}
        out = replace(out, metadata={**dict(out.metadata), "word_edit": info})
    return out


__all__ = ["WORDS", "WordEditTooLarge", "Change", "diff", "units", "unit_times", "find_window", "word_edit",
           "verify", "edit_take"]
