"""The session's takes below the tabs: a timeline in which any take can be the base of the next edit, undo,
recipe export / replay, the session JSON, and a side-by-side comparison of any two takes (players, waveform and
spectrogram on one time scale). Also :class:`Session`, what every tab's actions share.

Every session action returns the new tree (``gr.State``) and its JSON summary; :meth:`Session.chain` runs the
view refresh after it with ``.then`` whether the action succeeded or not, so the screen always shows the stored
tree. Session actions are "undocumented" API endpoints (callable by gradio clients, each client in its own
session, not advertised); pure view refreshes are private.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .. import freshness, views
from ..history import TakeTree
from ..i18n import t
from ..runner import GPU
from ..selection_ui import take_envelope, word_choices
from ..studio import MAX_CANDIDATES, Studio

PRIVATE = {"api_visibility": "private"}
SESSION = {"api_visibility": "undocumented"}
SESSION_TTL_SECONDS = 6 * 3600
NO_BASE = "Select the take to edit in the timeline first."


def session_hash(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


def pad_checks(verdicts: list, n: int) -> list:
    """``verdicts`` for the first inputs of a validator, "valid" for the rest of its ``n`` inputs."""
    return verdicts + [gr.validate(True, "")] * (n - len(verdicts))


@dataclass(frozen=True)
class TimelineWidgets:
    timeline: gr.Radio              # the session's takes; the selected one is the base of the next edit
    base_take: gr.Textbox           # hidden: the selected take's id ("T2")
    undo_btn: gr.Button
    export_btn: gr.Button
    export_file: gr.File
    recipe_in: gr.File
    replay_btn: gr.Button
    replay_report: gr.Markdown
    history_json: gr.JSON
    take_a: gr.Dropdown
    take_b: gr.Dropdown
    audio_a: gr.Audio
    image_a: gr.Image
    info_a: gr.Markdown
    audio_b: gr.Audio
    image_b: gr.Image
    info_b: gr.Markdown


@dataclass(frozen=True)
class Session:
    """What the tabs' session actions share: the studio, the take tree of this browser session, its JSON
    view, the engine's validators (api.make_validators) and the views refreshed after every action."""
    studio: Studio
    tree: gr.State
    history: gr.JSON
    validators: dict
    view_outputs: tuple             # refresh()'s outputs: timeline, take A / B choices, the clone candidates

    def chain(self, event) -> None:
        """Refresh the views after ``event`` (success or not)."""
        event.then(refresh, [self.tree], list(self.view_outputs), **PRIVATE)

    def base_check(self, tree: TakeTree | None, base: str | None, kind: str, text: str, n: int = 1) -> dict:
        """The base take is chosen, and the engine's work estimate for it is within the cap (no tree: only
        the first)."""
        if not base:
            return gr.validate(False, NO_BASE)
        return self.validators["take_work"](kind, tree, base, text, n)


def new_tree_state(studio: Studio) -> gr.State:
    """The session's take tree; its files go when the session expires."""
    return gr.State(TakeTree(), time_to_live=SESSION_TTL_SECONDS,
                    delete_callback=lambda tree: studio.remove_workdir(tree))


def build() -> TimelineWidgets:
    """The takes row (call below the tabs): the timeline and its actions on the left, the comparison right."""
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
                audio_a, image_a, info_a = _compare_column("take_a", "a")
                audio_b, image_b, info_b = _compare_column("take_b", "b")
    return TimelineWidgets(timeline, base_take, undo_btn, export_btn, export_file, recipe_in, replay_btn,
                           replay_report, history_json, take_a, take_b, audio_a, image_a, info_a, audio_b, image_b,
                           info_b)


def _compare_column(label: str, side: str) -> tuple[gr.Audio, gr.Image, gr.Markdown]:
    with gr.Column():
        audio = gr.Audio(label=t(label), type="filepath", interactive=False, buttons=["download"],
                         elem_id=f"audio-{side}")
        image = gr.Image(type="filepath", show_label=False, interactive=False, elem_id=f"image-{side}",
                         buttons=["fullscreen"])
        info = gr.Markdown(elem_id=f"info-{side}")
    return audio, image, info


# ---------------------------------------------------------------------- views (private)
def refresh(tree: TakeTree):
    """The timeline, the take A / B choices, then the clone tab's candidate columns and players."""
    choices = views.timeline_choices(tree)
    ids = [v for _, v in choices]
    focus = tree.focus if tree.focus in ids else (ids[-1] if ids else None)
    clones = [a for a in tree.actions if a.kind == "clone"]
    cands = list(clones[-1].takes) if clones else []
    cols, audios = [], []
    best = views.best_candidate([tree.get(x) for x in cands])
    for i in range(MAX_CANDIDATES):
        if i < len(cands):
            tk = tree.get(cands[i])
            cols.append(gr.Column(visible=True))
            badge = views.check_short(tk.check)
            label = f"{tk.id} · candidate {tk.index} · seed {tk.seed}" + (f" · {badge}" if badge else "")
            audios.append(gr.Audio(value=tk.audio, label=label + (" · ★ best" if tk.id == best else "")))
        else:
            cols.append(gr.Column(visible=i == 0))        # slot 1 stays: it carries the progress bar
            audios.append(gr.Audio(value=None, label=f"#{i + 1}"))
    labels = [(views.take_title(tree.get(i)), i) for i in sorted(ids, key=lambda x: int(x[1:]))]
    return (gr.Radio(choices=choices, value=focus), gr.Dropdown(choices=labels),
            gr.Dropdown(choices=labels), *cols, *audios)


def on_select(take_id: str | None, tree: TakeTree):
    """A take chosen in the timeline: the base take, the comparison (A its parent, B the take), the base
    summaries of the edit and paralinguistic tabs, the paralinguistic text, the region's words and plot."""
    if not take_id or not tree.has(take_id):
        return (None, gr.skip(), gr.skip(), views.base_summary(tree, None), views.base_summary(tree, None),
                gr.skip(), gr.CheckboxGroup(choices=[], value=[]), None)
    take = tree.get(take_id)
    # A: the parent (what the edit changed); for a root, a sibling candidate of the same clone.
    siblings = [x for x in next(a for a in tree.actions if a.id == take.action).takes if x != take_id]
    a = take.parent or (siblings[0] if siblings else gr.skip())
    return (take_id, a, take_id, views.base_summary(tree, take_id), views.base_summary(tree, take_id),
            take.text, gr.CheckboxGroup(choices=word_choices(take), value=[]), take_envelope(take))


# ---------------------------------------------------------------------- actions (undocumented API)
def _actions(studio: Studio) -> tuple:
    """undo, history, export_recipe, replay_recipe, compare: bound to ``studio``."""
    def undo(tree: TakeTree):
        """Undo the most recent action of this session (its takes are removed)."""
        tree, action = tree.undo()
        if action is None:
            gr.Info("Nothing to undo.")
        return tree, tree.summary()

    def history(tree: TakeTree) -> dict:
        """This session's takes and actions as JSON."""
        return tree.summary()

    def export_recipe(tree: TakeTree):
        """Export this session's actions (sources, parameters, seeds) as a JSON recipe."""
        return studio.export_recipe(tree)

    def replay_recipe(recipe: str, tree: TakeTree, request: gr.Request = None, progress=gr.Progress()):
        """Replay a recipe into this session with the recipe's seeds (the takes are appended).

        Args:
            recipe: a recipe file exported by this app.
        """
        if not recipe:
            raise gr.Error("Please choose a recipe file first.")
        tree = studio.ensure_workdir(tree, session_hash(request))
        tree, _, report = studio.replay(tree, recipe, progress)
        gr.Info(report)
        return tree, tree.summary(), report

    def compare(take_a: str, take_b: str, tree: TakeTree):
        """Two takes side by side: audio, waveform + spectrogram picture (same time scale) and caption.

        Args:
            take_a: id of the first take.
            take_b: id of the second take.
        """
        ids = [x if x and tree.has(x) else None for x in (take_a, take_b)]
        span = max((tree.get(x).duration for x in ids if x), default=None)
        out = []
        for x in ids:
            if x is None:
                out += [None, None, ""]
            else:
                out += [tree.get(x).audio, studio.take_picture(tree, x, span), views.take_caption(tree, x)]
        return tuple(out)

    return undo, history, export_recipe, replay_recipe, compare


def wire(session: Session, w: TimelineWidgets, *, demo: gr.Blocks, edit_summary: gr.Markdown,
         para_summary: gr.Markdown, para_text: gr.Textbox, region_words: gr.CheckboxGroup,
         region_wave: gr.LinePlot) -> None:
    """The timeline's events; a selected take also fills the tabs' widgets named here (see on_select)."""
    undo, history, export_recipe, replay_recipe, compare = _actions(session.studio)
    st, hist = session.tree, session.history
    session.chain(w.undo_btn.click(undo, [st], [st, hist], api_name="undo", **SESSION))
    session.chain(w.replay_btn.click(replay_recipe, [w.recipe_in, st], [st, hist, w.replay_report],
                                     api_name="replay_recipe", concurrency_id=GPU, **SESSION,
                                     show_progress_on=[w.timeline, w.replay_report]))
    w.export_btn.click(export_recipe, [st], [w.export_file], api_name="export_recipe", **SESSION).success(
        lambda: gr.File(visible=True), None, [w.export_file], **PRIVATE)
    gr.on([w.take_a.change, w.take_b.change], compare, [w.take_a, w.take_b, st],
          [w.audio_a, w.image_a, w.info_a, w.audio_b, w.image_b, w.info_b], api_name="compare", **SESSION)
    w.timeline.change(on_select, [w.timeline, st], [w.base_take, w.take_a, w.take_b, edit_summary, para_summary,
                                                   para_text, region_words, region_wave],
                      **PRIVATE)
    demo.load(history, [st], [hist], api_name="history", **SESSION)
    freshness.hide_stale_recipe(w.history_json, w.export_file)
