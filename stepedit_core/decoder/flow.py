"""Flow-matching decoder ``CausalMaskedDiffWithXvec`` (CosyVoice's flow): tokens -> 80-bin log-mel at 50 Hz.

Legend: B batch (2 inside the CFG solver: conditional, unconditional), C hidden width, T mel frames,
H heads, D head dim, M = 80 mel bins.

- :class:`DiT` is the velocity estimator: input [x ‖ mu ‖ spk ‖ cond] (B, 4M, T), 16 adaLN-Zero blocks
  (attention -> causal conv block -> MLP, 9 modulation vectors each), output (B, M, T).
- :class:`CausalConditionalCFM` integrates dx/dt = v(x, t) from noise with Euler steps on the cosine schedule
  t_k = 1 - cos(pi/2 · k/N), classifier-free guidance v = (1+r)·v_cond - r·v_uncond, r = 0.7.
- :class:`CausalMaskedDiffWithXvec` wires the token encoder (stepedit_core.decoder.flow_encoder) to the solver.

Noise. The official CFM draws one unseeded ``randn(1, 80, 30000)`` buffer per process and uses its first T
frames. Here ``inference`` takes ``noise`` (any (1, 80, >=T) tensor, e.g. :func:`noise_buffer` for the
official fixed-buffer behaviour, or the fixture's recorded draw); without it, z = randn(1, 80, T) from a
``torch.Generator`` seeded with ``seed`` (default :data:`DEFAULT_NOISE_SEED`), so the output is reproducible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidInputError
from ..tokens import reshape_for_flow
from .flow_encoder import DualCodebookEmbedding, EncoderCache, EncoderConfig, UpsampleConformerEncoderV2
from .flow_int8 import ConvAsLinear, quantize_estimator_int8  # noqa: F401 (the CPU int8 path, flow_int8.py)

MEL_BINS = 80
NOISE_BUFFER_FRAMES = 50 * 600      # official rand_noise: 600 s at 50 Hz
DEFAULT_NOISE_SEED = 0
DEFAULT_N_TIMESTEPS = 10            # CosyVoice(n_timesteps=10), GH:cli/cosyvoice.py
T_SCALE = 1000                      # TimestepEmbedder scales t in [0, 1] by 1000 (SinusoidalPosEmb)
T_FREQ_DIM = 256                    # frequency_embedding_size
T_MAX_PERIOD = 10000
DIT_LN_EPS = 1e-6                   # the non-affine LayerNorms of DiTBlock / FinalLayer
DIT_CONV_KERNEL = 3                 # CausalConvBlock kernel


@dataclass
class DiTConfig:
    """cosyvoice.yaml ``flow.decoder.estimator`` (``DiT``); defaults = EditX."""
    in_channels: int = 320
    out_channels: int = MEL_BINS
    mlp_ratio: float = 4.0
    depth: int = 16
    num_heads: int = 8
    head_dim: int = 64
    hidden_size: int = 512


@dataclass
class FlowConfig:
    """cosyvoice.yaml ``flow`` with its sub-modules; defaults = EditX (flow.pt, 605 tensors)."""
    input_size: int = 512
    output_size: int = MEL_BINS
    spk_embed_dim: int = 192
    output_type: str = "mel"
    vocab_size: int = 5121
    embedding_input_size: int = 512          # DualCodebookEmbedding input_size (table width = half)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    estimator: DiTConfig = field(default_factory=DiTConfig)
    inference_cfg_rate: float = 0.7
    n_timesteps: int = DEFAULT_N_TIMESTEPS


def noise_buffer(seed: int | None = DEFAULT_NOISE_SEED, frames: int = NOISE_BUFFER_FRAMES) -> torch.Tensor:
    """The official fixed noise buffer (1, 80, 30000); seeded here (``seed=None`` = unseeded, as official)."""
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    return torch.randn(1, MEL_BINS, frames, generator=gen)


def cosine_t_span(n_timesteps: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """t_k = 1 - cos(pi/2 · k/N), k = 0..N, computed in the official order (linspace, ·0.5, ·pi)."""
    t = torch.linspace(0, 1, n_timesteps + 1, device=device, dtype=dtype)
    return 1 - torch.cos(t * 0.5 * torch.pi)


def as_mixed(tokens) -> list[int]:
    """(1, N) / (N,) tensor or sequence of prompt-space ids -> list."""
    if isinstance(tokens, torch.Tensor):
        return [int(t) for t in tokens.reshape(-1).tolist()]
    return [int(t) for t in tokens]


def flow_rows(tokens) -> torch.Tensor:
    """The flow's token input: mixed 2+3 prompt-space ids -> (1, T, 2) flow ids (``tokens.reshape_for_flow``),
    shared by the non-streaming (cosyvoice) and streaming token2wav."""
    return torch.from_numpy(reshape_for_flow(as_mixed(tokens))).unsqueeze(0)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


def per_row(mods: torch.Tensor, rows: int) -> torch.Tensor:
    """Modulation vectors (B_t, 1, k·C) computed once per timestep row -> (rows, 1, k·C): B_t = 2 (the CFG
    halves) for a batch of rows/2 utterances, each t repeated over its half. The adaLN products stay at B_t
    rows, so a row decoded in a batch gets the bits it gets alone (a 2-row and an 8-row product differ)."""
    return mods if mods.shape[0] == rows else mods.repeat_interleave(rows // mods.shape[0], dim=0)


class TimestepEmbedder(nn.Module):
    """t (B,) in [0, 1] -> (B, C): [cos ‖ sin](1000·t·f_k), f_k = 10000^(-k/128), then Linear-SiLU-Linear."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(T_FREQ_DIM, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    @staticmethod
    def timestep_embedding(t: torch.Tensor, dim: int = T_FREQ_DIM) -> torch.Tensor:
        half = dim // 2
        freqs = torch.exp(-math.log(T_MAX_PERIOD) * torch.arange(half) / half).to(t)
        args = t[:, None] * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.timestep_embedding(t * T_SCALE))


class Attention(nn.Module):
    """Multi-head self-attention with biased q/k/v, per-head LayerNorm on q and k, no positional term."""

    def __init__(self, dim: int, num_heads: int, head_dim: int):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, head_dim
        inner = num_heads * head_dim
        self.to_q, self.to_k, self.to_v = nn.Linear(dim, inner), nn.Linear(dim, inner), nn.Linear(dim, inner)
        self.q_norm, self.k_norm = nn.LayerNorm(head_dim), nn.LayerNorm(head_dim)
        self.proj = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None,
                cache: torch.Tensor | None = None, lengths: list[int] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, n, C); cache (B, H, m, 2D) k‖v of earlier frames; attn_mask bool broadcastable to
        (B, H, n, m+n), True = attend; or ``lengths`` (B,) valid leading frames per row (padded rows of a
        batch, see :func:`rows_attention`). Returns (B, n, C) and the new k‖v (B, H, m+n, 2D)."""
        b, n, _ = x.shape

        def heads(y):   # (B, n, H·D) -> (B, H, n, D)
            return y.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

        q = self.q_norm(heads(self.to_q(x)))
        k = self.k_norm(heads(self.to_k(x)))
        v = heads(self.to_v(x))
        if cache is not None and cache.shape[2]:
            k_cache, v_cache = cache.split(self.head_dim, dim=-1)
            k, v = torch.cat([k_cache, k], dim=2), torch.cat([v_cache, v], dim=2)
        if lengths is not None:
            out = rows_attention(q, k, v, lengths)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)   # scale 1/sqrt(D)
        return self.proj(out.transpose(1, 2).reshape(b, n, -1)), torch.cat([k, v], dim=-1)


def rows_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """Attention of padded rows, q k v (B, H, n, D), row b valid on its first ``lengths[b]`` frames: the rows of
    each length attend among their own frames, unmasked (the product a row gets decoded alone; a key-padding
    mask over the padded length changes the kernel's blocking and the last bits). Padding frames get 0."""
    out = q.new_zeros(q.shape)
    for n in sorted(set(lengths)):
        idx = torch.tensor([b for b, m in enumerate(lengths) if m == n])
        out[idx, :, :n] = F.scaled_dot_product_attention(q[idx, :, :n], k[idx, :, :n], v[idx, :, :n])
    return out


def prefix_lengths(mask: torch.Tensor) -> list[int] | None:
    """A key-padding mask (B, 1, n) -> valid frames per row when each row is valid on a prefix, else None."""
    flat = mask.reshape(mask.shape[0], -1).bool()
    lengths = flat.sum(-1)
    return lengths.tolist() if torch.equal(flat, torch.arange(flat.shape[1])[None] < lengths[:, None]) else None


class Transpose(nn.Module):
    """(B, T, C) <-> (B, C, T) inside ``CausalConvBlock.block`` (keeps the official key indices 1, 3, 6)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


class CausalConvBlock(nn.Module):
    """[causal conv k3 -> LayerNorm -> Mish -> causal conv k3] on (B, T, C); left context 2 per conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.context = DIT_CONV_KERNEL - 1
        self.block = nn.Sequential(Transpose(), nn.Conv1d(channels, channels, DIT_CONV_KERNEL), Transpose(),
                                   nn.LayerNorm(channels), nn.Mish(),
                                   Transpose(), nn.Conv1d(channels, channels, DIT_CONV_KERNEL), Transpose())

    def _conv(self, conv: nn.Conv1d, x: torch.Tensor, cache: torch.Tensor | None):
        """x (B, C, n) with ``cache`` (B, C, 2) history (zeros at the start) -> (B, C, n), new history."""
        if cache is None:
            cache = x.new_zeros(x.shape[0], x.shape[1], self.context)
        x = torch.cat([cache, x], dim=2)
        return conv(x), x[..., -self.context:]

    def forward(self, x: torch.Tensor, cache: torch.Tensor | None = None):
        """x (B, n, C); cache (B, 2C, 2) = both convs' histories. Returns (B, n, C), new cache."""
        c1, c2 = (None, None) if cache is None else cache.split(x.shape[-1], dim=1)
        y, h1 = self._conv(self.block[1], x.transpose(1, 2), c1)
        y = self.block[4](self.block[3](y.transpose(1, 2)))
        y, h2 = self._conv(self.block[6], y.transpose(1, 2), c2)
        return y.transpose(1, 2), torch.cat([h1, h2], dim=1)


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DiTBlock(nn.Module):
    """adaLN-Zero block: x += g_msa·Attn(mod(LN1 x)); x += g_conv·Conv(mod(LN3 x)); x += g_mlp·MLP(mod(LN2 x))."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        c = cfg.hidden_size
        self.norm1 = nn.LayerNorm(c, elementwise_affine=False, eps=DIT_LN_EPS)
        self.attn = Attention(c, cfg.num_heads, cfg.head_dim)
        self.norm2 = nn.LayerNorm(c, elementwise_affine=False, eps=DIT_LN_EPS)
        self.mlp = MLP(c, int(c * cfg.mlp_ratio))
        self.norm3 = nn.LayerNorm(c, elementwise_affine=False, eps=DIT_LN_EPS)
        self.conv = CausalConvBlock(c)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(c, 9 * c))

    def forward(self, x, c, attn_mask=None, att_cache=None, cnn_cache=None, lengths=None):
        """x (B, n, C), c (B_t, 1, C) (B_t divides B). Returns x and the new (att, cnn) caches."""
        (shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp,
         shift_conv, scale_conv, gate_conv) = per_row(self.adaLN_modulation(c), x.shape[0]).chunk(9, dim=-1)
        a, att_cache = self.attn(modulate(self.norm1(x), shift_msa, scale_msa), attn_mask, att_cache, lengths)
        x = x + gate_msa * a
        y, cnn_cache = self.conv(modulate(self.norm3(x), shift_conv, scale_conv), cnn_cache)
        x = x + gate_conv * y
        x = x + gate_mlp * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x, att_cache, cnn_cache


class FinalLayer(nn.Module):
    def __init__(self, hidden_size: int, out_channels: int):
        super().__init__()
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=DIT_LN_EPS)
        self.linear = nn.Linear(hidden_size, out_channels)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = per_row(self.adaLN_modulation(c), x.shape[0]).chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


@dataclass
class DiTCache:
    """Streaming state of one Euler step: per block k‖v (B, H, m, 2D) and conv history (B, 2C, 2)."""
    att: list[torch.Tensor]
    cnn: list[torch.Tensor]

    def truncate(self, keep_first: int, keep_last: int) -> None:
        """Keep the ``keep_first`` oldest frames (the prompt) and the ``keep_last`` newest ones."""
        if self.att and self.att[0].shape[2] > keep_first + keep_last:
            self.att = [torch.cat([a[:, :, :keep_first], a[:, :, a.shape[2] - keep_last:]], dim=2)
                        for a in self.att]


class DiT(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        self.out_channels = cfg.out_channels
        self.t_embedder = TimestepEmbedder(cfg.hidden_size)
        self.in_proj = nn.Linear(cfg.in_channels, cfg.hidden_size)
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.depth))
        self.final_layer = FinalLayer(cfg.hidden_size, cfg.out_channels)

    def forward(self, x, mask, mu, t, spks=None, cond=None, attn_mask=None, cache: DiTCache | None = None,
                return_cache: bool = False):
        """x, mu, cond (B, M, n); mask (B, 1, n) key padding (1 = valid) or None; t (B_t,), B_t dividing B
        (one t per CFG half of a batch); spks (B, M).
        ``attn_mask`` (n, m+n) bool replaces the padding mask (block masks in tests); ``cache`` holds
        earlier frames for streaming. Returns the velocity (B, M, n) [and the new DiTCache]."""
        c = self.t_embedder(t).unsqueeze(1)                                    # (B_t, 1, C)
        parts = [x, mu]
        if spks is not None:
            parts.append(spks.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        if cond is not None:
            parts.append(cond)
        h = self.in_proj(torch.cat(parts, dim=1).transpose(1, 2))              # (B, n, C)
        lengths = None
        if attn_mask is None and mask is not None and not bool(mask.all()):
            lengths = prefix_lengths(mask) if cache is None else None          # padded rows of a batch
            attn_mask = None if lengths else mask.bool().unsqueeze(1)          # (B, 1, 1, n)
        att, cnn = [], []
        for i, block in enumerate(self.blocks):
            h, a, k = block(h, c, attn_mask, cache.att[i] if cache else None, cache.cnn[i] if cache else None,
                            lengths)
            att.append(a)
            cnn.append(k)
        out = self.final_layer(h, c).transpose(1, 2)
        return (out, DiTCache(att, cnn)) if return_cache else out


class CausalConditionalCFM(nn.Module):
    """Euler solver with classifier-free guidance around the :class:`DiT` estimator."""

    def __init__(self, estimator: DiT, inference_cfg_rate: float = 0.7):
        super().__init__()
        self.estimator = estimator
        self.inference_cfg_rate = inference_cfg_rate

    def forward(self, z, mu, mask, spks, cond, n_timesteps: int = DEFAULT_N_TIMESTEPS, attn_mask=None,
                caches: list[DiTCache] | None = None, trace: dict | None = None):
        """z, mu, cond (B, M, n); mask (B, 1, n) or None (1 = valid: padded rows of a batch, decoder.rows);
        spks (B, M). Returns x(t=1) (B, M, n); with
        ``caches`` (one DiTCache per step, or empty list to start), also the new per-step caches."""
        r = self.inference_cfg_rate
        t_span = cosine_t_span(n_timesteps, mu.device, mu.dtype)
        # The official solver accumulates t += dt and recomputes dt = t_span[k+1] - t (kept for parity).
        t, dt = t_span[0].unsqueeze(0), t_span[1] - t_span[0]
        mask_in = None if mask is None else torch.cat([mask, mask])
        mu_in, spks_in, cond_in = (torch.cat([a, torch.zeros_like(a)]) for a in (mu, spks, cond))
        x, new_caches = z, []
        for step in range(1, len(t_span)):
            cache = caches[step - 1] if caches else None
            v = self.estimator(torch.cat([x, x]), mask_in, mu_in, torch.cat([t, t]), spks_in, cond_in,
                               attn_mask=attn_mask, cache=cache, return_cache=caches is not None)
            if caches is not None:
                v, cache = v
                new_caches.append(cache)
            if trace is not None:
                trace.setdefault("est_t", []).append(t.detach().clone())
                trace.setdefault("est_x_in", []).append(x.detach().clone())
                trace.setdefault("est_out", []).append(v.detach().clone())
            v_cond, v_uncond = v.split(x.shape[0])
            x = x + dt * ((1.0 + r) * v_cond - r * v_uncond)
            t = t + dt
            if step < len(t_span) - 1:
                dt = t_span[step + 1] - t
        return (x, new_caches) if caches is not None else x


class CausalMaskedDiffWithXvec(nn.Module):
    """Tokens (25 Hz, dual codebook) + prompt mel + x-vector -> mel (50 Hz). Pure tensors, batch 1."""

    def __init__(self, cfg: FlowConfig):
        super().__init__()
        self.cfg = cfg
        self.input_embedding = DualCodebookEmbedding(cfg.vocab_size, cfg.embedding_input_size)
        self.spk_embed_affine_layer = nn.Linear(cfg.spk_embed_dim, cfg.output_size)
        self.encoder = UpsampleConformerEncoderV2(cfg.encoder)
        self.encoder_proj = nn.Linear(cfg.encoder.output_size, cfg.output_size)
        self.decoder = CausalConditionalCFM(DiT(cfg.estimator), cfg.inference_cfg_rate)

    @property
    def pre_lookahead_len(self) -> int:
        return self.cfg.encoder.pre_lookahead_len

    @property
    def up_rate(self) -> int:
        return self.cfg.encoder.up_stride

    def project_speaker(self, embedding: torch.Tensor) -> torch.Tensor:
        """(1, 192) x-vector -> (1, 80): Linear(L2-normalise(x))."""
        return self.spk_embed_affine_layer(F.normalize(embedding, dim=1))

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, 2) flow ids -> (B, T, C); negative ids act as 0 (official clamp)."""
        if int(tokens.max()) >= self.cfg.vocab_size:
            raise InvalidInputError(f"flow token id {int(tokens.max())} >= vocab size {self.cfg.vocab_size}")
        return self.input_embedding(tokens.clamp(min=0))

    @torch.inference_mode()
    def inference(self, token: torch.Tensor, prompt_token: torch.Tensor, prompt_feat: torch.Tensor,
                  embedding: torch.Tensor, *, n_timesteps: int | None = None, noise: torch.Tensor | None = None,
                  seed: int = DEFAULT_NOISE_SEED, trace: dict | None = None) -> torch.Tensor:
        """token (1, T, 2), prompt_token (1, Tp, 2) flow ids; prompt_feat (1, 2·Tp, 80) aligned prompt mel;
        embedding (1, 192). Returns the generated mel (1, 80, 2T); the prompt frames are sliced off.
        ``noise`` (1, 80, >= 2(Tp+T)) supplies z (its first frames); otherwise z ~ N(0, 1) seeded by ``seed``."""
        steps = n_timesteps or self.cfg.n_timesteps
        z, mu, spk, cond, n_prompt = self.solver_inputs(token, prompt_token, prompt_feat, embedding, noise=noise,
                                                        seed=seed, trace=trace)
        mel = self.decoder(z, mu, None, spk, cond, steps, trace=trace)
        return mel[:, :, n_prompt:]

    def solver_inputs(self, token: torch.Tensor, prompt_token: torch.Tensor, prompt_feat: torch.Tensor,
                      embedding: torch.Tensor, *, noise: torch.Tensor | None = None, seed: int = DEFAULT_NOISE_SEED,
                      trace: dict | None = None):
        """What the Euler solver of one utterance starts from (arguments as :meth:`inference`): z, mu, cond
        (1, 80, 2(Tp+T)), the projected speaker (1, 80) and the prompt's mel frames 2·Tp."""
        if token.shape[0] != 1 or prompt_token.shape[0] != 1:
            raise InvalidInputError("the flow decodes one utterance at a time (batch 1)")
        spk = self.project_speaker(embedding)
        x = self.embed_tokens(torch.cat([prompt_token, token], dim=1))
        h = self.encoder(x, trace=trace)
        mu = self.encoder_proj(h).transpose(1, 2).contiguous()                  # (1, 80, 2T_all)
        n_prompt, n_all = prompt_feat.shape[1], mu.shape[2]
        if n_prompt != self.up_rate * prompt_token.shape[1]:
            raise InvalidInputError(f"prompt mel has {n_prompt} frames, expected {self.up_rate} x "
                                    f"{prompt_token.shape[1]} prompt tokens (align it first)")
        cond = torch.zeros_like(mu)
        cond[:, :, :n_prompt] = prompt_feat.transpose(1, 2)
        z = self.noise_for(n_all, noise, seed, mu)
        if trace is not None:
            trace.update({"spk_projected": spk, "input_embedding_masked": x, "h_encoder_out": h, "mu": mu,
                          "cond": cond, "z": z})
        return z, mu, spk, cond, n_prompt

    @staticmethod
    def noise_for(frames: int, noise: torch.Tensor | None, seed: int, like: torch.Tensor,
                  offset: int = 0) -> torch.Tensor:
        """z (1, 80, frames): ``noise[:, :, offset:offset+frames]`` or a seeded draw."""
        if noise is None:
            gen = torch.Generator().manual_seed(seed)
            return torch.randn(1, MEL_BINS, frames, generator=gen).to(like)
        if noise.shape[-1] < offset + frames:
            raise InvalidInputError(f"noise has {noise.shape[-1]} frames, {offset + frames} needed "
                                    f"({(offset + frames) / 50:.0f} s of mel)")
        return noise[:, :, offset:offset + frames].to(like)

    # -- streaming pieces (driven by stepedit_core.decoder.streaming) ------------------------------------
    def encode_chunk(self, tokens: torch.Tensor, cache: EncoderCache | None, last: bool):
        """(1, n + lookahead, 2) ids -> mu (1, 80, 2n) and the new encoder cache."""
        h, cache = self.encoder.forward_chunk(self.embed_tokens(tokens), cache, last)
        return self.encoder_proj(h).transpose(1, 2).contiguous(), cache
