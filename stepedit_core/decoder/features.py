"""Prompt-audio features for the flow decoder and CAM++ (after resampling: 24 kHz mel, 16 kHz fbank, x-vector).

* ``mel_spectrogram_24k``: the matcha-style log-mel (``speech_feat``, the flow's prompt condition), 80 bins at
  50 Hz from 24 kHz audio, with a librosa-compatible Slaney mel basis computed here (no librosa dependency).
* ``fbank_80`` / ``campplus_input``: Kaldi fbank (torchaudio.compliance.kaldi) and its mean-normalised form,
  the exact feed of campplus.onnx.
* ``extract_speech_feat`` / ``extract_spk_feat``: the two official branches from one peak-capped waveform.

Tensors are float32; waveforms ``(B, N)`` in [-1, 1] (no ×32768 scaling anywhere, as in the official code).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from ..audio import PROMPT_PEAK_CAP, TOKENIZER_SAMPLE_RATE
from ..audio import peak_cap as _peak_cap_np
from ..audio import resample as _resample_np
from ..compat import import_torchaudio

MAGNITUDE_EPS = 1e-9         # matcha mel_spectrogram: |X| = sqrt(re² + im² + 1e-9)
LOG_CLAMP_MIN = 1e-5         # matcha dynamic_range_compression: log(clamp(x, min=1e-5))
FBANK_NUM_MEL_BINS = 80      # GH:cli/frontend.py extract_spk_embedding: kaldi.fbank(num_mel_bins=80, dither=0)
FBANK_DITHER = 0.0

# Slaney mel scale (librosa.hz_to_mel with htk=False): linear below 1 kHz, logarithmic above.
_SLANEY_F_SP = 200.0 / 3                      # Hz per mel in the linear part
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
_SLANEY_LOGSTEP = np.log(6.4) / 27.0


@dataclass(frozen=True)
class MelConfig:
    """cosyvoice.yaml ``mel_conf`` (defaults = the shipped values)."""
    num_mels: int = 80
    n_fft: int = 1920
    sampling_rate: int = 24000
    hop_size: int = 480          # 50 Hz frames at 24 kHz
    win_size: int = 1920
    fmin: float = 0.0
    fmax: float = 8000.0
    center: bool = False

    @classmethod
    def from_dict(cls, conf: Mapping) -> "MelConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(conf).items() if k in known})


def hz_to_mel_slaney(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / _SLANEY_F_SP
    log_part = hz >= _SLANEY_MIN_LOG_HZ
    return np.where(log_part, _SLANEY_MIN_LOG_MEL + np.log(np.maximum(hz, 1e-30) / _SLANEY_MIN_LOG_HZ)
                    / _SLANEY_LOGSTEP, mel)


def mel_to_hz_slaney(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = mel * _SLANEY_F_SP
    log_part = mel >= _SLANEY_MIN_LOG_MEL
    return np.where(log_part, _SLANEY_MIN_LOG_HZ * np.exp(_SLANEY_LOGSTEP * (mel - _SLANEY_MIN_LOG_MEL)), hz)


@lru_cache(maxsize=8)
def slaney_mel_basis(sampling_rate: int, n_fft: int, num_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular mel filters (num_mels, n_fft // 2 + 1), Slaney area normalisation, float32.

    Same numbers as ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)`` (htk=False, norm="slaney"):
    band edges equally spaced on the Slaney mel scale, computed in float64; each triangle is stored in float32
    and then scaled by 2 / (upper edge - lower edge) in Hz.
    """
    fft_hz = np.fft.rfftfreq(n_fft, d=1.0 / sampling_rate)
    edges_hz = mel_to_hz_slaney(np.linspace(hz_to_mel_slaney(fmin), hz_to_mel_slaney(fmax), num_mels + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    weights = np.zeros((num_mels, n_fft // 2 + 1), dtype=np.float32)
    for i in range(num_mels):
        rising = -ramps[i] / widths[i]
        falling = ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2:num_mels + 2] - edges_hz[:num_mels]))[:, None]
    return weights


def mel_spectrogram_24k(wav: torch.Tensor, conf: MelConfig = MelConfig()) -> torch.Tensor:  # frozen default
    """Matcha-style log-mel: wav (B, N) at conf.sampling_rate -> (B, num_mels, N // hop) (N a hop multiple).

    Reflect-pad (n_fft - hop) / 2 per side, STFT without centring and a periodic Hann window,
    sqrt(re² + im² + 1e-9), mel basis, log(clamp(min 1e-5)).
    """
    if wav.dim() == 1:
        wav = wav[None]
    wav = wav.float()
    pad = (conf.n_fft - conf.hop_size) // 2
    y = F.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(conf.win_size, device=y.device)
    spec = torch.stft(y, conf.n_fft, hop_length=conf.hop_size, win_length=conf.win_size, window=window,
                      center=conf.center, normalized=False, onesided=True, return_complex=True)
    magnitude = torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + MAGNITUDE_EPS)   # (B, F, T)
    basis = torch.from_numpy(slaney_mel_basis(conf.sampling_rate, conf.n_fft, conf.num_mels,
                                              float(conf.fmin), float(conf.fmax))).to(y.device)
    return torch.log(torch.clamp(torch.matmul(basis, magnitude), min=LOG_CLAMP_MIN))


def fbank_80(wav16: torch.Tensor) -> torch.Tensor:
    """Kaldi fbank of 16 kHz audio (1, N) -> (T, 80): 25 ms / 10 ms povey frames, pre-emphasis 0.97,
    DC removal, log energies; dither 0; input not scaled by 32768 (official extract_spk_embedding)."""
    if wav16.dim() == 1:
        wav16 = wav16[None]
    kaldi = import_torchaudio().compliance.kaldi
    return kaldi.fbank(wav16.float(), num_mel_bins=FBANK_NUM_MEL_BINS, dither=FBANK_DITHER,
                       sample_frequency=TOKENIZER_SAMPLE_RATE)


def campplus_input(wav16: torch.Tensor) -> torch.Tensor:
    """What campplus.onnx is fed: fbank minus its mean over time, (1, T, 80)."""
    feat = fbank_80(wav16)
    return (feat - feat.mean(dim=0, keepdim=True)).unsqueeze(0)


def peak_cap(wav: torch.Tensor, limit: float = PROMPT_PEAK_CAP) -> torch.Tensor:
    """Tensor form of ``audio.peak_cap``: scale to peak exactly ``limit`` if louder (GH:tts.py)."""
    return torch.from_numpy(_peak_cap_np(wav.detach().cpu().float().numpy(), limit)).to(wav.device)


def bf16_roundtrip(x: torch.Tensor) -> torch.Tensor:
    """float32 -> bfloat16 -> float32: what tts.py does to the prompt mel and x-vector before the flow."""
    return x.to(torch.bfloat16).to(torch.float32)


def _resampled(wav: torch.Tensor, sample_rate: int, target: int) -> torch.Tensor:
    if int(sample_rate) == int(target):
        return wav.float()
    return torch.from_numpy(_resample_np(wav.detach().cpu().float(), sample_rate, target, kernel="functional"))


def extract_speech_feat(wav: torch.Tensor, sample_rate: int, conf: MelConfig = MelConfig()) -> torch.Tensor:
    """Official ``extract_speech_feat``: resample to 24 kHz (torchaudio.functional) -> log-mel, (1, T, 80)."""
    if wav.dim() == 1:
        wav = wav[None]
    return mel_spectrogram_24k(_resampled(wav, sample_rate, conf.sampling_rate), conf).transpose(1, 2)


def extract_spk_feat(wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """CAM++ branch features: resample to 16 kHz (torchaudio.functional) -> ``campplus_input`` (1, T, 80)."""
    if wav.dim() == 1:
        wav = wav[None]
    return campplus_input(_resampled(wav, sample_rate, TOKENIZER_SAMPLE_RATE))


__all__ = ["MelConfig", "slaney_mel_basis", "mel_spectrogram_24k", "fbank_80", "campplus_input", "peak_cap",
           "bf16_roundtrip", "extract_speech_feat", "extract_spk_feat"]
