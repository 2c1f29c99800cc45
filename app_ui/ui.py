"""The Blocks app: four tabs (three over one take tree per session, ④ script), plus the public API endpoints.

Layout: a header with the engine note; tabs ① voice clone, ② iterative edit, ③ paralinguistic, ④ script (one
module each in app_ui/tabs/, each building and wiring its own widgets); below them the session's takes
(tabs/timeline.py: a timeline in which any take can be the base of the next edit, undo, recipe export/replay)
and a side-by-side comparison of any two takes (players, waveform and spectrogram on one time scale).

Event visibility: the stateless API (``api.py``, wired here on hidden components and the clone tab's fields) is
public and serves MCP; the session actions (``session_clone``, ``session_edit``, ``undo``, ``compare``,
``replay_recipe``, ...) are "undocumented" — callable by gradio clients, each client in its own session, but not
advertised; pure view refreshes are private.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from stepedit_core import catalog, checks

from . import api as api_mod
from . import first_screen, views
from .guard import GuardedBlocks
from .runner import GPU
from .script_tab import ScriptService
from .studio import Studio
from .tabs import clone, edit, para, script, timeline


@dataclass(frozen=True)
class ApiComponents:
    """Hidden components of the public endpoints; their labels are the endpoints' parameter names."""
    audio: gr.Audio
    audio_text: gr.Textbox
    new_text: gr.Textbox
    edit_type: gr.Textbox           # plain text, checked by stepedit_core.validation (a Dropdown would answer
    edit_info: gr.Textbox           # unknown values with a bare 400)
    n_iterations: gr.Number         # no precision: NaN, inf and fractions reach stepedit_core.validation
    seed: gr.Number
    first_word: gr.Number
    last_word: gr.Number
    region_start: gr.Number
    region_end: gr.Number
    max_tries: gr.Number
    threshold: gr.Number
    source_audio: gr.Audio
    expected_seconds: gr.Number
    check_out: gr.JSON
    out_audio: gr.Audio
    out_text: gr.Textbox
    out_seed: gr.Number
    engine: gr.JSON
    live: gr.Audio
    instructions: gr.Textbox        # plans.py (issue 29)


def _api_components() -> ApiComponents:
    with gr.Column(visible=False):
        return ApiComponents(
            gr.Audio(type="filepath", label="audio"), gr.Textbox(label="audio_text"), gr.Textbox(label="new_text"),
            gr.Textbox(value=catalog.EMOTION, label="edit_type"), gr.Textbox(label="edit_info"),
            gr.Number(value=1, label="n_iterations"), gr.Number(value=-1, label="seed"),
            gr.Number(value=-1, precision=0, label="first_word"), gr.Number(value=-1, precision=0, label="last_word"),
            gr.Number(value=-1, label="region_start"), gr.Number(value=-1, label="region_end"),
            gr.Number(value=1, precision=0, label="max_tries"),
            gr.Number(value=checks.DEFAULT_RETRY_THRESHOLD, label="threshold"),
            gr.Audio(type="filepath", label="source_audio"), gr.Number(value=-1, label="expected_seconds"),
            gr.JSON(label="check"), gr.Audio(type="filepath", label="audio"), gr.Textbox(label="text"),
            gr.Number(precision=0, label="seed"), gr.JSON(label="engine"), gr.Audio(label="stream", streaming=True),
            gr.Textbox(label="instructions"))


def _button() -> gr.Button:
    return gr.Button(visible=False)


def wire_public_api(studio: Studio, a: ApiComponents, *, validators: dict, clone_tab: clone.CloneTab,
                    edit_tab: edit.EditTab) -> None:
    """The public endpoints (API and MCP) on hidden buttons; clone, clone_stream and transcribe read the clone
    tab's fields, and the edit tab's "transcribe" of an own recording is a private use of the last."""
    endpoints = api_mod.make_api(studio)
    prompt = [clone_tab.prompt_audio, clone_tab.prompt_text, clone_tab.target_text]
    outs3, outs_live = [a.out_audio, a.out_text, a.out_seed], [a.live, a.out_audio, a.out_text, a.out_seed]
    edit_inputs = [a.audio, a.audio_text, a.edit_type, a.edit_info]
    _button().click(endpoints["clone"], [*prompt, a.seed, a.max_tries, a.threshold], outs3, api_name="clone",
                    validator=validators["clone"], concurrency_id=GPU)
    _button().click(endpoints["edit"], [*edit_inputs, a.n_iterations, a.seed, a.first_word, a.last_word,
                                        a.region_start, a.region_end, a.max_tries, a.threshold],
                    outs3, api_name="edit", validator=validators["edit"], concurrency_id=GPU)
    _button().click(endpoints["check"], [a.audio, a.audio_text, a.source_audio, a.expected_seconds], a.check_out,
                    api_name="check", validator=api_mod.validate_check, concurrency_id=GPU)
    _button().click(endpoints["paralinguistic"], [a.audio, a.audio_text, a.new_text, a.seed, a.max_tries,
                                                  a.threshold], outs3,
                    api_name="paralinguistic", validator=validators["paralinguistic"], concurrency_id=GPU)
    _button().click(endpoints["clone_stream"], [*prompt, a.seed], outs_live, api_name="clone_stream",
                    validator=validators["clone"], concurrency_id=GPU)
    _button().click(endpoints["edit_stream"], [*edit_inputs, a.seed], outs_live, api_name="edit_stream",
                    validator=api_mod.validate_edit_stream, concurrency_id=GPU)
    _button().click(endpoints["engine_info"], None, a.engine, api_name="engine_info", queue=False)
    _button().click(endpoints["plan"], [a.instructions], a.engine, api_name="plan", queue=False)
    _button().click(endpoints["edit_words"], [a.audio, a.audio_text, a.new_text, a.seed], outs3,
                    api_name="edit_words", concurrency_id=GPU)
    clone_tab.transcribe_btn.click(endpoints["transcribe"], [clone_tab.prompt_audio], [clone_tab.prompt_text],
                                   api_name="transcribe", validator=validators["transcribe"], concurrency_id=GPU)
    edit_tab.upload_transcribe.click(endpoints["transcribe"], [edit_tab.upload_audio], [edit_tab.upload_text],
                                     api_visibility="private", validator=validators["transcribe"],
                                     concurrency_id=GPU)


def build_blocks(studio: Studio) -> gr.Blocks:
    """The whole app over ``studio``: every tab built, then wired (the public API first)."""
    caps = studio.runner.engine.capabilities()
    with GuardedBlocks(title="Step-Audio-EditX", delete_cache=(1800, 3 * 3600)) as demo:
        tree_state = timeline.new_tree_state(studio)
        first_screen.header(views.engine_note(caps))
        with gr.Tabs(elem_id="tabs") as tabs:
            clone_tab = clone.build(caps)
            edit_tab = edit.build(caps)
            para_tab = para.build(caps)
            script_tab, script_api = script.build()
        takes = timeline.build()
        validators = api_mod.make_validators(studio.runner.engine)     # the engine's length and work caps
        wire_public_api(studio, _api_components(), validators=validators, clone_tab=clone_tab, edit_tab=edit_tab)
        if clone_tab.examples is not None:      # the noisy example also prepares ② Edit (a denoise of it)
            first_screen.wire_noisy_example(clone_tab.examples, edit_tab.upload_audio, edit_tab.upload_text,
                                            edit_tab.edit_type, edit_tab.own_box)
        session = timeline.Session(studio, tree_state, takes.history_json, validators,
                                   (takes.timeline, takes.take_a, takes.take_b, *clone_tab.cand_cols,
                                    *clone_tab.cand_audio))
        edit.wire(session, edit_tab, timeline=takes)
        clone.wire(session, clone_tab, timeline=takes, tabs=tabs)
        para.wire(session, para_tab, timeline=takes, edit=edit_tab)
        timeline.wire(session, takes, demo=demo, edit_summary=edit_tab.base_md, para_summary=para_tab.base_md,
                      para_text=para_tab.para_text, region_words=edit_tab.region_words,
                      region_wave=edit_tab.region_wave)
        script.wire(ScriptService(studio), script_tab, script_api, demo=demo, prompt_audio=clone_tab.prompt_audio,
                    prompt_text=clone_tab.prompt_text, voice_pick=clone_tab.voice_pick)
    return demo
