"""The script grammar: ``Speaker: text`` lines with inline tags, edit directives and pauses.

A script is plain text, one utterance per line::

    # a comment (ignored), blank lines are ignored too
    Alice: {happy} Hello Bob! [Laughter] It has been a while.
    Bob: {whisper}{slower} Shh... [pause 0.8s] they are listening.
    [pause 1.5s]
    Narrator: [Cantonese] 今日天气好好。
    and this line, without a speaker, continues the narrator (paragraphs of an audiobook chapter).

- ``Name:`` (or the full-width ``Name：``) starts a line spoken by the saved voice ``Name`` (case is ignored).
  A line without it continues the previous speaker, or uses ``default_voice`` for the first lines.
- ``[Tag]``: a paralinguistic tag (``[Laughter]``, ``[laugh]``, ``[cough]`` ... catalog.ACCEPTED_TAGS) where the sound
  goes, or a dialect tag (``[Cantonese]`` ... catalog.LANGUAGE_TAGS) at the start of the text.
- ``[pause 0.8s]`` / ``[pause 800ms]``: silence. Inside a line it splits the line in two segments; at the start
  or end of a line, or alone on a line, it is the gap before / after the line (replacing DEFAULT_GAP_S).
- ``{directive}``: an edit applied to the whole line after its clone, in the order written: an emotion
  (``{happy}``), a style (``{whisper}``), a speed (``{faster}``, ``{more slower}``), ``{denoise}``, ``{vad}``;
  qualified when a name is ambiguous (``{emotion: remove}``, ``{style: remove}``); ``xN`` repeats it N rounds
  (``{faster x2}``, 1 <= N <= MAX_ITERATIONS).

Lines longer than ~25 s of speech (longform.CLONE_PIECE_S) are split into sentence segments automatically, so
the script as a whole has no length limit beyond MAX_SCRIPT_CHARS; each segment stays within MAX_TEXT_CHARS.
Every error is a :class:`ScriptError` naming the line and column (1-based).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from .. import catalog
from ..errors import InvalidInputError
from ..interface import MAX_ITERATIONS, MAX_TEXT_CHARS
from ..longform import CLONE_PIECE_S, split_target_text

MAX_SCRIPT_CHARS = 200_000       # a long audiobook chapter; bounds what one request can make the server do
MAX_SCRIPT_LINES = 5_000
MAX_PAUSE_S = 30.0               # one pause; longer silences belong in an editor, not a script
MAX_SPEAKER_CHARS = 64           # voices.MAX_NAME_CHARS
DEFAULT_GAP_S = 0.35             # silence between two lines when the script gives none (conversational turn gap)

_SPEAKER_RE = re.compile(r"^\s*([^\s:：\[\]{}#][^:：\[\]{}]{0,63}?)\s*[:：]\s*")
_PAUSE_RE = re.compile(r"^pause\s+(\d+(?:\.\d+)?)\s*(s|ms)$", re.I)
_ITER_RE = re.compile(r"^(.*?)\s+[x×](\d+)$", re.I)
_DIRECTIVE_TYPES = (catalog.EMOTION, catalog.STYLE, catalog.SPEED)
_NO_OPTION = (catalog.DENOISE, catalog.VAD)


class ScriptError(InvalidInputError):
    """A script that cannot be parsed; ``line`` and ``column`` are 1-based."""

    def __init__(self, line: int, column: int, message: str):
        self.line, self.column, self.detail = line, column, message
        super().__init__(f"Script line {line}, column {column}: {message}")


@dataclass(frozen=True)
class Directive:
    edit_type: str
    option: str | None = None
    iterations: int = 1

    def label(self) -> str:
        base = self.option or self.edit_type
        return base + (f" x{self.iterations}" if self.iterations > 1 else "")


@dataclass(frozen=True)
class Segment:
    """One rendered unit: a clone of ``text`` by ``speaker`` followed by ``directives``."""
    line: int                                   # 1-based line of the script it comes from
    speaker: str
    text: str                                   # clone target text ([tags] kept, pauses and directives removed)
    directives: tuple[Directive, ...] = ()
    pause_before: float | None = None           # seconds of silence before it; None = the default gap


@dataclass(frozen=True)
class Script:
    segments: tuple[Segment, ...]
    trailing_pause: float = 0.0                 # silence after the last segment
    source: str = field(default="", repr=False)
    default_voice: str | None = None

    @property
    def speakers(self) -> list[str]:
        seen: dict[str, str] = {}
        for s in self.segments:
            seen.setdefault(s.speaker.casefold(), s.speaker)
        return list(seen.values())


def _directive_lookup() -> dict[str, list[tuple[str, str | None]]]:
    table: dict[str, list[tuple[str, str | None]]] = {}
    for edit_type in _DIRECTIVE_TYPES:
        for option in catalog.OPTIONS[edit_type]:
            table.setdefault(option.casefold(), []).append((edit_type, option))
    for edit_type in _NO_OPTION:
        table.setdefault(edit_type, []).append((edit_type, None))
    return table


_DIRECTIVES = _directive_lookup()
_TAGS = {t.casefold(): t for t in catalog.ACCEPTED_TAGS}          # 2025 and 2026 spellings
_LANG_TAGS = {t.casefold(): t for t in catalog.LANGUAGE_TAGS}


def parse_directive(body: str, line: int, column: int) -> Directive:
    """``"faster x2"`` / ``"emotion: remove"`` -> Directive; ScriptError on anything else."""
    text = " ".join(body.split())
    iterations = 1
    m = _ITER_RE.match(text)
    if m:
        text, iterations = m.group(1), int(m.group(2))
        if not 1 <= iterations <= MAX_ITERATIONS:
            raise ScriptError(line, column, f"{{{body}}} repeats {iterations} times; use x1 to x{MAX_ITERATIONS}")
    if ":" in text:
        kind, _, option = (p.strip().casefold() for p in text.partition(":"))
        if kind not in _DIRECTIVE_TYPES:
            raise ScriptError(line, column, f"unknown directive type {kind!r} in {{{body}}}; use one of "
                                            f"{', '.join(_DIRECTIVE_TYPES)}")
        if option not in catalog.OPTIONS[kind]:
            raise ScriptError(line, column, f"unknown {kind} {option!r} in {{{body}}}; {kind} options: "
                                            f"{', '.join(catalog.OPTIONS[kind])}")
        return Directive(kind, option, iterations)
    hits = _DIRECTIVES.get(text.casefold())
    if not hits:
        raise ScriptError(line, column, f"unknown directive {{{body}}}; use an emotion ({{happy}}), a style "
                                        f"({{whisper}}), a speed ({{faster}}), {{denoise}} or {{vad}}")
    if len(hits) > 1:
        kinds = " or ".join(f"{{{k}: {o}}}" for k, o in hits)
        raise ScriptError(line, column, f"{{{body}}} is ambiguous; write {kinds}")
    edit_type, option = hits[0]
    return Directive(edit_type, option, iterations)


def _parse_pause(body: str, line: int, column: int) -> float | None:
    m = _PAUSE_RE.match(body.strip())
    if not m:
        if body.strip().casefold().startswith("pause"):
            raise ScriptError(line, column, f"[{body}] is not a pause; write it like [pause 0.8s] or [pause 800ms]")
        return None
    seconds = float(m.group(1)) / (1000.0 if m.group(2).lower() == "ms" else 1.0)
    if seconds > MAX_PAUSE_S:
        raise ScriptError(line, column, f"[{body}] is longer than {MAX_PAUSE_S:.0f} s")
    return seconds


def _scan(body: str, line: int, offset: int) -> list[tuple[str, object, int]]:
    """Tokens of a line's text: ("text", str, col), ("tag", str, col), ("pause", float, col), ("dir", Directive, col)."""
    tokens: list[tuple[str, object, int]] = []
    i, start = 0, 0
    while i < len(body):
        ch = body[i]
        if ch in "[{":
            close = "]" if ch == "[" else "}"
            end = body.find(close, i + 1)
            nested = next((j for j in range(i + 1, end if end >= 0 else len(body)) if body[j] in "[{"), -1)
            if end < 0 or nested >= 0:
                raise ScriptError(line, offset + i + 1, f"{ch!r} is never closed with {close!r}")
            if i > start:
                tokens.append(("text", body[start:i], offset + start + 1))
            inner, col = body[i + 1:end], offset + i + 1
            if ch == "{":
                tokens.append(("dir", parse_directive(inner, line, col), col))
            elif (pause := _parse_pause(inner, line, col)) is not None:
                tokens.append(("pause", pause, col))
            elif " ".join(inner.split()).casefold() in _TAGS:
                tokens.append(("tag", f"[{_TAGS[' '.join(inner.split()).casefold()]}]", col))
            elif inner.strip().casefold() in _LANG_TAGS:
                tokens.append(("lang", f"[{_LANG_TAGS[inner.strip().casefold()]}]", col))
            else:
                raise ScriptError(line, col, f"unknown tag [{inner}]; tags: "
                                             f"{', '.join(catalog.PARALINGUISTIC_TAGS_2026 + catalog.LANGUAGE_TAGS)}, "
                                             f"or [pause 0.8s]")
            i = start = end + 1
        elif ch in "]}":
            raise ScriptError(line, offset + i + 1, f"{ch!r} closes nothing")
        else:
            i += 1
    if start < len(body):
        tokens.append(("text", body[start:], offset + start + 1))
    return tokens


def _clean(text: str) -> str:
    return " ".join(text.split())


def _segment_texts(text: str, line: int, column: int) -> list[str]:
    pieces = split_target_text(text, CLONE_PIECE_S)
    for p in pieces:
        if len(p) > MAX_TEXT_CHARS:
            raise ScriptError(line, column, f"a sentence of {len(p)} characters is longer than the per-line "
                                            f"limit of {MAX_TEXT_CHARS}; add punctuation")
    return pieces


def parse_script(text: str, *, voices: Iterable[str] | None = None,
                 default_voice: str | None = None) -> Script:
    """Parse a script. ``voices`` (names, case ignored), when given, makes an unknown speaker an error here
    rather than at render time; ``default_voice`` speaks lines before the first ``Name:``."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("The script is empty.")
    if len(text) > MAX_SCRIPT_CHARS:
        raise InvalidInputError(f"The script has {len(text)} characters; the limit is {MAX_SCRIPT_CHARS}.")
    lines = text.splitlines()
    if len(lines) > MAX_SCRIPT_LINES:
        raise InvalidInputError(f"The script has {len(lines)} lines; the limit is {MAX_SCRIPT_LINES}.")
    known = {v.casefold(): v for v in voices} if voices is not None else None
    segments: list[Segment] = []
    speaker, pending = default_voice, None        # pending: explicit pause before the next segment
    for n, raw in enumerate(lines, 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        m = _SPEAKER_RE.match(raw)
        offset = 0
        if m and not raw.lstrip().startswith("["):
            speaker, offset = m.group(1).strip(), m.end()
            if known is not None and speaker.casefold() not in known:
                names = ", ".join(sorted(known.values())[:10]) or "none saved yet"
                raise ScriptError(n, m.start(1) + 1, f"unknown voice {speaker!r} (voices: {names})")
            if known is not None:
                speaker = known[speaker.casefold()]
        tokens = _scan(raw[offset:], n, offset)
        directives = tuple(v for k, v, _ in tokens if k == "dir")
        # split into runs of text at pauses; a pause before the first / after the last text is a gap
        runs: list[list[tuple[str, object, int]]] = [[]]
        pauses: list[float] = []
        for tok in tokens:
            if tok[0] == "pause":
                pauses.append(tok[1])
                runs.append([])
            elif tok[0] != "dir":
                runs[-1].append(tok)
        spoken = [i for i, r in enumerate(runs) if _clean("".join(str(v) for k, v, _ in r if k in ("text", "tag")))]
        if not spoken:
            if m is None and not directives and pauses and not any(runs):
                pending = (pending or 0.0) + sum(pauses)        # a line that is only pauses
                continue
            who = f"{speaker!r} has" if speaker else "it has"
            raise ScriptError(n, len(raw.rstrip()) + 1, f"empty line of text: {who} nothing to say")
        if speaker is None:
            raise ScriptError(n, 1, "no speaker: start the line with a voice name, like 'Alice: Hello'")
        # run i is followed by pauses[i]; pauses before the first spoken run / after the last are gaps
        if spoken[0] > 0:
            pending = (pending or 0.0) + sum(pauses[:spoken[0]])
        tail = sum(pauses[spoken[-1]:])
        lang = None
        for r_i, run_index in enumerate(spoken):
            parts: list[str] = []
            for kind, value, col in runs[run_index]:
                if kind == "lang":
                    if r_i > 0 or _clean("".join(parts)):
                        raise ScriptError(n, col, f"the dialect tag {value} goes at the start of the line's text")
                    lang = value
                    continue
                parts.append(str(value))
            body = _clean(" ".join(p.strip() for p in parts))
            col = runs[run_index][0][2]
            between = sum(pauses[spoken[r_i - 1]:run_index]) if r_i > 0 else None
            for k, piece in enumerate(_segment_texts(body, n, col)):
                gap = (pending if r_i == 0 else between) if k == 0 else None
                segments.append(Segment(line=n, speaker=speaker, text=f"{lang}{piece}" if lang else piece,
                                        directives=directives, pause_before=gap))
        pending = tail if tail else None
    if not segments:
        raise InvalidInputError("The script has no line to speak (only comments, blank lines or pauses).")
    return Script(segments=tuple(segments), trailing_pause=pending or 0.0, source=text, default_voice=default_voice)
