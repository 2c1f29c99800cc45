"""② Iterative edit: emotion, style, speed, denoise or silence removal of the take selected in the timeline,
optionally inside a region (ticked words, or a time range typed or brushed on the take's waveform), with
re-rolls; the words box (words_box.py) changes the take's words; own recordings become root takes."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from stepedit_core import catalog, checks
from stepedit_core.interface import Capabilities

from .. import api as api_mod
from .. import freshness, views
from ..guard import OpenRadio
from ..history import TakeTree
from ..i18n import t
from ..runner import GPU
from ..selection_ui import _region, _ticked_span, span_from_plot
from . import plan_box, words_box
from .timeline import PRIVATE, SESSION, Session, TimelineWidgets, session_hash

EDIT_TAB_TYPES = (catalog.EMOTION, catalog.STYLE, catalog.SPEED, catalog.DENOISE, catalog.VAD)


def option_choices(edit_type: str) -> list[tuple]:
    """(translated label, option) of an edit type's options."""
    return [(t(f"opt.{o}"), o) for o in catalog.OPTIONS.get(edit_type, ())]


@dataclass(frozen=True)
class EditTab:
    base_md: gr.Markdown            # what the selected base take is
    edit_type: gr.Radio
    edit_info: gr.Dropdown
    n_iterations: gr.Slider
    seed: gr.Number
    region_words: gr.CheckboxGroup  # the base take's words (ticked: the region)
    region_first: gr.Number         # hidden: the ticked span's first / last word index, -1 = none
    region_last: gr.Number
    region_wave: gr.LinePlot        # the base take's envelope; brushing its x axis fills start / end
    region_start: gr.Number
    region_end: gr.Number
    words_text: gr.Textbox
    words_btn: gr.Button
    plan: plan_box.PlanBox          # "Describe the change": a plain-language plan, shown and editable, then run
    tries: gr.Slider
    threshold: gr.Slider
    edit_btn: gr.Button
    stream: gr.Checkbox
    stop: gr.Button
    live: gr.Audio
    upload_audio: gr.Audio
    upload_text: gr.Textbox
    upload_transcribe: gr.Button
    upload_btn: gr.Button
    own_box: gr.Accordion           # "Start from your own recording" (the noisy example opens it)
    checked_btn: gr.Button          # hidden: the session_edit_checked endpoint
    v1_btn: gr.Button               # hidden: the session_edit endpoint of the first release


def build(caps: Capabilities) -> EditTab:
    """The edit tab (call inside ``gr.Tabs``): the engine's edit types, in EDIT_TAB_TYPES order."""
    edit_types = [e for e in EDIT_TAB_TYPES if e in caps.edit_options] or list(EDIT_TAB_TYPES)
    first_type = edit_types[0]
    with gr.Tab(t("tab_edit"), id="tab-edit"):
        base_md = gr.Markdown(views.base_summary(TakeTree(), None))
        with gr.Row():
            edit_type = OpenRadio([(t(f"type.{e}"), e) for e in edit_types], value=first_type,
                                  label=t("edit_type"), elem_id="edit-type")
            first_options = catalog.OPTIONS[first_type]
            edit_info = gr.Dropdown(option_choices(first_type), label=t("edit_info"), elem_id="edit-info",
                                    value=first_options[0] if first_options else None,
                                    allow_custom_value=True, visible=bool(first_options))
        with gr.Row():
            n_iterations = gr.Slider(1, 5, value=1, step=1, label=t("n_iterations"), elem_id="n-iter")
            seed = gr.Number(label=t("seed"), value=-1, precision=0, elem_id="edit-seed")
        region = _region_box()
        with gr.Accordion(t("words_box"), open=False, elem_id="words-box"):     # words_box.py
            words_text = gr.Textbox(label=t("words_text"), lines=2, max_length=1000, elem_id="words-text")
            words_btn = gr.Button(t("apply_words"), elem_id="words-btn")
        plan = plan_box.build()
        with gr.Row():
            tries = gr.Slider(1, checks.MAX_RETRIES + 1, value=1, step=1, label=t("max_tries"), elem_id="edit-tries")
            threshold = gr.Slider(0.0, 0.5, value=checks.DEFAULT_RETRY_THRESHOLD, step=0.01, label=t("threshold"),
                                  elem_id="edit-threshold")
        with gr.Row(equal_height=True):
            edit_btn = gr.Button(t("apply_edit"), variant="primary", elem_id="edit-btn", scale=3)
            stream = gr.Checkbox(True, label=t("stream"), elem_id="edit-stream", scale=1)
            stop = gr.Button(t("stop"), size="sm", elem_id="edit-stop", scale=1)
        live = gr.Audio(label=t("live"), streaming=True, autoplay=True, interactive=False, buttons=[],
                        elem_id="live-edit")
        upload = _own_recording(caps.transcribe)
        checked_btn, v1_btn = gr.Button(visible=False), gr.Button(visible=False)
    return EditTab(base_md, edit_type, edit_info, n_iterations, seed, *region, words_text, words_btn, plan, tries,
                   threshold, edit_btn, stream, stop, live, *upload, checked_btn, v1_btn)


def _region_box() -> tuple:
    """The region accordion: word list, hidden word span, the envelope plot and the typed time range."""
    with gr.Accordion(t("region"), open=False, elem_id="region-box"):
        gr.Markdown(t("region_help"), elem_classes="small-note")
        region_words = gr.CheckboxGroup([], label=t("region_words"), elem_id="region-words")
        region_first = gr.Number(value=-1, precision=0, visible=False, elem_id="region-first")
        region_last = gr.Number(value=-1, precision=0, visible=False, elem_id="region-last")
        # the base take's envelope; brushing its x axis fills from/to (select event: [x0, x1] s)
        region_wave = gr.LinePlot(x="seconds", y="level", label=t("region_wave"), height=140, x_title="s",
                                  y_title="level", elem_id="region-wave")
        with gr.Row():
            region_start = gr.Number(label=t("region_start"), value=None, elem_id="region-start")
            region_end = gr.Number(label=t("region_end"), value=None, elem_id="region-end")
    return region_words, region_first, region_last, region_wave, region_start, region_end


def _own_recording(can_transcribe: bool) -> tuple:
    """Own recording: audio, its transcript, transcribe and add (a root take to edit); its accordion."""
    with gr.Accordion(t("own_recording"), open=False) as own_box:
        with gr.Row():
            upload_audio = gr.Audio(label=t("recording"), sources=["upload", "microphone"], type="filepath",
                                    elem_id="upload-audio")
            with gr.Column():
                upload_text = gr.Textbox(label=t("recording_text"), lines=3, elem_id="upload-text")
                with gr.Row():
                    upload_transcribe = gr.Button(t("transcribe"), size="sm", interactive=can_transcribe)
                    upload_btn = gr.Button(t("add_recording"), size="sm", elem_id="upload-btn")
    return upload_audio, upload_text, upload_transcribe, upload_btn, own_box


# ---------------------------------------------------------------------- actions (undocumented API)
def _actions(session: Session) -> tuple:
    """session_edit (whole takes), session_edit_live (streamed), edit_v1: bound to the studio."""
    studio = session.studio

    def session_edit(base_take: str, edit_type: str, edit_info: str, n_iterations: int, seed: int,
                     first_word: int = -1, last_word: int = -1, region_start: float | None = None,
                     region_end: float | None = None, max_tries: int = 1,
                     threshold: float = checks.DEFAULT_RETRY_THRESHOLD, tree: TakeTree = None,
                     request: gr.Request = None, progress=gr.Progress()):
        """Edit any take of this session (branching from it); each round becomes a new take.

        Args:
            base_take: id of the take to edit, e.g. "T2".
            edit_type: emotion, style, speed, denoise or vad.
            edit_info: the sub-type (see the public edit endpoint).
            n_iterations: rounds, 1-5.
            seed: seed of round 1; -1 for random.
            first_word: index of the first word of the take to edit (its check's words); -1 = no word selection.
            last_word: index of the last word to edit (inclusive); -1 = no word selection.
            region_start: start of a time range to edit (seconds), with region_end; empty = none.
            region_end: end of the time range.
            max_tries: 1-9; above 1, re-roll seeds until the take check's WER/CER <= threshold.
            threshold: the WER/CER that stops the re-rolls.
        """
        tree = studio.ensure_workdir(tree, session_hash(request))
        s = studio.candidate_seeds(seed, 1)[0]
        tree, _ = studio.edit(tree, base_take, edit_type, edit_info, None, int(n_iterations or 1), s, progress,
                              region=_region(first_word, last_word, region_start, region_end),
                              max_tries=int(max_tries or 1),
                              threshold=float(threshold))
        return tree, tree.summary()

    def session_edit_live(base_take: str, edit_type: str, edit_info: str, n_iterations: int, seed: int,
                          stream: bool, first_word: int = -1, last_word: int = -1, region_start: float | None = None,
                          region_end: float | None = None, max_tries: int = 1,
                          threshold: float = checks.DEFAULT_RETRY_THRESHOLD, tree: TakeTree = None,
                          request: gr.Request = None, progress=gr.Progress()):
        """Edit a take of this session; with ``stream`` and one round, the result plays while it is generated.

        Args:
            base_take: id of the take to edit, e.g. "T2".
            edit_type: emotion, style, speed, denoise or vad.
            edit_info: the sub-type (see the public edit endpoint).
            n_iterations: rounds, 1-5 (several rounds are not streamed: each round needs the previous one).
            seed: seed of round 1; -1 for random.
            stream: play the result while it is generated.
            first_word, last_word, region_start, region_end, max_tries, threshold: as in session_edit_checked; a
                region or re-rolls give whole (not streamed) takes.
        """
        whole = _region(first_word, last_word, region_start, region_end) is not None or int(max_tries or 1) > 1
        if stream and int(n_iterations or 1) == 1 and not whole:
            tree = studio.ensure_workdir(tree, session_hash(request))
            s = studio.candidate_seeds(seed, 1)[0]
            tree, _ = yield from api_mod.play(studio.edit_stream(tree, base_take, edit_type, edit_info, None, s), 2)
        else:
            tree, _ = session_edit(base_take, edit_type, edit_info, n_iterations, seed, first_word, last_word,
                                   region_start, region_end, max_tries, threshold, tree=tree, request=request,
                                   progress=progress)
        yield gr.skip(), tree, tree.summary()

    def edit_v1(base_take: str, edit_type: str, edit_info: str, n_iterations: int, seed: int, tree: TakeTree,
                request: gr.Request = None, progress=gr.Progress()):
        """Edit a whole take of this session (see session_edit_checked)."""
        return session_edit(base_take, edit_type, edit_info, n_iterations, seed, tree=tree, request=request,
                            progress=progress)

    return session_edit, session_edit_live, edit_v1


def _upload_action(session: Session):
    studio = session.studio

    def session_upload(audio: str, text: str, tree: TakeTree, request: gr.Request = None):
        """Add your own recording to this session as a root take, to edit it.

        Args:
            audio: the recording.
            text: what it says.
        """
        tree = studio.ensure_workdir(tree, session_hash(request))
        tree, _ = studio.upload(tree, audio, text)
        return tree, tree.summary()

    return session_upload


def _edit_check(session: Session):
    """The validator of the edit actions: base take (and its work cap), edit type and option, rounds, seed."""
    def edit_check(base, et, ei, n, seed, *rest):
        type_ok, info_ok = api_mod.check_edit(et, ei)
        n_ok, tree = api_mod.check_iterations(n), rest[-1]
        text = tree.get(base).text if base and tree is not None and tree.has(base) else ""
        base_ok = session.base_check(tree, base, str(et), text, n) if type_ok["is_valid"] and n_ok["is_valid"] \
            else session.base_check(None, base, "", "")
        return [base_ok, type_ok, info_ok, n_ok, api_mod.check_seed(seed), *[gr.validate(True, "")] * len(rest)]
    return edit_check


def _upload_check(audio, text, tree) -> list[dict]:
    return [api_mod.check_audio(audio, "a recording"), api_mod.check_text(text, "its transcript", required=False),
            gr.validate(True, "")]


def on_type(edit_type: str):
    """An edit type chosen: its options (hidden when it has none)."""
    opts = catalog.OPTIONS.get(edit_type, ())
    return gr.Dropdown(choices=option_choices(edit_type), value=opts[0] if opts else None,
                       visible=bool(opts))


def wire(session: Session, tab: EditTab, *, timeline: TimelineWidgets) -> None:
    """The edit tab's session events (the upload's transcribe button: ui.wire_public_api)."""
    session_edit, session_edit_live, edit_v1 = _actions(session)
    session_upload = _upload_action(session)
    edit_check = _edit_check(session)
    st, hist = session.tree, session.history
    words_box.wire(session, base_take=timeline.base_take, words_text=tab.words_text, words_btn=tab.words_btn,
                   seed=tab.seed, timeline=timeline.timeline, audio_b=timeline.audio_b)
    plan_box.wire(session, tab.plan, base_take=timeline.base_take, seed=tab.seed, timeline=timeline.timeline,
                  audio_b=timeline.audio_b)
    session.chain(tab.upload_btn.click(session_upload, [tab.upload_audio, tab.upload_text, st], [st, hist],
                                       api_name="session_upload", **SESSION, validator=_upload_check))
    edit_inputs = [timeline.base_take, tab.edit_type, tab.edit_info, tab.n_iterations, tab.seed]
    region_inputs = [tab.region_first, tab.region_last, tab.region_start, tab.region_end, tab.tries, tab.threshold]
    session.chain(tab.checked_btn.click(
        session_edit, [*edit_inputs, *region_inputs, st], [st, hist], api_name="session_edit_checked",
        concurrency_id=GPU, **SESSION, validator=edit_check))
    edit_ev = tab.edit_btn.click(
        session_edit_live, [*edit_inputs, tab.stream, *region_inputs, st], [tab.live, st, hist],
        api_name="session_edit_stream", concurrency_id=GPU, **SESSION,
        show_progress_on=[timeline.timeline, timeline.audio_b], validator=edit_check)
    session.chain(edit_ev)
    tab.stop.click(None, None, None, cancels=[edit_ev], **PRIVATE)
    session.chain(tab.v1_btn.click(edit_v1, [*edit_inputs, st], [st, hist], api_name="session_edit",
                                   concurrency_id=GPU, **SESSION, validator=edit_check))
    tab.region_wave.select(span_from_plot, [timeline.base_take, st], [tab.region_start, tab.region_end,
                                                                      tab.region_words], **PRIVATE, queue=False)
    tab.region_words.change(_ticked_span, [tab.region_words], [tab.region_first, tab.region_last,
                                                                tab.region_start, tab.region_end],
                            **PRIVATE, queue=False)
    tab.edit_type.change(on_type, [tab.edit_type], [tab.edit_info], **PRIVATE, queue=False)
    freshness.clear_live_on_run(tab.edit_btn, tab.live)
