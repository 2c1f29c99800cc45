"""Hostile and odd inputs for the fuzz suite: audio files made from numpy / soundfile, texts, numbers.

Long audio is written cheaply: silence compresses to almost nothing in FLAC, and the decompression bomb is a
small FLAC whose STREAMINFO header states hours of 384 kHz stereo (only the header is ever read).
"""
from __future__ import annotations

import io
import math
import wave
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def _speechy(seconds: float, sr: int = SR) -> np.ndarray:
    """A voiced buzz with syllable-rate loudness swings (passes the steady-sound check like speech)."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / sr) / k for k in range(1, 6))
    return (0.25 * voiced * np.clip(np.sin(2 * np.pi * 3 * t), 0.02, 1)).astype(np.float32)


def _patch_flac_total_samples(data: bytes, total: int, rate: int, channels: int) -> bytes:
    """Rewrite STREAMINFO's rate, channel count and 36-bit total-sample field (bytes 8+10 .. 8+18)."""
    assert data[:4] == b"fLaC"
    info = bytearray(data[8:8 + 34])
    bits = int.from_bytes(info[10:18], "big")
    bps_minus_1 = (bits >> 36) & 0x1F
    packed = (rate << 44) | ((channels - 1) << 41) | (bps_minus_1 << 36) | total
    info[10:18] = packed.to_bytes(8, "big")
    return data[:8] + bytes(info) + data[8 + 34:]


def make_audio_files(root: Path) -> dict[str, Path]:
    """name -> file; every file is a few kB to ~1 MB and written in well under a second in all."""
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    rng = np.random.default_rng(13)

    def put(name: str, data: bytes) -> None:
        files[name] = root / name
        files[name].write_bytes(data)

    def wav(name: str, x: np.ndarray, sr: int = SR, subtype: str | None = None, fmt: str = "WAV") -> None:
        buf = io.BytesIO()
        sf.write(buf, x, sr, subtype=subtype, format=fmt)
        put(name, buf.getvalue())

    ok = _speechy(2.0)
    # --- not audio at all / broken containers
    put("empty.wav", b"")
    put("random_bytes.wav", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    put("text_renamed.wav", b"hello, this is a text file\n" * 50)
    put("png_renamed.flac", b"\x89PNG\r\n\x1a\n" + bytes(2000))
    put("zip_renamed.mp3", b"PK\x03\x04" + bytes(2000))
    put("json_renamed.ogg", b'{"not": "audio"}')
    put("riff_only.wav", b"RIFF\x24\x00\x00\x00WAVE")
    full = io.BytesIO()
    sf.write(full, ok, SR, format="WAV", subtype="PCM_16")
    put("truncated_header.wav", full.getvalue()[:30])
    put("truncated_data.wav", full.getvalue()[: len(full.getvalue()) // 3])
    put("html_renamed.wav", b"<html><script>alert(1)</script></html>")
    # --- sizes
    with wave.open(str(root / "zero_samples.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(SR)
    files["zero_samples.wav"] = root / "zero_samples.wav"
    wav("one_sample.wav", np.array([0.5], np.float32), subtype="PCM_16")
    wav("ten_ms.wav", ok[:160], subtype="PCM_16")
    # --- sample values
    bad = ok.copy()
    bad[100:200] = np.nan
    wav("nan.wav", bad, subtype="FLOAT")
    bad = ok.copy()
    bad[::50] = np.inf
    wav("inf.wav", bad, subtype="FLOAT")
    wav("clipped_float.wav", ok * 40.0, subtype="FLOAT")
    wav("clipped_pcm.wav", np.clip(ok * 40.0, -1, 1), subtype="PCM_16")
    wav("silent.wav", np.zeros(2 * SR, np.float32), subtype="PCM_16")
    wav("dc.wav", np.full(2 * SR, 0.5, np.float32), subtype="PCM_16")
    t = np.arange(2 * SR) / SR
    wav("square.wav", (0.5 * np.sign(np.sin(2 * np.pi * 200 * t))).astype(np.float32), subtype="PCM_16")
    wav("white_noise.wav", (0.3 * rng.standard_normal(2 * SR)).astype(np.float32), subtype="PCM_16")
    wav("near_silent.wav", (1e-4 * rng.standard_normal(10 * SR)).astype(np.float32), subtype="PCM_16")
    # --- encodings and rates
    wav("pcm_u8.wav", ok, subtype="PCM_U8")
    wav("pcm_24.wav", ok, subtype="PCM_24")
    wav("float32.wav", ok, subtype="FLOAT")
    wav("float64.wav", ok.astype(np.float64), subtype="DOUBLE")
    wav("ok.flac", ok, fmt="FLAC")
    wav("ok.ogg", ok, fmt="OGG", subtype="VORBIS")
    wav("rate_8k.wav", _speechy(2.0, 8000), 8000, subtype="PCM_16")
    wav("rate_4k.wav", _speechy(2.0, 4000), 4000, subtype="PCM_16")
    wav("rate_384k.wav", _speechy(0.5, 384000), 384000, subtype="PCM_16")
    wav("stereo.wav", np.stack([ok, -ok], 1), subtype="PCM_16")
    wav("six_channel.wav", np.stack([ok] * 6, 1), subtype="PCM_16")
    wav("sixteen_channel.wav", np.stack([ok[:SR // 2]] * 16, 1), subtype="PCM_16")
    # --- length: real 5 min of FLAC silence at 8 kHz; 20 min and a 10-minute 384 kHz stereo bomb by header
    buf = io.BytesIO()
    sf.write(buf, np.zeros(5 * 60 * 8000, np.int16), 8000, format="FLAC")
    put("five_minutes.flac", buf.getvalue())
    small = io.BytesIO()
    sf.write(small, np.zeros(8000, np.int16), 8000, format="FLAC")
    put("twenty_minutes.flac", _patch_flac_total_samples(small.getvalue(), 20 * 60 * 8000, 8000, 1))
    small = io.BytesIO()
    sf.write(small, np.zeros((48000, 2), np.int16), 48000, format="FLAC")
    put("bomb_384k_stereo.flac", _patch_flac_total_samples(small.getvalue(), 10 * 60 * 384000, 384000, 2))
    wav("seventy_seconds.wav", np.tile(ok, 35), subtype="PCM_16")
    wav("forty_five_seconds.wav", np.tile(ok, 23)[: 45 * SR], subtype="PCM_16")   # within 60 s, a big edit
    # --- valid audio under hostile names
    wav("..%2f..%2fetc%2fpasswd.wav", ok, subtype="PCM_16")
    wav("name with spaces & 'quotes'.wav", ok, subtype="PCM_16")
    return files


TEXTS: dict[str, str] = {
    "empty": "",
    "spaces": "   \t  ",
    "ten_thousand": "word " * 2000,
    "just_over_limit": "a" * 600 + " " + "b" * 400,
    "nul": "hello\x00world",
    "only_nul": "\x00\x00\x00",
    "control": "he\x07llo\x1b[31m wor\x08ld",
    "zero_width": "\u200b\u200c\u200d\ufeff",
    "emoji": "😀🎉🔥",
    "punctuation": "?!... ,,, ;;;",
    "rtl_override": "\u202eolleh world",
    "combining_spam": "a" + "\u0301" * 500,
    "long_word": "a" * 999,
    "path_unix": "/etc/passwd",
    "path_traversal": "../../../../etc/shadow",
    "path_windows": "C:\\Windows\\System32\\config",
    "html": "<script>alert(1)</script> hello",
    "sql": "'; DROP TABLE users; --",
    "format_string": "%s%s%s %n {0} {__class__}",
    "only_tags": "[Laughter][Sigh]",
    "unknown_tag": "hello [Explosion] world",
    "unclosed_tag": "hello [Laughter world",
    "lang_tag_only": "[Japanese]",
    "newlines": "line one\nline two\r\nline three",
    "chinese": "你好，世界。",
    "mixed": "Hello 你好 123",
}

EDIT_TYPES = ["", "EMOTION", "emotion ", " emotion", "clone", "Emotion", "pitch", "../emotion", "emotion\x00",
              "x" * 5000, "null", "None", "paralinguistic"]
EDIT_INFOS = [("emotion", ""), ("emotion", "joyful"), ("emotion", "HAPPY"), ("emotion", "happy "),
              ("style", "emotion"), ("speed", "fastest"), ("speed", "x" * 5000), ("denoise", "happy"),
              ("vad", "anything")]
SEEDS = [math.nan, math.inf, -math.inf, 1e308, 2**31, 2**63, -5, 1.5, -0.5, 0, 2**31 - 1]
ITERATIONS = [0, 6, -1, 1.5, math.nan, math.inf, 1e9, 5, 1]
