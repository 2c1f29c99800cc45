"""Encode takes for delivery: whole files (wav / flac / mp3 / opus via libsndfile) and streamed wav / pcm.

Everything here is 16-bit: ``pcm`` is raw signed little-endian mono at the take's rate (OpenAI's ``pcm`` is
24 kHz, the engines' output rate). libsndfile 1.1+ writes MP3 (LAME, LGPL) and Opus; no GPL encoder is used.
A streamed WAV cannot know its length up front, so its RIFF and data sizes hold the "unknown" value
0xFFFFFFFF that players and ``soundfile`` accept for streams.
"""
from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import InvalidInputError

PCM_BYTES = 2                                  # 16-bit samples
UNKNOWN_SIZE = 0xFFFFFFFF                      # RIFF / data chunk size of a stream of unknown length
WAV_HEADER_BYTES = 44
# response format -> (libsndfile format, subtype, media type); None format = raw PCM
FORMATS: dict[str, tuple[str | None, str | None, str]] = {
    "wav": ("WAV", "PCM_16", "audio/wav"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
    "opus": ("OGG", "OPUS", "audio/ogg"),
    "pcm": (None, None, "audio/pcm"),
}
STREAMABLE = ("wav", "pcm")


def available_formats() -> tuple[str, ...]:
    """The response formats this machine's libsndfile can write."""
    return tuple(name for name, (fmt, subtype, _) in FORMATS.items()
                 if fmt is None or sf.check_format(fmt, subtype))


def check_format(name: object) -> str:
    formats = available_formats()
    if not isinstance(name, str) or name.lower() not in formats:
        raise InvalidInputError(f"unsupported audio format {name!r}; expected one of {', '.join(formats)}")
    return name.lower()


def format_for_path(path: str | Path) -> str:
    """The format a file name asks for (``take.mp3`` -> ``mp3``; ``.raw`` / ``.pcm`` -> ``pcm``)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    return check_format({"raw": "pcm", "ogg": "opus"}.get(suffix, suffix or "wav"))


def media_type(name: str) -> str:
    return FORMATS[check_format(name)][2]


def pcm16(samples: np.ndarray) -> bytes:
    """float32 in [-1, 1] -> 16-bit little-endian PCM bytes (clipped, never rescaled)."""
    y = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
    return (y * 32767.0).round().astype("<i2").tobytes()


def encode(samples: np.ndarray, sample_rate: int, name: str) -> bytes:
    """A whole take in the response format ``name``."""
    name = check_format(name)
    fmt, subtype, _ = FORMATS[name]
    if fmt is None:
        return pcm16(samples)
    buf = io.BytesIO()
    y = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
    sf.write(buf, y, int(sample_rate), format=fmt, subtype=subtype)
    return buf.getvalue()


def write(path: str | Path, samples: np.ndarray, sample_rate: int) -> str:
    """Write a take to ``path`` in the format its extension names."""
    data = encode(samples, sample_rate, format_for_path(path))
    Path(path).write_bytes(data)
    return str(path)


def wav_stream_header(sample_rate: int, channels: int = 1) -> bytes:
    """The 44-byte header of a 16-bit PCM WAV stream of unknown length."""
    byte_rate = sample_rate * channels * PCM_BYTES
    return (b"RIFF" + struct.pack("<I", UNKNOWN_SIZE) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, byte_rate, channels * PCM_BYTES,
                                    8 * PCM_BYTES)
            + b"data" + struct.pack("<I", UNKNOWN_SIZE))


def chunks(samples: np.ndarray, sample_rate: int, seconds: float):
    """Slices of ``samples`` of ``seconds`` each (the last may be shorter)."""
    step = max(1, int(sample_rate * seconds))
    for start in range(0, len(samples), step):
        yield samples[start:start + step]


__all__ = ["FORMATS", "STREAMABLE", "available_formats", "check_format", "format_for_path", "media_type",
           "pcm16", "encode", "write", "wav_stream_header", "chunks"]
