"""Streamed lite edits of a noisy recording are whole: no dropout to digital silence at a chunk seam (or at an
inserted pause), and a streamed denoise sounds like the unstreamed one."""
from __future__ import annotations

import numpy as np
import pytest

from stepedit_core import catalog
from stepedit_core.interface import AudioClip, EditRequest
from stepedit_core.lite import LiteEngine
from stepedit_core.listen.dsp import rms_db
from tests.audio_clips import EN_TEXT, SAMPLE_RATE, add_noise, en_speech  # noqa: F401 (fixtures)

SR = SAMPLE_RATE
MAX_ZERO_RUN_S = 0.005        # longer runs of exact zeros inside a recording are audible dropouts (clicks)
EDGE_S = 0.05                 # a take may start or end in silence
EDITS = [(catalog.DENOISE, None, None), (catalog.SPEED, "faster", None), (catalog.SPEED, "slower", None),
         (catalog.EMOTION, "happy", None), (catalog.STYLE, "whisper", None), (catalog.VAD, None, None),
         (catalog.PARALINGUISTIC, None, EN_TEXT.replace("fox", "fox [Laughter]"))]


def zero_runs(y: np.ndarray) -> list[tuple[float, float]]:
    """(start s, length s) of every run of exact zeros longer than MAX_ZERO_RUN_S, away from the edges."""
    z = np.concatenate([[0], (y == 0).astype(np.int8), [0]])
    d = np.diff(z)
    runs = zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1))
    edge = int(EDGE_S * SR)
    return [(a / SR, (b - a) / SR) for a, b in runs
            if b - a > MAX_ZERO_RUN_S * SR and a > edge and b < len(y) - edge]


@pytest.fixture(scope="module")
def engine():
    return LiteEngine()


@pytest.fixture(scope="module")
def noisy(en_speech):
    return add_noise(en_speech, 5.0)


def _request(x, kind, info, new_text):
    return EditRequest(AudioClip.from_array(x, SR), EN_TEXT, kind, info, new_text=new_text, seed=3)


@pytest.mark.parametrize("kind,info,new_text", EDITS, ids=[f"{k}-{i}" for k, i, _ in EDITS])
def test_streamed_edit_has_no_dropouts(engine, noisy, kind, info, new_text):
    chunks = list(engine.stream_edit(_request(noisy, kind, info, new_text)))
    assert len(chunks) >= 2                       # the seams exist
    y = np.concatenate(chunks)
    assert zero_runs(y) == []


def test_streamed_denoise_matches_the_whole_clip_denoise(engine, noisy):
    streamed = np.concatenate(list(engine.stream_edit(_request(noisy, catalog.DENOISE, None, None))))
    (whole,) = engine.edit(_request(noisy, catalog.DENOISE, None, None))
    w = whole.audio.samples
    assert len(streamed) == len(w)
    # per-piece peak limits may scale a piece: compare after a least-squares gain
    gain = float(np.dot(streamed, w) / np.dot(streamed, streamed))
    assert rms_db(w - gain * streamed) < rms_db(w) - 20.0
