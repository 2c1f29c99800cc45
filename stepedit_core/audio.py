"""Audio I/O and the official prompt preprocessing (tts.py's preprocess_prompt_wav).

Arrays are float32 mono ``(N,)`` numpy unless stated. The official code asserts an input rate of at least
16 kHz; here any rate is accepted (8 kHz phone audio included) and resampled.
"""
from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf
import torch

from .compat import import_torchaudio
from . import validation
from .errors import AudioDecodeError, InvalidInputError

OUTPUT_SAMPLE_RATE = 24000       # HiFT output rate; also the prompt-mel rate
TOKENIZER_SAMPLE_RATE = 16000    # vq02, vq06 and CAM++ rate
PROMPT_PEAK_CAP = 0.6            # GH:tts.py preprocess_prompt_wav: scale down if max|x| > 0.6
ENERGY_NORM_FLOOR = 0.01         # GH:utils.py energy_norm_fn: x / max(max|x|, 0.01) * 0.999
ENERGY_NORM_GAIN = 0.999
TRIM_TOP_DB = 20                 # GH:utils.py trim_silence -> librosa.effects.trim(top_db=20, 512, 128)
TRIM_FRAME_LENGTH = 512
TRIM_HOP_LENGTH = 128
TRIM_FRAME_SAMPLES = 240         # output length is a whole number of 15 ms frames
TRIM_KEEP_BEFORE_S = 0.05        # kept before the first non-silent sample
TRIM_KEEP_AFTER_S = 0.22         # extra tail kept after the last whole frame
MIN_AUDIO_SECONDS = validation.MIN_AUDIO_SECONDS
# Hash window of the official clone speaker name (model.prompts.clone_speaker_name): the first and last N samples
# of the loaded tensor, flattened in C order.
SPEAKER_HASH_EDGE_SAMPLES = 1000
DECODE_BLOCK_FRAMES = 65536      # frames decoded at a time (8 channels: 2 MB of float32)
RAW_KEEP_SAMPLES = 8_000_000     # a multichannel file up to this many samples (32 MB) keeps its whole (C, N) array

AudioSource = Union[str, os.PathLike, bytes, BinaryIO]


@dataclass(frozen=True)
class LoadedAudio:
    """A decoded file: ``wav`` its mono mix (N,) float32, ``raw`` channel-first float32 (C, N) as read.

    A multichannel file of more than RAW_KEEP_SAMPLES samples keeps in ``raw`` only what the official
    speaker-name hash reads of it (its first and last SPEAKER_HASH_EDGE_SAMPLES in C order, shape (1, 2 * edge)),
    so a long 8-channel file costs its mono mix, not eight copies of it."""
    wav: np.ndarray
    sample_rate: int
    raw: np.ndarray

    @property
    def duration(self) -> float:
        return self.wav.shape[-1] / self.sample_rate


def load_audio(source: AudioSource, what: str | None = None,
               max_seconds: float = validation.MAX_AUDIO_SECONDS) -> LoadedAudio:
    """Decode wav / flac / ogg / mp3 (anything libsndfile reads) to float32 in [-1, 1].

    The header is checked first (rate, channels, length; ``validation.probe_audio``), so an oversized file
    is refused before decoding; then at most the header's frame count is read, DECODE_BLOCK_FRAMES at a time
    and mixed to mono as it comes (memory: the mono mix plus one block, whatever the header claims). Messages
    name ``what`` (default: the file's own name), never the folder it sits in.
    """
    name = what or validation.display_name(source)
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    info = validation.probe_audio(source, name, max_seconds)
    try:
        wav, raw, sr = _decode_mono(source, info.frames, info.channels)
    except Exception as exc:  # noqa: BLE001  libsndfile raises several types for unreadable data
        raise AudioDecodeError(f"{name} could not be decoded ({validation._reason(exc)})") from exc
    check_audio(wav, sr, name=name)
    return LoadedAudio(wav=wav, sample_rate=int(sr), raw=raw)


def _decode_mono(source, frames: int, channels: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(mono (N,), raw, rate) of at most ``frames`` frames, read block by block (see LoadedAudio.raw)."""
    keep_all = channels == 1 or frames * channels <= RAW_KEEP_SAMPLES
    mono = np.empty(frames, np.float32)             # pages are touched only as real samples arrive
    raw = np.empty((channels, frames), np.float32) if keep_all and channels > 1 else None
    head, tail, done = [], np.zeros((0, channels), np.float32), 0
    with sf.SoundFile(source) as f:
        sr = f.samplerate
        while done < frames:
            block = f.read(min(DECODE_BLOCK_FRAMES, frames - done), dtype="float32", always_2d=True)  # (n, C)
            if not len(block):
                break
            n = len(block)
            mono[done:done + n] = block.mean(axis=1) if channels > 1 else block[:, 0]
            if raw is not None:
                raw[:, done:done + n] = block.T
            elif channels > 1:
                if done < SPEAKER_HASH_EDGE_SAMPLES:
                    head.append(block[:SPEAKER_HASH_EDGE_SAMPLES - done, 0])
                tail = np.concatenate([tail, block])[-SPEAKER_HASH_EDGE_SAMPLES:]
            done += n
    mono = mono[:done]
    if channels == 1:
        return mono, mono[None, :], sr
    if raw is not None:
        return mono, np.ascontiguousarray(raw[:, :done]), sr
    edges = np.concatenate(head + [tail[:, -1]])      # C order: channel 0 first, the last channel last
    return mono, edges[None, :].astype(np.float32), sr


def check_audio(wav: np.ndarray, sample_rate: int, *, min_seconds: float = MIN_AUDIO_SECONDS,
                name: str = "the audio") -> np.ndarray:
    """Return ``wav`` as float32 mono, raising AudioDecodeError / InvalidInputError for unusable audio."""
    if sample_rate is None or isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
            or int(sample_rate) <= 0:
        raise InvalidInputError(f"invalid sample rate {sample_rate!r}")
    wav = np.asarray(wav)
    if wav.dtype.kind in "iu":                      # int PCM from a UI component
        wav = wav.astype(np.float32) / float(np.iinfo(wav.dtype).max + 1)
    elif wav.dtype.kind not in "f":
        raise AudioDecodeError(f"{name} must hold numbers (got {wav.dtype} samples)")
    wav = to_mono(wav.astype(np.float32, copy=False))
    if wav.size == 0:
        raise AudioDecodeError(f"{name} is empty (no samples)")
    validation.check_samples(wav, int(sample_rate), name)
    if wav.size / sample_rate < min_seconds:
        raise InvalidInputError(f"{name} is too short ({wav.size / sample_rate:.2f} s; "
                                f"at least {min_seconds} s is needed)")
    return wav


def to_mono(wav: np.ndarray) -> np.ndarray:
    """(N,) stays; (C, N) or (N, C) with C < N is averaged over channels."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 1:
        return wav
    if wav.ndim != 2:
        raise AudioDecodeError(f"audio must be 1-D or 2-D, got shape {wav.shape}")
    if wav.shape[0] > wav.shape[1]:                # (N, C) as UI components deliver it
        wav = wav.T
    return wav.mean(axis=0)


def resample(wav: np.ndarray | torch.Tensor, orig_sr: int, new_sr: int, *,
             kernel: str = "functional") -> np.ndarray:
    """Band-limited sinc resampling (torchaudio defaults: Hann window, width 6, rolloff 0.99).

    ``kernel="functional"`` is ``torchaudio.functional.resample`` (the official prompt-mel and CAM++ branch);
    ``"transform"`` is ``torchaudio.transforms.Resample`` (the official tokenizer branch); they differ by
    ~1e-7. Any integer rates are accepted.
    """
    x = torch.as_tensor(np.asarray(wav, dtype=np.float32)) if not isinstance(wav, torch.Tensor) else wav.float()
    if int(orig_sr) == int(new_sr):
        return x.numpy().astype(np.float32, copy=True)
    ta = import_torchaudio()
    if kernel == "functional":
        y = ta.functional.resample(x, int(orig_sr), int(new_sr))
    elif kernel == "transform":
        y = ta.transforms.Resample(int(orig_sr), int(new_sr))(x)
    else:
        raise ValueError(f"unknown resampling kernel {kernel!r}")
    return y.numpy().astype(np.float32, copy=False)


def peak_cap(wav: np.ndarray, limit: float = PROMPT_PEAK_CAP) -> np.ndarray:
    """Scale down to peak exactly ``limit`` if louder; otherwise unchanged (GH:tts.py)."""
    peak = float(np.max(np.abs(wav))) if wav.size else 0.0
    return (wav / peak * limit).astype(np.float32) if peak > limit else wav.astype(np.float32, copy=False)


def energy_norm(wav: np.ndarray) -> np.ndarray:
    """``x / max(max|x|, 0.01) * 0.999`` (GH:utils.py energy_norm_fn)."""
    peak = max(float(np.max(np.abs(wav))) if wav.size else 0.0, ENERGY_NORM_FLOOR)
    return (wav / peak * ENERGY_NORM_GAIN).astype(np.float32)


def nonsilent_interval(wav: np.ndarray, top_db: float = TRIM_TOP_DB, frame_length: int = TRIM_FRAME_LENGTH,
                       hop_length: int = TRIM_HOP_LENGTH) -> tuple[int, int]:
    """[start, end) in samples of the non-silent part, as ``librosa.effects.trim`` computes it.

    RMS over centred frames (zero padding of frame_length // 2), in dB relative to the loudest frame
    (amplitude floor 1e-5); frames above ``-top_db`` are non-silent.
    """
    y = np.asarray(wav, dtype=np.float32)
    pad = frame_length // 2
    padded = np.pad(y, (pad, pad))
    n_frames = 1 + (len(padded) - frame_length) // hop_length
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop_length][:n_frames]
    rms = np.sqrt(np.mean(np.abs(frames) ** 2, axis=-1, dtype=np.float32))
    power = np.square(rms)
    amin = 1e-10                                   # (1e-5)**2, librosa amplitude_to_db default
    ref = max(amin, float(np.max(power))) if power.size else amin
    db = 10.0 * np.log10(np.maximum(amin, power)) - 10.0 * np.log10(ref)
    loud = np.flatnonzero(db > -top_db)
    if loud.size == 0:
        return 0, 0
    return int(loud[0] * hop_length), min(len(y), int((loud[-1] + 1) * hop_length))


def trim_silence(wav16: np.ndarray, sample_rate: int = TOKENIZER_SAMPLE_RATE) -> np.ndarray:
    """The official tokenizer-branch trim (GH:utils.py trim_silence), on energy-normed 16 kHz audio.

    Keeps 50 ms before the first non-silent sample (zero-padding on the left if needed) and
    ``ceil((e - s) / 240) * 240 + 0.27 s`` samples in all, truncating or zero-padding on the right.
    """
    start, end = nonsilent_interval(wav16)
    n_frames = math.ceil((end - start) / TRIM_FRAME_SAMPLES)
    begin = start - int(TRIM_KEEP_BEFORE_S * sample_rate)
    length = n_frames * TRIM_FRAME_SAMPLES + int(round((TRIM_KEEP_BEFORE_S + TRIM_KEEP_AFTER_S) * sample_rate))
    y = np.asarray(wav16, dtype=np.float32)
    if begin < 0:
        y = np.concatenate([np.zeros(-begin, np.float32), y])
        begin = 0
    y = y[begin:begin + length]
    if len(y) < length:
        y = np.concatenate([y, np.zeros(length - len(y), np.float32)])
    return y


def prepare_for_tokenizer(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Tokenizer-branch preprocessing: 16 kHz (transform kernel), energy norm, trim_silence."""
    wav16 = resample(wav, sample_rate, TOKENIZER_SAMPLE_RATE, kernel="transform")
    return trim_silence(energy_norm(wav16))


def write_wav(path: str | os.PathLike, wav: np.ndarray, sample_rate: int = OUTPUT_SAMPLE_RATE) -> str:
    """Write 16-bit PCM. Samples are clipped to [-1, 1] but never rescaled (no silent peak normalisation)."""
    y = np.clip(np.asarray(wav, dtype=np.float32).reshape(-1), -1.0, 1.0)
    sf.write(str(path), y, int(sample_rate), subtype="PCM_16")
    return str(path)


def crossfade_concat(pieces: list[np.ndarray], sample_rate: int, fade_s: float = 0.02) -> np.ndarray:
    """Join pieces with an equal-power cross-fade of ``fade_s`` seconds (shorter pieces fade less)."""
    pieces = [np.asarray(p, dtype=np.float32) for p in pieces if len(p)]
    if not pieces:
        return np.zeros(0, np.float32)
    out = pieces[0]
    for p in pieces[1:]:
        n = min(int(fade_s * sample_rate), len(out), len(p))
        if n == 0:
            out = np.concatenate([out, p])
            continue
        t = np.linspace(0.0, np.pi / 2, n, dtype=np.float32)
        mixed = out[-n:] * np.cos(t) + p[:n] * np.sin(t)
        out = np.concatenate([out[:-n], mixed, p[n:]])
    return out
