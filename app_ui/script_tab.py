"""④ Script: long-form, multi-speaker audio from a script and the voice library, plus the ``script`` and
``voices`` API endpoints and the clone tab's saved-voice picker.

The work is :mod:`stepedit_core.script` (grammar, per-line take trees, master, subtitles, recipe); this module
only holds widgets, the session's current render (``gr.State``) and files. The voice library lives in the
user's data directory locally (``STEPEDIT_DATA_DIR`` overrides) and in the session's folder on a Space (gone
with the session unless exported).
"""
from __future__ import annotations

import inspect
import os
import shutil
import uuid
from pathlib import Path

import gradio as gr

from stepedit_core import catalog
from stepedit_core.errors import StepEditError
from stepedit_core.interface import MAX_ITERATIONS, AudioClip
from stepedit_core.script import (LineRender, ScriptRender, edit_line, export_files, iter_render_script,
                                  parse_script, render_script, replay_recipe, reroll_line, select_take)
from stepedit_core.voices import MAX_VOICE_SECONDS, VoiceLibrary

from .example_voices import WithExamples, example_library
from .i18n import STRINGS, TABLE_HEADER_KEYS, both, t
from .runner import GPU, EngineError, error_message
from .studio import Studio

LINE_TYPES = (catalog.EMOTION, catalog.STYLE, catalog.SPEED, catalog.DENOISE, catalog.VAD)
TABLE_HEADERS = [STRINGS[key][0] for key in TABLE_HEADER_KEYS]   # English; i18n.LANG_CSS draws the Chinese
PENDING = "…"                 # take column of a line not rendered yet (the table fills in line by line)
EXAMPLE_SCRIPT = t("script_sample")    # speaks with the example voices Ethan and Mei (example_voices.py)
_PRIVATE = {"api_visibility": "private"}
_SESSION = {"api_visibility": "undocumented"}


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


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
        if os.environ.get("SPACE_ID"):
            return VoiceLibrary(self.studio.session_dir(session) / "voices")
        return VoiceLibrary()

    def script_voices(self, session: str | None) -> WithExamples:
        """The voices a script may name: the library, then the example voices (the sample script uses them)."""
        return WithExamples(self.library(session), example_library(self.studio.root / "example-voices"))

    def store_for(self, clip: AudioClip, session: str | None):
        """The token store of the saved voice whose prompt is exactly ``clip`` (the clone tab's prompt when it
        was loaded from the library), else None; ``Studio.prompt_store``."""
        voice = self.library(session).find_by_audio(clip)
        return None if voice is None else self.library(session).token_store(voice.name)

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


def _guard(fn):
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
    wrapped.__name__, wrapped.__doc__ = fn.__name__, fn.__doc__
    return wrapped


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


def _option_choices(edit_type: str) -> list[tuple]:
    return [(t(f"opt.{o}"), o) for o in catalog.OPTIONS.get(edit_type, ())]


def _line(render: ScriptRender | None, number) -> int:
    if render is None:
        raise gr.Error("Render a script first.")
    if number is None or not float(number).is_integer() or not 1 <= int(number) <= len(render.lines):
        raise gr.Error(f"Pick a line between 1 and {len(render.lines)} (got {number!r}).")
    return int(number) - 1


def build(studio: Studio, prompt_audio: gr.Audio, prompt_text: gr.Textbox, voice_pick: gr.Dropdown):
    """The Script tab (call inside ``gr.Tabs``) and its events; ``voice_pick`` is the clone tab's picker.
    Returns the voice-list refresh (fn, outputs) for ``demo.load``."""
    svc = ScriptService(studio)
    studio.prompt_store = svc.store_for          # clones from a saved voice's prompt use its cached tokens
    with gr.Tab(t("tab_script"), id="tab-script"):
        state = gr.State(None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                script_text = gr.Textbox(label=t("script"), lines=12, value=EXAMPLE_SCRIPT, elem_id="script-text")
                with gr.Row():
                    default_voice = gr.Dropdown([], label=t("script_default_voice"), value=None,
                                                allow_custom_value=True, elem_id="script-default-voice")
                    script_seed = gr.Number(label=t("seed"), value=-1, precision=0, elem_id="script-seed")
                render_btn = gr.Button(t("script_render"), variant="primary", elem_id="script-render")
                master = gr.Audio(label=t("script_master"), type="filepath", interactive=False, buttons=["download"],
                                  elem_id="script-master")
                files = gr.File(label=t("script_files"), file_count="multiple", interactive=False,
                                elem_id="script-files")
                lines = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, label=t("script_lines"),
                                     elem_id="script-lines")
                with gr.Row():
                    line_no = gr.Number(label=t("script_line_no"), value=1, precision=0, minimum=1,
                                        elem_id="script-line")
                    reroll_btn = gr.Button(t("script_reroll"), size="sm", elem_id="script-reroll")
                    take_pick = gr.Textbox(label=t("script_take_id"), elem_id="script-take")
                    use_btn = gr.Button(t("script_use_take"), size="sm", elem_id="script-use-take")
                with gr.Row():
                    line_type = gr.Dropdown([(t(f"type.{e}"), e) for e in LINE_TYPES], value=catalog.EMOTION,
                                            label=t("edit_type"), scale=1, elem_id="script-edit-type")
                    line_option = gr.Dropdown(_option_choices(catalog.EMOTION), value="happy", label=t("edit_info"),
                                              allow_custom_value=True, scale=1, elem_id="script-edit-option")
                    line_iter = gr.Slider(1, MAX_ITERATIONS, value=1, step=1, label=t("script_rounds"), scale=1)
                    line_edit_btn = gr.Button(t("script_edit"), size="sm", scale=1, elem_id="script-edit")
                with gr.Accordion(t("script_replay_title"), open=False):
                    recipe_in = gr.File(label=t("script_recipe"), file_types=[".json"], type="filepath")
                    replay_btn = gr.Button(t("script_replay"), size="sm", elem_id="script-replay")
                report = gr.Markdown(elem_id="script-report")
            with gr.Column(scale=2):
                gr.Markdown(t("voice_help"))
                voice_list = gr.Markdown(elem_id="voice-list")
                voice_sel = gr.Dropdown([], label=t("voice_sel"), allow_custom_value=True, elem_id="voice-sel")
                voice_name = gr.Textbox(label=t("voice_name"), elem_id="voice-name")
                with gr.Row():
                    save_btn = gr.Button(t("voice_save"), size="sm", elem_id="voice-save")
                    rename_btn = gr.Button(t("voice_rename"), size="sm", elem_id="voice-rename")
                    delete_btn = gr.Button(t("voice_delete"), size="sm", variant="stop", elem_id="voice-delete")
                export_btn = gr.Button(t("voice_export"), size="sm", elem_id="voice-export")
                export_out = gr.File(label=t("voice_zip"), interactive=False, elem_id="voice-zip")
                import_in = gr.File(label=t("voice_import"), file_types=[".zip"], type="filepath",
                                    elem_id="voice-import")

        # hidden components of the API endpoints
        with gr.Column(visible=False):
            api_script_text = gr.Textbox(label="script")
            api_seed = gr.Number(value=-1, precision=0, label="seed")
            api_default = gr.Textbox(label="default_voice")
            api_zip = gr.File(label="voices_zip", type="filepath")
            api_master = gr.Audio(type="filepath", label="master")
            api_srt = gr.File(label="srt")
            api_vtt = gr.File(label="vtt")
            api_recipe = gr.File(label="recipe")
            api_voices = gr.JSON(label="voices")
            api_script_btn, api_voices_btn = gr.Button(), gr.Button()

    render_outs = [state, master, files, lines, report]

    @_guard
    def script_render(text: str, default: str | None, seed: float, request: gr.Request = None,
                      progress=gr.Progress()):
        yield from svc.render(text, default, seed, _session(request), progress)

    @_guard
    def script_reroll(render: ScriptRender | None, number: float, request: gr.Request = None,
                      progress=gr.Progress()):
        return svc.reroll(render, number, _session(request), progress)

    @_guard
    def script_edit(render: ScriptRender | None, number: float, edit_type: str, option: str | None,
                    rounds: float, request: gr.Request = None, progress=gr.Progress()):
        return svc.edit(render, number, edit_type, option, rounds, _session(request), progress)

    @_guard
    def script_use_take(render: ScriptRender | None, number: float, take_id: str, request: gr.Request = None):
        return svc.use_take(render, number, take_id, _session(request))

    @_guard
    def script_replay(recipe_path: str | None, request: gr.Request = None, progress=gr.Progress()):
        return svc.replay(recipe_path, _session(request), progress)

    def on_type(edit_type: str):
        options = catalog.OPTIONS.get(edit_type, ())
        return gr.update(choices=_option_choices(edit_type), value=options[0] if options else None,
                         visible=bool(options))

    def voice_view(request: gr.Request = None):
        return svc.voice_view(_session(request))

    @_guard
    def voice_save(name: str, audio: str | None, text: str, request: gr.Request = None):
        svc.voice_save(name, audio, text, _session(request))

    @_guard
    def voice_rename(old: str | None, new: str, request: gr.Request = None):
        svc.voice_rename(old, new, _session(request))

    @_guard
    def voice_delete(name: str | None, request: gr.Request = None):
        svc.voice_delete(name, _session(request))

    @_guard
    def voice_export(request: gr.Request = None):
        return svc.voice_export(_session(request))

    @_guard
    def voice_import(path: str | None, request: gr.Request = None):
        svc.voice_import(path, _session(request))

    def pick_row(table, evt: gr.SelectData):
        """A click on a table row chooses that line (and its current take) for re-roll, edit and use-take."""
        i = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        rows = table.values.tolist() if hasattr(table, "values") else list(table or [])
        if not isinstance(i, int) or not 0 <= i < len(rows) or rows[i][0] in (None, ""):
            return gr.skip(), gr.skip()
        take = rows[i][4]
        return int(rows[i][0]), take if take != PENDING else gr.skip()

    @_guard
    def voice_use(name: str | None, request: gr.Request = None):
        return svc.voice_use(name, _session(request))

    @_guard
    def script(script: str, seed: int = -1, default_voice: str = "", voices_zip: str | None = None,
               request: gr.Request = None, progress=gr.Progress()):
        """Render a multi-speaker script into one master track with subtitles.

        Lines look like `Alice: {happy} Hello! [Laughter] [pause 0.8s] How are you?`: a saved voice name, then
        the text with paralinguistic / dialect [tags], {emotion|style|speed} directives (`{faster x2}`) and
        [pause 0.8s]. Lines without a name continue the previous speaker (or default_voice).

        Args:
            script: the script text (no overall length limit; long lines are split into sentences).
            seed: base seed (line i uses a seed derived from it); -1 picks a random one.
            default_voice: voice for lines before the first `Name:` (an audiobook chapter); may be empty.
            voices_zip: optional voice-library zip (as exported by the app); when given, only its voices are used.

        Returns:
            The master WAV, SRT subtitles, WebVTT subtitles and the recipe JSON that reproduces the render.
        """
        return svc.script(script, seed, default_voice, voices_zip, _session(request), progress)

    def voices(request: gr.Request = None) -> list[dict]:
        """List the saved voices usable in scripts.

        Returns:
            One entry per voice: name, transcript of its prompt and duration in seconds.
        """
        return svc.voices(_session(request))

    # ---------------------------------------------------------------- wiring
    gpu = {"concurrency_id": GPU}
    render_btn.click(script_render, [script_text, default_voice, script_seed], render_outs,
                     api_name="session_script", **_SESSION, **gpu)
    reroll_btn.click(script_reroll, [state, line_no], render_outs, **_PRIVATE, **gpu)
    line_edit_btn.click(script_edit, [state, line_no, line_type, line_option, line_iter], render_outs,
                        **_PRIVATE, **gpu)
    use_btn.click(script_use_take, [state, line_no, take_pick], render_outs, **_PRIVATE)
    replay_btn.click(script_replay, [recipe_in], render_outs, **_PRIVATE, **gpu)
    line_type.change(on_type, [line_type], [line_option], **_PRIVATE)
    lines.select(pick_row, [lines], [line_no, take_pick], **_PRIVATE)
    view_outs = [voice_list, voice_sel, default_voice, voice_pick]
    save_btn.click(voice_save, [voice_name, prompt_audio, prompt_text], None, **_PRIVATE).then(
        voice_view, None, view_outs, **_PRIVATE)
    rename_btn.click(voice_rename, [voice_sel, voice_name], None, **_PRIVATE).then(
        voice_view, None, view_outs, **_PRIVATE)
    delete_btn.click(voice_delete, [voice_sel], None, **_PRIVATE).then(voice_view, None, view_outs, **_PRIVATE)
    export_btn.click(voice_export, None, [export_out], **_PRIVATE)
    import_in.upload(voice_import, [import_in], None, **_PRIVATE).then(voice_view, None, view_outs, **_PRIVATE)
    voice_pick.change(voice_use, [voice_pick], [prompt_audio, prompt_text], **_PRIVATE)
    voice_pick.focus(voice_view, None, view_outs, **_PRIVATE)
    api_script_btn.click(script, [api_script_text, api_seed, api_default, api_zip],
                         [api_master, api_srt, api_vtt, api_recipe], api_name="script", **gpu)
    api_voices_btn.click(voices, None, [api_voices], api_name="voices", queue=False)
    return voice_view, view_outs
