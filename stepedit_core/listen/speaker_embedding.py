"""The lite engine's speaker embedder for the take check (``stepedit_core.checks``).

Two embedders, best available first:

- ``ge2e``: the GE2E encoder of ``speaker.py`` with Resemblyzer's ``pretrained.pt`` (Apache-2.0), from
  ``$STEPEDIT_GE2E``, ``<cache>/lite/ge2e_pretrained.pt`` (``bench/check_bench.py --fetch-ge2e``) or an installed
  ``resemblyzer`` package (``pip install --no-deps resemblyzer==0.1.4``: 17 MB of weights in its wheel), read
  from its folder without importing it and sha256-checked like every lite model (``models.EXPECTED_SHA256``).
  It is not in requirements.txt: resemblyzer's dependencies bring webrtcvad 2.0.10, whose module imports
  ``pkg_resources`` and, installed over webrtcvad-wheels, breaks ``import webrtcvad`` on a current setuptools,
  plus librosa / numba / scikit-learn that the numpy encoder never uses.
- ``spectral``: no weights. The mean log-mel envelope of the voiced frames (40 bands, 16 kHz, the GE2E
  front end), with its own mean removed, so the cosine of two embeddings is the correlation of the two
  speakers' average spectral shapes: vocal-tract resonances and voice colour, not loudness. Coarser than a
  trained embedder (BENCHMARKS.md has the separation it gets).
"""
from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from . import models, speaker
from .dsp import resample

GE2E_ENV = "STEPEDIT_GE2E"
GE2E_FILENAME = "ge2e_pretrained.pt"
GE2E_PACKAGE, GE2E_PACKAGE_FILE = "resemblyzer", "pretrained.pt"      # resemblyzer==0.1.4 (Apache-2.0)
VOICED_DB_BELOW_PEAK = 30.0        # frames within 30 dB of the loudest frame count as speech
MIN_FRAMES = 10                    # fewer voiced frames than this: use all frames

_state_lock = threading.Lock()
_ge2e_state: dict = {}


def ge2e_path() -> Path | None:
    env = os.environ.get(GE2E_ENV)
    path = Path(env) if env else models.cache_dir() / GE2E_FILENAME
    if path.is_file():
        return path
    packaged = _packaged_ge2e()
    return models.verify(packaged, GE2E_PACKAGE_FILE) if packaged is not None else None


def _packaged_ge2e() -> Path | None:
    """``pretrained.pt`` inside the installed resemblyzer package, found without importing it."""
    try:
        spec = importlib.util.find_spec(GE2E_PACKAGE)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or ()) if spec else ():
        path = Path(folder) / GE2E_PACKAGE_FILE
        if path.is_file():
            return path
    return None


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
