"""Flow token encoder (CosyVoice's flow.encoder): dual-codebook embedding + ``UpsampleConformerEncoderV2``.

Legend: B batch, T token frames (25 Hz), 2T mel frames (50 Hz), C model width, H heads, D = C // H.

Path of one utterance (non-streaming, batch 1):
  (B, T, 2) ids -> DualCodebookEmbedding -> (B, T, C)
  -> ``embed`` (Linear + LayerNorm, x·sqrt(C)) + relative sinusoid table of length 2T-1
  -> ``pre_lookahead_layer`` (each frame sees 3 future frames) -> ``encoders`` (rel-pos MHA + FFN)
  -> ``up_layer`` (nearest x2, causal conv k5) -> ``up_embed`` -> ``up_encoders`` -> ``after_norm``
  -> (B, 2T, C)

Streaming (:meth:`UpsampleConformerEncoderV2.forward_chunk`) runs the same layers on one chunk with an
:class:`EncoderCache` (k/v of every earlier frame, plus the 2 + 4 frames of conv history); a chunk attends
to every cached frame and to itself, never to later chunks. With an explicit block mask, the full
:meth:`forward` computes exactly the same numbers (tests/decoder/test_flow.py checks this).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

# LayerNorm epsilons of the official modules (GH:transformer/encoder_layer.py, subsampling.py).
CONFORMER_LN_EPS = 1e-12
EMBED_LN_EPS = 1e-5
# Left context kept by the causal convolutions: conv2 of the pre-lookahead layer has k=3.
PRE_LOOKAHEAD_CONV2_CONTEXT = 2
# Frequency base of the ESPnet relative sinusoid table.
POS_ENC_BASE = 10000.0

ACTIVATIONS = {"swish": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "selu": nn.SELU,
               "hardtanh": nn.Hardtanh}


@dataclass
class EncoderConfig:
    """``UpsampleConformerEncoderV2`` arguments (cosyvoice.yaml ``flow.encoder``); defaults = EditX."""
    input_size: int = 512
    output_size: int = 512
    input_layer: str = "linear"
    pre_lookahead_len: int = 3
    num_blocks: int = 6
    num_up_blocks: int = 4
    up_stride: int = 2
    up_scale_factor: float = 2.0
    attention_heads: int = 8
    pos_enc_layer_type: str = "rel_pos_espnet"
    selfattention_layer_type: str = "rel_selfattn"
    key_bias: bool = True
    linear_units: int = 2048
    normalize_before: bool = True
    activation_type: str = "swish"
    # dropout rates are read but unused at inference
    dropout_rate: float = 0.1
    positional_dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.0

    def __post_init__(self):
        supported = {"input_layer": ("linear",), "pos_enc_layer_type": ("rel_pos_espnet",),
                     "selfattention_layer_type": ("rel_selfattn",), "activation_type": tuple(ACTIVATIONS)}
        for name, allowed in supported.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"encoder {name}={getattr(self, name)!r} is not supported (expected {allowed})")
        if self.output_size % self.attention_heads:
            raise ValueError(f"encoder output_size {self.output_size} is not divisible by "
                             f"{self.attention_heads} heads")
        if float(self.up_scale_factor) != float(self.up_stride):
            raise ValueError("up_scale_factor must equal up_stride (the conv keeps the length)")


class DualCodebookEmbedding(nn.Module):
    """One shared table of ``vocab_size`` rows x C/2; (B, T, 2) ids -> (B, T, C) = [E(c0) ‖ E(c1)]."""

    def __init__(self, vocab_size: int, input_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, input_size // 2)

    def forward(self, token: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.embedding(token[..., 0]), self.embedding(token[..., 1])], dim=-1)


def rel_pos_table(length: int, d_model: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """ESPnet relative sinusoid table (1, 2L-1, C): row j encodes relative position r = L-1-j (L-1 .. -(L-1)),
    channels interleaved [sin(r·w0), cos(r·w0), sin(r·w1), ...] with w_k = 10000^(-2k/C)."""
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(POS_ENC_BASE) / d_model))
    pos = torch.arange(length - 1, -length, -1, dtype=torch.float32).unsqueeze(1)   # (2L-1, 1)
    pe = torch.zeros(2 * length - 1, d_model)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe.unsqueeze(0).to(device=device, dtype=dtype)


class LinearEmbed(nn.Module):
    """``LinearNoSubsampling`` + ``EspnetRelPositionalEncoding``: x -> LN(Linear x)·sqrt(C) (pos table apart)."""

    def __init__(self, idim: int, odim: int):
        super().__init__()
        self.out = nn.Sequential(nn.Linear(idim, odim), nn.LayerNorm(odim, eps=EMBED_LN_EPS))
        self.xscale = math.sqrt(odim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x) * self.xscale


class RelPositionMultiHeadedAttention(nn.Module):
    """Transformer-XL attention: scores = [(q+u)kᵀ + (q+v)pᵀ shifted to relative positions] / sqrt(D)."""

    def __init__(self, n_head: int, n_feat: int, key_bias: bool = True):
        super().__init__()
        self.h, self.d_k = n_head, n_feat // n_head
        self.linear_q = nn.Linear(n_feat, n_feat)
        self.linear_k = nn.Linear(n_feat, n_feat, bias=key_bias)
        self.linear_v = nn.Linear(n_feat, n_feat)
        self.linear_out = nn.Linear(n_feat, n_feat)
        self.linear_pos = nn.Linear(n_feat, n_feat, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(n_head, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.zeros(n_head, self.d_k))

    def forward(self, x: torch.Tensor, pos_emb: torch.Tensor, cache: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, n, C) new frames; cache (B, H, m, 2D) = k‖v of the m earlier frames (oldest first);
        pos_emb (1, 2L-1, C) with L = m + n; mask (n, L) bool, True = may attend (None = everything).
        Returns (B, n, C) and the new cache (B, H, L, 2D)."""
        b, n, _ = x.shape
        q = self.linear_q(x).view(b, n, self.h, self.d_k)                     # (B, n, H, D)
        k = self.linear_k(x).view(b, n, self.h, self.d_k).transpose(1, 2)     # (B, H, n, D)
        v = self.linear_v(x).view(b, n, self.h, self.d_k).transpose(1, 2)
        if cache is not None and cache.shape[2]:
            k_cache, v_cache = cache.split(self.d_k, dim=-1)
            k, v = torch.cat([k_cache, k], dim=2), torch.cat([v_cache, v], dim=2)
        new_cache = torch.cat([k, v], dim=-1)
        big_l = k.shape[2]
        offset = big_l - n                                                    # absolute index of x[:, 0]
        p = self.linear_pos(pos_emb).view(1, -1, self.h, self.d_k).transpose(1, 2)  # (1, H, 2L-1, D)
        ac = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))  # (B, H, n, L)
        bd = torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1))  # (B, H, n, 2L-1)
        # query i (absolute offset+i) and key j: relative position offset+i-j sits in row L-1-(offset+i-j)
        rows = torch.arange(n, device=x.device).unsqueeze(1)
        cols = torch.arange(big_l, device=x.device).unsqueeze(0)
        idx = (big_l - 1 - offset - rows + cols).expand(b, self.h, n, big_l)
        scores = (ac + bd.gather(-1, idx)) / math.sqrt(self.d_k)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
            attn = torch.softmax(scores, dim=-1).masked_fill(~mask, 0.0)
        else:
            attn = torch.softmax(scores, dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, self.h * self.d_k)
        return self.linear_out(out), new_cache


class PositionwiseFeedForward(nn.Module):
    def __init__(self, idim: int, hidden: int, activation: nn.Module):
        super().__init__()
        self.w_1, self.w_2, self.activation = nn.Linear(idim, hidden), nn.Linear(hidden, idim), activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(self.activation(self.w_1(x)))


class ConformerEncoderLayer(nn.Module):
    """Attention + FFN only (no conv module, no macaron), pre- or post-LayerNorm."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        c = cfg.output_size
        self.self_attn = RelPositionMultiHeadedAttention(cfg.attention_heads, c, cfg.key_bias)
        self.feed_forward = PositionwiseFeedForward(c, cfg.linear_units, ACTIVATIONS[cfg.activation_type]())
        self.norm_ff = nn.LayerNorm(c, eps=CONFORMER_LN_EPS)
        self.norm_mha = nn.LayerNorm(c, eps=CONFORMER_LN_EPS)
        self.normalize_before = cfg.normalize_before

    def forward(self, x, pos_emb, cache=None, mask=None):
        pre = self.normalize_before
        att, new_cache = self.self_attn(self.norm_mha(x) if pre else x, pos_emb, cache, mask)
        x = x + att
        if not pre:
            x = self.norm_mha(x)
        x = x + self.feed_forward(self.norm_ff(x) if pre else x)
        if not pre:
            x = self.norm_ff(x)
        return x, new_cache


class PreLookaheadLayer(nn.Module):
    """conv1 (k = lookahead+1) over frames t..t+3, leaky ReLU, causal conv2 (k3), + residual."""

    def __init__(self, channels: int, pre_lookahead_len: int):
        super().__init__()
        self.pre_lookahead_len = pre_lookahead_len
        self.conv1 = nn.Conv1d(channels, channels, kernel_size=pre_lookahead_len + 1)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size=PRE_LOOKAHEAD_CONV2_CONTEXT + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C); the last frames see zero padding as their future."""
        y = F.pad(x.transpose(1, 2), (0, self.pre_lookahead_len))
        y = F.pad(F.leaky_relu(self.conv1(y)), (PRE_LOOKAHEAD_CONV2_CONTEXT, 0))
        return self.conv2(y).transpose(1, 2) + x

    def forward_chunk(self, x: torch.Tensor, cache: torch.Tensor | None):
        """x (B, n + lookahead, C) -> (B, n, C); cache (B, C, 2) = the last conv1 outputs before this chunk."""
        y = F.leaky_relu(self.conv1(x.transpose(1, 2)))                       # (B, C, n)
        if cache is None:
            cache = y.new_zeros(y.shape[0], y.shape[1], PRE_LOOKAHEAD_CONV2_CONTEXT)
        y = torch.cat([cache, y], dim=2)
        new_cache = y[..., -PRE_LOOKAHEAD_CONV2_CONTEXT:]
        return self.conv2(y).transpose(1, 2) + x[:, :-self.pre_lookahead_len], new_cache


class Upsample1D(nn.Module):
    """Nearest x stride, then a causal conv with kernel 2·stride+1 (left context 2·stride)."""

    def __init__(self, channels: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv1d(channels, channels, 2 * stride + 1)

    def forward(self, x: torch.Tensor, cache: torch.Tensor | None = None):
        """x (B, C, T) -> (B, C, stride·T), and the new cache (B, C, 2·stride) of upsampled history."""
        y = F.interpolate(x, scale_factor=float(self.stride), mode="nearest")
        if cache is None:
            cache = y.new_zeros(y.shape[0], y.shape[1], 2 * self.stride)
        y = torch.cat([cache, y], dim=2)
        return self.conv(y), y[..., -2 * self.stride:]


@dataclass
class EncoderCache:
    """Streaming state after some frames: k‖v per layer (oldest first) and causal-conv history."""
    lookahead: torch.Tensor | None = None          # (B, C, 2) conv1 outputs
    upsample: torch.Tensor | None = None           # (B, C, 2·stride) upsampled frames
    att: list[torch.Tensor | None] = field(default_factory=list)      # per encoders layer (B, H, T_seen, 2D)
    up_att: list[torch.Tensor | None] = field(default_factory=list)   # per up_encoders layer (B, H, 2T_seen, 2D)

    @property
    def frames(self) -> int:
        """Token frames (25 Hz) already encoded."""
        return 0 if not self.att or self.att[0] is None else self.att[0].shape[2]


class UpsampleConformerEncoderV2(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.output_size
        self.embed = LinearEmbed(cfg.input_size, c)
        self.pre_lookahead_layer = PreLookaheadLayer(c, cfg.pre_lookahead_len)
        self.encoders = nn.ModuleList(ConformerEncoderLayer(cfg) for _ in range(cfg.num_blocks))
        self.up_layer = Upsample1D(c, cfg.up_stride)
        self.up_embed = LinearEmbed(cfg.input_size, c)
        self.up_encoders = nn.ModuleList(ConformerEncoderLayer(cfg) for _ in range(cfg.num_up_blocks))
        self.after_norm = nn.LayerNorm(c, eps=EMBED_LN_EPS)

    def forward(self, xs: torch.Tensor, masks: tuple[torch.Tensor, torch.Tensor] | None = None,
                trace: dict | None = None) -> torch.Tensor:
        """xs (B, T, C_in) embedded tokens -> (B, 2T, C). ``masks`` = optional (T, T) and (2T, 2T) bool
        attention masks (True = attend; None = full attention, the official non-streaming case).
        ``trace`` receives the intermediates under the fixture's ``enc.*`` names."""
        c = self.cfg.output_size
        mask1, mask2 = masks if masks is not None else (None, None)
        xs = self.embed(xs)
        pos = rel_pos_table(xs.shape[1], c, xs.device, xs.dtype)
        _record(trace, "enc.embed_xs", xs, "enc.embed_pos_emb", pos)
        xs = self.pre_lookahead_layer(xs)
        _record(trace, "enc.pre_lookahead_out", xs)
        for layer in self.encoders:
            xs, _ = layer(xs, pos, mask=mask1)
        _record(trace, "enc.encoders_out", xs)
        up, _ = self.up_layer(xs.transpose(1, 2))
        _record(trace, "enc.up_layer_out", up)
        xs = self.up_embed(up.transpose(1, 2))
        pos = rel_pos_table(xs.shape[1], c, xs.device, xs.dtype)
        _record(trace, "enc.up_embed_xs", xs, "enc.up_embed_pos_emb", pos)
        for layer in self.up_encoders:
            xs, _ = layer(xs, pos, mask=mask2)
        _record(trace, "enc.up_encoders_out", xs)
        return self.after_norm(xs) if self.cfg.normalize_before else xs

    def forward_chunk(self, xs: torch.Tensor, cache: EncoderCache | None = None, last: bool = False
                      ) -> tuple[torch.Tensor, EncoderCache]:
        """One streaming chunk. xs (B, n + lookahead, C_in) embedded tokens whose last ``pre_lookahead_len``
        frames are lookahead only (on the ``last`` chunk every frame is real and zeros are the future).
        Returns (B, stride·n, C) and the updated cache."""
        cache = cache or EncoderCache()
        c, stride = self.cfg.output_size, self.cfg.up_stride
        seen = cache.frames
        xs = self.embed(xs)
        if last:
            xs = F.pad(xs, (0, 0, 0, self.cfg.pre_lookahead_len))
        xs, look = self.pre_lookahead_layer.forward_chunk(xs, cache.lookahead)
        pos = rel_pos_table(seen + xs.shape[1], c, xs.device, xs.dtype)
        att = []
        for i, layer in enumerate(self.encoders):
            xs, kv = layer(xs, pos, cache.att[i] if cache.att else None)
            att.append(kv)
        up, up_cache = self.up_layer(xs.transpose(1, 2), cache.upsample)
        xs = self.up_embed(up.transpose(1, 2))
        pos = rel_pos_table(stride * seen + xs.shape[1], c, xs.device, xs.dtype)
        up_att = []
        for i, layer in enumerate(self.up_encoders):
            xs, kv = layer(xs, pos, cache.up_att[i] if cache.up_att else None)
            up_att.append(kv)
        if self.cfg.normalize_before:
            xs = self.after_norm(xs)
        return xs, EncoderCache(lookahead=look, upsample=up_cache, att=att, up_att=up_att)


def _record(trace: dict | None, *pairs) -> None:
    if trace is not None:
        for name, value in zip(pairs[0::2], pairs[1::2]):
            trace[name] = value.detach()
