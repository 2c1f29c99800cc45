"""Helpers of the app's actions (studio.py, oneshot.py, recipes.py): decode an upload, read a selection and retry
settings (through the service's one parser and checks), relay and drain streams, chunk bytes, progress steps."""
from __future__ import annotations

import io
import os
from typing import Generator

import numpy as np
import soundfile as sf

import gradio as gr

from stepedit_core import checks, regions, validation
from stepedit_core.audio import OUTPUT_SAMPLE_RATE
from stepedit_core.errors import StepEditError
from stepedit_core.interface import AudioClip
from stepedit_core.service import selection_of_recipe

from .runner import EngineError, error_message

MAX_CANDIDATES = 4              # clone candidates per click (each a take with its own seed)
# A streaming action yields 24 kHz float32 chunks and *returns* what the plain action returns.
Stream = Generator[np.ndarray, None, object]


def load_clip(path: str | None, what: str, max_seconds: float = validation.MAX_AUDIO_SECONDS) -> AudioClip:
    """Decode an uploaded file (header checked first); messages name the user's file, not our folders."""
    if not path:
        raise gr.Error(f"Please provide {what}.")
    if not isinstance(path, (str, os.PathLike)):
        raise gr.Error(f"{what[0].upper() + what[1:]} must be an audio file.")
    try:
        return AudioClip.from_file(path, f"{what} ({validation.display_name(path)})", max_seconds)
    except StepEditError as exc:
        raise EngineError(error_message(exc)) from exc


def selection_of(region: dict | None) -> regions.Selection | None:
    """{"words": [first, last]} or {"seconds": [start, end]} -> a Selection; None for the whole take."""
    try:
        return selection_of_recipe(region)
    except StepEditError as exc:
        raise EngineError(error_message(exc)) from exc


def check_retry(max_tries, threshold) -> tuple[int, float]:
    """Whole tries in 1..MAX_RETRIES + 1 and a threshold in [0, 1] (checks.check_retry, as every door)."""
    try:
        return checks.check_retry(max_tries, threshold)
    except StepEditError as exc:
        raise gr.Error(error_message(exc)) from exc


def relay(chunks) -> Stream:
    """Yield every chunk and return them all."""
    kept = []
    for chunk in chunks:
        kept.append(chunk)
        yield chunk
    return kept


def drain(stream: Stream):
    """Run a streamed action to its end without playing it; returns what it returns."""
    while True:
        try:
            next(stream)
        except StopIteration as stop:
            return stop.value


def wav_bytes(chunk: np.ndarray, sample_rate: int = OUTPUT_SAMPLE_RATE) -> bytes:
    """One chunk as 16-bit wav bytes for a streaming ``gr.Audio`` (quantised like :func:`write_wav`; bytes, not
    a float array, so Gradio does not peak-normalise each chunk)."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(chunk, np.float32).reshape(-1), -1.0, 1.0), sample_rate, format="WAV",
             subtype="PCM_16")
    return buf.getvalue()


def step(progress, fraction: float, desc: str) -> None:
    if progress is not None:
        progress(fraction, desc=desc)
