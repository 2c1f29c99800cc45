"""How long a request to the real engine will take, and how long one may take (the work cap).

Wall-clock model: tokens to decode (TOKEN_RATE_HZ = 41.67 per second of audio, bounded by the
``max_new_tokens`` option per piece) x seconds per token, plus the other stages (tokenizers, flow, HiFT) per
second of audio in and out, plus a fixed overhead. The app sizes ZeroGPU requests from it
(app_ui/runner.py) and the validators refuse requests above :func:`request_cap` before any work.
"""
from __future__ import annotations

import math

from . import catalog, longform, validation
from .tokens import TOKEN_RATE_HZ

# Decode speed of the official LLM in tokens/s by device. cuda / mps are estimates (no GPU here); the CPU
# figures are measured on 2 idle cores (bench/bench_llm_realsize.py, BENCHMARKS.md): fp32 in the table,
# int8 / bf16 weights in CPU_DECODE_TOKENS_PER_S.
DECODE_TOKENS_PER_S = {"cuda": 40.0, "mps": 12.0, "cpu": 1.4}
CPU_DECODE_TOKENS_PER_S = {"int8": 5.2, "bfloat16": 1.9}
OTHER_S_PER_AUDIO_S = {"cuda": 0.15, "mps": 0.6, "cpu": 2.0}
FIXED_OVERHEAD_S = 3.0
# The decode speeds are for the official LLM (3.53 B parameters). Decoding one token reads
# every weight once (memory-bound: bench/RESULTS_realsize.md), so its time scales with the weight count; a
# smaller checkpoint (the tests' tiny one) decodes proportionally faster.
REFERENCE_LLM_PARAMS = 3.53e9
# Candidates decoded as one batch (stepedit_core.batching) share the prompt work and each decode step reads the
# weights once for all rows: a step at batch B costs (1 + BATCH_ROW_STEP_COST x (B - 1)) steps at batch 1; the
# other stages (flow, HiFT) run per candidate. cuda / mps are estimates (memory-bound steps); cpu is measured
# on the shared 2-core machine (bench/bench_batch_width.py, BENCHMARKS.md "Batched candidates": 2.5x at batch 4).
BATCH_ROW_STEP_COST = {"cuda": 0.1, "mps": 0.2, "cpu": 0.5}


def estimate_seconds(kind: str, audio_seconds: float, text_chars: int = 0, n_iterations: int = 1, *,
                     device: str = "cpu", weights: str = "float32", scale: float = 1.0,
                     max_new_tokens: int | None = None, candidates: int = 1) -> float:
    """Seconds a request should take. ``weights`` is :func:`llm_weights` of the loaded LLM, ``scale`` its
    :func:`decode_scale`; ``candidates`` takes of it decoded as one batch (an edit's rounds after the first
    run per candidate)."""
    if kind == catalog.TRANSCRIBE:           # the lite engine's whisper, on the CPU whatever the device
        from .listen.asr import SECONDS_PER_AUDIO_S    # noqa: PLC0415  (lite loads lazily)
        return SECONDS_PER_AUDIO_S * audio_seconds
    dev = device if device in DECODE_TOKENS_PER_S else "cpu"
    rate = DECODE_TOKENS_PER_S[dev]
    if dev == "cpu":
        rate = CPU_DECODE_TOKENS_PER_S.get(weights, rate)
    s_per_token = scale / rate
    rows = max(1, int(candidates))
    batch_step = 1.0 + BATCH_ROW_STEP_COST[dev] * (rows - 1)

    def tokens(expected: float, pieces: int) -> float:      # max_new_tokens applies to each piece
        return expected if max_new_tokens is None else min(expected, max_new_tokens * pieces)

    if kind == catalog.CLONE:
        out_s = longform.CJK_CHAR_S * text_chars + 1.0             # pessimistic: CJK speaking time per char
        n = tokens(out_s * TOKEN_RATE_HZ, max(1, math.ceil(out_s / longform.CLONE_PIECE_S)))
        return (FIXED_OVERHEAD_S + n * s_per_token * batch_step
                + OTHER_S_PER_AUDIO_S[dev] * (audio_seconds + rows * n / TOKEN_RATE_HZ))
    pieces = max(1, math.ceil(audio_seconds / longform.MAX_PIECE_S))
    decode = tokens(audio_seconds * TOKEN_RATE_HZ, pieces) * s_per_token
    other = OTHER_S_PER_AUDIO_S[dev] * audio_seconds            # once for the input, once per output
    first = decode * batch_step + other * (1 + rows)
    return FIXED_OVERHEAD_S + first + (max(1, n_iterations) - 1) * rows * (decode + 2 * other)


def request_cap(option: float | None, device: str) -> float | None:
    """Seconds one request may take: ``option`` (EngineOptions.max_request_seconds); None there means the
    device's default (validation.MAX_NEURAL_REQUEST_SECONDS on CUDA: one ZeroGPU allocation;
    validation.MAX_NEURAL_CPU_REQUEST_SECONDS elsewhere); math.inf means no cap (returns None)."""
    if option is None:
        option = (validation.MAX_NEURAL_REQUEST_SECONDS if device == "cuda"
                  else validation.MAX_NEURAL_CPU_REQUEST_SECONDS)
    return None if math.isinf(option) else option


def llm_weights(llm) -> str:
    """"int8" when the decoder layers are dynamically quantized, else the weight dtype ("float32", ...)."""
    try:
        down = llm.model.layers[0].mlp.down_proj
    except (AttributeError, IndexError, TypeError):
        return "float32"
    weight = getattr(down, "weight", None)
    if callable(weight) or weight is None:
        return "int8"
    return str(weight.dtype).removeprefix("torch.")


def decode_scale(llm) -> float:
    """The LLM's weight count / the official one (parameters and buffers: int8 layers keep theirs as
    buffers); 1.0 when it cannot be counted."""
    try:
        count = sum(t.numel() for t in (*llm.parameters(), *llm.buffers()))
    except (AttributeError, TypeError):
        return 1.0
    return count / REFERENCE_LLM_PARAMS if count else 1.0
