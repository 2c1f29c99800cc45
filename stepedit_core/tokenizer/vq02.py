"""vq02: the linguistic tokenizer, 16.67 codes/s from 1024 k-means centroids.

Pipeline, all at 16 kHz: Kaldi fbank (x32768, hamming, 25/10 ms, 80 mel) -> LFR 7/6 -> CMVN (am.mvn) ->
FunASR ``SANMEncoderChunkOpt`` (Paraformer-large online encoder, 50 SANM blocks) run as the official
``infer_encoder`` streams it (240 ms chunks, 5-frame overlap, 16-frame k/v look-back) -> nearest centroid.

Two evaluations of the same streaming computation:
- ``encode_streaming``: the official chunk loop with explicit caches (the reference, batch 1);
- ``encode``: every 240 ms step of every utterance at once. Step k of layer l only needs the layer-l keys
  and values of steps k-4..k-1, which are themselves computed from layer l-1, so one layer can run all
  steps as a batch of windows whose look-back keys are gathered from the neighbouring windows. Same
  arithmetic, one matmul per layer instead of one per 240 ms step: 5x faster on one CPU thread
  (bench/RESULTS_tokenizer.md); tests prove equality against the reference.

Legend: W windows (encoder steps), S frames per window (overlap + chunk), C look-back frames, H heads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, InvalidInputError

SAMPLE_SCALE = float(1 << 15)   # WavFrontendOnline.forward_fbank: waveform * (1 << 15) before kaldi.fbank
PREEMPHASIS = 0.97              # kaldi.fbank defaults used by WavFrontendOnline
MEL_LOW_HZ = 20.0               # kaldi.fbank low_freq; high_freq 0 means Nyquist
SAMPLES_PER_CHUNK_UNIT = 960    # infer_encoder: chunk stride = chunk_size[1] * 960 samples (60 ms units)
MIN_FINAL_CHUNK = 480           # infer_encoder: a failing final chunk shorter than this is skipped
LAYER_NORM_EPS = 1e-12          # funasr transformer LayerNorm
PE_MAX_TIMESCALE = 10000.0      # StreamSinusoidalPositionEncoder
ENCODER_PREFIX = "encoder."
FLOAT32_EPS = float(np.finfo(np.float32).eps)   # kaldi log floor


@dataclass(frozen=True)
class FrontendConfig:
    """``frontend_conf`` of the Paraformer config.yaml (WavFrontendOnline)."""
    fs: int = 16000
    window: str = "hamming"
    n_mels: int = 80
    frame_length: int = 25        # ms
    frame_shift: int = 10         # ms
    lfr_m: int = 7
    lfr_n: int = 6
    dither: float = 1.0           # the official value (WavFrontendOnline default); runtime default is 0

    @property
    def win(self) -> int:
        return int(self.frame_length * self.fs / 1000)      # 400 samples

    @property
    def hop(self) -> int:
        return int(self.frame_shift * self.fs / 1000)       # 160 samples


@dataclass(frozen=True)
class EncoderConfig:
    """``encoder_conf`` of config.yaml (SANMEncoderChunkOpt); shapes of the state dict."""
    input_size: int = 560
    output_size: int = 512
    attention_heads: int = 4
    linear_units: int = 2048
    num_blocks: int = 50
    kernel_size: int = 11
    sanm_shfit: int = 0


@dataclass(frozen=True)
class StreamConfig:
    """The tokenizer's ``infer_encoder`` arguments (GH:tokenizer.py)."""
    chunk_size: tuple[int, int, int] = (0, 4, 5)
    encoder_chunk_look_back: int = 4

    def __post_init__(self):
        if self.chunk_size[0] != 0 or self.encoder_chunk_look_back <= 0:
            raise ValueError("only chunk_size[0] == 0 with a positive look-back is supported")

    @property
    def stride_samples(self) -> int:
        return self.chunk_size[1] * SAMPLES_PER_CHUNK_UNIT      # 3840 = 240 ms

    @property
    def overlap(self) -> int:
        return self.chunk_size[0] + self.chunk_size[2]          # 5 frames carried into the next step

    @property
    def cache_frames(self) -> int:
        return self.encoder_chunk_look_back * self.chunk_size[1]  # 16 look-back key/value frames


# ----------------------------------------------------------------------------------------------- front end

def _kaldi_mel_banks(fe: FrontendConfig, n_fft: int) -> torch.Tensor:
    """(n_fft//2 + 1, n_mels) triangular filters on the Kaldi mel scale 1127 ln(1 + f/700).

    Edges in double, the grid in float32, as Kaldi's torch port computes them (the log of a near-empty
    band amplifies any difference)."""
    lo, hi = (1127.0 * math.log1p(f / 700.0) for f in (MEL_LOW_HZ, fe.fs / 2))
    delta = (hi - lo) / (fe.n_mels + 1)
    b = torch.arange(fe.n_mels)[:, None]
    left, center, right = lo + b * delta, lo + (b + 1.0) * delta, lo + (b + 2.0) * delta
    m = 1127.0 * (1.0 + (fe.fs / n_fft) * torch.arange(n_fft // 2) / 700.0).log()
    bank = torch.clamp_min(torch.minimum((m - left) / (center - left), (right - m) / (right - center)), 0.0)
    return F.pad(bank, (0, 1)).T                                         # Nyquist bin unused, as Kaldi


def kaldi_fbank(wav: torch.Tensor, fe: FrontendConfig, dither: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """(N,) waveform in [-1, 1] -> (F, n_mels) log-mel fbank, ``F = 1 + (N - 400) // 160`` (snip_edges).

    ``torchaudio.compliance.kaldi.fbank`` semantics with energy_floor 0, no energy column; the input is
    scaled by 32768 first as WavFrontendOnline does. Dither adds N(0, 1)·dither per frame sample.
    """
    x = wav.double() * SAMPLE_SCALE
    if x.numel() < fe.win:
        return torch.zeros((0, fe.n_mels))
    frames = x.unfold(0, fe.win, fe.hop)                                  # (F, 400)
    if dither:
        frames = frames + dither * torch.randn(frames.shape, generator=generator, dtype=frames.dtype)
    frames = frames - frames.mean(dim=1, keepdim=True)
    prev = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - PREEMPHASIS * prev
    if fe.window != "hamming":
        raise CheckpointError(f"unsupported fbank window {fe.window!r}")
    frames = frames * torch.hamming_window(fe.win, periodic=False, dtype=frames.dtype)
    n_fft = 1 << (fe.win - 1).bit_length()                                # 512
    power = torch.fft.rfft(frames, n=n_fft).abs().pow(2.0)
    mel = power @ _kaldi_mel_banks(fe, n_fft).double()
    return torch.clamp_min(mel, FLOAT32_EPS).log().float()


def _lfr_step(rows: int, fe: FrontendConfig, final: bool) -> tuple[int, int]:
    """One ``WavFrontendOnline.apply_lfr`` call on ``rows`` spliced rows: (frames out, rows kept)."""
    t_lfr = math.ceil((rows - (fe.lfr_m - 1) // 2) / fe.lfr_n)
    out, splice_idx = 0, t_lfr
    for i in range(t_lfr):
        if fe.lfr_m <= rows - i * fe.lfr_n or final:
            out += 1
        else:
            splice_idx = i
            break
    return out, rows - min(rows - 1, splice_idx * fe.lfr_n)


def stream_chunk_frames(n_samples: int, fe: FrontendConfig, stream: StreamConfig) -> list[int]:
    """LFR frames that each encoder step of the official ``infer_encoder`` receives, for ``n_samples``.

    Replays the bookkeeping of the streaming front end (waveform carry-over, LFR splice cache, the
    final-chunk padding) without computing features; the features themselves equal the utterance-level
    fbank + LFR, so only the per-step counts are needed.
    """
    n_chunks = n_samples // stream.stride_samples + 1
    counts: list[int] = []
    carry, splice = 0, None                  # samples in input_cache; rows in lfr_splice_cache
    for i in range(n_chunks):
        final = i == n_chunks - 1
        size = min(stream.stride_samples, n_samples - i * stream.stride_samples)
        if final and size == 0:
            break
        total = carry + size
        frames = (total - fe.win) // fe.hop + 1 if total >= fe.win else 0
        carry = total - frames * fe.hop
        if frames and splice is None:
            splice = (fe.lfr_m - 1) // 2     # the first fbank frame is replicated as left context
        if frames and frames + splice < fe.lfr_m:
            splice += frames                 # too few rows: the front end returns nothing this step
            if final:
                break
            raise InvalidInputError("audio too short for the streaming front end")
        if frames or final:
            rows = splice + frames if splice is not None else 0
            out, splice = _lfr_step(rows, fe, final) if rows else (0, splice)
            if out == 0:                     # official: apply_lfr fails; short final chunks are skipped
                if final and size < MIN_FINAL_CHUNK:
                    break
                raise CheckpointError(f"streaming front end failed on chunk {i} ({size} samples)")
            counts.append(out)
    return counts


def lfr_cmvn(fbank: torch.Tensor, n_out: int, fe: FrontendConfig, cmvn: torch.Tensor) -> torch.Tensor:
    """(F, 80) fbank -> (n_out, 560): frame i stacks rows 6i..6i+6 of [f0, f0, f0, f0, f1, ...] (the last
    row replicated past the end), then ``(x + shift) * scale``."""
    left = (fe.lfr_m - 1) // 2
    idx = torch.arange(n_out)[:, None] * fe.lfr_n + torch.arange(fe.lfr_m)[None, :] - left
    idx = idx.clamp(0, fbank.shape[0] - 1)
    x = fbank[idx].reshape(n_out, fe.lfr_m * fe.n_mels)
    return (x + cmvn[0]) * cmvn[1]


def position_encoding(n: int, dim: int, start: int = 0) -> torch.Tensor:
    """StreamSinusoidalPositionEncoder rows for positions start+1 .. start+n: (n, dim) = [sin | cos]."""
    log_inc = torch.log(torch.tensor([PE_MAX_TIMESCALE], dtype=torch.float32)) / (dim / 2 - 1)
    inv = torch.exp(torch.arange(dim // 2, dtype=torch.float32) * -log_inc)
    t = torch.arange(start + 1, start + n + 1, dtype=torch.float32)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


# ----------------------------------------------------------------------------------------------- encoder

class MultiHeadedAttentionSANM(nn.Module):
    """Softmax attention plus the FSMN memory: depthwise Conv1d over v, + v."""

    def __init__(self, heads: int, in_feat: int, n_feat: int, kernel_size: int, sanm_shfit: int):
        super().__init__()
        self.h, self.d_k = heads, n_feat // heads
        self.linear_q_k_v = nn.Linear(in_feat, 3 * n_feat)
        self.linear_out = nn.Linear(n_feat, n_feat)
        self.fsmn_block = nn.Conv1d(n_feat, n_feat, kernel_size, groups=n_feat, bias=False)
        left = (kernel_size - 1) // 2 + sanm_shfit
        self.pad = (left, kernel_size - 1 - left)

    def qkv(self, x):
        """x (B, S, in) -> q, k, v (B, H, S, d_k) and v (B, S, D)."""
        b, s, _ = x.shape
        q, k, v = self.linear_q_k_v(x).chunk(3, dim=-1)
        heads = lambda t: t.reshape(b, s, self.h, self.d_k).transpose(1, 2)  # noqa: E731
        return heads(q), heads(k), heads(v), v

    def fsmn(self, v):
        """v (B, S, D), zero outside the window -> conv(v) + v."""
        return self.fsmn_block(F.pad(v.transpose(1, 2), self.pad)).transpose(1, 2) + v

    def attend(self, q, k, v, mask=None):
        """q (B,H,S,d), k/v (B,H,S+C,d) -> linear_out of the (B, S, D) context."""
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.linear_out(ctx.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1))


class FeedForward(nn.Module):
    def __init__(self, size: int, units: int):
        super().__init__()
        self.w_1, self.w_2 = nn.Linear(size, units), nn.Linear(units, size)

    def forward(self, x):
        return self.w_2(torch.relu(self.w_1(x)))


class EncoderLayerSANM(nn.Module):
    """Pre-norm SANM block; the attention residual is skipped when in_size != size (block 0)."""

    def __init__(self, in_size: int, size: int, cfg: EncoderConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(in_size, eps=LAYER_NORM_EPS)
        self.self_attn = MultiHeadedAttentionSANM(cfg.attention_heads, in_size, size, cfg.kernel_size,
                                                  cfg.sanm_shfit)
        self.norm2 = nn.LayerNorm(size, eps=LAYER_NORM_EPS)
        self.feed_forward = FeedForward(size, cfg.linear_units)
        self.residual = in_size == size

    def _finish(self, x, att):
        x = x + att if self.residual else att
        return x + self.feed_forward(self.norm2(x))

    def forward_windows(self, x, valid, cache_idx, key_mask):
        """All steps at once. x (W, S, in); valid (W, S); cache_idx (W, C) into the flat W*S frames."""
        a = self.self_attn
        q, k, v, v_flat = a.qkv(self.norm1(x))
        v_flat = v_flat * valid[..., None]          # a short final window is zero-padded for the FSMN
        w, h, s, d = k.shape
        gather = lambda t: t.transpose(1, 2).reshape(w * s, h, d)[cache_idx].transpose(1, 2)  # noqa: E731
        k_all, v_all = torch.cat([gather(k), k], dim=2), torch.cat([gather(v), v], dim=2)
        return self._finish(x, a.attend(q, k_all, v_all, key_mask) + a.fsmn(v_flat))

    def forward_chunk(self, x, cache, stream: StreamConfig):
        """One official streaming step: x (1, S, in); cache None or (k, v) of (1, H, <=C, d)."""
        a = self.self_attn
        q, k, v, v_flat = a.qkv(self.norm1(x))
        stride = slice(0, k.shape[2] - stream.chunk_size[2])
        if cache is None:
            new = (k[:, :, stride], v[:, :, stride])
        else:
            new = (torch.cat([cache[0], k[:, :, stride]], 2)[:, :, -stream.cache_frames:],
                   torch.cat([cache[1], v[:, :, stride]], 2)[:, :, -stream.cache_frames:])
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        return self._finish(x, a.attend(q, k, v) + a.fsmn(v_flat)), new


class SANMEncoderChunkOpt(nn.Module):
    """Paraformer-large online encoder; parameter names as in model.pt under ``encoder.``."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.encoders0 = nn.ModuleList([EncoderLayerSANM(cfg.input_size, cfg.output_size, cfg)])
        self.encoders = nn.ModuleList([EncoderLayerSANM(cfg.output_size, cfg.output_size, cfg)
                                       for _ in range(cfg.num_blocks - 1)])
        self.after_norm = nn.LayerNorm(cfg.output_size, eps=LAYER_NORM_EPS)

    @property
    def layers(self):
        return [*self.encoders0, *self.encoders]

    def embed(self, feats: torch.Tensor) -> torch.Tensor:
        """(L, in) CMVN features -> x·sqrt(output_size) + PE(1..L)."""
        pe = position_encoding(feats.shape[0], feats.shape[1]).to(feats.device)
        return feats * self.cfg.output_size ** 0.5 + pe

    def encode_streaming(self, feats: torch.Tensor, counts: list[int], stream: StreamConfig,
                         windows: list | None = None) -> torch.Tensor:
        """Reference: the official chunk loop. feats (L, in), counts per step -> (L, out).

        ``windows``, if given, receives each step's full (overlap + chunk, out) output."""
        x_all = self.embed(feats)
        overlap = feats.new_zeros((stream.overlap, feats.shape[1]))
        caches, outs, start = [None] * len(self.layers), [], 0
        for c in counts:
            window = torch.cat([overlap, x_all[start:start + c]])
            overlap, start = window[-stream.overlap:], start + c
            x = window[None]
            for i, layer in enumerate(self.layers):
                x, caches[i] = layer.forward_chunk(x, caches[i], stream)
            x = self.after_norm(x)[0]
            outs.append(x[-c:])
            if windows is not None:
                windows.append(x)
        return torch.cat(outs) if outs else feats.new_zeros((0, self.cfg.output_size))

    def encode_windows(self, feats: list[torch.Tensor], counts: list[list[int]],
                       stream: StreamConfig) -> list[torch.Tensor]:
        """Batched equivalent of :meth:`encode_streaming` for several utterances at once."""
        dev = feats[0].device
        plan = _window_plan(counts, stream)
        x_all = torch.cat([torch.cat([feats[0].new_zeros((1, feats[0].shape[1])), self.embed(f)])
                           for f in feats])                 # row 0 of each utterance is the zero pad
        x = x_all[plan["rows"].to(dev)]                      # (W, S, in); pads read the zero row
        valid, cache_idx = plan["valid"].to(dev), plan["cache_idx"].to(dev)
        key_mask = torch.cat([plan["cache_valid"], plan["valid"]], 1)[:, None, None, :].to(dev)
        for layer in self.layers:
            x = layer.forward_windows(x, valid, cache_idx, key_mask)
        out = self.after_norm(x).reshape(-1, x.shape[-1])[plan["keep"].to(dev)]
        return list(out.split(plan["lengths"]))


def _window_plan(counts: list[list[int]], stream: StreamConfig) -> dict:
    """Index tables of :meth:`SANMEncoderChunkOpt.encode_windows`.

    Step k of an utterance sees embedded frames [s_k - 5, s_k + c_k) (zeros before 0) and keys/values of
    the 16 frames [s_k - 21, s_k - 5): the first c_j frames of each earlier window j are its stride part.
    ``rows`` indexes the concatenation of per-utterance [zero row, embedded frames].
    """
    ov, s_max = stream.overlap, stream.overlap + max((max(c) for c in counts if c), default=1)
    rows, valid, keep, cache_idx, cache_valid, lengths = [], [], [], [], [], []
    base, w0 = 0, 0
    for cs in counts:
        owner = []                                           # flat (window, position) of stride frame g-ov
        start = 0
        for k, c in enumerate(cs):
            w = w0 + k
            g = np.arange(start - ov, start + c)
            rows.append(np.pad(np.where(g >= 0, base + 1 + g, base), (0, s_max - len(g)), constant_values=base))
            valid.append(np.arange(s_max) < len(g))
            keep.extend(w * s_max + np.arange(ov, ov + c))
            look = owner[-stream.cache_frames:]
            cache_idx.append(np.pad(np.asarray(look, dtype=np.int64), (stream.cache_frames - len(look), 0)))
            cache_valid.append(np.arange(stream.cache_frames) >= stream.cache_frames - len(look))
            owner.extend(w * s_max + np.arange(len(g) - stream.chunk_size[2]))
            start += c
        base, w0 = base + 1 + start, w0 + len(cs)
        lengths.append(start)
    t = lambda a, dt: torch.from_numpy(np.asarray(a)).to(dt)  # noqa: E731
    return {"rows": t(rows, torch.long), "valid": t(valid, torch.bool),
            "keep": t(keep, torch.long), "cache_idx": t(cache_idx, torch.long),
            "cache_valid": t(cache_valid, torch.bool), "lengths": lengths}


# ----------------------------------------------------------------------------------------------- tokenizer

class Vq02Tokenizer(nn.Module):
    """Trimmed 16 kHz waveforms -> vq02 codes. Pure tensors; ``audio_tokenizer.load_vq02`` reads the files.

    ``dither`` 0 (default) is deterministic; the official front end dithers with 1.0 (unseeded there,
    drawn from ``generator`` here), which changes about 4 % of the codes.
    """

    def __init__(self, encoder: SANMEncoderChunkOpt, cmvn: torch.Tensor, centroids: torch.Tensor,
                 frontend: FrontendConfig = FrontendConfig(), stream: StreamConfig = StreamConfig(),
                 dither: float = 0.0):
        super().__init__()
        if centroids.shape[-1] != encoder.cfg.output_size or cmvn.shape[-1] != encoder.cfg.input_size:
            raise CheckpointError(f"centroids {tuple(centroids.shape)} / CMVN {tuple(cmvn.shape)} do not fit "
                                  f"the encoder ({encoder.cfg.input_size} -> {encoder.cfg.output_size})")
        self.encoder, self.frontend, self.stream, self.dither = encoder, frontend, stream, float(dither)
        self.register_buffer("cmvn", cmvn.float(), persistent=False)
        self.register_buffer("centroids", centroids.float(), persistent=False)

    def features(self, wav16: torch.Tensor, generator: torch.Generator | None = None):
        """(N,) -> ((L, 560) LFR+CMVN features, LFR frames per encoder step), computed on the CPU."""
        counts = stream_chunk_frames(int(wav16.numel()), self.frontend, self.stream)
        fbank = kaldi_fbank(wav16.detach().float().cpu(), self.frontend, self.dither, generator)
        return lfr_cmvn(fbank, sum(counts), self.frontend, self.cmvn.cpu()), counts

    @torch.inference_mode()
    def encode(self, wavs: list[torch.Tensor], generator: torch.Generator | None = None,
               streaming: bool = False) -> list[torch.Tensor]:
        """Encoder frames (T_i, 512) per waveform; ``streaming=True`` runs the chunk-loop reference."""
        dev = self.centroids.device
        feats, counts = zip(*[self.features(w, generator) for w in wavs])
        if streaming:
            return [self.encoder.encode_streaming(f.to(dev), c, self.stream) for f, c in zip(feats, counts)]
        out = [None] * len(wavs)
        busy = [i for i, c in enumerate(counts) if c]
        if busy:
            enc = self.encoder.encode_windows([feats[i].to(dev) for i in busy], [counts[i] for i in busy],
                                              self.stream)
            for i, e in zip(busy, enc):
                out[i] = e
        return [o if o is not None else self.centroids.new_zeros((0, self.centroids.shape[1])) for o in out]

    def quantize(self, enc: torch.Tensor) -> torch.Tensor:
        """(T, 512) -> (T,) int64 index of the nearest centroid (Euclidean, ``torch.cdist``)."""
        if enc.shape[0] == 0:
            return torch.zeros(0, dtype=torch.long)
        return torch.cdist(enc.float(), self.centroids).argmin(dim=1).cpu()

    def forward(self, wavs: list[torch.Tensor], generator: torch.Generator | None = None) -> list[torch.Tensor]:
        return [self.quantize(e) for e in self.encode(wavs, generator)]


def build_encoder(cfg: EncoderConfig, state: dict[str, torch.Tensor]) -> SANMEncoderChunkOpt:
    """Strict load: the key set and every shape must match the module built from ``cfg``."""
    with torch.device("meta"):
        enc = SANMEncoderChunkOpt(cfg)
    want = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    missing = sorted(ENCODER_PREFIX + k for k in want.keys() - state.keys())
    unexpected = sorted(ENCODER_PREFIX + k for k in state.keys() - want.keys())
    mismatched = sorted(f"{ENCODER_PREFIX}{k}: {tuple(state[k].shape)} != {s}"
                        for k, s in want.items() if k in state and tuple(state[k].shape) != s)
    if missing or unexpected or mismatched:
        raise CheckpointError("Paraformer encoder weights do not match config.yaml", missing=missing,
                              unexpected=unexpected, mismatched=mismatched)
    enc.load_state_dict({k: v.float() for k, v in state.items()}, assign=True)
    return enc.eval()
