"""Session events: actions that grow this browser session's take tree, and the views that follow it.

Every action returns the new tree (``gr.State``) and its JSON summary; the view refresh runs after it
with ``.then`` whether the action succeeded or not, so the screen always shows the stored tree.
"""
from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from stepedit_core import catalog, checks

from . import api as api_mod
from . import views, words_tab
from .history import TakeTree
from .i18n import t
from .runner import GPU
from .selection_ui import _region, _ticked_span, span_from_plot, take_envelope, word_choices  # noqa: F401
from .studio import MAX_CANDIDATES, Studio

_PRIVATE = {"api_visibility": "private"}
_SESSION = {"api_visibility": "undocumented"}


def _pad(checks: list, n: int) -> list:
    return checks + [gr.validate(True, "")] * (n - len(checks))


def _session_hash(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


def wire_session(studio: Studio, c: SimpleNamespace) -> None:
    validators = api_mod.make_validators(studio.runner.engine)     # the engine's length and work caps
    # ------------------------------------------------------------------ actions (undocumented API)
    def session_clone(prompt_audio: str, prompt_text: str, target_text: str, seed: int, n_candidates: int,
                      max_tries: int = 1, threshold: float = checks.DEFAULT_RETRY_THRESHOLD,
                      tree: TakeTree = None, request: gr.Request = None, progress=gr.Progress()):
        """Clone a voice into this session: n_candidates takes, seeds seed, seed+1, ... (random if -1).

        Args:
            prompt_audio: recording of the voice to clone.
            prompt_text: what the prompt says.
            target_text: what to say.
            seed: seed of the first candidate; -1 for random seeds.
            n_candidates: how many takes to generate (1-4).
            max_tries: 1-9; above 1 each candidate is re-rolled until its WER/CER <= threshold.
            threshold: the WER/CER that stops the re-rolls.
        """
        tree = studio.ensure_workdir(tree, _session_hash(request))
        n = int(n_candidates or 1)
        tries = int(max_tries or 1)
        seeds = studio.candidate_seeds(seed, n * tries)[::tries]   # candidate i re-rolls s_i, s_i+1, ... s_i+tries-1
        tree, _ = studio.clone(tree, prompt_audio, prompt_text, target_text, seeds, progress,
                               max_tries=int(max_tries or 1), threshold=float(threshold),
                               session=_session_hash(request))
        return tree, tree.summary()

    def session_clone_live(prompt_audio: str, prompt_text: str, target_text: str, seed: int, n_candidates: int,
                           stream: bool, max_tries: int = 1, threshold: float = checks.DEFAULT_RETRY_THRESHOLD,
                           tree: TakeTree = None, request: gr.Request = None, progress=gr.Progress()):
        """Clone a voice into this session; with ``stream``, candidate 1 plays while it is generated.

        Args:
            prompt_audio: recording of the voice to clone.
            prompt_text: what the prompt says.
            target_text: what to say.
            seed: seed of the first candidate; -1 for random seeds.
            n_candidates: how many takes to generate (1-4).
            stream: play candidate 1 while it is generated (each take is then its stream).
            max_tries: 1-9; above 1 the takes are whole (not streamed) and re-rolled until WER/CER <= threshold.
            threshold: the WER/CER that stops the re-rolls.
        """
        if stream and int(max_tries or 1) <= 1:
            tree = studio.ensure_workdir(tree, _session_hash(request))
            seeds = studio.candidate_seeds(seed, int(n_candidates or 1))
            tree, _ = yield from api_mod.play(studio.clone_stream(tree, prompt_audio, prompt_text, target_text,
                                                                  seeds, session=_session_hash(request)), 2)
        else:
            tree, _ = session_clone(prompt_audio, prompt_text, target_text, seed, n_candidates, max_tries, threshold,
                                    tree=tree, request=request, progress=progress)
        yield gr.skip(), tree, tree.summary()

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
            tree = studio.ensure_workdir(tree, _session_hash(request))
            s = studio.candidate_seeds(seed, 1)[0]
            tree, _ = yield from api_mod.play(studio.edit_stream(tree, base_take, edit_type, edit_info, None, s), 2)
        else:
            tree, _ = session_edit(base_take, edit_type, edit_info, n_iterations, seed, first_word, last_word,
                                   region_start, region_end, max_tries, threshold, tree=tree, request=request,
                                   progress=progress)
        yield gr.skip(), tree, tree.summary()

    def session_upload(audio: str, text: str, tree: TakeTree, request: gr.Request = None):
        """Add your own recording to this session as a root take, to edit it.

        Args:
            audio: the recording.
            text: what it says.
        """
        tree = studio.ensure_workdir(tree, _session_hash(request))
        tree, _ = studio.upload(tree, audio, text)
        return tree, tree.summary()

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
        tree = studio.ensure_workdir(tree, _session_hash(request))
        s = studio.candidate_seeds(seed, 1)[0]
        tree, _ = studio.edit(tree, base_take, edit_type, edit_info, None, int(n_iterations or 1), s, progress,
                              region=_region(first_word, last_word, region_start, region_end),
                              max_tries=int(max_tries or 1),
                              threshold=float(threshold))
        return tree, tree.summary()

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
        tree = studio.ensure_workdir(tree, _session_hash(request))
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
            tree = studio.ensure_workdir(tree, _session_hash(request))
            s = studio.candidate_seeds(seed, 1)[0]
            tree, _ = yield from api_mod.play(
                studio.edit_stream(tree, base_take, catalog.PARALINGUISTIC, None, new_text, s), 2)
        else:
            tree, _ = session_paralinguistic(base_take, new_text, seed, first_word, last_word, tree=tree,
                                             request=request, progress=progress)
        yield gr.skip(), tree, tree.summary()

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
        tree = studio.ensure_workdir(tree, _session_hash(request))
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

    # ------------------------------------------------------------------ views (private)
    def refresh(tree: TakeTree):
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
        if not take_id or not tree.has(take_id):
            return (None, gr.skip(), gr.skip(), views.base_summary(tree, None), views.base_summary(tree, None),
                    gr.skip(), gr.CheckboxGroup(choices=[], value=[]), None)
        take = tree.get(take_id)
        # A: the parent (what the edit changed); for a root, a sibling candidate of the same clone.
        siblings = [x for x in next(a for a in tree.actions if a.id == take.action).takes if x != take_id]
        a = take.parent or (siblings[0] if siblings else gr.skip())
        return (take_id, a, take_id, views.base_summary(tree, take_id), views.base_summary(tree, take_id),
                take.text, gr.CheckboxGroup(choices=word_choices(take), value=[]), take_envelope(take))

    def preview(text: str, base: str | None, tree: TakeTree):
        dur = tree.get(base).duration if base and tree.has(base) else None
        return views.tag_preview(text, dur)

    def on_type(edit_type: str):
        opts = catalog.OPTIONS.get(edit_type, ())
        return gr.Dropdown(choices=[(t(f"opt.{o}"), o) for o in opts], value=opts[0] if opts else None,
                           visible=bool(opts))

    def pick(i: int):
        def pick_candidate(tree: TakeTree):
            clones = [a for a in tree.actions if a.kind == "clone"]
            if not clones or i >= len(clones[-1].takes):
                return gr.skip(), gr.skip()
            return gr.Radio(value=clones[-1].takes[i]), gr.Tabs(selected="tab-edit")
        return pick_candidate

    # ------------------------------------------------------------------ wiring
    st, hist = c.tree_state, c.history_json
    view_outs = [c.timeline, c.take_a, c.take_b, *c.cand_cols, *c.cand_audio]

    def chain(event):
        event.then(refresh, [st], view_outs, **_PRIVATE)

    words_tab.wire(studio, c, chain, _session_hash)

    clone_inputs = [c.prompt_audio, c.prompt_text, c.target_text, c.clone_seed, c.n_candidates]
    retry_inputs = [c.clone_tries, c.clone_threshold]
    clone_check = lambda *a: _pad(validators["clone"](*a[:4]), len(a))      # noqa: E731
    # the checked clone with re-rolls, whole takes (an API endpoint on a hidden button)
    chain(c.session_clone_btn.click(
        session_clone, [*clone_inputs, *retry_inputs, st], [st, hist], api_name="session_clone_checked",
        concurrency_id=GPU, **_SESSION, validator=clone_check))
    clone_ev = c.clone_btn.click(
        session_clone_live, [*clone_inputs, c.clone_stream, *retry_inputs, st], [c.live_clone, st, hist],
        api_name="session_clone_stream", concurrency_id=GPU, **_SESSION,
        show_progress_on=[c.cand_audio[0], c.timeline], validator=clone_check)
    chain(clone_ev)
    # Stop: Gradio closes the running generator, which closes the engine's stream (the engine stops); the
    # session tree is only replaced when a stream ends, so a stopped action adds no take.
    c.clone_stop.click(None, None, None, cancels=[clone_ev], **_PRIVATE)
    chain(c.upload_btn.click(
        session_upload, [c.upload_audio, c.upload_text, st], [st, hist], api_name="session_upload", **_SESSION,
        validator=lambda audio, text, tree: [api_mod.check_audio(audio, "a recording"),
                                             api_mod.check_text(text, "its transcript", required=False),
                                             gr.validate(True, "")]))
    edit_inputs = [c.base_take, c.edit_type, c.edit_info, c.n_iterations, c.edit_seed]
    region_inputs = [c.region_first, c.region_last, c.region_start, c.region_end, c.edit_tries, c.edit_threshold]

    def base_check(tree, base, kind, text, n=1) -> dict:
        """The base take is chosen, and the engine's work estimate for it is within the cap (no tree: only
        the first)."""
        if not base:
            return gr.validate(False, "Select the take to edit in the timeline first.")
        return validators["take_work"](kind, tree, base, text, n)

    def edit_check(base, et, ei, n, seed, *rest):
        type_ok, info_ok = api_mod.check_edit(et, ei)
        n_ok, tree = api_mod.check_iterations(n), rest[-1]
        text = tree.get(base).text if base and tree is not None and tree.has(base) else ""
        base_ok = base_check(tree, base, str(et), text, n) if type_ok["is_valid"] and n_ok["is_valid"] else \
            base_check(None, base, "", "")
        return [base_ok, type_ok, info_ok, n_ok, api_mod.check_seed(seed), *[gr.validate(True, "")] * len(rest)]

    def para_check(base, text, seed, *rest):
        text_ok = api_mod.check_text(text, "the text with [tags]")
        base_ok = base_check(rest[-1], base, catalog.PARALINGUISTIC, text) if text_ok["is_valid"] else \
            base_check(None, base, "", "")
        return _pad([base_ok, text_ok, api_mod.check_seed(seed)], 3 + len(rest))
    chain(c.session_edit_btn.click(
        session_edit, [*edit_inputs, *region_inputs, st], [st, hist], api_name="session_edit_checked",
        concurrency_id=GPU, **_SESSION, validator=edit_check))
    edit_ev = c.edit_btn.click(
        session_edit_live, [*edit_inputs, c.edit_stream, *region_inputs, st], [c.live_edit, st, hist],
        api_name="session_edit_stream", concurrency_id=GPU, **_SESSION, show_progress_on=[c.timeline, c.audio_b],
        validator=edit_check)
    chain(edit_ev)
    c.edit_stop.click(None, None, None, cancels=[edit_ev], **_PRIVATE)
    chain(c.session_para_btn.click(
        session_paralinguistic, [c.base_take, c.para_text, c.para_seed, c.region_first, c.region_last, st], [st, hist],
        api_name="session_paralinguistic_checked", concurrency_id=GPU, **_SESSION,
        show_progress_on=[c.timeline, c.tag_view],
        validator=para_check))
    para_ev = c.para_btn.click(
        session_paralinguistic_live, [c.base_take, c.para_text, c.para_seed, c.para_stream, c.region_first,
                                      c.region_last, st], [c.live_para, st, hist],
        api_name="session_paralinguistic_stream", concurrency_id=GPU, **_SESSION,
        show_progress_on=[c.timeline, c.tag_view], validator=para_check)
    chain(para_ev)
    c.para_stop.click(None, None, None, cancels=[para_ev], **_PRIVATE)
    # Today's session endpoints keep their signatures (gradio clients fill no defaults for undocumented
    # endpoints), on hidden buttons: the whole take, one try.
    old_clone, old_edit, old_para = (gr.Button(visible=False) for _ in range(3))

    def clone_v1(prompt_audio: str, prompt_text: str, target_text: str, seed: int, n_candidates: int,
                 tree: TakeTree, request: gr.Request = None, progress=gr.Progress()):
        """Clone a voice into this session (see session_clone_checked)."""
        return session_clone(prompt_audio, prompt_text, target_text, seed, n_candidates, tree=tree,
                             request=request, progress=progress)

    def edit_v1(base_take: str, edit_type: str, edit_info: str, n_iterations: int, seed: int, tree: TakeTree,
                request: gr.Request = None, progress=gr.Progress()):
        """Edit a whole take of this session (see session_edit_checked)."""
        return session_edit(base_take, edit_type, edit_info, n_iterations, seed, tree=tree, request=request,
                            progress=progress)

    def para_v1(base_take: str, new_text: str, seed: int, tree: TakeTree, request: gr.Request = None,
                progress=gr.Progress()):
        """Add non-verbal sounds to a take of this session (see session_paralinguistic_checked)."""
        return session_paralinguistic(base_take, new_text, seed, tree=tree, request=request, progress=progress)

    chain(old_clone.click(clone_v1, [c.prompt_audio, c.prompt_text, c.target_text, c.clone_seed, c.n_candidates, st],
                          [st, hist], api_name="session_clone", concurrency_id=GPU, **_SESSION,
                          validator=clone_check))
    chain(old_edit.click(edit_v1, [c.base_take, c.edit_type, c.edit_info, c.n_iterations, c.edit_seed, st],
                         [st, hist], api_name="session_edit", concurrency_id=GPU, **_SESSION,
                         validator=edit_check))
    chain(old_para.click(para_v1, [c.base_take, c.para_text, c.para_seed, st], [st, hist],
                         api_name="session_paralinguistic", concurrency_id=GPU, **_SESSION,
                         validator=para_check))
    chain(c.undo_btn.click(undo, [st], [st, hist], api_name="undo", **_SESSION))
    ev = c.replay_btn.click(replay_recipe, [c.recipe_in, st], [st, hist, c.replay_report], api_name="replay_recipe",
                            concurrency_id=GPU, **_SESSION, show_progress_on=[c.timeline, c.replay_report])
    chain(ev)
    c.export_btn.click(export_recipe, [st], [c.export_file], api_name="export_recipe", **_SESSION).success(
        lambda: gr.File(visible=True), None, [c.export_file], **_PRIVATE)
    gr.on([c.take_a.change, c.take_b.change], compare, [c.take_a, c.take_b, st],
          [c.audio_a, c.image_a, c.info_a, c.audio_b, c.image_b, c.info_b], api_name="compare", **_SESSION)
    c.timeline.change(on_select, [c.timeline, st],
                      [c.base_take, c.take_a, c.take_b, c.base_md_edit, c.base_md_para, c.para_text, c.region_words,
                       c.region_wave], **_PRIVATE)
    c.region_wave.select(span_from_plot, [c.base_take, st], [c.region_start, c.region_end, c.region_words],
                         **_PRIVATE, queue=False)
    c.region_words.change(_ticked_span, [c.region_words], [c.region_first, c.region_last, c.region_start,
                                                           c.region_end], **_PRIVATE, queue=False)
    c.para_text.change(preview, [c.para_text, c.base_take, st], [c.tag_view], **_PRIVATE, queue=False)
    c.edit_type.change(on_type, [c.edit_type], [c.edit_info], **_PRIVATE, queue=False)
    for i, btn in enumerate(c.cand_btns):
        btn.click(pick(i), [st], [c.timeline, c.tabs], **_PRIVATE)
    c.demo.load(history, [st], [hist], api_name="history", **_SESSION)
