"""No stale state: what a new action makes out of date is cleared when the action starts.

- a new prompt recording (upload, microphone, clear) empties the transcript box: the old transcript
  belongs to the old voice, and a wrong transcript silently hurts the clone;
- a new clone / edit / paralinguistic run empties its live player, so the previous take never plays as if
  it were the new one (a run that fails or is not streamed would otherwise leave it there);
- an exported recipe is hidden once the session changes (``history_json`` is rewritten by every action),
  because it no longer describes the session.

All listeners are private UI refreshes outside the queue; the session logic (events.py) is untouched.
"""
from __future__ import annotations

import gradio as gr

_PRIVATE = {"api_visibility": "private", "queue": False}


def _empty():
    return None


def wire_freshness(c) -> None:
    """``c``: the namespace of ui.build_blocks' components."""
    for event in (c.prompt_audio.upload, c.prompt_audio.stop_recording, c.prompt_audio.clear):
        event(lambda: "", None, [c.prompt_text], **_PRIVATE)
    for button, player in ((c.clone_btn, c.live_clone), (c.edit_btn, c.live_edit), (c.para_btn, c.live_para)):
        button.click(_empty, None, [player], **_PRIVATE)
    c.history_json.change(lambda: gr.File(value=None, visible=False), None, [c.export_file], **_PRIVATE)
