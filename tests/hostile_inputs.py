"""Hostile and odd inputs for the fuzz suite: audio files made from numpy / soundfile, texts, numbers.

Long audio is written cheaply: silence compresses to almost nothing in FLAC, and the decompression bomb is a
small FLAC whose STREAMINFO header states hours of 384 kHz stereo (only the header is ever read).
"""
from __future__ import annotations

import io
import json
import math
import struct
import wave
import zipfile
import zlib
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


# ---------------------------------------------------------------------------- voice-library zips
VOICE_TEXT = "a voice from a hostile archive"


def flac_bomb(seconds: float = 60.0, rate: int = 192000, channels: int = 8) -> bytes:
    """A ~120-byte FLAC whose STREAMINFO declares ``seconds`` of ``rate`` Hz x ``channels`` (within every limit)."""
    small = io.BytesIO()
    sf.write(small, np.zeros((rate // 100, channels), np.int16), rate, format="FLAC")
    return _patch_flac_total_samples(small.getvalue(), int(seconds * rate), rate, channels)


def voice_zip(voices: list[dict], files: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED,
              manifest: bytes | None = None) -> bytes:
    """An archive in the export layout: manifest.json listing ``voices`` plus ``files`` (name -> bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr("manifest.json", manifest if manifest is not None else
                    json.dumps({"format": "stepedit-voices", "version": 1, "voices": voices}))
    return buf.getvalue()


def good_wav() -> bytes:
    buf = io.BytesIO()
    sf.write(buf, _speechy(1.0), SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _patch(data: bytes, entry: str, *, local: dict[int, bytes] | None = None,
           central: dict[int, bytes] | None = None) -> bytes:
    """Overwrite fields of ``entry``'s local header and central-directory record: {offset: new bytes}."""
    out = bytearray(data)
    name = entry.encode()
    for signature, fields, name_at in ((b"PK\x03\x04", local, 30), (b"PK\x01\x02", central, 46)):
        at = out.find(signature)
        while at >= 0 and out[at + name_at:at + name_at + len(name)] != name:
            at = out.find(signature, at + 1)
        assert at >= 0, entry
        for offset, value in (fields or {}).items():
            out[at + offset:at + offset + len(value)] = value
    return bytes(out)


def make_hostile_zips(inflated_manifest_bytes: int = 1 << 30) -> dict[str, tuple[bytes, str]]:
    """name -> (archive, a phrase its refusal must contain). Every archive is at most ~1 MB."""
    wav = good_wav()
    one = [{"name": "ok", "text": VOICE_TEXT, "file": "voices/000.wav"}]
    stored = voice_zip(one, {"voices/000.wav": wav}, method=zipfile.ZIP_STORED)
    deflated = voice_zip(one, {"voices/000.wav": _speechy(1.0).tobytes() + wav})
    pack = lambda v: struct.pack("<I", v)  # noqa: E731
    size = len(wav)
    bad_crc = bytearray(stored)
    bad_crc[stored.find(wav) + size // 2] ^= 0xFF
    cases = {
        "bad_crc": (bytes(bad_crc), "damaged"),
        "size_lies_smaller": (_patch(stored, "voices/000.wav", local={22: pack(size // 2)},
                                     central={24: pack(size // 2)}), "damaged"),
        "size_lies_larger": (_patch(stored, "voices/000.wav", local={18: pack(size + 999), 22: pack(size + 999)},
                                    central={20: pack(size + 999), 24: pack(size + 999)}), "damaged"),
        "header_name_mismatch": (_patch(stored, "voices/000.wav", local={30: b"VOICES"}), "damaged"),
        "encrypted_flag": (_patch(stored, "voices/000.wav", local={6: b"\x01\x00"}, central={8: b"\x01\x00"}),
                           "encrypted"),
        "method_9": (_patch(stored, "voices/000.wav", local={8: b"\x09\x00"}, central={10: b"\x09\x00"}),
                     "compression method 9"),
        "method_99": (_patch(stored, "voices/000.wav", local={8: b"\x63\x00"}, central={10: b"\x63\x00"}),
                      "compression method 99"),
        "file_is_list": (voice_zip([{"name": "x", "text": VOICE_TEXT, "file": ["x"]}], {}), "no file as text"),
        "file_is_object": (voice_zip([{"name": "x", "text": VOICE_TEXT, "file": {}}], {}), "no file as text"),
        "deep_manifest": (voice_zip([], {}, manifest=b"[" * 100_000 + b"]" * 100_000), "levels deep"),
        "deep_voices": (voice_zip([], {}, manifest=b'{"format": "stepedit-voices", "voices": '
                                  + b"[" * 20 + b"]" * 20 + b"}"), "levels deep"),
        "dup_names": (voice_zip([{**one[0], "name": "dup"}, {**one[0], "name": "dup", "file": "b.wav"}],
                                {"voices/000.wav": wav, "b.wav": wav}), "both named"),
        "case_names": (voice_zip([{**one[0], "name": "case"}, {**one[0], "name": "CASE", "file": "b.wav"}],
                                 {"voices/000.wav": wav, "b.wav": wav}), "both named"),
        "too_many_voices": (voice_zip([{**one[0], "name": f"v{i}"} for i in range(201)], {"voices/000.wav": wav}),
                            "at most 200"),
        "not_a_zip": (b"PK\x03\x04" + bytes(500), "not a voice-library zip"),
        "bomb_named_8_times": (voice_zip([{**one[0], "name": f"bomb{i}", "file": "bomb.flac"} for i in range(8)],
                                         {"bomb.flac": flac_bomb()}), "same file"),
        "bomb_8_files": (voice_zip([{**one[0], "name": f"bomb{i}", "file": f"b{i}.flac"} for i in range(8)],
                                   {f"b{i}.flac": flac_bomb() for i in range(8)}), "could not be decoded"),
        "bomb_120s": (voice_zip([{**one[0], "file": "bomb.flac"}], {"bomb.flac": flac_bomb(120.0)}),
                      "at most 60 s"),
    }
    corrupt = bytearray(deflated)
    at = deflated.find(b"PK\x03\x04") + 30 + len("voices/000.wav")
    corrupt[at] = 0xFF                      # deflate block type 3 does not exist: zlib.error
    cases["corrupt_deflate"] = (bytes(corrupt), "damaged")
    cases["manifest_inflates_declares_100b"] = (_inflating_manifest(inflated_manifest_bytes, 100), "manifest.json")
    cases["manifest_inflates_declares_4gb"] = (_inflating_manifest(inflated_manifest_bytes, 0xFFFFFFFE),
                                               "inflates to more than")
    return cases


_DEFLATED_SPACES: dict[int, bytes] = {}


def _inflating_manifest(size: int, declared: int) -> bytes:
    """A zip whose manifest.json declares ``declared`` bytes and inflates to ``size`` bytes of spaces (~1 MB
    per GiB; the deflate stream is made once per size)."""
    if size not in _DEFLATED_SPACES:
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        block = b" " * (1 << 24)
        _DEFLATED_SPACES[size] = b"".join(comp.compress(block) for _ in range(size // len(block))) + comp.flush()
    body = _DEFLATED_SPACES[size]
    name = b"manifest.json"
    crc = 0
    local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(body), declared, len(name), 0) + name
    central = struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(body), declared, len(name),
                          0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(body), 0)
    return local + body + central + end
