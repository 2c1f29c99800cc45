"""The edit tab's word edit (stepedit_core.words): the base take's transcript, editable; applying it regenerates
only the changed words, as a new take of the session (replayable: a recipe edit with edit_type "words")."""
from __future__ import annotations

import gradio as gr

from stepedit_core import words

from .. import api as api_mod
from ..history import TakeTree
from ..runner import GPU
from .timeline import NO_BASE, Session, session_hash


def take_text(base: str | None, tree: TakeTree | None) -> str:
    """The transcript of the selected take (the word box starts from it)."""
    return tree.get(base).text if base and tree is not None and tree.has(base) else ""


def wire(session: Session, *, base_take: gr.Textbox, words_text: gr.Textbox, words_btn: gr.Button,
         seed: gr.Number, timeline: gr.Radio, audio_b: gr.Audio) -> None:
    """Wire the edit tab's word box and its button (``seed``: the edit tab's; the progress shows on the timeline
    and take B)."""
    studio = session.studio

    def session_words(base_take: str, new_text: str, seed: int, tree: TakeTree = None,
                      request: gr.Request = None, progress=gr.Progress()):
        """Change the words of a take of this session (replace, insert or delete up to 8 words); only the changed
        words are regenerated, in the take's voice, and become a new take.

        Args:
            base_take: id of the take to edit, e.g. "T2".
            new_text: the take's transcript with the words changed.
            seed: seed of the new words; -1 for random.
        """
        tree = studio.ensure_workdir(tree, session_hash(request))
        s = studio.candidate_seeds(seed, 1)[0]
        tree, _ = studio.edit(tree, base_take, words.WORDS, None, new_text, 1, s, progress)
        return tree, tree.summary()

    def words_check(base, text, seed, tree):
        if not base:
            return [gr.validate(False, NO_BASE), gr.validate(True, ""),
                    gr.validate(True, ""), gr.validate(True, "")]
        return [gr.validate(True, ""), api_mod.check_text(text, "the new text"), api_mod.check_seed(seed),
                gr.validate(True, "")]

    session.chain(words_btn.click(session_words, [base_take, words_text, seed, session.tree],
                                  [session.tree, session.history], api_name="session_edit_words",
                                  concurrency_id=GPU, api_visibility="undocumented",
                                  show_progress_on=[timeline, audio_b], validator=words_check))
    base_take.change(take_text, [base_take, session.tree], [words_text], api_visibility="private", queue=False)
