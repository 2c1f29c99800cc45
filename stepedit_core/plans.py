"""Plain-language edit plans: "a bit happier and slower, laugh after 'morning'" -> catalogue steps, offline.

An instruction (English or Mandarin) is cut into clauses (commas, "and", "then", 然后 ...); in each clause the
words of plan_words.py are found longest first: intensity words give the rounds of the clause's graded steps
(slightly / a bit / 一点 = 1, no word = 1, quite / 比较 = 2, much / very / 很 = 3), sounds take the word they
are anchored to (``after 'morning'``, ``在'早上'后面``) or the start / end, filler words are dropped, and any
other word is an error (:class:`PlanError`) naming it and the closest words the parser knows.

The plan is a tuple of :class:`PlanStep`, in the order it runs: denoise, silence removal, emotion, style, speed,
then sounds. ``describe`` / ``parse_plan_text`` turn it into editable lines and back, so a door can show the plan
before it runs and let the user change it; :func:`run_plan` runs it on a take.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from typing import Iterable

from . import catalog, tags
from . import plan_words as W
from .errors import InvalidInputError
from .interface import AudioClip, EditRequest, Engine, EngineResult, Progress
from .validation import MAX_ITERATIONS

MAX_INSTRUCTION_CHARS = 500
ORDER = (catalog.DENOISE, catalog.VAD, catalog.EMOTION, catalog.STYLE, catalog.SPEED, catalog.PARALINGUISTIC)
POSITIONS = ("after", "before", "start", "end")
_QUOTE = re.compile(r"(?<![A-Za-z])'([^']+)'(?![A-Za-z])|\"([^\"]+)\"|‘([^’]+)’|“([^”]+)”|「([^」]+)」|『([^』]+)』")
_SPLIT = re.compile(r"[,，;；。!！?？、]|\band then\b|\bthen\b|\band\b|\balso\b|然后|并且|同时|还有|以及")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
_EN_WORD = re.compile(r"[a-z][a-z'’]*")


class PlanError(InvalidInputError):
    """An instruction the parser cannot map: ``unknown`` are the words it did not understand, ``closest`` the
    nearest words it knows."""

    def __init__(self, message: str, unknown: Iterable[str] = (), closest: Iterable[str] = ()):
        self.unknown, self.closest = list(unknown), list(closest)
        super().__init__(message)


@dataclass(frozen=True)
class PlanStep:
    edit_type: str
    edit_info: str | None = None
    rounds: int = 1                     # n_iterations of the edit (graded by intensity words)
    tag: str | None = None              # paralinguistic: the 2026 tag name
    anchor: str | None = None           # paralinguistic: the word of the take the sound goes next to
    position: str = "end"               # paralinguistic: after | before (the anchor), start | end (of the take)

    def describe(self) -> str:
        """``"emotion happy x1"``, ``"denoise"``, ``"paralinguistic laugh after 'morning'"``."""
        if self.edit_type == catalog.PARALINGUISTIC:
            where = f"{self.position} '{self.anchor}'" if self.anchor else f"at {self.position}"
            return f"{self.edit_type} {self.tag} {where}"
        if self.edit_info is None:
            return self.edit_type
        return f"{self.edit_type} {self.edit_info} x{self.rounds}"


def describe(plan: Iterable[PlanStep]) -> list[str]:
    return [step.describe() for step in plan]


# -- parsing ------------------------------------------------------------------------------------------------
def parse_plan(text: str | None) -> tuple[PlanStep, ...]:
    """The plan an instruction asks for; PlanError naming the words it did not understand."""
    text = " ".join((text or "").split())
    if not text:
        raise PlanError("the instruction is empty; describe the change, e.g. \"a bit happier and slower\"")
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise InvalidInputError(f"the instruction is {len(text)} characters long; at most {MAX_INSTRUCTION_CHARS}")
    quoted: list[str] = []

    def hold(m: re.Match) -> str:
        quoted.append(next(g for g in m.groups() if g is not None).strip())
        return f" Q{len(quoted) - 1}Q "

    body = _QUOTE.sub(hold, text).lower()
    steps, unknown = [], []
    for clause in _SPLIT.split(body):
        found, left = _parse_clause(clause, quoted)
        steps += found
        unknown += left
    if unknown:
        raise _unknown_error(text, unknown)
    if not steps:
        raise PlanError(f"the instruction {text[:60]!r} names no edit; try an emotion, a style, slower / faster, "
                        "a sound such as \"laugh after 'word'\", denoise or remove silences")
    return _merge(steps)


def _parse_clause(clause: str, quoted: list[str]) -> tuple[list[PlanStep], list[str]]:
    """Steps and not-understood words of one clause (quoted text is ``QnQ`` in it)."""
    clause, rounds = _take_intensity(clause)
    clause, anchor, position = _take_position(clause, quoted)
    sounds: list[str] = []
    for n in [int(k) for k in re.findall(r"q(\d+)q", clause)]:       # a quoted sound: "an 'uhm' before ..."
        form = quoted[n].lower()
        if form in W.EN_SOUNDS or quoted[n] in W.ZH_SOUNDS or tags.spelled(quoted[n]):
            sounds.append(W.EN_SOUNDS.get(form) or W.ZH_SOUNDS.get(quoted[n]) or tags.canonical(quoted[n]))
            clause = clause.replace(f"q{n}q", " ")
    found: list[tuple[str, object]] = []
    clause = _take_phrases(clause, found)
    steps = [PlanStep(kind, info, rounds if info else 1) for what, (kind, info) in
             ((what, value) for what, value in found if what == "step")]
    sounds += [tag for what, tag in found if what == "sound"]
    rest = re.sub(r"q\d+q", " ", clause)
    unknown = [w for w in _EN_WORD.findall(rest) if w not in W.EN_FILLER]
    unknown += [part for run in _CJK.findall(rest) for part in _strip_zh(run)]
    unknown += [quoted[int(n)] for n in re.findall(r"q(\d+)q", clause)]
    if (anchor or position) and not sounds and not unknown:
        unknown.append(f"{position} '{anchor}'" if anchor else f"at the {position}")
    steps += [PlanStep(catalog.PARALINGUISTIC, None, 1, tag, anchor, position or "end") for tag in sounds]
    return steps, unknown


def _take_intensity(clause: str) -> tuple[str, int]:
    rounds = 1
    for form in sorted(W.EN_INTENSITY, key=len, reverse=True):
        pattern = rf"(?<![a-z]){re.escape(form)}(?![a-z])"
        if re.search(pattern, clause):
            rounds = max(rounds, W.EN_INTENSITY[form])
            clause = re.sub(pattern, " ", clause)
    for form in sorted(W.ZH_INTENSITY, key=len, reverse=True):
        if form in clause and not _inside_phrase(clause, form):
            rounds = max(rounds, W.ZH_INTENSITY[form])
            clause = clause.replace(form, " ")
    return clause, min(rounds, MAX_ITERATIONS)


def _inside_phrase(clause: str, form: str) -> bool:
    """True when ``form`` only occurs inside a longer known Mandarin phrase (很 in nothing, 些 in nothing ...)."""
    return any(form in p and p != form and p in clause for p in (*W.ZH_STEPS, *W.ZH_SOUNDS))


def _take_position(clause: str, quoted: list[str]) -> tuple[str, str | None, str | None]:
    """The anchor word and position of a sound in the clause (removed from it)."""
    m = re.search(rf"(?<![a-z])({W.EN_AFTER}|{W.EN_BEFORE})\s+(?:the\s+words?\s+)?(q\d+q|[a-z][a-z'’]*)", clause)
    if m:
        where = "after" if re.fullmatch(W.EN_AFTER, m.group(1)) else "before"
        return clause[:m.start()] + " " + clause[m.end():], _anchor(m.group(2), quoted), where
    m = re.search(rf"在?\s*(q\d+q)\s*({W.ZH_AFTER}|{W.ZH_BEFORE})", clause)
    if m:
        where = "after" if re.fullmatch(W.ZH_AFTER, m.group(2)) else "before"
        return clause[:m.start()] + " " + clause[m.end():], _anchor(m.group(1), quoted), where
    for pattern, where in ((W.EN_END, "end"), (W.EN_START, "start"), (W.ZH_END, "end"), (W.ZH_START, "start")):
        m = re.search(rf"在?(?<![a-z])(?:{pattern})(?![a-z])", clause)
        if m:
            return clause[:m.start()] + " " + clause[m.end():], None, where
    return clause, None, None


def _anchor(token: str, quoted: list[str]) -> str:
    m = re.fullmatch(r"q(\d+)q", token)
    return quoted[int(m.group(1))] if m else token


def _take_phrases(clause: str, found: list) -> str:
    """Find step and sound phrases, longest first, English on word boundaries and Mandarin as substrings."""
    en = [(f, ("step", s)) for f, s in W.EN_STEPS.items()] + [(f, ("sound", t)) for f, t in W.EN_SOUNDS.items()]
    zh = [(f, ("step", s)) for f, s in W.ZH_STEPS.items()] + [(f, ("sound", t)) for f, t in W.ZH_SOUNDS.items()]
    hits: list[tuple[int, tuple]] = []
    for form, what in sorted(en, key=lambda p: len(p[0]), reverse=True):
        for m in re.finditer(rf"(?<![a-z]){form}(?![a-z])", clause):
            hits.append((m.start(), what))
            clause = clause[:m.start()] + " " * (m.end() - m.start()) + clause[m.end():]
    for form, what in sorted(zh, key=lambda p: len(p[0]), reverse=True):
        while (at := clause.find(form)) >= 0:
            hits.append((at, what))
            clause = clause[:at] + " " * len(form) + clause[at + len(form):]
    found += [what for _, what in sorted(hits, key=lambda h: h[0])]       # in the order they were written
    return clause


def _strip_zh(run: str) -> list[str]:
    """The parts of a Mandarin run that are not filler."""
    for filler in sorted(W.ZH_FILLER, key=len, reverse=True):
        run = run.replace(filler, " ")
    return run.split()


def _merge(steps: list[PlanStep]) -> tuple[PlanStep, ...]:
    """Repeated steps once (the larger rounds), sorted by ORDER, stable within a kind."""
    out: dict[tuple, PlanStep] = {}
    for s in steps:
        key = (s.edit_type, s.edit_info, s.tag, s.anchor, s.position)
        out[key] = replace(s, rounds=max(s.rounds, out[key].rounds)) if key in out else s
    return tuple(sorted(out.values(), key=lambda s: ORDER.index(s.edit_type)))


def _unknown_error(text: str, unknown: list[str]) -> PlanError:
    vocabulary = [*W.EN_STEPS, *W.EN_SOUNDS, *W.ZH_STEPS, *W.ZH_SOUNDS]
    plain = [v for v in vocabulary if re.fullmatch(r"[a-z ]+|[\u4e00-\u9fff]+", v)]
    closest: list[str] = []
    for word in unknown:
        closest += [c for c in difflib.get_close_matches(word, plain, n=3, cutoff=0.5) if c not in closest]
    if not closest:
        closest = ["happier", "slower", "whisper", "laugh after 'word'", "remove noise", "更开心", "慢一点"]
    words = ", ".join(repr(w) for w in dict.fromkeys(unknown))
    return PlanError(f"did not understand {words} in {text[:80]!r}; closest options: {', '.join(closest[:6])}",
                     unknown=list(dict.fromkeys(unknown)), closest=closest[:6])


# -- plan text: shown before it runs, editable ----------------------------------------------------------------
def parse_plan_text(lines: str | Iterable[str]) -> tuple[PlanStep, ...]:
    """The inverse of :func:`describe` (one step a line or a ``;``-separated string), checked against the catalogue."""
    items = re.split(r"[\n;]", lines) if isinstance(lines, str) else list(lines)
    steps = []
    for raw in (" ".join(i.split()) for i in items):
        if not raw:
            continue
        m = re.fullmatch(r"paralinguistic\s+(.+?)\s+(?:(after|before)\s+'([^']+)'|at\s+(start|end))", raw)
        if m:
            steps.append(PlanStep(catalog.PARALINGUISTIC, None, 1, tags.canonical(m.group(1)), m.group(3),
                                  m.group(2) or m.group(4)))
            continue
        m = re.fullmatch(r"([a-z]+)(?:\s+(.+?))?(?:\s+x(\d+))?", raw)
        if not m or m.group(1) not in ORDER[:-1]:
            raise PlanError(f"plan line {raw!r} is not '<edit type> <option> xN', 'denoise', 'vad' or "
                            f"'paralinguistic <tag> after|before '<word>''", unknown=[raw])
        info = catalog.check_edit(m.group(1), m.group(2))
        rounds = int(m.group(3) or 1)
        if not 1 <= rounds <= MAX_ITERATIONS:
            raise PlanError(f"plan line {raw!r}: rounds must be 1-{MAX_ITERATIONS}", unknown=[raw])
        steps.append(PlanStep(m.group(1), info, rounds if info else 1))
    if not steps:
        raise PlanError("the plan is empty")
    return tuple(steps)


# -- running --------------------------------------------------------------------------------------------------
def text_with_sound(text: str, step: PlanStep) -> str:
    """The take's text with ``step``'s tag at its place (the first occurrence of the anchor, any case)."""
    tag = f"[{step.tag}]"
    if step.position == "start" or (step.position == "end" and not step.anchor):
        return f"{tag} {text}" if step.position == "start" else f"{text} {tag}"
    m = re.search(re.escape(step.anchor or ""), text, re.I)
    if not step.anchor or m is None:
        raise PlanError(f"the take's text has no {step.anchor!r} to put [{step.tag}] {step.position}; "
                        f"pick a word of: {text[:80]!r}", unknown=[step.anchor or ""])
    if step.position == "before":
        return f"{text[:m.start()]}{tag} {text[m.start():]}"
    end = m.end()
    while end < len(text) and text[end] in ".,!?;:，。！？；：":           # after the word's punctuation
        end += 1
    return f"{text[:end]} {tag}{text[end:]}"


def edit_request(step: PlanStep, clip: AudioClip, text: str, seed: int | None) -> EditRequest:
    new_text = text_with_sound(text, step) if step.edit_type == catalog.PARALINGUISTIC else None
    return EditRequest(audio=clip, audio_text=text, edit_type=step.edit_type, edit_info=step.edit_info,
                       new_text=new_text, n_iterations=step.rounds, seed=seed)


def run_plan(engine: Engine, clip: AudioClip, text: str, plan: Iterable[PlanStep], *, seed: int | None = None,
             progress: Progress | None = None) -> list[EngineResult]:
    """Run every step on the previous step's take; returns the last take of each step."""
    plan = tuple(plan)
    progress = progress or (lambda fraction, desc: None)
    takes: list[EngineResult] = []
    for i, step in enumerate(plan):
        request = edit_request(step, clip, text, seed)
        take = engine.edit(request, lambda f, d, _i=i: progress((_i + f) / len(plan), f"{step.describe()}: {d}"))[-1]
        takes.append(take)
        clip, text, seed = take.audio, take.text, take.seed
    progress(1.0, "done")
    return takes


__all__ = ["PlanError", "PlanStep", "describe", "parse_plan", "parse_plan_text", "text_with_sound", "edit_request",
           "run_plan"]
