"""Readable refusals for inputs Gradio itself would reject before the app's validators see them.

Gradio checks two kinds of input before an event's ``validator`` runs (both in ``Blocks.preprocess_data``):

- a file input (``gr.Audio``, ``gr.File``) must be a FileData dict pointing into Gradio's upload folder. A
  plain string ("/etc/passwd"), a path outside the upload folder ("../../x.wav", "C:\\x.wav",
  "file:///etc/passwd") or a malformed dict raises there; Gradio answers ``POST /queue/join`` with
  ``400 {"detail": "Cannot move <absolute path> ..."}``, which quotes a server path (the working directory
  for relative names), and gradio_client reads only 422 bodies, so its users see a bare "400 Bad Request";
- a ``gr.Radio`` refuses a value outside its choices the same way.

:class:`GuardedBlocks` inspects file inputs first (with Gradio's own path check, so exactly the same files
pass) and hands the validator a :class:`RefusedFile` instead of raising; the validator's ``gr.validate``
verdict then reaches clients as a 422 naming the input (gradio_client: ``ValidationError``). Events
without a validator get a ``gr.Error`` with the same text. :class:`OpenRadio` lets unknown values through
to the validator, which names them ("Unknown edit type 'EMOTION'; use one of ...").
"""
from __future__ import annotations

import os
import re
from typing import Any

import gradio as gr
from gradio import processing_utils
from gradio import utils as gradio_utils
from gradio.data_classes import FileData
from gradio_client import utils as client_utils

from stepedit_core.validation import scrub_paths, shown

UPLOAD_HINT = "upload the file first (gradio_client: handle_file(path); HTTP: POST /gradio_api/upload)"


class RefusedFile(str):
    """A file input that could not be accepted, passed to validators in its place; ``reason`` says why."""

    def __new__(cls, reason: str):
        obj = super().__new__(cls, "")
        obj.reason = reason
        return obj


def _last_part(path: str) -> str:
    """The last component of a POSIX, Windows or file: URL path (never its folders)."""
    return re.split(r"[\\/]", path.rstrip("\\/"))[-1] or shown(path)


def file_refusal(value: Any, check_in_upload_folder: bool = True) -> str | None:
    """Why Gradio would not accept ``value`` for a file input (None: it would). Names what was sent by its
    last path component only."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return f"an empty text was sent instead of a file: {UPLOAD_HINT}"
        return f"{shown(_last_part(value))} was sent as text, not as a file: {UPLOAD_HINT}"
    if not client_utils.is_file_obj_with_meta(value):
        return f"a file was expected (got {type(value).__name__} {shown(value)}): {UPLOAD_HINT}"
    try:
        payload = FileData(**value)
    except Exception:  # noqa: BLE001  pydantic reports malformed FileData in several ways
        return f"the file description {shown(value)} is malformed: {UPLOAD_HINT}"
    path = payload.path
    if not isinstance(path, str) or not path or client_utils.is_http_url_like(path):
        return None if path else f"the file description has no path: {UPLOAD_HINT}"
    if gradio_utils.is_static_file(payload):       # Gradio serves these as they are (gr.set_static_paths)
        return None
    name = shown(_last_part(path))
    try:
        processing_utils._check_allowed(path, check_in_upload_folder)   # noqa: SLF001  Gradio's own rule
    except processing_utils.InvalidPathError:
        return f"{name} is not a file uploaded to this app: {UPLOAD_HINT}"
    except Exception:  # noqa: BLE001  odd strings (NUL bytes, ...) fail path handling itself
        return f"{name} is not a usable file path: {UPLOAD_HINT}"
    if "\x00" in path or not os.path.isfile(path):
        return f"{name} was not found on the server (uploads expire): {UPLOAD_HINT}"
    return None


def _is_url(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("path"), str) and \
        client_utils.is_http_url_like(value["path"])


def _is_file_input(block: Any) -> bool:
    model = getattr(block, "data_model", None)
    return isinstance(model, type) and issubclass(model, FileData)


class GuardedBlocks(gr.Blocks):
    """``gr.Blocks`` whose file inputs are refused with a readable message (see the module docstring), and
    whose raw calls with too few values name the missing inputs by their labels (Gradio's own message lists
    component object reprs)."""

    def validate_inputs(self, block_fn, inputs):
        wanted = list(block_fn.inputs)
        if len(inputs) < len(wanted):
            missing = [_input_name(block, i) for i, block in enumerate(wanted) if i >= len(inputs)]
            raise gr.Error(f"{len(inputs)} of {len(wanted)} input values were sent; missing: "
                           f"{', '.join(missing)}. Send every input in order (null for an optional one).")

    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        refused: dict[int, str] = {}
        inputs = list(inputs)
        prop_inputs = getattr(block_fn, "component_prop_inputs", ()) or ()
        for i, block in enumerate(block_fn.inputs):
            if i < len(inputs) and i not in prop_inputs and _is_file_input(block):
                reason = file_refusal(inputs[i], check_in_upload_folder=not explicit_call)
                if reason is None and _is_url(inputs[i]):
                    try:      # Gradio fetches URLs itself (public hosts only); its refusals become ours
                        inputs[i] = await processing_utils.async_move_files_to_cache(
                            inputs[i], block, check_in_upload_folder=not explicit_call)
                    except Exception as exc:  # noqa: BLE001  safehttpx / httpx raise assorted types
                        reason = (f"{shown(_last_part(inputs[i]['path']))} could not be fetched "
                                  f"({scrub_paths(str(exc)).strip() or type(exc).__name__}): {UPLOAD_HINT}")
                if reason:
                    refused[i], inputs[i] = reason, None
        processed = await super().preprocess_data(block_fn, inputs, state, explicit_call)
        if refused:
            if not getattr(block_fn, "is_validator_function", False):
                first = min(refused)
                raise gr.Error(_labelled(block_fn.inputs[first], refused[first]))
            for i, reason in refused.items():
                processed[i] = RefusedFile(reason)
        return processed


def _input_name(block: Any, index: int) -> str:
    """An input as a caller knows it: its label, else its position and kind ("input 3 (Number)")."""
    label = getattr(block, "label", None)
    return repr(label) if isinstance(label, str) and label else f"input {index + 1} ({type(block).__name__})"


def _labelled(block: Any, reason: str) -> str:
    label = getattr(block, "label", None)
    return f"{label}: {reason}" if isinstance(label, str) and label else reason


class OpenRadio(gr.Radio):
    """A ``gr.Radio`` that passes a string outside its choices on to the event's validator (which names it)
    instead of refusing it with a bare 400; the browser shows and sends only the choices."""

    is_template = True      # rendered by the Radio front end

    def preprocess(self, payload):
        if isinstance(payload, str) and payload not in [value for _, value in self.choices]:
            return payload
        return super().preprocess(payload)
