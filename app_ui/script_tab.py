"""④ Script: the tab's handlers as plain methods (:class:`ScriptService`); its widgets and events, the ``script``
and ``voices`` API endpoints and the clone tab's saved-voice picker are app_ui/tabs/script.py.

The work is :mod:`stepedit_core.script` (grammar, per-line take trees, master, subtitles, recipe); this module
only turns the session's current render (``gr.State``) into files and table rows. The voice library lives in the
user's data directory locally (``STEPEDIT_DATA_DIR`` overrides) and in the session's folder on a Space (gone
with the session unless exported).
"""
from __future__ import annotations

import functools
import inspect
import shutil
import uuid
from pathlib import Path

import gradio as gr

from stepedit_core import catalog
from stepedit_core.errors import StepEditError
from stepedit_core.interface import AudioClip
from stepedit_core.script import (LineRender, ScriptRender, edit_line, export_files, iter_render_script,
                                  parse_script, render_script, replay_recipe, reroll_line, select_take)
from stepedit_core.voices import MAX_VOICE_SECONDS, VoiceLibrary

from .example_voices import WithExamples, example_library
from .i18n import STRINGS, TABLE_HEADER_KEYS, both, t
from .runner import EngineError, error_message
from .studio import Studio

LINE_TYPES = (catalog.EMOTION, catalog.STYLE, catalog.SPEED, catalog.DENOISE, catalog.VAD)
TABLE_HEADERS = [STRINGS[key][0] for key in TABLE_HEADER_KEYS]   # English; i18n.LANG_CSS draws the Chinese
PENDING = "…"                 # take column of a line not rendered yet (the table fills in line by line)
EXAMPLE_SCRIPT = t("script_sample")    # speaks with the example voices Ethan and Mei (example_voices.py)


class _RunnerEngine:
    """The engine as render_script sees it: on ZeroGPU every clone / edit is one GPU call of the runner;
    elsewhere the service is called directly (under its gate) so the per-line progress is not overwritten."""

    def __init__(self, studio: Studio):
        self.runner = studio.runner

    def capabilities(self):
        return self.runner.engine.capabilities()

    def clone(self, request, progress=None):
        if self.runner.zero_gpu:
            return self.runner.clone([request])[0]
        return self.runner.service.gate.run(self.runner.service.clone, request, progress)

    def edit(self, request, progress=None):
        if self.runner.zero_gpu:
            return self.runner.edit(request)
        return self.runner.service.gate.run(self.runner.service.edit, request, progress)


def _no_progress(fraction, desc=None):
    return None


class ScriptService:
    """The Script tab's handlers as plain methods (the tests call them directly); ``session`` is Gradio's
    session hash. Render handlers return ``(render, master wav, [wav, srt, vtt, recipe], table, report)``."""

    def __init__(self, studio: Studio):
        self.studio = studio
        self.engine = _RunnerEngine(studio)

    def library(self, session: str | None) -> VoiceLibrary:
        """Per session on a Space (gone with the session unless exported); the user's data dir otherwise."""
        return self.studio.library(session)

    def script_voices(self, session: str | None) -> WithExamples:
        """The voices a script may name: the library, then the example voices (the sample script uses them)."""
        return WithExamples(self.library(session), example_library(self.studio.root / "example-voices"))

    def folder(self, session: str | None) -> Path:
        path = self.studio.session_dir(session) / f"script-{uuid.uuid4().hex[:10]}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def show(self, render: ScriptRender, voices, session: str | None, note: str = "") -> tuple:
        paths = export_files(render, voices, self.folder(session))
        summary = (f"{len(render.lines)} lines, {render.duration:.1f} s, seed {render.seed}, "
                   f"engine {render.engine}. {note}")
        return render, paths["wav"], [paths[k] for k in ("wav", "srt", "vtt", "recipe")], _table(render), summary

    # ---- the render and its lines ----------------------------------------------------------------------
    def render(self, text: str, default: str | None, seed, session: str | None, progress=_no_progress):
        """A generator: one table update as each line finishes (the master, files and state unchanged until
        the last update), then the full result."""
        lib = self.script_voices(session)
        script = parse_script(text, voices=lib.names(), default_voice=default or None)
        n = len(script.segments)
        rows = [_pending_row(i, seg) for i, seg in enumerate(script.segments)]
        keep = gr.update()
        yield keep, keep, keep, [list(r) for r in rows], f"Rendering {n} lines…"
        for item in iter_render_script(self.engine, script, lib, seed=_seed(seed),
                                       progress=lambda f, d: progress(f, desc=d)):
            if isinstance(item, ScriptRender):
                yield self.show(item, lib, session)
                return
            rows[item.index] = _done_row(item)
            yield keep, keep, keep, [list(r) for r in rows], f"Rendered line {item.index + 1} of {n}."

    def reroll(self, render: ScriptRender | None, number, session: str | None, progress=_no_progress):
        i, lib = _line(render, number), self.script_voices(session)
        render = reroll_line(self.engine, render, i, lib,          # a fresh random seed; the recipe records it
                             progress=lambda f, d: progress(f, desc=f"line {i + 1}: {d}"))
        return self.show(render, lib, session, f"Line {i + 1} re-rolled; the other lines are unchanged.")

    def edit(self, render: ScriptRender | None, number, edit_type: str, option: str | None, rounds,
             session: str | None, progress=_no_progress):
        i, lib = _line(render, number), self.script_voices(session)
        render = edit_line(self.engine, render, i, edit_type, option or None, iterations=int(rounds or 1),
                           progress=lambda f, d: progress(f, desc=f"line {i + 1}: {d}"))
        return self.show(render, lib, session, f"Line {i + 1} edited ({edit_type} {option or ''}).")

    def use_take(self, render: ScriptRender | None, number, take_id: str, session: str | None):
        i = _line(render, number)
        render = select_take(render, i, (take_id or "").strip())
        return self.show(render, self.script_voices(session), session, f"Line {i + 1} uses {take_id}.")

    def replay(self, recipe_path: str | None, session: str | None, progress=_no_progress):
        if not recipe_path:
            raise gr.Error("Please provide a script recipe (.json).")
        data = Path(recipe_path).read_bytes()
        render, rep = replay_recipe(self.engine, data, progress=lambda f, d: progress(f, desc=d))
        from stepedit_core.script.recipe import EmbeddedVoices, load_recipe  # noqa: PLC0415
        return self.show(render, EmbeddedVoices(load_recipe(data)), session, rep.summary())

    # ---- the voice library ------------------------------------------------------------------------------
    def voice_view(self, session: str | None) -> tuple:
        voices = self.library(session).list()
        md = "\n".join(f"- **{v.name}** ({v.seconds:.1f} s): {v.text[:80]}" for v in voices) or both("no_voices")
        pick = gr.update(choices=[v.name for v in voices])
        return md, pick, pick, pick

    def voice_save(self, name: str, audio: str | None, text: str, session: str | None) -> None:
        if not audio:
            raise gr.Error("Load a prompt recording in the clone tab first.")
        self.library(session).save(name, AudioClip.from_file(audio, None, MAX_VOICE_SECONDS), text)
        gr.Info(f"Saved voice {name.strip()!r}.")

    def voice_rename(self, old: str | None, new: str, session: str | None) -> None:
        self.library(session).rename(old or "", new)

    def voice_delete(self, name: str | None, session: str | None) -> None:
        self.library(session).delete(name or "")

    def voice_export(self, session: str | None) -> str:
        path = self.folder(session) / "voices.zip"
        path.write_bytes(self.library(session).export_zip())
        return str(path)

    def voice_import(self, path: str | None, session: str | None) -> None:
        if path:
            added = self.library(session).import_zip(path, label=Path(path).name)
            gr.Info(f"Imported {len(added)} voices.")

    def voice_use(self, name: str | None, session: str | None):
        """The saved voice's prompt and transcript for the clone tab. The prompt is served as a copy in the
        session folder: the library lives outside Gradio's allowed paths on a local install."""
        if not name:
            return gr.update(), gr.update()
        voice = self.library(session).get(name)
        folder = self.studio.session_dir(session) / "voices-used"
        folder.mkdir(exist_ok=True)
        copy = folder / f"{uuid.uuid4().hex[:8]}-{Path(voice.audio_path).name}"
        shutil.copyfile(voice.audio_path, copy)
        return str(copy), voice.text

    # ---- the API ------------------------------------------------------------------------------------------
    def script(self, text: str, seed, default_voice: str, voices_zip: str | None, session: str | None,
               progress=_no_progress) -> tuple[str, str, str, str]:
        lib = self.script_voices(session)
        if voices_zip:
            lib = VoiceLibrary(self.folder(session) / "voices")
            lib.import_zip(voices_zip, label=Path(voices_zip).name)
        parsed = parse_script(text, voices=lib.names(), default_voice=(default_voice or "").strip() or None)
        render = render_script(self.engine, parsed, lib, seed=_seed(seed), progress=lambda f, d: progress(f, desc=d))
        paths = export_files(render, lib, self.folder(session))
        return paths["wav"], paths["srt"], paths["vtt"], paths["recipe"]

    def voices(self, session: str | None) -> list[dict]:
        return [{"name": v.name, "text": v.text, "seconds": round(v.seconds, 2)}
                for v in self.library(session).list()]


def guard(fn):
    """StepEditError (bad script, unknown voice, ...) -> a toast naming the problem (generators too)."""
    if inspect.isgeneratorfunction(fn):
        def wrapped(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except StepEditError as exc:
                raise EngineError(error_message(exc)) from exc
    else:
        def wrapped(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except StepEditError as exc:
                raise EngineError(error_message(exc)) from exc
    # the wrapped function's signature (functools.wraps): Gradio passes gr.Request and gr.Progress by it, so the
    # handlers see their session (the voice library of this session on a Space) and report progress
    return functools.wraps(fn)(wrapped)


def _seed(seed) -> int | None:
    return None if seed is None or float(seed) < 0 else int(seed)


def _table(render: ScriptRender) -> list[list]:
    return [[ln.index + 1, ln.segment.line, ln.segment.speaker, ln.text, ln.current, len(ln.takes),
             round(c.start, 3), round(c.end, 3)] for ln, c in zip(render.lines, render.cues)]


def _pending_row(i: int, segment) -> list:
    return [i + 1, segment.line, segment.speaker, segment.text, PENDING, 0, None, None]


def _done_row(line: LineRender) -> list:
    """A finished line before the master exists: its take and length, no master times yet."""
    return [line.index + 1, line.segment.line, line.segment.speaker, line.text, line.current, len(line.takes),
            None, None]


def _line(render: ScriptRender | None, number) -> int:
    if render is None:
        raise gr.Error("Render a script first.")
    if number is None or not float(number).is_integer() or not 1 <= int(number) <= len(render.lines):
        raise gr.Error(f"Pick a line between 1 and {len(render.lines)} (got {number!r}).")
    return int(number) - 1
