"""Measurements shared by the lite tests and ``bench/lite_quality.py``: error rates, SNR, F0 statistics."""
from __future__ import annotations

import re
import unicodedata

import numpy as np

from .dsp import resample

F0_RATE = 16000                # F0 is measured on a 16 kHz copy
F0_FLOOR, F0_CEIL = 60.0, 600.0
_PUNCT = re.compile(r"[^\w\s]|_")


def normalise_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"\[[^\]]*\]", " ", text)           # paralinguistic / language tags
    return " ".join(_PUNCT.sub(" ", text).split())


def _edit_distance(ref: list[str], hyp: list[str]) -> int:
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[-1]


def wer(ref: str, hyp: str) -> float:
    """Word error rate after lower-casing and dropping punctuation and [tags]."""
    r, h = normalise_text(ref).split(), normalise_text(hyp).split()
    return _edit_distance(r, h) / max(1, len(r))


def cer(ref: str, hyp: str) -> float:
    """Character error rate (spaces ignored): the measure for Mandarin."""
    r, h = list(normalise_text(ref).replace(" ", "")), list(normalise_text(hyp).replace(" ", ""))
    return _edit_distance(r, h) / max(1, len(r))


def error_rate(ref: str, hyp: str) -> float:
    """CER for text with CJK characters, WER otherwise."""
    return cer(ref, hyp) if re.search(r"[\u4e00-\u9fff]", ref) else wer(ref, hyp)


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (equal lengths)."""
    n = min(len(reference), len(estimate))
    r, e = np.asarray(reference[:n], np.float64), np.asarray(estimate[:n], np.float64)
    a = np.dot(r, e) / (np.dot(r, r) + 1e-12)
    err = e - a * r
    return float(10 * np.log10(np.sum((a * r) ** 2) / (np.sum(err ** 2) + 1e-12)))


def f0_track(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Voiced F0 values in Hz (WORLD dio + stonemask, 5 ms frames)."""
    import pyworld  # noqa: PLC0415
    x = resample(wav, sample_rate, F0_RATE).astype(np.float64)
    f0, t = pyworld.dio(x, F0_RATE, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=5.0)
    f0 = pyworld.stonemask(x, f0, t, F0_RATE)
    return f0[f0 > 0]


def f0_stats(wav: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Median F0 (Hz), F0 range (semitones between the 10th and 90th percentile), voiced fraction."""
    import pyworld  # noqa: PLC0415
    x = resample(wav, sample_rate, F0_RATE).astype(np.float64)
    f0, t = pyworld.dio(x, F0_RATE, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=5.0)
    f0 = pyworld.stonemask(x, f0, t, F0_RATE)
    voiced = f0[f0 > 0]
    if voiced.size < 5:
        return {"median": 0.0, "range_st": 0.0, "voiced": float(voiced.size / max(1, f0.size))}
    lo, hi = np.percentile(voiced, [10, 90])
    return {"median": float(np.median(voiced)), "range_st": float(12 * np.log2(hi / lo)),
            "voiced": float(voiced.size / f0.size)}


def spectral_centroid(wav: np.ndarray, sample_rate: int) -> float:
    """Power-weighted mean frequency (Hz) over the whole clip: a brightness / tilt measure."""
    x = np.asarray(wav, np.float64)
    n = 1024
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::n // 2] if len(x) >= n else x[None, :]
    spec = (np.abs(np.fft.rfft(frames * np.hanning(frames.shape[-1]), axis=-1)) ** 2).sum(0)
    freqs = np.fft.rfftfreq(frames.shape[-1], 1 / sample_rate)
    return float(np.sum(freqs * spec) / (np.sum(spec) + 1e-12))
