"""Waveform + spectrogram pictures of a take, drawn with numpy and Pillow (no matplotlib).

One PNG per take: a min/max waveform envelope on top, a log-frequency spectrogram below, and a time ruler.
Two takes compared side by side are drawn on the same time scale (``span_seconds``), so a longer take
looks longer.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WIDTH = 720                  # px of the time axis
WAVE_H = 84                  # px of the waveform panel
SPEC_H = 150                 # px of the spectrogram panel
RULER_H = 18                 # px of the time ruler
N_FFT = 1024                 # ~43 ms at 24 kHz: enough frequency detail for speech harmonics
DB_RANGE = 80.0              # dynamic range shown, dB below the loudest bin
F_MIN, F_MAX = 60.0, 11000.0  # Hz shown on the log-frequency axis (speech band; 24 kHz audio tops at 12k)

BG = (250, 250, 252)
PAD = (236, 237, 242)        # beyond the end of a shorter take
WAVE = (79, 70, 229)         # indigo-600
WAVE_RMS = (165, 160, 245)
AXIS = (120, 120, 135)
# A perceptually ordered dark-to-light ramp (black-purple-orange-pale yellow) for dB values.
_RAMP = np.array([(4, 4, 16), (48, 18, 98), (125, 36, 130), (200, 60, 110), (247, 120, 70),
                  (252, 200, 100), (252, 250, 200)], np.float32)


def colormap(x: np.ndarray) -> np.ndarray:
    """x in [0, 1] (any shape) -> uint8 RGB (..., 3)."""
    x = np.clip(x, 0.0, 1.0) * (len(_RAMP) - 1)
    i = np.minimum(x.astype(int), len(_RAMP) - 2)
    f = (x - i)[..., None]
    return (_RAMP[i] * (1 - f) + _RAMP[i + 1] * f).astype(np.uint8)


def _columns(n_samples: int, n_px: int) -> np.ndarray:
    """Sample boundaries of ``n_px`` pixel columns covering ``n_samples`` (length n_px + 1)."""
    return np.linspace(0, n_samples, n_px + 1).astype(int)


def waveform_panel(wav: np.ndarray, n_px: int) -> Image.Image:
    img = Image.new("RGB", (WIDTH, WAVE_H), PAD)
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 0, n_px - 1, WAVE_H - 1], fill=BG)
    mid = WAVE_H / 2
    draw.line([(0, mid), (n_px - 1, mid)], fill=(215, 215, 225))
    if wav.size and n_px > 0:
        edges = _columns(len(wav), n_px)
        for x in range(n_px):
            seg = wav[edges[x]:max(edges[x + 1], edges[x] + 1)]
            lo, hi = float(seg.min()), float(seg.max())
            rms = float(np.sqrt(np.mean(seg.astype(np.float64) ** 2)))
            draw.line([(x, mid - hi * (mid - 2)), (x, mid - lo * (mid - 2))], fill=WAVE)
            draw.line([(x, mid - rms * (mid - 2)), (x, mid + rms * (mid - 2))], fill=WAVE_RMS)
    return img


def spectrogram_db(wav: np.ndarray, sample_rate: int, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_frames, N_FFT // 2 + 1) dB magnitudes on frames centred at ``n_frames`` even steps, and bin Hz."""
    win = np.hanning(N_FFT).astype(np.float32)
    padded = np.pad(wav.astype(np.float32), (N_FFT // 2, N_FFT // 2))
    centres = np.linspace(0, max(len(wav) - 1, 0), n_frames).astype(int)
    frames = np.stack([padded[c:c + N_FFT] for c in centres]) * win      # (n_frames, N_FFT)
    mag = np.abs(np.fft.rfft(frames, axis=-1))
    db = 20.0 * np.log10(np.maximum(mag, 1e-8))
    return db, np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)


def spectrogram_panel(wav: np.ndarray, sample_rate: int, n_px: int) -> Image.Image:
    img = Image.new("RGB", (WIDTH, SPEC_H), PAD)
    if wav.size == 0 or n_px <= 0:
        return img
    db, freqs = spectrogram_db(wav, sample_rate, n_px)
    top = min(F_MAX, sample_rate / 2)
    # Log-frequency rows, top row = highest frequency.
    rows_hz = np.geomspace(top, F_MIN, SPEC_H)
    cols = np.stack([np.interp(rows_hz, freqs, frame) for frame in db], axis=1)   # (SPEC_H, n_px)
    peak = float(db.max())
    rgb = colormap((cols - (peak - DB_RANGE)) / DB_RANGE)
    img.paste(Image.fromarray(rgb, "RGB"), (0, 0))
    return img


def _ruler(span: float, n_px_total: int) -> Image.Image:
    img = Image.new("RGB", (WIDTH, RULER_H), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=11)
    step = next(s for s in (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60) if span / s <= 10)
    t = 0.0
    while t <= span + 1e-9:
        x = int(round(t / span * (n_px_total - 1))) if span > 0 else 0
        draw.line([(x, 0), (x, 4)], fill=AXIS)
        label = f"{t:g}s"
        w = draw.textlength(label, font=font)
        draw.text((min(max(x - w / 2, 0), WIDTH - w), 5), label, fill=AXIS, font=font)
        t += step
    return img


def take_image(wav: np.ndarray, sample_rate: int, path: str | Path, span_seconds: float | None = None) -> str:
    """Draw waveform + spectrogram of ``wav`` to ``path`` (PNG); the x axis covers ``span_seconds``."""
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    duration = len(wav) / sample_rate if sample_rate else 0.0
    span = max(span_seconds or duration, duration, 1e-3)
    n_px = max(1, int(round(WIDTH * duration / span)))
    canvas = Image.new("RGB", (WIDTH, WAVE_H + SPEC_H + RULER_H + 2), (255, 255, 255))
    canvas.paste(waveform_panel(wav, n_px), (0, 0))
    canvas.paste(spectrogram_panel(wav, sample_rate, n_px), (0, WAVE_H + 2))
    canvas.paste(_ruler(span, WIDTH), (0, WAVE_H + SPEC_H + 2))
    canvas.save(str(path), format="PNG", optimize=False)
    return str(path)


ENVELOPE_FRAME_S = 0.02      # one point per 20 ms: 1500 points for a 30 s take (a light plot to brush)


def envelope_frame(wav: np.ndarray, sample_rate: int):
    """The take's peak envelope as a table for a ``gr.LinePlot``: columns ``seconds`` (frame start) and
    ``level`` (peak |sample| in the frame, 0-1). Brushing its x axis selects a time range."""
    import pandas as pd   # noqa: PLC0415  (a Gradio dependency)
    wav = np.abs(np.asarray(wav, dtype=np.float32).reshape(-1))
    hop = max(1, int(round(ENVELOPE_FRAME_S * sample_rate)))
    n = -(-len(wav) // hop)
    padded = np.pad(wav, (0, n * hop - len(wav)))
    level = padded.reshape(n, hop).max(axis=1) if n else np.zeros(0, np.float32)
    seconds = np.arange(n + 1) * hop / sample_rate
    # one more point at the very end so the plot spans the whole take
    return pd.DataFrame({"seconds": np.round(np.minimum(seconds, len(wav) / sample_rate), 3),
                         "level": np.round(np.append(level, level[-1] if n else 0.0), 4)})
