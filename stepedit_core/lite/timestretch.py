"""Pitch-preserving time stretch by WSOLA (waveform-similarity overlap-add), numpy only.

Each output frame copies a windowed input frame from near its nominal position ``k * analysis_hop``; the
exact position is searched within +-``SEARCH_MS`` for the best waveform match with the natural
continuation of the previous frame, so pitch periods line up and no phasiness appears. The search runs
on a decimated copy for speed and is refined at full rate.
"""
from __future__ import annotations

import numpy as np

from ..catalog import SPEED_RATIOS, SPEEDS   # noqa: F401  (SPEED_RATIOS: re-exported for the engine)
from .variation import Performance

assert set(SPEED_RATIOS) == set(SPEEDS)

FRAME_MS = 30.0        # analysis window: ~2-4 pitch periods of adult speech
SEARCH_MS = 8.0        # +-tolerance of the similarity search (covers one period at 125 Hz)
DECIMATE = 4           # coarse search on every 4th sample, then +-DECIMATE refine at full rate


def _best_offset(x: np.ndarray, template: np.ndarray, start: int, tol: int) -> int:
    """Offset in [-tol, tol] maximising the normalised correlation of ``x[start+d:]`` with ``template``."""
    n = len(template)
    lo, hi = max(0, start - tol), min(len(x) - n, start + tol)
    if hi <= lo:
        return max(0, min(start, len(x) - n)) - start
    seg = x[lo:hi + n]
    # coarse: decimated correlation
    t_d, s_d = template[::DECIMATE], seg[::DECIMATE]
    corr = np.correlate(s_d, t_d, mode="valid")
    energy = np.sqrt(np.convolve(s_d * s_d, np.ones(len(t_d)), mode="valid")) + 1e-9
    coarse = int(np.argmax(corr / energy)) * DECIMATE
    # fine: full-rate correlation around the coarse pick
    f_lo, f_hi = max(0, coarse - DECIMATE), min(hi - lo, coarse + DECIMATE)
    fine_seg = seg[f_lo:f_hi + n]
    corr = np.correlate(fine_seg, template, mode="valid")
    energy = np.sqrt(np.convolve(fine_seg * fine_seg, np.ones(n), mode="valid")) + 1e-9
    best = f_lo + int(np.argmax(corr / energy))
    return lo + best - start


def time_stretch(wav: np.ndarray, sample_rate: int, ratio: float, perf: Performance | None = None) -> np.ndarray:
    """Play ``wav`` ``ratio`` times as fast without changing pitch (ratio 1.2 -> 1/1.2 of the length); with
    ``perf`` (a seed's performance) the local rate follows its tempo curve, the total length unchanged."""
    if ratio <= 0:
        raise ValueError(f"speed ratio must be positive, got {ratio}")
    x = np.asarray(wav, dtype=np.float32)
    n = int(round(FRAME_MS * 1e-3 * sample_rate)) // 2 * 2
    hs = n // 2                                    # synthesis hop: 50 % overlap
    out_len = int(round(len(x) / ratio))
    if abs(ratio - 1.0) < 1e-6 or len(x) < 2 * n:
        return x.copy() if abs(ratio - 1.0) < 1e-6 else _resample_naive(x, out_len)
    tol = int(round(SEARCH_MS * 1e-3 * sample_rate))
    win = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)   # periodic Hann: sums to 1
    pad = np.concatenate([np.zeros(n, np.float32), x, np.zeros(n + tol + n, np.float32)])
    n_frames = int(np.ceil(out_len / hs)) + 2
    out = np.zeros(n_frames * hs + n, np.float32)
    norm = np.zeros_like(out)
    # analysis position of each synthesis frame: hops of hs * ratio, locally scaled by the tempo curve
    hops = np.full(n_frames, hs * ratio)
    if perf is not None:
        hops *= perf.tempo(n_frames, hs / sample_rate)
        hops *= hs * ratio * n_frames / hops.sum()
    starts = np.concatenate([[0.0], np.cumsum(hops[:-1])])
    prev = n                                        # input position of the previous frame (in ``pad``)
    for k in range(n_frames):
        nominal = n + int(round(starts[k])) - hs    # frames are centred on their nominal instant
        nominal = max(0, nominal)
        if k == 0:
            pos = nominal
        else:
            template = pad[prev + hs:prev + hs + n]  # what would naturally follow the previous frame
            pos = nominal + _best_offset(pad, template, nominal, tol)
        pos = min(max(0, pos), len(pad) - n)
        out[k * hs:k * hs + n] += pad[pos:pos + n] * win
        norm[k * hs:k * hs + n] += win
        prev = pos
    y = out[hs:hs + out_len] / np.maximum(norm[hs:hs + out_len], 1e-3)
    if len(y) < out_len:
        y = np.concatenate([y, np.zeros(out_len - len(y), np.float32)])
    return y.astype(np.float32)


def _resample_naive(x: np.ndarray, out_len: int) -> np.ndarray:
    """Linear-interpolation length change for clips shorter than two frames (pitch moves; too short to hear)."""
    if out_len <= 0:
        return np.zeros(0, np.float32)
    return np.interp(np.linspace(0, len(x) - 1, out_len), np.arange(len(x)), x).astype(np.float32)
