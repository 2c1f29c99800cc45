"""Render a parsed script: every segment is its own take tree (a clone, then its directives as edits), and the
master track is assembled from each segment's current take.

A segment's takes form a small tree like the app's session history: a clone is a root, an edit is the child of
the take it edited. Re-rolling a segment adds a new root (clone + the line's directives with a new seed);
editing adds a child of the current take; any take can be made current (branching). Nothing about one segment
changes another's takes, so re-rolling line 7 leaves every other line's audio bit-identical.

Seeds: segment i of a script rendered with seed S clones with ``segment_seed(S, i)``; the k-th directive of
that chain uses ``segment_seed(S, i) + k`` (each directive's rounds then follow ``interface.round_seed``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np

from .. import catalog
from ..audio import OUTPUT_SAMPLE_RATE
from ..errors import InvalidInputError, UnsupportedEditError
from ..interface import (MAX_SEED, AudioClip, CloneRequest, EditRequest, Engine, Progress, PromptTokenStore,
                         resolve_seed, round_seed)
from .grammar import Directive, Script, Segment
from .master import Cue, assemble

SEGMENT_SEED_STRIDE = 7919       # a prime: segment seeds of one script never collide with its directive seeds


class VoiceSource(Protocol):
    """What rendering needs from a voice library (``voices.VoiceLibrary`` is one; when the source also has
    ``token_store(name)``, clones read and fill the voice's prompt-token cache)."""

    def get(self, name: str): ...


@dataclass(frozen=True)
class LineTake:
    id: str                          # "L3.T2": segment 3, take 2
    parent: str | None
    op: str                          # "clone" or an edit type
    option: str | None
    iterations: int
    seed: int
    text: str
    samples: np.ndarray              # (N,) float32 at OUTPUT_SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.samples) / OUTPUT_SAMPLE_RATE


@dataclass(frozen=True)
class LineRender:
    index: int                       # segment index in the script (0-based)
    segment: Segment
    takes: tuple[LineTake, ...]
    current: str                     # id of the take the master uses

    def take(self, take_id: str) -> LineTake:
        for t in self.takes:
            if t.id == take_id:
                return t
        raise InvalidInputError(f"line {self.index + 1} has no take {take_id!r}")

    @property
    def audio(self) -> np.ndarray:
        return self.take(self.current).samples

    @property
    def text(self) -> str:
        return self.take(self.current).text


@dataclass(frozen=True)
class ScriptRender:
    script: Script
    seed: int
    lines: tuple[LineRender, ...]
    master: np.ndarray               # (N,) float32
    cues: tuple[Cue, ...]            # one per segment, in the master's time
    sample_rate: int = OUTPUT_SAMPLE_RATE
    engine: str = ""

    @property
    def duration(self) -> float:
        return len(self.master) / self.sample_rate


def segment_seed(seed: int, index: int) -> int:
    return (int(seed) + SEGMENT_SEED_STRIDE * index) % (MAX_SEED + 1)


class _Voices:
    """Voice clips loaded once per render (a script says the same names many times)."""

    def __init__(self, voices: VoiceSource):
        self._voices, self._cache = voices, {}

    def get(self, name: str) -> tuple[AudioClip, str, PromptTokenStore | None]:
        """(prompt clip, its transcript, the voice's prompt-token cache when the source keeps one)."""
        key = name.casefold()
        if key not in self._cache:
            voice = self._voices.get(name)
            token_store = getattr(self._voices, "token_store", None)
            self._cache[key] = (voice.clip(), voice.text, token_store(voice.name) if token_store else None)
        return self._cache[key]


def _edit(engine: Engine, samples: np.ndarray, text: str, d: Directive, seed: int, progress: Progress):
    if d.edit_type == catalog.PARALINGUISTIC:
        raise InvalidInputError("paralinguistic sounds go into a script as [tags], not as a directive")
    results = engine.edit(EditRequest(audio=AudioClip.from_array(samples, OUTPUT_SAMPLE_RATE), audio_text=text,
                                      edit_type=d.edit_type, edit_info=d.option, n_iterations=d.iterations,
                                      seed=seed), progress)
    return results[-1]


def _to_output_rate(clip: AudioClip) -> np.ndarray:
    return (clip.samples if clip.sample_rate == OUTPUT_SAMPLE_RATE
            else clip.resampled(OUTPUT_SAMPLE_RATE)).astype(np.float32, copy=False)


def render_chain(engine: Engine, segment: Segment, voices: _Voices, seed: int, *, index: int, first_take: int,
                 parent: str | None = None, progress: Progress | None = None) -> list[LineTake]:
    """Clone ``segment`` with ``seed`` and apply its directives; the takes it makes, in order."""
    progress = progress or (lambda f, d: None)
    clip, prompt_text, store = voices.get(segment.speaker)
    steps = 1 + len(segment.directives)
    result = engine.clone(CloneRequest(prompt_audio=clip, prompt_text=prompt_text, target_text=segment.text,
                                       seed=seed, prompt_store=store),
                          lambda f, d: progress(f / steps, f"clone: {d}"))
    takes = [LineTake(id=f"L{index + 1}.T{first_take}", parent=parent, op=catalog.CLONE, option=None,
                      iterations=1, seed=result.seed, text=result.text or segment.text,
                      samples=_to_output_rate(result.audio))]
    for k, d in enumerate(segment.directives, 1):
        prev = takes[-1]
        edit_seed = round_seed(seed, k + 1)
        result = _edit(engine, prev.samples, prev.text, d, edit_seed,
                       lambda f, desc, _k=k: progress((_k + f) / steps, f"{d.label()}: {desc}"))
        takes.append(LineTake(id=f"L{index + 1}.T{first_take + k}", parent=prev.id, op=d.edit_type,
                              option=d.option, iterations=d.iterations, seed=edit_seed, text=result.text or prev.text,
                              samples=_to_output_rate(result.audio)))
    progress(1.0, "done")
    return takes


def _line_progress(progress: Progress, i: int, n: int, segment: Segment) -> Progress:
    def report(fraction: float, desc: str) -> None:
        progress((i + fraction) / n, f"line {i + 1}/{n} ({segment.speaker}, script line {segment.line}): {desc}")
    return report


def _assemble(script: Script, seed: int, lines: Sequence[LineRender], engine: str) -> ScriptRender:
    master, cues = assemble([ln.audio for ln in lines], [ln.segment for ln in lines], [ln.text for ln in lines],
                            script.trailing_pause, OUTPUT_SAMPLE_RATE)
    return ScriptRender(script=script, seed=seed, lines=tuple(lines), master=master, cues=cues, engine=engine)


def iter_render_script(engine: Engine, script: Script, voices: VoiceSource, *, seed: int | None = None,
                       progress: Progress | None = None) -> Iterator[LineRender | ScriptRender]:
    """Render every segment (clone, then its directives); yields each finished :class:`LineRender` as it
    is done (for a per-line table), then the assembled :class:`ScriptRender` last. Unknown voices and edits
    the engine cannot do fail before the first line is rendered."""
    progress = progress or (lambda f, d: None)
    seed = resolve_seed(seed)
    cache = _Voices(voices)
    for name in script.speakers:
        cache.get(name)
    caps = engine.capabilities()
    for segment in script.segments:
        for d in segment.directives:
            if not caps.supports(d.edit_type, d.option):
                raise UnsupportedEditError(f"Script line {segment.line}: {caps.display_name} does not support "
                                           f"the {{{d.label()}}} edit")
    lines, n = [], len(script.segments)
    for i, segment in enumerate(script.segments):
        takes = render_chain(engine, segment, cache, segment_seed(seed, i), index=i, first_take=1,
                             progress=_line_progress(progress, i, n, segment))
        line = LineRender(index=i, segment=segment, takes=tuple(takes), current=takes[-1].id)
        lines.append(line)
        yield line
    progress(1.0, f"assembled {n} lines")
    yield _assemble(script, seed, lines, caps.engine)


def render_script(engine: Engine, script: Script, voices: VoiceSource, *, seed: int | None = None,
                  progress: Progress | None = None,
                  on_line: Callable[[LineRender], None] | None = None) -> ScriptRender:
    """Render every segment (clone, then its directives) and assemble the master; ``on_line`` sees each
    finished line (:func:`iter_render_script` yields them instead)."""
    for item in iter_render_script(engine, script, voices, seed=seed, progress=progress):
        if isinstance(item, ScriptRender):
            return item
        if on_line is not None:
            on_line(item)
    raise AssertionError("iter_render_script ended without a render")     # pragma: no cover


def _check_index(render: ScriptRender, index: int) -> LineRender:
    if not isinstance(index, int) or not 0 <= index < len(render.lines):
        raise InvalidInputError(f"line {index!r} is not in this script (lines 1-{len(render.lines)}; "
                                f"indices 0-{len(render.lines) - 1})")
    return render.lines[index]


def _with_line(render: ScriptRender, line: LineRender) -> ScriptRender:
    lines = list(render.lines)
    lines[line.index] = line
    return _assemble(render.script, render.seed, lines, render.engine)


def reroll_line(engine: Engine, render: ScriptRender, index: int, voices: VoiceSource, *, seed: int | None = None,
                progress: Progress | None = None) -> ScriptRender:
    """Render segment ``index`` again with a new seed (clone + directives) as a new root; it becomes current."""
    line = _check_index(render, index)
    takes = render_chain(engine, line.segment, _Voices(voices), resolve_seed(seed), index=index,
                         first_take=len(line.takes) + 1, progress=progress)
    return _with_line(render, replace(line, takes=line.takes + tuple(takes), current=takes[-1].id))


def edit_line(engine: Engine, render: ScriptRender, index: int, edit_type: str, option: str | None = None, *,
              iterations: int = 1, seed: int | None = None, base: str | None = None,
              progress: Progress | None = None) -> ScriptRender:
    """Edit the current take (or ``base``) of segment ``index``; the edit becomes current (a branch when
    ``base`` already has children)."""
    line = _check_index(render, index)
    parent = line.take(base or line.current)
    d = Directive(catalog.check_edit_type(edit_type), catalog.check_edit(edit_type, option), int(iterations))
    seed = resolve_seed(seed)
    result = _edit(engine, parent.samples, parent.text, d, seed, progress or (lambda f, desc: None))
    take = LineTake(id=f"L{index + 1}.T{len(line.takes) + 1}", parent=parent.id, op=d.edit_type, option=d.option,
                    iterations=d.iterations, seed=seed, text=result.text or parent.text,
                    samples=_to_output_rate(result.audio))
    return _with_line(render, replace(line, takes=line.takes + (take,), current=take.id))


def select_take(render: ScriptRender, index: int, take_id: str) -> ScriptRender:
    """Make an existing take of segment ``index`` the one the master uses."""
    line = _check_index(render, index)
    return _with_line(render, replace(line, current=line.take(take_id).id))
