"""The Blocks app: four tabs (three over one take tree per session, ④ script), plus the public API endpoints.

Layout: an engine note; tabs ① voice clone, ② iterative edit, ③ paralinguistic; below them the session's
takes (a timeline in which any take can be the base of the next edit, undo, recipe export/replay) and a
side-by-side comparison of any two takes (players, waveform and spectrogram on one time scale).

Event visibility: the stateless API (``api.py``) is public and serves MCP; the session actions
(``session_clone``, ``session_edit``, ``undo``, ``compare``, ``replay_recipe``, ...) are "undocumented" —
callable by gradio clients, each client in its own session, but not advertised; pure view refreshes are
private.
"""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from stepedit_core import catalog, checks

from . import api as api_mod
from . import first_screen, script_tab, views
from .events import wire_session
from .freshness import wire_freshness
from .guard import GuardedBlocks, OpenRadio
from .history import TakeTree
from .i18n import t
from .runner import GPU
from .studio import MAX_CANDIDATES, Studio

EDIT_TAB_TYPES = (catalog.EMOTION, catalog.STYLE, catalog.SPEED, catalog.DENOISE, catalog.VAD)
SESSION_TTL_SECONDS = 6 * 3600
# One version per click: the take (and the streamed first audio) comes soonest; more versions are one
# slider away under Advanced (bench/first_contact.py, BENCHMARKS.md).
DEFAULT_CANDIDATES = 1


def _option_choices(edit_type: str) -> list[tuple]:
    return [(t(f"opt.{o}"), o) for o in catalog.OPTIONS.get(edit_type, ())]


_LANG_TAG_JS = """(text) => {{
  const tag = "[{tag}]";
  const rest = (text || "").replace(/^\\s*\\[(Sichuanese|Cantonese|Japanese|Korean)\\]\\s*/i, "");
  return tag + rest;
}}"""

_INSERT_TAG_JS = """(text) => {{
  const tag = "[{tag}]";
  const el = document.querySelector("#para-text textarea");
  if (!el) return (text || "") + tag;
  const v = el.value, s = el.selectionStart ?? v.length, e = el.selectionEnd ?? s;
  const caret = s + tag.length;
  setTimeout(() => {{ el.focus(); el.setSelectionRange(caret, caret); }}, 0);
  return v.slice(0, s) + tag + v.slice(e);
}}"""


def build_blocks(studio: Studio) -> gr.Blocks:
    caps = studio.runner.engine.capabilities()
    endpoints = api_mod.make_api(studio)
    validators = api_mod.make_validators(studio.runner.engine)
    edit_types = [e for e in EDIT_TAB_TYPES if e in caps.edit_options] or list(EDIT_TAB_TYPES)
    first_type = edit_types[0]

    with GuardedBlocks(title="Step-Audio-EditX", delete_cache=(1800, 3 * 3600)) as demo:
        tree_state = gr.State(TakeTree(), time_to_live=SESSION_TTL_SECONDS,
                              delete_callback=lambda tree: studio.remove_workdir(tree))
        first_screen.header(views.engine_note(caps))

        with gr.Tabs(elem_id="tabs") as tabs:
            # ------------------------------------------------------------ ① clone
            with gr.Tab(t("tab_clone"), id="tab-clone"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=5):
                        examples_slot = gr.Column()       # filled below, once the fields exist
                        prompt_audio = gr.Audio(label=t("prompt_audio"), sources=["upload", "microphone"],
                                                type="filepath", elem_id="prompt-audio")
                        with gr.Row(equal_height=True):
                            prompt_text = gr.Textbox(label=t("prompt_text"), lines=1, scale=5,
                                                     elem_id="prompt-text")
                            transcribe_btn = gr.Button(t("transcribe"), scale=1, size="sm", min_width=90,
                                                       interactive=caps.transcribe, elem_id="transcribe")
                        target_text = gr.Textbox(label=t("target_text"), lines=2, max_length=1000,
                                                 elem_id="target-text")
                        with gr.Row(equal_height=True):
                            clone_btn = gr.Button(t("generate"), variant="primary", elem_id="clone-btn",
                                                  interactive=caps.clone, scale=3)
                            clone_stream = gr.Checkbox(True, label=t("stream"), elem_id="clone-stream", scale=1)
                            clone_stop = gr.Button(t("stop"), size="sm", elem_id="clone-stop", scale=1)
                        gr.Markdown(t("lang_tags"), elem_classes="small-note")
                        with gr.Row():
                            lang_btns = [(tag, gr.Button(f"[{tag}]", size="sm", elem_classes="tag-btn"))
                                         for tag in catalog.LANGUAGE_TAGS]
                        with gr.Accordion(t("advanced"), open=False, elem_id="clone-advanced"):
                            voice_pick = gr.Dropdown([], label=t("voice_pick"), info=t("voice_pick_info"),
                                                     value=None, allow_custom_value=True, elem_id="voice-pick")
                            with gr.Row():
                                n_candidates = gr.Slider(1, MAX_CANDIDATES, value=DEFAULT_CANDIDATES, step=1,
                                                         label=t("n_candidates"), info=t("n_candidates_info"),
                                                         elem_id="n-candidates")
                                clone_seed = gr.Number(label=t("seed"), info=t("seed_info"), value=-1, precision=0,
                                                       elem_id="clone-seed")
                            with gr.Row():
                                clone_tries = gr.Slider(1, checks.MAX_RETRIES + 1, value=1, step=1,
                                                        label=t("max_tries"), info=t("max_tries_info"),
                                                        elem_id="clone-tries")
                                clone_threshold = gr.Slider(0.0, 0.5, value=checks.DEFAULT_RETRY_THRESHOLD, step=0.01,
                                                            label=t("threshold"), info=t("threshold_info"),
                                                            elem_id="clone-threshold")
                        examples_meta = first_screen.examples()
                        if examples_meta:
                            with examples_slot:
                                shown = gr.Examples([row for _, row in examples_meta],
                                                    [prompt_audio, prompt_text, target_text],
                                                    label=t("examples"),
                                                    example_labels=[label for label, _ in examples_meta],
                                                    cache_examples=False, elem_id="clone-examples")
                    with gr.Column(scale=4):
                        # the live stream is AAC that Gradio names audio-stream.mp3: no download here, the take is
                        # the download
                        live_clone = gr.Audio(label=t("live"), streaming=True, autoplay=True, interactive=False,
                                              buttons=[], elem_id="live-clone")
                        gr.Markdown(t("candidates"))
                        cand_cols, cand_audio, cand_btns = [], [], []
                        for i in range(MAX_CANDIDATES):
                            with gr.Column(visible=i == 0, variant="panel") as col:
                                cand_audio.append(gr.Audio(label=f"#{i + 1}", type="filepath", interactive=False,
                                                           buttons=["download"], elem_id=f"cand-{i + 1}"))
                                cand_btns.append(gr.Button(t("use_take"), size="sm", elem_id=f"use-cand-{i + 1}"))
                            cand_cols.append(col)

            # ------------------------------------------------------------ ② edit
            with gr.Tab(t("tab_edit"), id="tab-edit"):
                base_md_edit = gr.Markdown(views.base_summary(TakeTree(), None))
                with gr.Row():
                    edit_type = OpenRadio([(t(f"type.{e}"), e) for e in edit_types], value=first_type,
                                         label=t("edit_type"), elem_id="edit-type")
                    first_options = catalog.OPTIONS[first_type]
                    edit_info = gr.Dropdown(_option_choices(first_type), label=t("edit_info"), elem_id="edit-info",
                                            value=first_options[0] if first_options else None,
                                            allow_custom_value=True, visible=bool(first_options))
                with gr.Row():
                    n_iterations = gr.Slider(1, 5, value=1, step=1, label=t("n_iterations"), elem_id="n-iter")
                    edit_seed = gr.Number(label=t("seed"), value=-1, precision=0, elem_id="edit-seed")
                with gr.Accordion(t("region"), open=False, elem_id="region-box"):
                    gr.Markdown(t("region_help"), elem_classes="small-note")
                    region_words = gr.CheckboxGroup([], label=t("region_words"), elem_id="region-words")
                    region_first = gr.Number(value=-1, precision=0, visible=False, elem_id="region-first")
                    region_last = gr.Number(value=-1, precision=0, visible=False, elem_id="region-last")
                    # the base take's envelope; brushing its x axis fills from/to (select event: [x0, x1] s)
                    region_wave = gr.LinePlot(x="seconds", y="level", label=t("region_wave"), height=140,
                                              x_title="s", y_title="level", elem_id="region-wave")
                    with gr.Row():
                        region_start = gr.Number(label=t("region_start"), value=None, elem_id="region-start")
                        region_end = gr.Number(label=t("region_end"), value=None, elem_id="region-end")
                with gr.Accordion(t("words_box"), open=False, elem_id="words-box"):     # words_tab.py
                    words_text = gr.Textbox(label=t("words_text"), lines=2, max_length=1000, elem_id="words-text")
                    words_btn = gr.Button(t("apply_words"), elem_id="words-btn")
                with gr.Row():
                    edit_tries = gr.Slider(1, checks.MAX_RETRIES + 1, value=1, step=1, label=t("max_tries"),
                                           elem_id="edit-tries")
                    edit_threshold = gr.Slider(0.0, 0.5, value=checks.DEFAULT_RETRY_THRESHOLD, step=0.01,
                                               label=t("threshold"), elem_id="edit-threshold")
                with gr.Row(equal_height=True):
                    edit_btn = gr.Button(t("apply_edit"), variant="primary", elem_id="edit-btn", scale=3)
                    edit_stream = gr.Checkbox(True, label=t("stream"), elem_id="edit-stream", scale=1)
                    edit_stop = gr.Button(t("stop"), size="sm", elem_id="edit-stop", scale=1)
                live_edit = gr.Audio(label=t("live"), streaming=True, autoplay=True, interactive=False,
                                     buttons=[], elem_id="live-edit")
                with gr.Accordion(t("own_recording"), open=False) as own_box:
                    with gr.Row():
                        upload_audio = gr.Audio(label=t("recording"), sources=["upload", "microphone"],
                                                type="filepath", elem_id="upload-audio")
                        with gr.Column():
                            upload_text = gr.Textbox(label=t("recording_text"), lines=3, elem_id="upload-text")
                            with gr.Row():
                                upload_transcribe = gr.Button(t("transcribe"), size="sm",
                                                              interactive=caps.transcribe)
                                upload_btn = gr.Button(t("add_recording"), size="sm", elem_id="upload-btn")

            # ------------------------------------------------------------ ③ paralinguistic
            with gr.Tab(t("tab_para"), id="tab-para"):
                base_md_para = gr.Markdown(views.base_summary(TakeTree(), None))
                gr.Markdown(t("para_help"))
                with gr.Row():
                    tag_btns = [(tag, gr.Button(t(f"tag.{tag}"), size="sm", elem_classes="tag-btn"))
                                for tag in catalog.PARALINGUISTIC_TAGS_2026]
                para_text = gr.Textbox(label=t("para_text"), lines=3, max_length=1000, elem_id="para-text")
                tag_view = gr.HTML(views.tag_preview(""), elem_id="tag-preview")
                with gr.Row():
                    para_seed = gr.Number(label=t("seed"), value=-1, precision=0, scale=1)
                    para_btn = gr.Button(t("apply_para"), variant="primary", scale=2, elem_id="para-btn",
                                         interactive=catalog.PARALINGUISTIC in caps.edit_options)
                    para_stream = gr.Checkbox(True, label=t("stream"), elem_id="para-stream", scale=1)
                    para_stop = gr.Button(t("stop"), size="sm", elem_id="para-stop", scale=1)
                live_para = gr.Audio(label=t("live"), streaming=True, autoplay=True, interactive=False,
                                     buttons=[], elem_id="live-para")

            # ------------------------------------------------------------ ④ script (script_tab.py)
            voice_refresh, voice_outs = script_tab.build(studio, prompt_audio, prompt_text, voice_pick)

        # ---------------------------------------------------------------- the takes
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=340):
                timeline = gr.Radio([], label=t("takes"), elem_id="timeline")
                base_take = gr.Textbox(visible=False, elem_id="base-take")
                with gr.Row():
                    undo_btn = gr.Button(t("undo"), size="sm", elem_id="undo-btn")
                    export_btn = gr.Button(t("export"), size="sm", elem_id="export-btn")
                export_file = gr.File(label=t("export"), interactive=False, visible=False, elem_id="recipe-out")
                with gr.Accordion(t("replay"), open=False):
                    recipe_in = gr.File(label=t("recipe_file"), file_types=[".json"], type="filepath",
                                        elem_id="recipe-in")
                    replay_btn = gr.Button(t("replay"), size="sm", elem_id="replay-btn")
                    replay_report = gr.Markdown()
                with gr.Accordion(t("session_json"), open=False):
                    history_json = gr.JSON(label=t("session_json"), elem_id="history-json")
            with gr.Column(scale=5):
                with gr.Row():
                    take_a = gr.Dropdown([], label=t("take_a"), allow_custom_value=True, elem_id="take-a")
                    take_b = gr.Dropdown([], label=t("take_b"), allow_custom_value=True, elem_id="take-b")
                with gr.Row(equal_height=False):
                    with gr.Column():
                        audio_a = gr.Audio(label=t("take_a"), type="filepath", interactive=False,
                                           buttons=["download"], elem_id="audio-a")
                        image_a = gr.Image(type="filepath", show_label=False, interactive=False,
                                           elem_id="image-a", buttons=["fullscreen"])
                        info_a = gr.Markdown(elem_id="info-a")
                    with gr.Column():
                        audio_b = gr.Audio(label=t("take_b"), type="filepath", interactive=False,
                                           buttons=["download"], elem_id="audio-b")
                        image_b = gr.Image(type="filepath", show_label=False, interactive=False,
                                           elem_id="image-b", buttons=["fullscreen"])
                        info_b = gr.Markdown(elem_id="info-b")

        # ---------------------------------------------------------------- hidden API components
        with gr.Column(visible=False):
            api_in_audio = gr.Audio(type="filepath", label="audio")
            api_in_text = gr.Textbox(label="audio_text")
            api_in_new = gr.Textbox(label="new_text")
            # plain text, checked by stepedit_core.validation (a Dropdown would answer unknown values with a bare 400)
            api_type = gr.Textbox(value=catalog.EMOTION, label="edit_type")
            api_info = gr.Textbox(label="edit_info")
            # no precision: NaN, inf and fractions reach stepedit_core.validation and get its message
            api_iter = gr.Number(value=1, label="n_iterations")
            api_seed = gr.Number(value=-1, label="seed")
            api_first = gr.Number(value=-1, precision=0, label="first_word")
            api_last = gr.Number(value=-1, precision=0, label="last_word")
            api_rstart = gr.Number(value=-1, label="region_start")
            api_rend = gr.Number(value=-1, label="region_end")
            api_tries = gr.Number(value=1, precision=0, label="max_tries")
            api_threshold = gr.Number(value=checks.DEFAULT_RETRY_THRESHOLD, label="threshold")
            api_source = gr.Audio(type="filepath", label="source_audio")
            api_expected = gr.Number(value=-1, label="expected_seconds")
            api_check_out = gr.JSON(label="check")
            api_check_btn = gr.Button()
            api_out_audio = gr.Audio(type="filepath", label="audio")
            api_out_text = gr.Textbox(label="text")
            api_out_seed = gr.Number(precision=0, label="seed")
            api_caps = gr.JSON(label="engine")
            api_live = gr.Audio(label="stream", streaming=True)
            api_clone_btn, api_edit_btn, api_para_btn, api_info_btn = (gr.Button() for _ in range(4))
            api_clone_stream_btn, api_edit_stream_btn = gr.Button(), gr.Button()
            session_clone_btn, session_edit_btn = gr.Button(), gr.Button()     # the non-streamed session API
            session_para_btn = gr.Button()
            api_plan_in, api_plan_btn = gr.Textbox(label="instructions"), gr.Button()     # plans.py (issue 29)
            api_words_btn = gr.Button()                                                    # words.py (issue 29)

        # ================================================================ events
        outs3 = [api_out_audio, api_out_text, api_out_seed]
        api_clone_btn.click(endpoints["clone"], [prompt_audio, prompt_text, target_text, api_seed, api_tries,
                                                 api_threshold], outs3,
                            api_name="clone", validator=validators["clone"], concurrency_id=GPU)
        api_edit_btn.click(endpoints["edit"], [api_in_audio, api_in_text, api_type, api_info, api_iter, api_seed,
                                               api_first, api_last, api_rstart, api_rend, api_tries, api_threshold],
                           outs3, api_name="edit", validator=validators["edit"], concurrency_id=GPU)
        api_check_btn.click(endpoints["check"], [api_in_audio, api_in_text, api_source, api_expected],
                            api_check_out, api_name="check", validator=api_mod.validate_check, concurrency_id=GPU)
        api_para_btn.click(endpoints["paralinguistic"], [api_in_audio, api_in_text, api_in_new, api_seed, api_tries,
                                                       api_threshold], outs3,
                           api_name="paralinguistic", validator=validators["paralinguistic"], concurrency_id=GPU)
        outs_live = [api_live, api_out_audio, api_out_text, api_out_seed]
        api_clone_stream_btn.click(endpoints["clone_stream"], [prompt_audio, prompt_text, target_text, api_seed],
                                   outs_live, api_name="clone_stream", validator=validators["clone"],
                                   concurrency_id=GPU)
        api_edit_stream_btn.click(endpoints["edit_stream"], [api_in_audio, api_in_text, api_type, api_info, api_seed],
                                  outs_live, api_name="edit_stream", validator=api_mod.validate_edit_stream,
                                  concurrency_id=GPU)
        api_info_btn.click(endpoints["engine_info"], None, api_caps, api_name="engine_info", queue=False)
        api_plan_btn.click(endpoints["plan"], [api_plan_in], api_caps, api_name="plan", queue=False)
        api_words_btn.click(endpoints["edit_words"], [api_in_audio, api_in_text, api_in_new, api_seed], outs3,
                            api_name="edit_words", concurrency_id=GPU)
        transcribe_btn.click(endpoints["transcribe"], [prompt_audio], [prompt_text], api_name="transcribe",
                             validator=validators["transcribe"], concurrency_id=GPU)
        upload_transcribe.click(endpoints["transcribe"], [upload_audio], [upload_text], api_visibility="private",
                                validator=validators["transcribe"], concurrency_id=GPU)

        if examples_meta:
            first_screen.wire_noisy_example(shown, upload_audio, upload_text, edit_type, own_box)
        for tag, btn in lang_btns:
            btn.click(None, [target_text], [target_text], js=_LANG_TAG_JS.format(tag=tag))
        for tag, btn in tag_btns:
            btn.click(None, [para_text], [para_text], js=_INSERT_TAG_JS.format(tag=tag))

        components = SimpleNamespace(**locals())
        wire_session(studio, components)
        wire_freshness(components)
        demo.load(voice_refresh, None, voice_outs, api_visibility="private")
    return demo
