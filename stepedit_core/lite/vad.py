"""Silence removal with the WebRTC voice activity detector (webrtcvad-wheels, MIT; a GMM, no weights).

Speech regions are found on a 16 kHz copy in 30 ms frames, padded by a hangover so word edges and
short stops survive, and then pauses longer than ``max_pause_s`` are shortened to that length (half of
the kept pause on each side) and joined with short cross-fades. Leading and trailing silence shrink to
``EDGE_KEEP_S``. Short pauses inside phrases stay untouched, so the rhythm remains natural.
"""
from __future__ import annotations

import numpy as np

from ..audio import crossfade_concat
from ..listen.dsp import resample

VAD_RATE = 16000               # webrtcvad accepts 8/16/32/48 kHz
FRAME_MS = 30                  # webrtcvad frame lengths are 10, 20 or 30 ms
VAD_MODE = 3                   # most aggressive; mode 2 merges short pauses (embedded.md §1)
HANGOVER_S = 0.09              # speech padding on each side of a detected region
MIN_SPEECH_S = 0.09            # detected islands shorter than this are clicks, not speech
MAX_PAUSE_S = 0.3              # round 1: longer pauses are cut to this
PAUSE_SHRINK_PER_ROUND = 0.7   # each further round keeps 70 % of the previous limit ...
MIN_PAUSE_S = 0.12             # ... but never less than this
EDGE_KEEP_S = 0.08             # silence kept before the first and after the last speech region
JOIN_FADE_S = 0.015            # cross-fade at each cut


def speech_mask(wav: np.ndarray, sample_rate: int, mode: int = VAD_MODE) -> tuple[np.ndarray, float]:
    """Per-frame speech flags (bool, one per ``FRAME_MS``) and the frame duration in seconds."""
    import webrtcvad  # noqa: PLC0415  (webrtcvad-wheels provides this module)

    x16 = resample(wav, sample_rate, VAD_RATE)
    pcm = (np.clip(x16, -1, 1) * 32767).astype("<i2")
    step = VAD_RATE * FRAME_MS // 1000
    vad = webrtcvad.Vad(mode)
    n = len(pcm) // step
    flags = np.array([vad.is_speech(pcm[i * step:(i + 1) * step].tobytes(), VAD_RATE) for i in range(n)],
                     dtype=bool)
    return flags, FRAME_MS / 1000.0


def speech_regions(wav: np.ndarray, sample_rate: int, hangover_s: float = HANGOVER_S) -> list[tuple[int, int]]:
    """[start, end) sample ranges of speech in ``wav``, padded by ``hangover_s`` and merged."""
    flags, frame_s = speech_mask(wav, sample_rate)
    regions, start = [], None
    for i, f in enumerate(np.append(flags, False)):
        if f and start is None:
            start = i
        elif not f and start is not None:
            if (i - start) * frame_s >= MIN_SPEECH_S:
                regions.append((start * frame_s, i * frame_s))
            start = None
    out: list[tuple[int, int]] = []
    for a, b in regions:
        a = max(0, int((a - hangover_s) * sample_rate))
        b = min(len(wav), int((b + hangover_s) * sample_rate))
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


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
