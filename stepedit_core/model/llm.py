"""Step1 LLM (official modeling_step1.py): a decoder-only transformer, sqrt-ALiBi attention, grouped KV heads.

Legend: B batch, T new tokens, S key positions (cache + new), H query heads, G KV groups, R = H // G,
D head dim (hidden / H = 64), C hidden size.

The model is pure tensors: ``Step1ForCausalLM(ids, cache) -> logits``. Loading lives in ``loading.load_step1``.
Importing this module registers ``model_type "step1"`` with ``AutoConfig`` / ``AutoModelForCausalLM``, so an
official checkpoint folder loads with ``AutoModelForCausalLM.from_pretrained(folder)`` and no remote code.

Differences from the official ``modeling_step1.py`` (same function, better numerics/cost):
- the ALiBi slopes are computed once; the bias is built only for the rows of the new queries (one row per
  decode step instead of the full L x L square in every layer at every step), once per forward for all layers;
- K/V groups are never repeated: the R query heads of a group are folded into the query axis;
- the KV cache is preallocated (:class:`StaticKVCache`), keys/values stored per group before any repeat;
- in bf16/fp16 runs the bias stays fp32 by default (attention then runs in fp32); the official code casts
  it to the query dtype, which rounds a bias of -76 to a step of 0.5. ``official_bias=True`` reproduces that.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import (AutoConfig, AutoModelForCausalLM, DynamicCache, GenerationMixin, PreTrainedConfig,
                          PreTrainedModel)
from transformers.modeling_outputs import CausalLMOutputWithPast

from ..compat import import_torchaudio
from ..errors import InvalidInputError
from .kv_cache import StaticKVCache

# Largest bias block (elements) built in one piece: above it, attention runs in query chunks so that a long
# prefill never materialises an H x T x S fp32 tensor (48 x 8192 x 8192 x 4 B = 12.9 GB for the real model).
BIAS_BLOCK_ELEMENTS = 1 << 24   # 64 MiB in fp32
# Additive bias on padded keys (training / batched generation with an attention_mask). Finite, unlike the causal
# -inf, so that a padded query whose only visible keys are pads still gets a defined (ignored) softmax.
PAD_KEY_BIAS = -1e9
IGNORE_INDEX = -100             # labels that take no part in the loss (HF convention)

# The output field that carries the cache: transformers <= 5.23 name it ``past_key_values``, 5.24+ ``cache``
# (the old name is then a deprecated alias that logs a warning). The forward accepts the cache under both names.
CACHE_FIELD = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


class Step1Config(PreTrainedConfig):
    """The official ``config.json`` keys; defaults are the EditX 3B values."""

    model_type = "step1"
    hidden_size: int = 3072
    intermediate_size: int = 8192
    num_attention_heads: int = 48
    num_attention_groups: int = 4       # KV heads
    num_hidden_layers: int = 32
    max_seq_len: int = 32768
    vocab_size: int = 74752
    rms_norm_eps: float = 1e-5
    initializer_range: float = 0.02     # only for random init in tests and benchmarks
    bos_token_id: int | None = 1
    pad_token_id: int | None = 0
    eos_token_id: int | None = 3        # <|EOT|>
    tie_word_embeddings: bool = False   # the checkpoint ships its own lm_head.weight
    use_cache: bool = True              # forward() without a cache creates one and returns it (HF convention)
    auto_map = MappingProxyType({})     # never remote code (not a config field; TRL and the Auto classes read it)

    def __post_init__(self, **kwargs):
        # The official auto_map points at configuration_step1/modeling_step1 (remote code); this class
        # replaces them, so the key is dropped and a saved config never asks for remote code.
        kwargs.pop("auto_map", None)
        super().__post_init__(**kwargs)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def validate_shapes(self) -> None:
        if self.hidden_size % self.num_attention_heads or self.num_attention_heads % self.num_attention_groups:
            raise InvalidInputError(
                f"Step1 config: hidden {self.hidden_size}, heads {self.num_attention_heads}, groups "
                f"{self.num_attention_groups} do not divide evenly")


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """(H,) fp32 slopes, official ``build_alibi_cache``: with n the largest power of 2 <= H,
    2^(-8k/n) for k = 1..n, then 2^(-4m/n) for m = 1, 3, 5, ... for the H - n extra heads."""
    n = 2 ** math.floor(math.log2(n_heads))
    slopes = [2.0 ** (-8.0 * k / n) for k in range(1, n + 1)]
    slopes += [2.0 ** (-4.0 * m / n) for m in range(1, 2 * (n_heads - n), 2)]
    return torch.tensor(slopes, dtype=torch.float64).float()


def alibi_bias(slopes: torch.Tensor, q_start: int, q_len: int, k_len: int) -> torch.Tensor:
    """(H, q_len, k_len) fp32 sqrt-ALiBi causal bias for queries at absolute positions q_start..q_start+q_len-1
    and keys 0..k_len-1: -slope_h * sqrt(i - j) for j <= i, -inf above the diagonal."""
    device = slopes.device
    i = torch.arange(q_start, q_start + q_len, device=device).view(-1, 1)
    j = torch.arange(k_len, device=device).view(1, -1)
    dist = i - j                                                    # (q_len, k_len) int64
    bias = -torch.sqrt(dist.clamp(min=0).float()) * slopes.view(-1, 1, 1)
    return bias.masked_fill(dist < 0, float("-inf"))


class Step1RMSNorm(nn.Module):
    """RMSNorm as official: the variance in fp32, the normalisation and the gain in the input dtype."""

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = x.float().pow(2).mean(-1, keepdim=True)
        return x * torch.rsqrt(var + self.eps).to(x.dtype) * self.weight


class Step1MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)); no biases."""

    def __init__(self, hidden: int, inner: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, inner, bias=False)
        self.up_proj = nn.Linear(hidden, inner, bias=False)
        self.down_proj = nn.Linear(inner, hidden, bias=False)
        self.fused = False

    def fuse(self) -> None:
        """gate_proj and up_proj -> one ``gate_up_proj`` (weights stacked): one matrix product per token
        instead of two. For inference only (the int8 CPU path, where every call also quantizes its input)."""
        self.gate_up_proj = _stacked_linear(self.gate_proj, self.up_proj)
        del self.gate_proj, self.up_proj
        self.fused = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
            return self.down_proj(F.silu(gate) * up)
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def _stacked_linear(*linears: nn.Linear) -> nn.Linear:
    """One bias-free Linear whose output is the given linears' outputs concatenated."""
    weight = torch.cat([lin.weight.detach() for lin in linears])
    out = nn.Linear(weight.shape[1], weight.shape[0], bias=False, device=weight.device, dtype=weight.dtype)
    out.weight = nn.Parameter(weight, requires_grad=False)
    return out


@dataclass
class _AttnContext:
    """What every layer of one forward shares: where the new queries start and their bias."""
    start: int                          # absolute position of the first new query
    slopes: torch.Tensor                # (H,) fp32
    bias: torch.Tensor | None           # (H, T, S) fp32, or None when it is built per query chunk
    official_bias: bool                 # cast the bias to the activation dtype, as the official code does
    key_bias: torch.Tensor | None = None  # (B, 1, 1, S) fp32: 0 on real keys, PAD_KEY_BIAS on padding


class Step1Attention(nn.Module):
    """H query heads over G KV groups; head h reads group h // R (the official ``repeat_interleave``)."""

    def __init__(self, config: Step1Config, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_heads, self.n_groups, self.head_dim = (config.num_attention_heads, config.num_attention_groups,
                                                      config.head_dim)
        c, kv = config.hidden_size, config.num_attention_groups * config.head_dim
        self.q_proj = nn.Linear(c, c, bias=False)
        self.k_proj = nn.Linear(c, kv, bias=False)
        self.v_proj = nn.Linear(c, kv, bias=False)
        self.o_proj = nn.Linear(c, c, bias=False)
        self.fused = False

    def fuse(self) -> None:
        """q/k/v_proj -> one ``qkv_proj`` (weights stacked), as :meth:`Step1MLP.fuse`; inference only."""
        self.qkv_proj = _stacked_linear(self.q_proj, self.k_proj, self.v_proj)
        del self.q_proj, self.k_proj, self.v_proj
        self.fused = True

    def forward(self, x: torch.Tensor, ctx: _AttnContext, cache=None) -> torch.Tensor:
        b, t, _ = x.shape
        h, g, d = self.n_heads, self.n_groups, self.head_dim
        r = h // g
        if self.fused:
            q, k, v = self.qkv_proj(x).split([h * d, g * d, g * d], dim=-1)
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q = q.view(b, t, h, d).transpose(1, 2)                           # (B, H, T, D)
        k = k.view(b, t, g, d).transpose(1, 2)                           # (B, G, T, D)
        v = v.view(b, t, g, d).transpose(1, 2)
        if isinstance(cache, StaticKVCache):
            k, v = cache.update(self.layer_idx, k, v)                     # (B, G, S, D)
        elif cache is not None:                                          # a transformers Cache (HF generate)
            k, v = cache.update(k, v, self.layer_idx)
        s = k.shape[2]
        # Fold the R heads of each group into the query axis: (B, G, R*T, D) against (B, G, S, D).
        q = q.reshape(b, g, r * t, d)
        low_precision = q.dtype != torch.float32 and not ctx.official_bias
        if low_precision:                        # fp32 bias => fp32 attention (cheap next to the projections)
            q, k, v = q.float(), k.float(), v.float()
        chunk = t if ctx.bias is not None else max(1, BIAS_BLOCK_ELEMENTS // (h * s))
        out = []
        for a in range(0, t, chunk):
            e = min(t, a + chunk)
            kv_end = s - t + e                                           # causal: later keys are all -inf
            if ctx.bias is not None:
                bias = ctx.bias[:, a:e, :kv_end]
            else:
                bias = alibi_bias(ctx.slopes, ctx.start + a, e - a, kv_end)
            bias = bias.to(q.dtype).reshape(g, r * (e - a), kv_end)               # head h = g*R + r
            if ctx.key_bias is not None:                                 # (B, G, R*(e-a), kv_end)
                bias = bias + ctx.key_bias[..., :kv_end].to(q.dtype)
            qa = q.view(b, g, r, t, d)[:, :, :, a:e].reshape(b, g, r * (e - a), d)
            oa = F.scaled_dot_product_attention(qa, k[:, :, :kv_end], v[:, :, :kv_end], attn_mask=bias)
            out.append(oa.view(b, g, r, e - a, d))
        o = torch.cat(out, dim=3) if len(out) > 1 else out[0]            # (B, G, R, T, D) = heads in order
        o = o.to(x.dtype).reshape(b, h, t, d).transpose(1, 2).reshape(b, t, h * d)
        return self.o_proj(o)


class Step1DecoderLayer(nn.Module):
    """Pre-norm block. ``gradient_checkpointing`` / ``_gradient_checkpointing_func`` are the attributes that
    ``PreTrainedModel.gradient_checkpointing_enable()`` sets on every module that has them (transformers'
    ``GradientCheckpointingLayer`` contract, without importing ``modeling_layers``, which pulls in torchaudio);
    :class:`Step1Model` then recomputes the block in the backward pass instead of storing its activations."""

    gradient_checkpointing = False

    def __init__(self, config: Step1Config, layer_idx: int):
        super().__init__()
        self.self_attn = Step1Attention(config, layer_idx)
        self.mlp = Step1MLP(config.hidden_size, config.intermediate_size)
        self.input_layernorm = Step1RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = Step1RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x: torch.Tensor, ctx: _AttnContext, cache=None) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), ctx, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class BackboneOutput(NamedTuple):
    """Unpacks as ``(x, hidden)``; ``last_hidden_state`` is the HF name trainers read."""
    last_hidden_state: torch.Tensor         # (B, T, C) after the final norm
    hidden_states: list[torch.Tensor]       # per layer, when asked for


class Step1Model(nn.Module):
    """Embedding -> N pre-norm blocks -> final RMSNorm. No positional embedding: ALiBi carries position."""

    def __init__(self, config: Step1Config):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Step1DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = Step1RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.n_heads = config.num_attention_heads
        self._slopes: dict[torch.device, torch.Tensor] = {}   # computed once per device, never in a state dict

    def slopes(self, device: torch.device) -> torch.Tensor:
        if device not in self._slopes:
            self._slopes[device] = alibi_slopes(self.n_heads).to(device)
        return self._slopes[device]

    def forward(self, input_ids: torch.Tensor, cache=None, *, start: int = 0, official_bias: bool = False,
                output_hidden_states: bool = False, attention_mask: torch.Tensor | None = None,
                **unused) -> "BackboneOutput":
        """(B, T) ids -> (last hidden state (B, T, C), per-layer states). ``unused`` takes the HF keywords
        (``use_cache``...) that trainers pass when they call the backbone directly (TRL's fused lm_head loss)."""
        # (B, T, C); rows stored narrower than the activations (int8 CPU path) are widened exactly here
        x = self.embed_tokens(input_ids).to(self.norm.weight.dtype)
        t = input_ids.shape[1]
        slopes = self.slopes(x.device)
        s = start + t
        # Small blocks (decode steps, short prompts): build the bias once here and share it across layers.
        bias = alibi_bias(slopes, start, t, s) if self.n_heads * t * s <= BIAS_BLOCK_ELEMENTS else None
        ctx = _AttnContext(start=start, slopes=slopes, bias=bias, official_bias=official_bias,
                           key_bias=key_padding_bias(attention_mask, s))
        if cache is not None and self.checkpointing():
            # the recompute in the backward pass would write the keys / values a second time
            raise InvalidInputError("a KV cache cannot be filled under gradient checkpointing (use_cache=False)")
        hidden = [x] if output_hidden_states else []
        recompute = self.checkpointing()
        for layer in self.layers:
            if recompute and layer.gradient_checkpointing:
                x = layer._gradient_checkpointing_func(layer.__call__, x, ctx, cache)
            else:
                x = layer(x, ctx, cache)
            if output_hidden_states:
                hidden.append(x)
        x = self.norm(x)
        if output_hidden_states:
            hidden[-1] = x                        # HF convention: the last entry is after the final norm
        return BackboneOutput(x, hidden)


    def checkpointing(self) -> bool:
        """True when this forward recomputes activations (checkpointing on, training, gradients enabled)."""
        return (self.training and torch.is_grad_enabled()
                and any(layer.gradient_checkpointing for layer in self.layers))


def key_padding_bias(attention_mask: torch.Tensor | None, s: int) -> torch.Tensor | None:
    """(B, S) 1/0 mask over all key positions (cache + new) -> (B, 1, 1, S) additive fp32 bias, or None when
    nothing is padded. ALiBi only sees distances i - j, so left padding shifts no real position."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    if attention_mask.dim() != 2 or attention_mask.shape[1] != s:
        raise InvalidInputError(f"attention_mask of shape {tuple(attention_mask.shape)} does not cover the "
                                f"{s} key positions")
    return torch.where(attention_mask.bool(), 0.0, PAD_KEY_BIAS).float()[:, None, None, :]


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """Next-token cross entropy: logits (B, T, V) at t predict labels[t + 1]; IGNORE_INDEX is skipped. The mean
    over this batch's labelled tokens, or the sum over ``num_items_in_batch`` (the transformers Trainer passes the
    labelled-token count of all accumulated micro-batches, so gradient accumulation averages correctly)."""
    shifted = labels[:, 1:].to(logits.device)
    flat = logits[:, :-1].float().reshape(-1, logits.shape[-1])
    if num_items_in_batch is None:
        return F.cross_entropy(flat, shifted.reshape(-1), ignore_index=IGNORE_INDEX)
    total = F.cross_entropy(flat, shifted.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum")
    return total / torch.as_tensor(num_items_in_batch, device=total.device)


class Step1PreTrainedModel(PreTrainedModel):
    config_class = Step1Config
    base_model_prefix = "model"
    _no_split_modules = ["Step1DecoderLayer"]
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True      # per decoder layer (Step1DecoderLayer.gradient_checkpointing)

    def _set_gradient_checkpointing(self, enable: bool = True, gradient_checkpointing_func=checkpoint,
                                    every_n_layers: int = 1):
        # transformers imports modeling_layers here, whose audio utilities import torchaudio: load that first
        # without its CUDA-linked extension (compat.py) so that CPU-only torch builds work
        import_torchaudio()
        super()._set_gradient_checkpointing(enable, gradient_checkpointing_func, every_n_layers)

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, Step1RMSNorm):
            nn.init.ones_(module.weight)


class Step1ForCausalLM(Step1PreTrainedModel, GenerationMixin):
    """Step1 with its own (untied) lm_head. ``official_bias`` selects the bf16-rounded official bias."""

    def __init__(self, config: Step1Config):
        super().__init__(config)
        config.validate_shapes()
        self.model = Step1Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.official_bias = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    @property
    def activation_dtype(self) -> torch.dtype:
        """The dtype the layers compute in (the embedding may be stored narrower, see loading.NARROW_STORAGE)."""
        return self.model.norm.weight.dtype

    def new_cache(self, max_len: int, batch: int = 1) -> StaticKVCache:
        w = self.model.embed_tokens.weight
        return StaticKVCache(self.config, max_len, batch=batch, device=w.device, dtype=self.activation_dtype)

    def step(self, input_ids: torch.Tensor, cache: StaticKVCache, logits_to_keep: int = 1) -> torch.Tensor:
        """The decoding entry: feed (B, T) ids after ``cache.length`` positions; return (B, keep, V) logits."""
        return self.forward(input_ids, cache, logits_to_keep=logits_to_keep).logits

    def forward(self, input_ids: torch.Tensor, past_key_values=None, output_hidden_states: bool | None = None,
                return_dict: bool | None = None, logits_to_keep: int = 0, use_cache: bool | None = None,
                cache=None, attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                **kwargs) -> CausalLMOutputWithPast:
        """HF-style forward: (B, T) ids -> (B, T or keep, V) logits and the cache.

        The cache may come as ``past_key_values`` (transformers <= 5.23) or ``cache`` (5.24+), and may be a
        :class:`StaticKVCache` or a transformers ``Cache``. Without one, ``use_cache`` (default
        ``config.use_cache``) creates a ``DynamicCache`` holding this call's keys/values and returns it, so the
        next call continues from it; ``use_cache=False`` returns none. Positions are ignored, as official
        (ALiBi positions come from the cache length). ``attention_mask`` (B, S) masks padded keys (batched
        training / generation; the official code has no padding). ``labels`` (B, T), IGNORE_INDEX where no
        loss is taken, give the mean next-token cross entropy as ``loss`` (training, stepedit_core.train).
        """
        if cache is not None and past_key_values is not None and cache is not past_key_values:
            raise InvalidInputError("pass the KV cache once, as `cache` or as `past_key_values`, not both")
        cache = cache if cache is not None else past_key_values
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if cache is None and use_cache and not self.model.checkpointing():   # HF: no cache under checkpointing
            cache = DynamicCache(config=self.config)
        static = isinstance(cache, StaticKVCache)
        start = cache.length if static else (cache.get_seq_length() if cache is not None else 0)
        if static and start + input_ids.shape[1] > cache.max_len:
            raise InvalidInputError(f"{start + input_ids.shape[1]} tokens exceed the KV cache ({cache.max_len})")
        x, hidden = self.model(input_ids, cache, start=start, official_bias=self.official_bias,
                               output_hidden_states=bool(output_hidden_states), attention_mask=attention_mask)
        if static:
            cache.advance(input_ids.shape[1])
        logits = self.lm_head(x[:, -logits_to_keep:] if logits_to_keep else x)
        loss = None
        if labels is not None:
            if logits_to_keep:
                raise InvalidInputError("labels need the logits of every position (logits_to_keep=0)")
            loss = causal_lm_loss(logits, labels, kwargs.get("num_items_in_batch"))
        out = CausalLMOutputWithPast(loss=loss, logits=logits, hidden_states=tuple(hidden) if output_hidden_states else None,
                                     **{CACHE_FIELD: cache if use_cache else None})
        return out if return_dict is not False else out.to_tuple()


def register() -> None:
    """Register model_type "step1" with the transformers Auto classes (idempotent)."""
    try:
        AutoConfig.register("step1", Step1Config)
    except ValueError:                       # already registered (re-import, or by another copy)
        pass
    try:
        AutoModelForCausalLM.register(Step1Config, Step1ForCausalLM)
    except ValueError:
        pass


register()
