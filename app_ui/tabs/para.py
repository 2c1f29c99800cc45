"""③ Paralinguistic: non-verbal sounds ([Laughter], [Breathing], ...) added to the take selected in the
timeline where [tags] appear in its text; the tag buttons insert a tag at the caret, a preview shows where
each one falls on the take's time line, and a word range (the edit tab's ticked words) limits the edit."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from stepedit_core import catalog
from stepedit_core.interface import Capabilities

from .. import api as api_mod
from .. import freshness, views
from ..history import TakeTree
from ..i18n import t
from ..runner import GPU
from ..selection_ui import _region
from .edit import EditTab
from .timeline import PRIVATE, SESSION, Session, TimelineWidgets, pad_checks, session_hash

_INSERT_TAG_JS = """(text) => {{
  const tag = "[{tag}]";
  const el = document.querySelector("#para-text textarea");
  if (!el) return (text || "") + tag;
  const v = el.value, s = el.selectionStart ?? v.length, e = el.selectionEnd ?? s;
  const caret = s + tag.length;
  setTimeout(() => {{ el.focus(); el.setSelectionRange(caret, caret); }}, 0);
  return v.slice(0, s) + tag + v.slice(e);
}}"""


@dataclass(frozen=True)
class ParaTab:
    base_md: gr.Markdown            # what the selected base take is
    tag_btns: tuple                 # (tag, button): each inserts [tag] at the caret of para_text
    para_text: gr.Textbox           # the take's text with [tags]
    tag_view: gr.HTML               # where each tag falls on the take's time line
    seed: gr.Number
    para_btn: gr.Button
    stream: gr.Checkbox
    stop: gr.Button
    live: gr.Audio
    checked_btn: gr.Button          # hidden: the session_paralinguistic_checked endpoint
    v1_btn: gr.Button               # hidden: the session_paralinguistic endpoint of the first release


def build(caps: Capabilities) -> ParaTab:
    """The paralinguistic tab (call inside ``gr.Tabs``)."""
    with gr.Tab(t("tab_para"), id="tab-para"):
        base_md = gr.Markdown(views.base_summary(TakeTree(), None))
        gr.Markdown(t("para_help"))
        with gr.Row():
            tag_btns = tuple((tag, gr.Button(t(f"tag.{tag}"), size="sm", elem_classes="tag-btn"))
                             for tag in catalog.PARALINGUISTIC_TAGS_2026)
        para_text = gr.Textbox(label=t("para_text"), lines=3, max_length=1000, elem_id="para-text")
        tag_view = gr.HTML(views.tag_preview(""), elem_id="tag-preview")
        with gr.Row():
            seed = gr.Number(label=t("seed"), value=-1, precision=0, scale=1)
            para_btn = gr.Button(t("apply_para"), variant="primary", scale=2, elem_id="para-btn",
                                 interactive=catalog.PARALINGUISTIC in caps.edit_options)
            stream = gr.Checkbox(True, label=t("stream"), elem_id="para-stream", scale=1)
            stop = gr.Button(t("stop"), size="sm", elem_id="para-stop", scale=1)
        live = gr.Audio(label=t("live"), streaming=True, autoplay=True, interactive=False, buttons=[],
                        elem_id="live-para")
        checked_btn, v1_btn = gr.Button(visible=False), gr.Button(visible=False)
    return ParaTab(base_md, tag_btns, para_text, tag_view, seed, para_btn, stream, stop, live, checked_btn, v1_btn)


# ---------------------------------------------------------------------- actions (undocumented API)
def _actions(session: Session) -> tuple:
    """session_paralinguistic (whole), session_paralinguistic_live (streamed), para_v1: bound to the studio."""
    studio = session.studio

    def session_paralinguistic(base_take: str, new_text: str, seed: int, first_word: int = -1,
                               last_word: int = -1, tree: TakeTree = None, request: gr.Request = None, progress=gr.Progress()):
        """Add non-verbal sounds to a take of this session where [tags] appear in new_text.

        Args:
            base_take: id of the take to edit.
            new_text: the take's text with tags inserted.
            seed: random seed; -1 for random.
            first_word: first word of the take to edit (-1 = the whole take); the tags must fall inside.
            last_word: last word to edit (inclusive).
        """
        tree = studio.ensure_workdir(tree, session_hash(request))
        s = studio.candidate_seeds(seed, 1)[0]
        tree, _ = studio.edit(tree, base_take, catalog.PARALINGUISTIC, None, new_text, 1, s, progress,
                              region=_region(first_word, last_word, None, None))
        return tree, tree.summary()

    def session_paralinguistic_live(base_take: str, new_text: str, seed: int, stream: bool, first_word: int = -1,
                                    last_word: int = -1, tree: TakeTree = None, request: gr.Request = None,
                                    progress=gr.Progress()):
        """Add non-verbal sounds to a take of this session; with ``stream`` (and no word range) the result plays
        while it is generated.

        Args:
            base_take: id of the take to edit.
            new_text: the take's text with tags inserted.
            seed: random seed; -1 for random.
            stream: play the result while it is generated.
            first_word, last_word: as in session_paralinguistic_checked; a word range gives a whole take.
        """
        if stream and _region(first_word, last_word, None, None) is None:
            tree = studio.ensure_workdir(tree, session_hash(request))
            s = studio.candidate_seeds(seed, 1)[0]
            tree, _ = yield from api_mod.play(
                studio.edit_stream(tree, base_take, catalog.PARALINGUISTIC, None, new_text, s), 2)
        else:
            tree, _ = session_paralinguistic(base_take, new_text, seed, first_word, last_word, tree=tree,
                                             request=request, progress=progress)
        yield gr.skip(), tree, tree.summary()

    def para_v1(base_take: str, new_text: str, seed: int, tree: TakeTree, request: gr.Request = None,
                progress=gr.Progress()):
        """Add non-verbal sounds to a take of this session (see session_paralinguistic_checked)."""
        return session_paralinguistic(base_take, new_text, seed, tree=tree, request=request, progress=progress)

    return session_paralinguistic, session_paralinguistic_live, para_v1


def _para_check(session: Session):
    """The validator of the paralinguistic actions: base take (and its work cap), the tagged text, the seed."""
    def para_check(base, text, seed, *rest):
        text_ok = api_mod.check_text(text, "the text with [tags]")
        base_ok = session.base_check(rest[-1], base, catalog.PARALINGUISTIC, text) if text_ok["is_valid"] else \
            session.base_check(None, base, "", "")
        return pad_checks([base_ok, text_ok, api_mod.check_seed(seed)], 3 + len(rest))
    return para_check


def preview(text: str, base: str | None, tree: TakeTree):
    """Where the tags of ``text`` fall on the base take's time line."""
    dur = tree.get(base).duration if base and tree.has(base) else None
    return views.tag_preview(text, dur)


def wire(session: Session, tab: ParaTab, *, timeline: TimelineWidgets, edit: EditTab) -> None:
    """The paralinguistic tab's session events; the word range is the edit tab's ticked words."""
    session_paralinguistic, session_paralinguistic_live, para_v1 = _actions(session)
    para_check = _para_check(session)
    st, hist = session.tree, session.history
    words = [edit.region_first, edit.region_last]
    session.chain(tab.checked_btn.click(
        session_paralinguistic, [timeline.base_take, tab.para_text, tab.seed, *words, st], [st, hist],
        api_name="session_paralinguistic_checked", concurrency_id=GPU, **SESSION,
        show_progress_on=[timeline.timeline, tab.tag_view], validator=para_check))
    para_ev = tab.para_btn.click(
        session_paralinguistic_live, [timeline.base_take, tab.para_text, tab.seed, tab.stream, *words, st],
        [tab.live, st, hist], api_name="session_paralinguistic_stream", concurrency_id=GPU, **SESSION,
        show_progress_on=[timeline.timeline, tab.tag_view], validator=para_check)
    session.chain(para_ev)
    tab.stop.click(None, None, None, cancels=[para_ev], **PRIVATE)
    session.chain(tab.v1_btn.click(para_v1, [timeline.base_take, tab.para_text, tab.seed, st], [st, hist],
                                   api_name="session_paralinguistic", concurrency_id=GPU, **SESSION,
                                   validator=para_check))
    tab.para_text.change(preview, [tab.para_text, timeline.base_take, st], [tab.tag_view], **PRIVATE, queue=False)
    for tag, btn in tab.tag_btns:
        btn.click(None, [tab.para_text], [tab.para_text], js=_INSERT_TAG_JS.format(tag=tag))
    freshness.clear_live_on_run(tab.para_btn, tab.live)
