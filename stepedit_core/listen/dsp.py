"""Small signal helpers shared by the lite engine modules (numpy + soxr; no torch on this path)."""
from __future__ import annotations

import numpy as np

PEAK_LIMIT = 0.97              # outputs are scaled down to this peak if louder (never up)
RMS_FLOOR = 1e-8


def resample(wav: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """High-quality resampling with soxr (float32 in, float32 out)."""
    x = np.asarray(wav, dtype=np.float32)
    if int(orig_sr) == int(new_sr) or x.size == 0:
        return x.copy()
    import soxr  # noqa: PLC0415
    return soxr.resample(x, int(orig_sr), int(new_sr), quality="HQ").astype(np.float32, copy=False)


def rms_db(wav: np.ndarray) -> float:
    """RMS level in dB full scale."""
    x = np.asarray(wav, dtype=np.float64)
    return float(10 * np.log10(np.mean(x * x) + RMS_FLOOR)) if x.size else -80.0


def active_rms_db(wav: np.ndarray, sample_rate: int, frame_s: float = 0.03, top_fraction: float = 0.5) -> float:
    """Level of the loudest ``top_fraction`` of frames (speech level, insensitive to pause length)."""
    n = max(1, int(frame_s * sample_rate))
    x = np.asarray(wav, dtype=np.float64)
    m = len(x) // n
    if m == 0:
        return rms_db(x)
    e = np.mean(x[:m * n].reshape(m, n) ** 2, axis=1)
    e = np.sort(e)[::-1][:max(1, int(np.ceil(m * top_fraction)))]
    return float(10 * np.log10(np.mean(e) + RMS_FLOOR))


def peak_limit(wav: np.ndarray, limit: float = PEAK_LIMIT) -> np.ndarray:
    """Scale down to peak ``limit`` if louder; never amplifies."""
    x = np.asarray(wav, dtype=np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return (x * (limit / peak)).astype(np.float32) if peak > limit else x


def fade_edges(wav: np.ndarray, sample_rate: int, fade_s: float = 0.01) -> np.ndarray:
    """Raised-cosine fade-in and fade-out of ``fade_s`` seconds (avoids clicks at cuts)."""
    x = np.asarray(wav, dtype=np.float32).copy()
    n = min(int(fade_s * sample_rate), len(x) // 2)
    if n > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)).astype(np.float32)
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x
