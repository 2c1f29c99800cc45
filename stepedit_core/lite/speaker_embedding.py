"""The lite engine's speaker embedder for the take check (``stepedit_core.checks``).

Two embedders, best available first:

- ``ge2e``: the GE2E encoder of ``speaker.py`` when Resemblyzer's ``pretrained.pt`` is on this machine
  (``$STEPEDIT_GE2E`` or ``<cache>/lite/ge2e_pretrained.pt``; ``bench/check_bench.py --fetch-ge2e`` puts it
  there with ``pip download``). Not shipped in a wheel, so never required.
- ``spectral``: no weights. The mean log-mel envelope of the voiced frames (40 bands, 16 kHz, the GE2E
  front end), with its own mean removed, so the cosine of two embeddings is the correlation of the two
  speakers' average spectral shapes: vocal-tract resonances and voice colour, not loudness. Coarser than a
  trained embedder (BENCHMARKS.md has the separation it gets).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from . import models, speaker
from .dsp import resample

GE2E_ENV = "STEPEDIT_GE2E"
GE2E_FILENAME = "ge2e_pretrained.pt"
VOICED_DB_BELOW_PEAK = 30.0        # frames within 30 dB of the loudest frame count as speech
MIN_FRAMES = 10                    # fewer voiced frames than this: use all frames

_state_lock = threading.Lock()
_ge2e_state: dict = {}


def ge2e_path() -> Path | None:
    env = os.environ.get(GE2E_ENV)
    path = Path(env) if env else models.cache_dir() / GE2E_FILENAME
    return path if path.is_file() else None


def spectral_embedding(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """(N_MELS,) mean-removed average log-mel envelope of the loud frames of ``wav``."""
    x = resample(np.asarray(wav, np.float32), sample_rate, speaker.RATE)
    mel = np.log(speaker.mel_frames(x) + 1e-10)                 # (T, 40)
    energy = mel.max(axis=1)
    keep = energy >= energy.max() - VOICED_DB_BELOW_PEAK / 10 * np.log(10)
    frames = mel[keep] if keep.sum() >= MIN_FRAMES else mel
    env = frames.mean(axis=0)
    return (env - env.mean()).astype(np.float64)


def _ge2e(path: Path) -> Callable:
    with _state_lock:
        state = _ge2e_state.get(str(path))
        if state is None:
            state = _ge2e_state[str(path)] = speaker.load_legacy_state(path.read_bytes())
    return lambda clip: speaker.embed(state, clip.samples, clip.sample_rate)


def default_embedder() -> tuple[Callable, str]:
    """(clip -> embedding, model name): GE2E when its weights are present, else the spectral embedding."""
    path = ge2e_path()
    if path is not None:
        return _ge2e(path), "ge2e"
    return (lambda clip: spectral_embedding(clip.samples, clip.sample_rate)), "spectral"
