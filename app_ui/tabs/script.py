"""④ Script: long-form, multi-speaker audio from a script and the voice library; the widgets and events of the
tab, the ``script`` and ``voices`` API endpoints, and the clone tab's saved-voice picker. The handlers are
:class:`~app_ui.script_tab.ScriptService` (the tests call it directly)."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from stepedit_core import catalog
from stepedit_core.interface import MAX_ITERATIONS
from stepedit_core.script import ScriptRender

from ..i18n import t
from ..runner import GPU
from ..script_tab import EXAMPLE_SCRIPT, LINE_TYPES, PENDING, TABLE_HEADERS, ScriptService, guard
from .edit import option_choices
from .timeline import PRIVATE, SESSION, session_hash


@dataclass(frozen=True)
class ScriptTab:
    state: gr.State                 # the session's current render (ScriptRender or None)
    script_text: gr.Textbox
    default_voice: gr.Dropdown
    seed: gr.Number
    render_btn: gr.Button
    master: gr.Audio
    files: gr.File
    lines: gr.Dataframe             # one row per line: TABLE_HEADERS
    line_no: gr.Number
    reroll_btn: gr.Button
    take_pick: gr.Textbox
    use_btn: gr.Button
    line_type: gr.Dropdown
    line_option: gr.Dropdown
    line_iter: gr.Slider
    line_edit_btn: gr.Button
    recipe_in: gr.File
    replay_btn: gr.Button
    report: gr.Markdown
    voice_list: gr.Markdown
    voice_sel: gr.Dropdown
    voice_name: gr.Textbox
    save_btn: gr.Button
    rename_btn: gr.Button
    delete_btn: gr.Button
    export_btn: gr.Button
    export_out: gr.File
    import_in: gr.File


@dataclass(frozen=True)
class ScriptApi:
    """The hidden components of the ``script`` and ``voices`` endpoints (their labels are the API's names)."""
    script_text: gr.Textbox
    seed: gr.Number
    default_voice: gr.Textbox
    voices_zip: gr.File
    master: gr.Audio
    srt: gr.File
    vtt: gr.File
    recipe: gr.File
    voices: gr.JSON
    script_btn: gr.Button
    voices_btn: gr.Button


def build() -> tuple[ScriptTab, ScriptApi]:
    """The Script tab (call inside ``gr.Tabs``): the script and its render on the left, the voices right."""
    with gr.Tab(t("tab_script"), id="tab-script"):
        state = gr.State(None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                script_text = gr.Textbox(label=t("script"), lines=12, value=EXAMPLE_SCRIPT, elem_id="script-text")
                with gr.Row():
                    default_voice = gr.Dropdown([], label=t("script_default_voice"), value=None,
                                                allow_custom_value=True, elem_id="script-default-voice")
                    seed = gr.Number(label=t("seed"), value=-1, precision=0, elem_id="script-seed")
                render_btn = gr.Button(t("script_render"), variant="primary", elem_id="script-render")
                master = gr.Audio(label=t("script_master"), type="filepath", interactive=False, buttons=["download"],
                                  elem_id="script-master")
                files = gr.File(label=t("script_files"), file_count="multiple", interactive=False,
                                elem_id="script-files")
                lines = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, label=t("script_lines"),
                                     elem_id="script-lines")
                line_widgets = _line_tools()
                report = gr.Markdown(elem_id="script-report")
            with gr.Column(scale=2):
                voice_widgets = _voice_column()
        api = _api_components()
    tab = ScriptTab(state, script_text, default_voice, seed, render_btn, master, files, lines, *line_widgets,
                    report, *voice_widgets)
    return tab, api


def _line_tools() -> tuple:
    """Re-roll, pick a take, edit one line; replay a script recipe."""
    with gr.Row():
        line_no = gr.Number(label=t("script_line_no"), value=1, precision=0, minimum=1, elem_id="script-line")
        reroll_btn = gr.Button(t("script_reroll"), size="sm", elem_id="script-reroll")
        take_pick = gr.Textbox(label=t("script_take_id"), elem_id="script-take")
        use_btn = gr.Button(t("script_use_take"), size="sm", elem_id="script-use-take")
    with gr.Row():
        line_type = gr.Dropdown([(t(f"type.{e}"), e) for e in LINE_TYPES], value=catalog.EMOTION,
                                label=t("edit_type"), scale=1, elem_id="script-edit-type")
        line_option = gr.Dropdown(option_choices(catalog.EMOTION), value="happy", label=t("edit_info"),
                                  allow_custom_value=True, scale=1, elem_id="script-edit-option")
        line_iter = gr.Slider(1, MAX_ITERATIONS, value=1, step=1, label=t("script_rounds"), scale=1)
        line_edit_btn = gr.Button(t("script_edit"), size="sm", scale=1, elem_id="script-edit")
    with gr.Accordion(t("script_replay_title"), open=False):
        recipe_in = gr.File(label=t("script_recipe"), file_types=[".json"], type="filepath")
        replay_btn = gr.Button(t("script_replay"), size="sm", elem_id="script-replay")
    return (line_no, reroll_btn, take_pick, use_btn, line_type, line_option, line_iter, line_edit_btn, recipe_in,
            replay_btn)


def _voice_column() -> tuple:
    """The voice library: list, pick, name, save / rename / delete, export and import."""
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
    import_in = gr.File(label=t("voice_import"), file_types=[".zip"], type="filepath", elem_id="voice-import")
    return voice_list, voice_sel, voice_name, save_btn, rename_btn, delete_btn, export_btn, export_out, import_in


def _api_components() -> ScriptApi:
    with gr.Column(visible=False):
        return ScriptApi(gr.Textbox(label="script"), gr.Number(value=-1, precision=0, label="seed"),
                         gr.Textbox(label="default_voice"), gr.File(label="voices_zip", type="filepath"),
                         gr.Audio(type="filepath", label="master"), gr.File(label="srt"), gr.File(label="vtt"),
                         gr.File(label="recipe"), gr.JSON(label="voices"), gr.Button(), gr.Button())


# ---------------------------------------------------------------------- handlers
def _render_handlers(svc: ScriptService) -> tuple:
    """Render the script, then re-roll / edit / re-take one line, or replay a script recipe."""
    @guard
    def script_render(text: str, default: str | None, seed: float, request: gr.Request = None,
                      progress=gr.Progress()):
        yield from svc.render(text, default, seed, session_hash(request), progress)

    @guard
    def script_reroll(render: ScriptRender | None, number: float, request: gr.Request = None,
                      progress=gr.Progress()):
        return svc.reroll(render, number, session_hash(request), progress)

    @guard
    def script_edit(render: ScriptRender | None, number: float, edit_type: str, option: str | None,
                    rounds: float, request: gr.Request = None, progress=gr.Progress()):
        return svc.edit(render, number, edit_type, option, rounds, session_hash(request), progress)

    @guard
    def script_use_take(render: ScriptRender | None, number: float, take_id: str, request: gr.Request = None):
        return svc.use_take(render, number, take_id, session_hash(request))

    @guard
    def script_replay(recipe_path: str | None, request: gr.Request = None, progress=gr.Progress()):
        return svc.replay(recipe_path, session_hash(request), progress)

    return script_render, script_reroll, script_edit, script_use_take, script_replay


def _voice_handlers(svc: ScriptService) -> tuple:
    """The voice library's list, save, rename, delete, export, import and use (in the clone tab)."""
    def voice_view(request: gr.Request = None):
        return svc.voice_view(session_hash(request))

    @guard
    def voice_save(name: str, audio: str | None, text: str, request: gr.Request = None):
        svc.voice_save(name, audio, text, session_hash(request))

    @guard
    def voice_rename(old: str | None, new: str, request: gr.Request = None):
        svc.voice_rename(old, new, session_hash(request))

    @guard
    def voice_delete(name: str | None, request: gr.Request = None):
        svc.voice_delete(name, session_hash(request))

    @guard
    def voice_export(request: gr.Request = None):
        return svc.voice_export(session_hash(request))

    @guard
    def voice_import(path: str | None, request: gr.Request = None):
        svc.voice_import(path, session_hash(request))

    @guard
    def voice_use(name: str | None, request: gr.Request = None):
        return svc.voice_use(name, session_hash(request))

    return voice_view, voice_save, voice_rename, voice_delete, voice_export, voice_import, voice_use


def _api_handlers(svc: ScriptService) -> tuple:
    """The public ``script`` and ``voices`` endpoints."""
    @guard
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
        return svc.script(script, seed, default_voice, voices_zip, session_hash(request), progress)

    def voices(request: gr.Request = None) -> list[dict]:
        """List the saved voices usable in scripts.

        Returns:
            One entry per voice: name, transcript of its prompt and duration in seconds.
        """
        return svc.voices(session_hash(request))

    return script, voices


def on_type(edit_type: str):
    options = catalog.OPTIONS.get(edit_type, ())
    return gr.update(choices=option_choices(edit_type), value=options[0] if options else None,
                     visible=bool(options))


def pick_row(table, evt: gr.SelectData):
    """A click on a table row chooses that line (and its current take) for re-roll, edit and use-take."""
    i = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    rows = table.values.tolist() if hasattr(table, "values") else list(table or [])
    if not isinstance(i, int) or not 0 <= i < len(rows) or rows[i][0] in (None, ""):
        return gr.skip(), gr.skip()
    take = rows[i][4]
    return int(rows[i][0]), take if take != PENDING else gr.skip()


# ---------------------------------------------------------------------- wiring
def wire(svc: ScriptService, tab: ScriptTab, api: ScriptApi, *, demo: gr.Blocks, prompt_audio: gr.Audio,
         prompt_text: gr.Textbox, voice_pick: gr.Dropdown) -> None:
    """The tab's events and endpoints; a saved voice is saved from, and picked into, the clone tab's prompt
    (``prompt_audio``, ``prompt_text``, its picker ``voice_pick``); the voice lists fill on page load."""
    script_render, script_reroll, script_edit, script_use_take, script_replay = _render_handlers(svc)
    voice_view, voice_save, voice_rename, voice_delete, voice_export, voice_import, voice_use = _voice_handlers(svc)
    gpu = {"concurrency_id": GPU}
    render_outs = [tab.state, tab.master, tab.files, tab.lines, tab.report]
    tab.render_btn.click(script_render, [tab.script_text, tab.default_voice, tab.seed], render_outs,
                         api_name="session_script", **SESSION, **gpu)
    tab.reroll_btn.click(script_reroll, [tab.state, tab.line_no], render_outs, **PRIVATE, **gpu)
    tab.line_edit_btn.click(script_edit, [tab.state, tab.line_no, tab.line_type, tab.line_option, tab.line_iter],
                            render_outs, **PRIVATE, **gpu)
    tab.use_btn.click(script_use_take, [tab.state, tab.line_no, tab.take_pick], render_outs, **PRIVATE)
    tab.replay_btn.click(script_replay, [tab.recipe_in], render_outs, **PRIVATE, **gpu)
    tab.line_type.change(on_type, [tab.line_type], [tab.line_option], **PRIVATE)
    tab.lines.select(pick_row, [tab.lines], [tab.line_no, tab.take_pick], **PRIVATE)
    view_outs = [tab.voice_list, tab.voice_sel, tab.default_voice, voice_pick]
    tab.save_btn.click(voice_save, [tab.voice_name, prompt_audio, prompt_text], None, **PRIVATE).then(
        voice_view, None, view_outs, **PRIVATE)
    tab.rename_btn.click(voice_rename, [tab.voice_sel, tab.voice_name], None, **PRIVATE).then(
        voice_view, None, view_outs, **PRIVATE)
    tab.delete_btn.click(voice_delete, [tab.voice_sel], None, **PRIVATE).then(voice_view, None, view_outs, **PRIVATE)
    tab.export_btn.click(voice_export, None, [tab.export_out], **PRIVATE)
    tab.import_in.upload(voice_import, [tab.import_in], None, **PRIVATE).then(voice_view, None, view_outs,
                                                                            **PRIVATE)
    voice_pick.change(voice_use, [voice_pick], [prompt_audio, prompt_text], **PRIVATE)
    voice_pick.focus(voice_view, None, view_outs, **PRIVATE)
    script, voices = _api_handlers(svc)
    api.script_btn.click(script, [api.script_text, api.seed, api.default_voice, api.voices_zip],
                         [api.master, api.srt, api.vtt, api.recipe], api_name="script", **gpu)
    api.voices_btn.click(voices, None, [api.voices], api_name="voices", queue=False)
    demo.load(voice_view, None, view_outs, api_visibility="private")
