"""Speech regions with the WebRTC voice activity detector (webrtcvad-wheels, MIT; a GMM, no weights).

Used by the GE2E speaker embedder (silence trimmed before embedding, as Resemblyzer does) and by the lite
engine's silence removal (``stepedit_core.lite.vad``). Frames are judged on a 16 kHz copy in 30 ms frames;
regions are padded by a hangover so word edges and short stops survive.
"""
from __future__ import annotations

import numpy as np

from .dsp import resample

VAD_RATE = 16000               # webrtcvad accepts 8/16/32/48 kHz
FRAME_MS = 30                  # webrtcvad frame lengths are 10, 20 or 30 ms
VAD_MODE = 3                   # most aggressive; mode 2 merges short pauses (embedded.md §1)
HANGOVER_S = 0.09              # speech padding on each side of a detected region
MIN_SPEECH_S = 0.09            # detected islands shorter than this are clicks, not speech


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
