"""Silence removal with the WebRTC voice activity detector (webrtcvad-wheels, MIT; a GMM, no weights).

Speech regions are found on a 16 kHz copy in 30 ms frames, padded by a hangover so word edges and
short stops survive, and then pauses longer than ``max_pause_s`` are shortened to that length (half of
the kept pause on each side) and joined with short cross-fades. Leading and trailing silence shrink to
``EDGE_KEEP_S``. Short pauses inside phrases stay untouched, so the rhythm remains natural.
"""
from __future__ import annotations

import numpy as np

from ..audio import crossfade_concat
from ..listen.vad import (FRAME_MS, HANGOVER_S, MIN_SPEECH_S, VAD_MODE, VAD_RATE,  # noqa: F401
                          speech_mask, speech_regions)

MAX_PAUSE_S = 0.3              # round 1: longer pauses are cut to this
PAUSE_SHRINK_PER_ROUND = 0.7   # each further round keeps 70 % of the previous limit ...
MIN_PAUSE_S = 0.12             # ... but never less than this
EDGE_KEEP_S = 0.08             # silence kept before the first and after the last speech region
JOIN_FADE_S = 0.015            # cross-fade at each cut


def pause_limit(iteration: int) -> float:
    """The longest pause kept in round ``iteration`` (1-based)."""
    return max(MIN_PAUSE_S, MAX_PAUSE_S * PAUSE_SHRINK_PER_ROUND ** (iteration - 1))


def remove_silence(wav: np.ndarray, sample_rate: int, max_pause_s: float = MAX_PAUSE_S) -> np.ndarray:
    """Shorten every pause to at most ``max_pause_s``; returns ``wav`` unchanged when no speech is found."""
    x = np.asarray(wav, dtype=np.float32)
    regions = speech_regions(x, sample_rate)
    if not regions:
        return x.copy()
    edge = int(EDGE_KEEP_S * sample_rate)
    half = int(max_pause_s * sample_rate / 2)
    fade = int(JOIN_FADE_S * sample_rate)
    # Keep each region plus up to ``half`` of the pause on each inner side (``edge`` at the ends).
    spans = []
    for i, (a, b) in enumerate(regions):
        before = edge if i == 0 else min(half, (a - regions[i - 1][1]) // 2)
        after = edge if i == len(regions) - 1 else min(half, (regions[i + 1][0] - b) // 2)
        spans.append((max(0, a - before - fade // 2), min(len(x), b + after + fade // 2)))
    merged = [spans[0]]
    for a, b in spans[1:]:
        if a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return crossfade_concat([x[a:b] for a, b in merged], sample_rate, fade_s=JOIN_FADE_S)
