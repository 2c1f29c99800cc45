"""Speaker similarity with the GE2E encoder of Resemblyzer (weights Apache-2.0), in numpy - no torch.

Used by ``bench/lite_quality.py`` to measure how close a clone is to its prompt. The 17 MB
``pretrained.pt`` is not shipped: the bench obtains it with ``pip download --no-deps resemblyzer==0.1.4``.
That file is a legacy (pre-zip) torch pickle; it is read here with ``pickle`` alone.

Model (GE2E, Wan et al. 2018): 40-band mel power spectrogram (16 kHz, 25 ms Hann window, 10 ms hop) ->
3-layer LSTM(256) -> linear(256) -> ReLU -> L2 norm; an utterance embedding is the normalised mean of
embeddings of 1.6 s windows taken at 1.3 windows per second.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

from .dsp import resample

RATE = 16000
N_FFT, HOP, N_MELS = 400, 160, 40          # 25 ms window, 10 ms hop
PARTIAL_FRAMES = 160                       # 1.6 s windows
PARTIALS_PER_SECOND = 1.3
MIN_COVERAGE = 0.75                        # a last window must be 75 % filled to count
HIDDEN = 256
TARGET_DBFS = -30.0                        # loudness normalisation before embedding
_STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "LongStorage": np.int64}


def load_legacy_state(data: bytes) -> dict[str, np.ndarray]:
    """``model_state`` of a legacy torch pickle: magic, protocol, sys-info, object, storage keys, raw storages."""
    f = io.BytesIO(data)
    storages: dict[str, list] = {}

    class Reader(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return lambda storage, offset, size, stride, *rest: ("tensor", storage, offset, size, stride)
            if module == "torch" and name.endswith("Storage"):
                return name
            if module == "collections" and name == "OrderedDict":
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

        def persistent_load(self, pid):
            _, storage_type, key, _location, _numel, _view = pid
            return storages.setdefault(key, [_STORAGE_DTYPES[storage_type], None])

    for _ in range(3):
        pickle.load(f)
    obj = Reader(f).load()
    for key in pickle.load(f):
        dtype = np.dtype(storages[key][0])
        (count,) = struct.unpack("<q", f.read(8))
        storages[key][1] = np.frombuffer(f.read(count * dtype.itemsize), dtype)

    def build(node):
        if isinstance(node, tuple) and node and node[0] == "tensor":
            _, (dtype, flat), offset, size, stride = node
            item = np.dtype(dtype).itemsize
            return np.lib.stride_tricks.as_strided(flat[offset:], size, [s * item for s in stride]).copy()
        if isinstance(node, dict):
            return {k: build(v) for k, v in node.items()}
        return node

    return build(obj)["model_state"]


def load_from_wheel(wheel: str | Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(wheel) as z:
        return load_legacy_state(z.read("resemblyzer/pretrained.pt"))


def mel_filterbank() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) Slaney-style mel filters with area normalisation (librosa's default)."""
    f_sp, brk = 200.0 / 3, 1000.0
    log_step = np.log(6.4) / 27.0
    brk_mel = brk / f_sp

    def to_mel(f):
        f = np.asarray(f, float)
        return np.where(f >= brk, brk_mel + np.log(np.maximum(f, 1e-10) / brk) / log_step, f / f_sp)

    def to_hz(m):
        return np.where(m >= brk_mel, brk * np.exp(log_step * (m - brk_mel)), f_sp * m)

    fft_freqs = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    edges = to_hz(np.linspace(to_mel(0.0), to_mel(RATE / 2), N_MELS + 2))
    lower = (fft_freqs[None, :] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    upper = (edges[2:, None] - fft_freqs[None, :]) / (edges[2:] - edges[1:-1])[:, None]
    bank = np.maximum(0.0, np.minimum(lower, upper))
    return (bank * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


def mel_frames(wav16: np.ndarray) -> np.ndarray:
    """(T, N_MELS) mel power frames, centred (zero-padded) STFT with a periodic Hann window."""
    x = np.pad(np.asarray(wav16, np.float32), N_FFT // 2)
    n = 1 + (len(x) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP][:n]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return (power @ mel_filterbank().T).astype(np.float32)


def _sigmoid(v):
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def encode(state: dict[str, np.ndarray], mels: np.ndarray) -> np.ndarray:
    """(B, T, N_MELS) -> (B, 256) unit-norm embeddings (LSTM gate order i, f, g, o)."""
    h_seq = mels
    for layer in range(3):
        w_ih, w_hh = state[f"lstm.weight_ih_l{layer}"], state[f"lstm.weight_hh_l{layer}"]
        bias = state[f"lstm.bias_ih_l{layer}"] + state[f"lstm.bias_hh_l{layer}"]
        batch, steps, _ = h_seq.shape
        pre = h_seq @ w_ih.T + bias                       # (B, T, 4H)
        h = np.zeros((batch, HIDDEN), np.float32)
        c = np.zeros_like(h)
        out = np.empty((batch, steps, HIDDEN), np.float32)
        for t in range(steps):
            i, f, g, o = np.split(pre[:, t] + h @ w_hh.T, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            out[:, t] = h
        h_seq = out
    e = np.maximum(0.0, h @ state["linear.weight"].T + state["linear.bias"])
    return e / (np.linalg.norm(e, axis=1, keepdims=True) + 1e-9)


def embed(state: dict[str, np.ndarray], wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Utterance embedding (256,) of ``wav``; silence is trimmed with the WebRTC VAD first."""
    from .vad import speech_regions  # noqa: PLC0415
    x = resample(wav, sample_rate, RATE)
    regions = speech_regions(x, RATE, hangover_s=0.03)
    if regions:
        x = np.concatenate([x[a:b] for a, b in regions])
    rms = np.sqrt(np.mean(x ** 2) + 1e-12)
    x = x * (10 ** (TARGET_DBFS / 20) / rms)
    n_frames = int(np.ceil((len(x) + 1) / HOP))
    step = max(1, int(round(RATE / PARTIALS_PER_SECOND / HOP)))
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    if len(starts) > 1 and (len(x) - starts[-1] * HOP) / (PARTIAL_FRAMES * HOP) < MIN_COVERAGE:
        starts = starts[:-1]
    need = (starts[-1] + PARTIAL_FRAMES) * HOP
    x = np.pad(x, (0, max(0, need - len(x))))
    mel = mel_frames(x)
    batch = np.stack([mel[s:s + PARTIAL_FRAMES] for s in starts])
    e = encode(state, batch).mean(axis=0)
    return e / (np.linalg.norm(e) + 1e-9)


def similarity(state, a: np.ndarray, b: np.ndarray, sample_rate: int) -> float:
    """Cosine similarity of the two clips' speaker embeddings."""
    return float(np.dot(embed(state, a, sample_rate), embed(state, b, sample_rate)))
