"""No stale state: what a new action makes out of date is cleared when the action starts.

- a new prompt recording (upload, microphone, clear) empties the transcript box: the old transcript
  belongs to the old voice, and a wrong transcript silently hurts the clone;
- a new clone / edit / paralinguistic run empties its live player, so the previous take never plays as if
  it were the new one (a run that fails or is not streamed would otherwise leave it there);
- an exported recipe is hidden once the session changes (``history_json`` is rewritten by every action),
  because it no longer describes the session.

All listeners are private UI refreshes outside the queue; each tab (app_ui/tabs/) calls the rule it needs.
"""
from __future__ import annotations

import gradio as gr

_PRIVATE = {"api_visibility": "private", "queue": False}


def _empty():
    return None


def clear_transcript_on_new_prompt(prompt_audio: gr.Audio, prompt_text: gr.Textbox) -> None:
    for event in (prompt_audio.upload, prompt_audio.stop_recording, prompt_audio.clear):
        event(lambda: "", None, [prompt_text], **_PRIVATE)


def clear_live_on_run(button: gr.Button, player: gr.Audio) -> None:
    button.click(_empty, None, [player], **_PRIVATE)


def hide_stale_recipe(history_json: gr.JSON, export_file: gr.File) -> None:
    history_json.change(lambda: gr.File(value=None, visible=False), None, [export_file], **_PRIVATE)
