"""Candidates of one request as one batch: the seeds, the up-front refusals, and the key-value memory a batch needs.

The native engine samples every candidate (or try) of a request from one prefill of the prompt, decoding the
candidates together (model.generate.generate_batch). A batch is refused before any work, with the work cap's
message style, when its estimate (stepedit_core.workload, ``candidates=``) exceeds the request cap or its keys /
values exceed ``EngineOptions.max_batch_kv_bytes``; the message names how many candidates would fit.

Replay: a candidate's take is fixed by its seed and the seeds decoded with it (int8 activation scales and
matrix kernels see the whole batch), so results carry ``metadata["batch_seeds"]``; re-running the same seeds as
one batch reproduces every take bit for bit.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch

from . import catalog, validation
from .errors import InvalidInputError
from .interface import (CloneRequest, EditRequest, EngineResult, Progress, StopCheck, round_seed, validate_clone,
                        validate_edit)
from .model.generate import max_new_tokens_for_audio, max_new_tokens_for_text
from .tokens import TOKEN_RATE_HZ

MAX_BATCH = 8                        # candidates / tries decoded together (the app offers up to 4 x 3 tries)
MAX_BATCH_KV_BYTES = 3 * 2 ** 29     # 1.5 GiB of keys / values for the rows of one batch (real size: 64 KiB/token)
PROMPT_OVERHEAD_TOKENS = 200         # system prompt, instruction and chat markers around the audio tokens
KV_TENSORS = 2                       # keys and values
# Devices whose candidates' flow runs as one batch (decoder.rows). Not the CPU: the flow and HiFT are
# compute-bound there and a batch of 4 took longer than 4 rows one by one (bench/RESULTS_decoder_batch.md).
BATCHED_DECODER_DEVICES = frozenset({"cuda", "mps"})


def check_seeds(seeds: Sequence[object]) -> list[int]:
    """The seeds of a batch as whole numbers in [0, MAX_SEED]: 1..MAX_BATCH of them, no repeats."""
    if not isinstance(seeds, (list, tuple)) or not 1 <= len(seeds) <= MAX_BATCH:
        raise InvalidInputError(f"a batch takes between 1 and {MAX_BATCH} seeds")
    checked = []
    for s in seeds:
        value = validation.check_seed(s)
        if value is None:
            raise InvalidInputError(f"every seed of a batch must be a whole number >= 0 (got {s!r})")
        checked.append(value)
    if len(set(checked)) != len(checked):
        raise InvalidInputError("the seeds of a batch must differ (the same seed gives the same take)")
    return checked


def row_kv_bytes(config, prompt_tokens: int, new_tokens: int, element_size: int = 4) -> int:
    """Bytes of one row's static KV cache: layers x (keys + values) x groups x head dim x positions."""
    per_token = (KV_TENSORS * config.num_hidden_layers * config.num_attention_groups * config.head_dim
                 * element_size)
    return per_token * (prompt_tokens + new_tokens)


def check_batch(estimate, cap: float | None, engine_name: str, rows: int, row_bytes: int,
                max_bytes: int = MAX_BATCH_KV_BYTES) -> None:
    """Refuse ``rows`` candidates when ``estimate(k)`` (seconds for k candidates) exceeds ``cap`` or
    ``rows x row_bytes`` exceeds ``max_bytes``; the message says how many would fit."""
    if cap is not None:
        seconds = estimate(rows)
        if seconds > cap:
            if rows == 1:
                validation.check_work(seconds, engine_name, cap)
            fit = max((k for k in range(1, rows) if estimate(k) <= cap), default=0)
            raise InvalidInputError(
                f"these {rows} candidates would take about {seconds:.0f} s on the {engine_name}; one request may "
                f"take at most {cap:.0f} s: {_fit(fit)} (or use a shorter text or shorter audio)")
    if rows * row_bytes > max_bytes:
        fit = min(rows - 1, max_bytes // max(row_bytes, 1))
        raise InvalidInputError(
            f"these {rows} candidates would hold about {rows * row_bytes / 2 ** 20:.0f} MiB of model memory on the "
            f"{engine_name}; one batch may hold at most {max_bytes / 2 ** 20:.0f} MiB: {_fit(fit)} "
            f"(or use a shorter text or shorter audio)")


def _fit(n: int) -> str:
    if n <= 0:
        return "not even one candidate fits"
    return "1 candidate fits" if n == 1 else f"{n} candidates fit"


# ---------------------------------------------------------------------------- the engine's batch entries
def _no_progress(fraction: float, desc: str) -> None:
    pass


def _never() -> bool:
    return False


def clone_batch(engine, request: CloneRequest, seeds: Sequence[int], progress: Progress | None = None
                ) -> list[EngineResult]:
    """StepAudioEngine.clone_batch: one take per seed, each as ``clone`` with that seed would make it (see the
    module docstring on bits), the LLM sampling all of them as one batch per piece."""
    seeds, request = _checked_clone(engine, request, seeds)
    return engine._clone_rows(request, seeds, progress or _no_progress)


def stream_clone_batch(engine, request: CloneRequest, seeds: Sequence[int], should_stop: StopCheck | None = None
                       ) -> Iterator[tuple[int, np.ndarray]]:
    """StepAudioEngine.stream_clone_batch: the checks of :func:`clone_batch` at the first ``next``, then every
    row streaming while the batch runs (stepedit_core.stream_rows)."""
    seeds, request = _checked_clone(engine, request, seeds)
    yield from engine._stream_clone_rows(request, seeds, should_stop or _never)


def _checked_clone(engine, request: CloneRequest, seeds: Sequence[int]) -> tuple[list[int], CloneRequest]:
    seeds = check_seeds(seeds)
    request = validate_clone(replace(request, seed=seeds[0]), engine.capabilities())
    _check_engine_batch(engine, catalog.CLONE, request.prompt_audio.duration, len(request.target_text), 1,
                        len(seeds), max_new_tokens_for_text(request.target_text))
    return seeds, request


def edit_batch(engine, request: EditRequest, seeds: Sequence[int], progress: Progress | None = None
               ) -> list[list[EngineResult]]:
    """StepAudioEngine.edit_batch: ``edit`` once per seed, one list of rounds per seed. Round 1 of every seed
    is one batch; later rounds edit each seed's own output (different prompts), one after another."""
    seeds = check_seeds(seeds)
    request = validate_edit(replace(request, seed=seeds[0]), engine.capabilities())
    audio_tokens = round(request.audio.duration * TOKEN_RATE_HZ)
    _check_engine_batch(engine, request.edit_type, request.audio.duration,
                        len(request.new_text or request.audio_text or ""), request.n_iterations, len(seeds),
                        max_new_tokens_for_audio(audio_tokens))
    progress = progress or _no_progress
    n = request.n_iterations

    def report(k: int):
        return lambda f, d: progress(((k - 1) + f) / n, f"round {k}/{n}: {d}" if n > 1 else d)
    firsts = engine._edit_rows(request.audio, request.audio_text, request, [round_seed(s, 1) for s in seeds], 1,
                               report(1))
    out = []
    for s, first in zip(seeds, firsts):
        rounds = [first]
        for k in range(2, n + 1):
            rounds.append(engine._edit_once(rounds[-1].audio, rounds[-1].text, replace(request, seed=s),
                                            round_seed(s, k), k, report(k)))
        out.append(rounds)
    return out


def _check_engine_batch(engine, kind: str, audio_s: float, chars: int, n_iterations: int, rows: int,
                        new_tokens: int) -> None:
    prompt_tokens = PROMPT_OVERHEAD_TOKENS + round(audio_s * TOKEN_RATE_HZ) + chars
    row_bytes = row_kv_bytes(engine.llm.config, prompt_tokens, engine.options.max_new_tokens or new_tokens)
    check_batch(lambda k: engine.estimate_seconds(kind, audio_s, chars, n_iterations, candidates=k),
                engine.request_cap(), engine.capabilities().display_name, rows, row_bytes,
                engine.options.max_batch_kv_bytes)


def decode_rows(engine, generated, prompt, seeds: Sequence[Mapping[str, int]], timings: dict) -> list[np.ndarray]:
    """The audio of each row of one piece (``generated`` = [(checked tokens, GenerationResult)], ``seeds`` the
    rows' sub-seeds): on the devices of BATCHED_DECODER_DEVICES the flow's solver runs once for all rows
    (``token2wav_rows``, stepedit_core.decoder.rows: in fp32 each row is the row decoded alone, bit for bit);
    elsewhere, and for decoders without it, row by row."""
    rows_fn = getattr(engine.decoder, "token2wav_rows", None)
    if rows_fn is None or len(generated) == 1 or engine.device.type not in BATCHED_DECODER_DEVICES:
        return [engine._decode(checked.tokens, prompt, s, timings) for (checked, _), s in zip(generated, seeds)]
    t0 = time.perf_counter()
    with torch.inference_mode():
        wavs = rows_fn([torch.tensor([list(checked.tokens)], dtype=torch.long) for checked, _ in generated],
                       torch.tensor([list(prompt.tokens)], dtype=torch.long), prompt.speech_feat, prompt.embedding,
                       flow_seeds=[s["flow"] for s in seeds], hift_seeds=[s["hift"] for s in seeds])
    timings["decode"] = timings.get("decode", 0.0) + time.perf_counter() - t0
    return [w.detach().float().cpu().numpy().reshape(-1) for w in wavs]


class RowTake:
    """One candidate's pieces while a batch runs: audio, tokens and per-piece metadata."""

    def __init__(self):
        self.outs: list[np.ndarray] = []
        self.tokens: list[int] = []
        self.meta: list[dict] = []

    def add(self, wav: np.ndarray, checked, piece_meta: dict) -> None:
        self.outs.append(wav)
        self.tokens += checked.tokens
        self.meta.append(piece_meta)


def batch_meta(seeds: Sequence[int]) -> dict:
    """What replay needs of a batch: the seeds decoded together (absent for a take made alone)."""
    return {"batch_seeds": tuple(seeds)} if len(seeds) > 1 else {}
