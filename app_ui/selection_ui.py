"""The session UI's region selection: ticked words or a time range (typed, or brushed on the region plot) ->
the studio's region dict, through the service's one parser with messages naming this screen's fields."""
from __future__ import annotations

import gradio as gr
import numpy as np

from stepedit_core import regions
from stepedit_core.errors import StepEditError
from stepedit_core.interface import AudioClip
from stepedit_core.service import FieldNames, parse_selection, recipe_of_selection

from .history import TakeTree
from .plots import envelope_frame
from .runner import error_message

UI_FIELDS = FieldNames("the first word", "the last word", "the start time", "the end time")   # in messages


def _region(first: int | None, last: int | None, start: float | None, end: float | None) -> dict | None:
    """The selection (word indices, -1 = none, or a time range) -> the studio's region dict (the service's one
    parser); ticked words win over a time range (the latest selection clears the other)."""
    if not all(v is None or v == "" or float(v) < 0 for v in (first, last)):
        start = end = None
    try:
        return recipe_of_selection(parse_selection(first, last, start, end, names=UI_FIELDS))
    except StepEditError as exc:
        raise gr.Error(error_message(exc)) from exc


def _ticked_span(ticked: list | None):
    """Ticked word indices -> (first, last) of the span they cover, and the time range cleared (the latest
    selection wins); (-1, -1) and the time range untouched when nothing is ticked."""
    idx = sorted(int(w) for w in ticked or [])
    return (idx[0], idx[-1], None, None) if idx else (-1, -1, gr.skip(), gr.skip())


def word_choices(take) -> list[tuple[str, int]]:
    """CheckboxGroup choices for a take's words: ("3 · story (1.2 s)", 3)."""
    words = (take.check or {}).get("words") or []
    return [(f"{i} · {w} ({a:.1f} s)", i) for i, (w, a, _b) in enumerate(words)]


def take_envelope(take) -> object:
    """The envelope table of a take's audio for the region plot (empty when the file is unreadable)."""
    try:
        clip = AudioClip.from_file(take.audio)
    except Exception:  # noqa: BLE001 -- a missing picture must not block selecting the take
        return envelope_frame(np.zeros(0, np.float32), 24000)
    return envelope_frame(clip.samples, clip.sample_rate)


def span_from_plot(base: str | None, tree: TakeTree, evt: gr.SelectData):
    """A span brushed on the region plot -> (from, to) seconds, checked against the base take like a typed
    range (outside the clip, empty, inside a single sound); the ticked words are cleared (a range replaces them)."""
    if not base or not tree.has(base):
        raise gr.Error("Select the take to edit in the timeline first.")
    span = evt.index if isinstance(evt.index, (list, tuple)) and len(evt.index) == 2 else evt.value
    if not (isinstance(span, (list, tuple)) and len(span) == 2):
        raise gr.Error(f"The waveform selection {str(span)[:40]!r} is not a time range.")
    try:
        a, b = regions.check_seconds(span[0], span[1], tree.get(base).duration)
    except StepEditError as exc:
        raise gr.Error(error_message(exc)) from exc
    return round(a, 3), round(b, 3), gr.CheckboxGroup(value=[])
