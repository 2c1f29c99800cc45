"""① Voice clone: a prompt recording and its transcript, the text to say, and up to MAX_CANDIDATES takes
(candidates) of which any can become the base of the next edit; saved voices are picked under Advanced."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from stepedit_core import catalog, checks
from stepedit_core.interface import Capabilities

from .. import api as api_mod
from .. import first_screen, freshness
from ..history import TakeTree
from ..i18n import t
from ..runner import GPU
from ..studio import MAX_CANDIDATES
from .timeline import PRIVATE, SESSION, Session, TimelineWidgets, pad_checks, session_hash

# One version per click: the take (and the streamed first audio) comes soonest; more versions are one
# slider away under Advanced (bench/first_contact.py, BENCHMARKS.md).
DEFAULT_CANDIDATES = 1

_LANG_TAG_JS = """(text) => {{
  const tag = "[{tag}]";
  const rest = (text || "").replace(/^\\s*\\[(Sichuanese|Cantonese|Japanese|Korean)\\]\\s*/i, "");
  return tag + rest;
}}"""


@dataclass(frozen=True)
class CloneTab:
    prompt_audio: gr.Audio
    prompt_text: gr.Textbox
    transcribe_btn: gr.Button
    target_text: gr.Textbox
    clone_btn: gr.Button
    stream: gr.Checkbox
    stop: gr.Button
    lang_btns: tuple                # (tag, button): each puts [tag] at the start of the target text
    voice_pick: gr.Dropdown         # a saved voice fills the prompt (the Script tab's library)
    n_candidates: gr.Slider
    seed: gr.Number
    tries: gr.Slider
    threshold: gr.Slider
    live: gr.Audio
    cand_cols: tuple                # MAX_CANDIDATES columns of candidate players and "use" buttons
    cand_audio: tuple
    cand_btns: tuple
    checked_btn: gr.Button          # hidden: the session_clone_checked endpoint
    v1_btn: gr.Button               # hidden: the session_clone endpoint of the first release
    examples: gr.Examples | None    # the shipped examples (None when examples/ is missing)


def build(caps: Capabilities) -> CloneTab:
    """The clone tab (call inside ``gr.Tabs``)."""
    with gr.Tab(t("tab_clone"), id="tab-clone"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                examples_slot = gr.Column()       # filled below, once the fields exist
                prompt_audio = gr.Audio(label=t("prompt_audio"), sources=["upload", "microphone"],
                                        type="filepath", elem_id="prompt-audio")
                with gr.Row(equal_height=True):
                    prompt_text = gr.Textbox(label=t("prompt_text"), lines=1, scale=5, elem_id="prompt-text")
                    transcribe_btn = gr.Button(t("transcribe"), scale=1, size="sm", min_width=90,
                                               interactive=caps.transcribe, elem_id="transcribe")
                target_text = gr.Textbox(label=t("target_text"), lines=2, max_length=1000, elem_id="target-text")
                with gr.Row(equal_height=True):
                    clone_btn = gr.Button(t("generate"), variant="primary", elem_id="clone-btn",
                                          interactive=caps.clone, scale=3)
                    stream = gr.Checkbox(True, label=t("stream"), elem_id="clone-stream", scale=1)
                    stop = gr.Button(t("stop"), size="sm", elem_id="clone-stop", scale=1)
                gr.Markdown(t("lang_tags"), elem_classes="small-note")
                with gr.Row():
                    lang_btns = tuple((tag, gr.Button(f"[{tag}]", size="sm", elem_classes="tag-btn"))
                                      for tag in catalog.LANGUAGE_TAGS)
                voice_pick, n_candidates, seed, tries, threshold = _advanced()
                examples = _examples(examples_slot, [prompt_audio, prompt_text, target_text])
            with gr.Column(scale=4):
                live, cand_cols, cand_audio, cand_btns = _candidates()
        checked_btn, v1_btn = gr.Button(visible=False), gr.Button(visible=False)
    return CloneTab(prompt_audio, prompt_text, transcribe_btn, target_text, clone_btn, stream, stop, lang_btns,
                    voice_pick, n_candidates, seed, tries, threshold, live, cand_cols, cand_audio, cand_btns,
                    checked_btn, v1_btn, examples)


def _examples(slot: gr.Column, fields: list) -> gr.Examples | None:
    """The shipped examples in ``slot`` (above the fields they fill: prompt audio, transcript, target text)."""
    examples_meta = first_screen.examples()
    if not examples_meta:
        return None
    with slot:
        return gr.Examples([row for _, row in examples_meta], fields, label=t("examples"),
                           example_labels=[label for label, _ in examples_meta], cache_examples=False,
                           elem_id="clone-examples")


def _advanced() -> tuple:
    """Advanced: the saved-voice picker, the number of candidates, seed, re-rolls and their threshold."""
    with gr.Accordion(t("advanced"), open=False, elem_id="clone-advanced"):
        voice_pick = gr.Dropdown([], label=t("voice_pick"), info=t("voice_pick_info"), value=None,
                                 allow_custom_value=True, elem_id="voice-pick")
        with gr.Row():
            n_candidates = gr.Slider(1, MAX_CANDIDATES, value=DEFAULT_CANDIDATES, step=1, label=t("n_candidates"),
                                     info=t("n_candidates_info"), elem_id="n-candidates")
            seed = gr.Number(label=t("seed"), info=t("seed_info"), value=-1, precision=0, elem_id="clone-seed")
        with gr.Row():
            tries = gr.Slider(1, checks.MAX_RETRIES + 1, value=1, step=1, label=t("max_tries"),
                              info=t("max_tries_info"), elem_id="clone-tries")
            threshold = gr.Slider(0.0, 0.5, value=checks.DEFAULT_RETRY_THRESHOLD, step=0.01, label=t("threshold"),
                                  info=t("threshold_info"), elem_id="clone-threshold")
    return voice_pick, n_candidates, seed, tries, threshold


def _candidates() -> tuple:
    """The live player, then one column per candidate: its player and "use this take"."""
    # the live stream is AAC that Gradio names audio-stream.mp3: no download here, the take is the download
    live = gr.Audio(label=t("live"), streaming=True, autoplay=True, interactive=False, buttons=[],
                    elem_id="live-clone")
    gr.Markdown(t("candidates"))
    cols, audios, btns = [], [], []
    for i in range(MAX_CANDIDATES):
        with gr.Column(visible=i == 0, variant="panel") as col:
            audios.append(gr.Audio(label=f"#{i + 1}", type="filepath", interactive=False, buttons=["download"],
                                   elem_id=f"cand-{i + 1}"))
            btns.append(gr.Button(t("use_take"), size="sm", elem_id=f"use-cand-{i + 1}"))
        cols.append(col)
    return live, tuple(cols), tuple(audios), tuple(btns)


# ---------------------------------------------------------------------- actions (undocumented API)
def _actions(session: Session) -> tuple:
    """session_clone (whole takes, re-rolls), session_clone_live (streamed), clone_v1: bound to the studio."""
    studio = session.studio

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
        tree = studio.ensure_workdir(tree, session_hash(request))
        n = int(n_candidates or 1)
        tries = int(max_tries or 1)
        seeds = studio.candidate_seeds(seed, n * tries)[::tries]   # candidate i re-rolls s_i, s_i+1, ... s_i+tries-1
        tree, _ = studio.clone(tree, prompt_audio, prompt_text, target_text, seeds, progress,
                               max_tries=int(max_tries or 1), threshold=float(threshold),
                               session=session_hash(request))
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
            tree = studio.ensure_workdir(tree, session_hash(request))
            seeds = studio.candidate_seeds(seed, int(n_candidates or 1))
            tree, _ = yield from api_mod.play(studio.clone_stream(tree, prompt_audio, prompt_text, target_text,
                                                                  seeds, session=session_hash(request)), 2)
        else:
            tree, _ = session_clone(prompt_audio, prompt_text, target_text, seed, n_candidates, max_tries, threshold,
                                    tree=tree, request=request, progress=progress)
        yield gr.skip(), tree, tree.summary()

    # Today's session endpoints keep their signatures (gradio clients fill no defaults for undocumented
    # endpoints), on hidden buttons: the whole take, one try.
    def clone_v1(prompt_audio: str, prompt_text: str, target_text: str, seed: int, n_candidates: int,
                 tree: TakeTree, request: gr.Request = None, progress=gr.Progress()):
        """Clone a voice into this session (see session_clone_checked)."""
        return session_clone(prompt_audio, prompt_text, target_text, seed, n_candidates, tree=tree,
                             request=request, progress=progress)

    return session_clone, session_clone_live, clone_v1


def _pick(i: int):
    """"Use this take" of candidate ``i``: select it in the timeline and go to the edit tab."""
    def pick_candidate(tree: TakeTree):
        clones = [a for a in tree.actions if a.kind == "clone"]
        if not clones or i >= len(clones[-1].takes):
            return gr.skip(), gr.skip()
        return gr.Radio(value=clones[-1].takes[i]), gr.Tabs(selected="tab-edit")
    return pick_candidate


def wire(session: Session, tab: CloneTab, *, timeline: TimelineWidgets, tabs: gr.Tabs) -> None:
    """The clone tab's session events (the public clone / transcribe endpoints: ui.wire_public_api)."""
    session_clone, session_clone_live, clone_v1 = _actions(session)
    st, hist = session.tree, session.history
    clone_inputs = [tab.prompt_audio, tab.prompt_text, tab.target_text, tab.seed, tab.n_candidates]
    retry_inputs = [tab.tries, tab.threshold]
    clone_check = lambda *a: pad_checks(session.validators["clone"](*a[:4]), len(a))      # noqa: E731
    # the checked clone with re-rolls, whole takes (an API endpoint on a hidden button)
    session.chain(tab.checked_btn.click(
        session_clone, [*clone_inputs, *retry_inputs, st], [st, hist], api_name="session_clone_checked",
        concurrency_id=GPU, **SESSION, validator=clone_check))
    clone_ev = tab.clone_btn.click(
        session_clone_live, [*clone_inputs, tab.stream, *retry_inputs, st], [tab.live, st, hist],
        api_name="session_clone_stream", concurrency_id=GPU, **SESSION,
        show_progress_on=[tab.cand_audio[0], timeline.timeline], validator=clone_check)
    session.chain(clone_ev)
    # Stop: Gradio closes the running generator, which closes the engine's stream (the engine stops); the
    # session tree is only replaced when a stream ends, so a stopped action adds no take.
    tab.stop.click(None, None, None, cancels=[clone_ev], **PRIVATE)
    session.chain(tab.v1_btn.click(clone_v1, [*clone_inputs, st], [st, hist], api_name="session_clone",
                                   concurrency_id=GPU, **SESSION, validator=clone_check))
    for i, btn in enumerate(tab.cand_btns):
        btn.click(_pick(i), [st], [timeline.timeline, tabs], **PRIVATE)
    for tag, btn in tab.lang_btns:
        btn.click(None, [tab.target_text], [tab.target_text], js=_LANG_TAG_JS.format(tag=tag))
    freshness.clear_transcript_on_new_prompt(tab.prompt_audio, tab.prompt_text)
    freshness.clear_live_on_run(tab.clone_btn, tab.live)
