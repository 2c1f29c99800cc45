"""vq06: the semantic tokenizer, S3 tokenizer v1 at 25 codes/s, 4096 codes.

The network is the official ``speech_tokenizer_v1.onnx`` run with onnxruntime (CUDA provider when
present, else CPU). Its input is the Whisper 128-bin log-mel, computed here in torch (no openai-whisper):

    |STFT(n_fft 400, hop 160, periodic Hann, centre reflect)|^2, last frame dropped
    -> 128-bin Slaney mel (librosa.filters.mel, as Whisper's mel_filters.npz) -> log10(max(., 1e-10))
    -> max(x, max(x) - 8) -> (x + 4) / 4

Graph I/O (positional, as the official code feeds it): ``feats`` (1, 128, T) float32 and ``feats_length``
(1,) int32 in; ``indices`` (1, 1, T') int64 out, T' = ceil(ceil(T / 2) / 2) (two stride-2 convs).

Long audio: the model is trained on at most 30 s (1500 mel frames, 750 positions). The official code cuts
at every 30 s and drops a last piece under 480 samples. ``split="official"`` does that; the default
``split="quiet"`` cuts instead at the quietest 40 ms boundary between 20 s and 30 s into the piece (never
leaving a tail under 1 s), which keeps words whole. Every cut falls on the 640-sample (40 ms) token grid,
so the concatenated codes stay on one 25 Hz time line in both modes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError, ModelUnavailableError
from ..tokens import VQ06_SIZE

SAMPLE_RATE = 16000
N_FFT = 400                       # whisper.audio: 25 ms window
HOP_LENGTH = 160                  # 10 ms -> 100 mel frames/s
N_MELS = 128                      # the S3 v1 / whisper-large-v3 mel size
LOG_FLOOR = 1e-10                 # whisper: log10(clamp(mel, min=1e-10))
DYNAMIC_RANGE = 8.0               # whisper: max(x, x.max() - 8)
TOKEN_RATE = 25                   # codes per second
SAMPLES_PER_TOKEN = SAMPLE_RATE // TOKEN_RATE          # 640 = 4 mel hops (two stride-2 convs)
CHUNK_SAMPLES = 30 * SAMPLE_RATE                       # 480,000: official split_audio chunk
MIN_CHUNK_SAMPLES = 480                                # official: shorter pieces are dropped
COUNT_TOLERANCE = 2                                    # official assert |len - duration * 25| <= 2
QUIET_SEARCH_FROM = 20 * SAMPLE_RATE                   # quiet split: earliest cut, 20 s into the piece
QUIET_MIN_TAIL = SAMPLE_RATE                           # quiet split: never leave a piece under 1 s


def _hz_to_mel(f):
    """Slaney mel scale (librosa htk=False): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), (200.0 / 3) * m)


def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE) -> torch.Tensor:
    """(n_mels, n_fft//2 + 1) Slaney-normalised triangles, 0 Hz .. Nyquist (Whisper's mel_filters.npz).

    Triangles in float64, stored as float32, then scaled by the float64 area norm (librosa's order).
    """
    fft_hz = np.linspace(0, sr / 2, 1 + n_fft // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    ramps = edges[:, None] - fft_hz[None, :]
    width = np.diff(edges)
    lower, upper = -ramps[:-2] / width[:-1, None], ramps[2:] / width[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return torch.from_numpy(weights.astype(np.float32))


_FILTERS: dict[int, torch.Tensor] = {}


def log_mel_spectrogram(wav: torch.Tensor, n_mels: int = N_MELS) -> torch.Tensor:
    """(N,) 16 kHz waveform -> (n_mels, N // 160) Whisper log-mel, normalised over this piece."""
    if n_mels not in _FILTERS:
        _FILTERS[n_mels] = mel_filters(n_mels)
    x = wav.float()
    spec = torch.stft(x, N_FFT, HOP_LENGTH, window=torch.hann_window(N_FFT, device=x.device),
                      center=True, pad_mode="reflect", return_complex=True)
    power = spec[..., :-1].abs() ** 2                                    # (201, T)
    mel = _FILTERS[n_mels].to(x.device) @ power
    log = torch.clamp(mel, min=LOG_FLOOR).log10()
    log = torch.maximum(log, log.max() - DYNAMIC_RANGE)
    return (log + 4.0) / 4.0


def expected_tokens(n_frames: int) -> int:
    """Codes the 25 Hz model emits for ``n_frames`` mel frames: two convs with k 3, s 2, p 1."""
    for _ in range(2):
        n_frames = (n_frames - 1) // 2 + 1 if n_frames > 0 else 0
    return n_frames


def split_points(wav: np.ndarray, split: str = "quiet") -> list[tuple[int, int]]:
    """[start, end) sample ranges of the pieces the network sees (see the module docstring)."""
    n = len(wav)
    if split == "official":
        return [(s, min(s + CHUNK_SAMPLES, n)) for s in range(0, n, CHUNK_SAMPLES)
                if min(s + CHUNK_SAMPLES, n) - s >= MIN_CHUNK_SAMPLES]
    if split != "quiet":
        raise ValueError(f"unknown vq06 split mode {split!r}")
    blocks = np.asarray(wav[:n - n % SAMPLES_PER_TOKEN], dtype=np.float64).reshape(-1, SAMPLES_PER_TOKEN)
    energy = np.square(blocks).mean(axis=1)
    # a cut at grid point b sits between blocks b-1 and b; score it by the energy around it
    score = np.convolve(energy, np.ones(2), mode="full")[:len(energy) + 1]
    pieces, start = [], 0
    while n - start > CHUNK_SAMPLES:
        lo = (start + QUIET_SEARCH_FROM) // SAMPLES_PER_TOKEN
        hi = min(start + CHUNK_SAMPLES, n - QUIET_MIN_TAIL) // SAMPLES_PER_TOKEN
        cut = (lo + int(np.argmin(score[lo:hi + 1]))) * SAMPLES_PER_TOKEN
        pieces.append((start, cut))
        start = cut
    if n - start >= MIN_CHUNK_SAMPLES or not pieces:
        pieces.append((start, n))
    return [p for p in pieces if p[1] - p[0] >= MIN_CHUNK_SAMPLES]


class Vq06Tokenizer:
    """Trimmed 16 kHz waveform -> vq06 codes through ``speech_tokenizer_v1.onnx``."""

    def __init__(self, onnx_path: str | Path, *, providers: list[str] | None = None,
                 intra_op_threads: int | None = None, split: str = "quiet"):
        try:
            import onnxruntime as ort
        except ImportError as exc:                                       # pragma: no cover
            raise ModelUnavailableError("onnxruntime is needed for the vq06 tokenizer") from exc
        if not Path(onnx_path).is_file():
            raise CheckpointError(f"vq06 model not found: {onnx_path}", missing=[str(onnx_path)])
        if providers is None:
            available = ort.get_available_providers()
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no pre-packed copies of the 522 MB of weights: ~250 MB less RSS at the same speed and the same tokens
        # (measured on the real-size model, 10 s of audio, 2 threads: 0.69 s vs 0.74 s)
        opts.add_session_config_entry("session.disable_prepacking", "1")
        if intra_op_threads:
            opts.intra_op_num_threads = int(intra_op_threads)
        try:
            self.session = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=providers)
        except Exception as exc:
            raise CheckpointError(f"cannot load vq06 model {onnx_path}: {exc}") from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 2 or len(inputs[0].shape) != 3:
            raise CheckpointError(f"{onnx_path}: expected inputs (feats (1,128,T), feats_length (1,)), got "
                                  f"{[(i.name, i.shape) for i in inputs]}")
        self.feats_name, self.length_name = inputs[0].name, inputs[1].name
        self.onnx_path = Path(onnx_path)                     # hashed into StepAudioTokenizer.fingerprint
        n_mels = inputs[0].shape[1]
        self.n_mels = n_mels if isinstance(n_mels, int) else N_MELS
        self.split = split

    def encode_feats(self, feats: torch.Tensor) -> np.ndarray:
        """(n_mels, T) log-mel of one piece -> (T',) int64 codes, checked for count and range."""
        x = feats.detach().float().cpu().numpy()[None]
        out = self.session.run(None, {self.feats_name: x,
                                      self.length_name: np.array([x.shape[2]], dtype=np.int32)})[0]
        codes = np.asarray(out).reshape(-1).astype(np.int64)
        if codes.size and (codes.min() < 0 or codes.max() >= VQ06_SIZE):
            raise CheckpointError(f"vq06 model produced codes outside [0, {VQ06_SIZE})")
        return codes

    def encode_piece(self, piece: torch.Tensor) -> np.ndarray:
        codes = self.encode_feats(log_mel_spectrogram(piece, self.n_mels))
        duration = round(piece.numel() / SAMPLE_RATE, 2)                 # official rounding
        if abs(codes.size - duration * TOKEN_RATE) > COUNT_TOLERANCE:
            raise CheckpointError(
                f"vq06 model gave {codes.size} codes for {duration:.2f} s of audio; a 25 Hz S3 tokenizer v1 "
                f"gives {expected_tokens(piece.numel() // HOP_LENGTH)} (is this speech_tokenizer_v1.onnx?)")
        return codes

    def __call__(self, wav16: torch.Tensor | np.ndarray) -> list[int]:
        """Codes of a whole trimmed waveform, piece by piece (see ``split_points``)."""
        wav = torch.as_tensor(np.asarray(wav16, dtype=np.float32)).reshape(-1)
        codes = [self.encode_piece(wav[a:b]) for a, b in split_points(wav.numpy(), self.split)]
        return np.concatenate(codes).tolist() if codes else []
