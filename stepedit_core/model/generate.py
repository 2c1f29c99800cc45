"""Sampling from the Step1 LLM with the official semantics (tts.py's generate call), written as plain functions.

Official call (GH:tts.py): ``llm.generate(ids, max_length=8192, temperature=0.7, do_sample=True,
logits_processor=[RepetitionAwareLogitsProcessor()])`` with transformers defaults for the rest: top-k 50,
top-p 1.0, eos = ``<|EOT|>`` (3). Per step, in this order (the transformers order: custom processors
before the temperature / top-k warpers):

1. logits in fp32;
2. repetition guard: with the last 10 ids (prompt included) as the window, ban the last id when it occurs
   at least twice there; no-op while the sequence has fewer than 10 ids;
3. optional ``constrained`` mask (not official, default off): only the id range of the next slot of the
   2+3 pattern may be drawn, or ``<|EOT|>`` at a group boundary;
4. temperature, top-k (ties at the k-th value kept, as transformers), top-p (skipped at 1.0);
5. one draw from the softmax with a seeded ``torch.Generator``.

Additions over the official loop: a seed (drawn and reported when not given), a ``max_new_tokens`` bound
(see :func:`max_new_tokens_for_audio` / :func:`max_new_tokens_for_text`), the stop reason, timings, and
delivery of complete 2+3 groups to a callback for a streaming decoder.
"""
from __future__ import annotations

import math
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from ..errors import InvalidInputError
from .prefix_cache import PrefixCache, prefill
from ..tokens import (AUDIO_TOKEN_OFFSET, EOT_ID, GROUP_SIZE, PROMPT_TOKEN_SPACE, TOKEN_RATE_HZ, VQ02_PER_GROUP,
                     VQ02_SIZE, CheckedTokens, check_llm_output, group_position_ok)

TEMPERATURE = 0.7           # GH:tts.py generate(temperature=0.7)
TOP_K = 50                  # transformers default (no generation_config.json ships)
TOP_P = 1.0                 # transformers default
MAX_TOTAL_TOKENS = 8192     # GH:tts.py generate(max_length=8192): prompt + new tokens
REPETITION_WINDOW = 10      # RepetitionAwareLogitsProcessor window_size
REPETITION_THRESHOLD = 0.1  # ban the last id when count / window > threshold, i.e. count >= 2

# max_new_tokens rules (ours; the official loop only has the 8192 total cap).
EDIT_LENGTH_FACTOR = 2.0    # an edit (e.g. "slower") may at most double the source duration ...
EDIT_SLACK_S = 3.0          # ... plus 3 s of slack for short clips and added paralinguistic events
TEXT_SECONDS_PER_CHAR = 0.5  # slow speech: 2 Chinese characters/s; generous for alphabetic scripts
TEXT_SLACK_S = 3.0

GroupCallback = Callable[[tuple[int, ...]], None]
# Rows of a batched CPU decode step padded with a copy of a live row (its output dropped): 3 rows cost as much as
# 4 or more (the fp32 lm_head's 3-row product: bench/RESULTS_batch_step.md). The copy changes no live row's bits:
# the int8 activation scale (min / max of the whole batch) is unchanged by a duplicate, the int32 products are
# exact, and every other op is per row (tests/model/test_batch.py).
PAD_ROWS = {3: 4}


@dataclass(frozen=True)
class SamplingOptions:
    # softmax temperature (official 0.7)
    temperature: float = TEMPERATURE
    # keep the k largest logits (0 = off; official 50)
    top_k: int = TOP_K
    # nucleus mass (1.0 = off; official 1.0)
    top_p: float = TOP_P
    # False: argmax after the repetition guard / constraint (tests, debugging)
    do_sample: bool = True
    # the RepetitionAwareLogitsProcessor (official: on)
    repetition_guard: bool = True
    # mask logits to the 2+3 audio pattern (not official; a repair that never yields a broken stream)
    constrained: bool = False
    # prompt + new tokens cap (official 8192)
    max_total_tokens: int = MAX_TOTAL_TOKENS
    # bound on new tokens (None: only the total cap); see max_new_tokens_for_audio / _for_text
    max_new_tokens: int | None = None
    # RNG seed for the draws; None draws a fresh seed, reported in the result
    seed: int | None = None
    # stop id (<|EOT|>, the model's eos_token_id)
    eot_id: int = EOT_ID


@dataclass(frozen=True)
class GenerationResult:
    ids: tuple[int, ...]        # generated LLM ids, <|EOT|> excluded (prompt excluded)
    stop_reason: str            # "eot" | "max_new_tokens" | "max_total" | "cancelled"
    prompt_len: int
    seed: int | None            # the seed used (None for greedy)
    prefill_s: float            # prompt forward + first token
    decode_s: float             # the remaining single-token steps
    decode_steps: int

    @property
    def decode_tok_s(self) -> float:
        return self.decode_steps / self.decode_s if self.decode_s > 0 else float("nan")

    def audio_tokens(self, repair: bool = True) -> CheckedTokens:
        """The output as whole 2+3 groups in prompt-token space (``tokens.check_llm_output``): every id must be
        65536 + N with N in [0, 1024) at vq02 slots and [1024, 5120) at vq06 slots."""
        return check_llm_output(list(self.ids) + ([EOT_ID] if self.stop_reason == "eot" else []), repair=repair)


def max_new_tokens_for_audio(source_tokens: int) -> int:
    """Bound for an edit of a source of ``source_tokens`` mixed audio tokens (41.67 tokens/s):
    EDIT_LENGTH_FACTOR x the source plus EDIT_SLACK_S seconds, rounded up to whole groups, + 1 for EOT."""
    n = EDIT_LENGTH_FACTOR * source_tokens + EDIT_SLACK_S * TOKEN_RATE_HZ
    return math.ceil(n / GROUP_SIZE) * GROUP_SIZE + 1


def max_new_tokens_for_text(text: str) -> int:
    """Bound for cloning ``text``: TEXT_SECONDS_PER_CHAR per non-space character plus TEXT_SLACK_S seconds,
    in whole groups, + 1 for EOT."""
    chars = sum(1 for c in text if not c.isspace())
    n = (TEXT_SECONDS_PER_CHAR * chars + TEXT_SLACK_S) * TOKEN_RATE_HZ
    return math.ceil(n / GROUP_SIZE) * GROUP_SIZE + 1


def repetition_banned_id(history: Sequence[int], window: int = REPETITION_WINDOW) -> int | None:
    """The id the official RepetitionAwareLogitsProcessor bans next, or None."""
    if len(history) < window:
        return None
    last = history[-1]
    count = sum(1 for t in history[-window:] if t == last)
    return last if count / window > REPETITION_THRESHOLD else None


class RepetitionGuardProcessor(LogitsProcessor):
    """The official ``RepetitionAwareLogitsProcessor`` as a transformers processor, for ``model.generate``
    (and trainers that sample through it): per row of (B, L) ids, ban the id :func:`repetition_banned_id` names."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row, history in enumerate(input_ids.tolist()):
            banned = repetition_banned_id(history)
            if banned is not None:
                scores[row, banned] = float("-inf")
        return scores


def transformers_generate_kwargs(options: SamplingOptions = SamplingOptions()) -> dict:
    """Keyword arguments that make ``Step1ForCausalLM.generate`` follow ``options`` as :func:`generate` does
    (same processors in the same order; with ``torch.manual_seed(seed)`` before the call, the same draws).
    The ``constrained`` mask has no transformers twin and is refused."""
    if options.constrained:
        raise InvalidInputError("the constrained 2+3 mask is only available in stepedit_core.model.generate.generate")
    kwargs = dict(do_sample=options.do_sample, eos_token_id=options.eot_id,
                  max_length=options.max_total_tokens, max_new_tokens=options.max_new_tokens,
                  logits_processor=LogitsProcessorList([RepetitionGuardProcessor()] if options.repetition_guard
                                                       else []))
    if options.do_sample:
        kwargs.update(temperature=options.temperature, top_k=options.top_k, top_p=options.top_p)
    return kwargs


def slot_range(position: int) -> tuple[int, int]:
    """[lo, hi) LLM ids allowed at generated position ``position`` of the 2+3 pattern."""
    if position % GROUP_SIZE < VQ02_PER_GROUP:
        return AUDIO_TOKEN_OFFSET, AUDIO_TOKEN_OFFSET + VQ02_SIZE
    return AUDIO_TOKEN_OFFSET + VQ02_SIZE, AUDIO_TOKEN_OFFSET + PROMPT_TOKEN_SPACE


def constrain_logits(logits: torch.Tensor, position: int, eot_id: int = EOT_ID) -> torch.Tensor:
    """Keep only the ids valid at ``position`` (and EOT at a group boundary after >= 1 group); (V,) in place."""
    lo, hi = slot_range(position)
    keep_eot = position > 0 and position % GROUP_SIZE == 0
    eot = logits[eot_id].clone()
    logits[:lo] = float("-inf")
    logits[hi:] = float("-inf")
    if keep_eot:
        logits[eot_id] = eot
    return logits


def warp_logits(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Temperature, then top-k, then top-p, with the transformers conventions; (V,) or (B, V) fp32, row-wise
    (a row gives the same bits alone or in a batch: the reductions run along the last axis only)."""
    if temperature != 1.0:
        logits = logits / temperature
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=False)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum <= 1 - top_p
        drop[..., -1] = False                             # always keep the most likely id
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def next_tokens(logits: torch.Tensor, histories: Sequence[Sequence[int]], positions: Sequence[int],
                options: SamplingOptions, generators: Sequence[torch.Generator | None]) -> list[int]:
    """One id per row from last-position logits (B, V), following the module docstring's steps. The warps run
    on the whole (B, V) block at once; each row then draws with its own generator, so a row's id is the one
    :func:`next_token` gives for it alone."""
    logits = logits.float().clone()
    for b, history in enumerate(histories):
        if options.repetition_guard:
            banned = repetition_banned_id(history)
            if banned is not None:
                logits[b, banned] = float("-inf")
        if options.constrained:
            constrain_logits(logits[b], positions[b], options.eot_id)
    if not options.do_sample:
        return torch.argmax(logits, dim=-1).tolist()
    probs = torch.softmax(warp_logits(logits, options.temperature, options.top_k, options.top_p), dim=-1)
    return draw_rows(probs, generators)


def _draw(probs: torch.Tensor, generator: torch.Generator | None) -> int:
    with torch.inference_mode():          # inference mode is per thread: the pool's threads enter it too
        return int(torch.multinomial(probs, 1, generator=generator))


_draw_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def draw_rows(probs: torch.Tensor, generators: Sequence[torch.Generator | None]) -> list[int]:
    """One id per row of ``probs`` (B, V), each drawn with the row's own generator, as alone. torch's one-sample
    multinomial draws V exponentials one after another (argmax p / Exp(1)): ~5 ms per row at V = 74752 on this
    CPU, most of a batch's sampling. Rows with their own generators do not share state, so up to
    ``torch.get_num_threads()`` rows draw at once on a pool of threads (the kernel releases the GIL); each row's
    generator runs the same draws in the same order, so the ids are the serial ones (tests/model/test_batch.py).
    Rows drawing from torch's global generator (None), and rows on a GPU, stay serial, in row order."""
    workers = min(len(generators), torch.get_num_threads())
    if workers < 2 or probs.device.type != "cpu" or any(g is None for g in generators):
        return [_draw(probs[b], g) for b, g in enumerate(generators)]
    key = (os.getpid(), workers)          # a forked process (ZeroGPU's worker) has none of its parent's threads
    pool = _draw_pools.get(key) or _draw_pools.setdefault(key, ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix="stepedit-draw"))
    return list(pool.map(_draw, probs.unbind(0), generators))


def next_token(logits: torch.Tensor, history: Sequence[int], position: int, options: SamplingOptions,
               generator: torch.Generator | None) -> int:
    """One id from last-position logits (V,): :func:`next_tokens` for one row."""
    return next_tokens(logits.reshape(1, -1), [history], [position], options, [generator])[0]


class _GroupEmitter:
    """Collects generated ids and hands each complete, valid 2+3 group (prompt-token space) to a callback.
    Stops emitting at the first id that is not an audio id of its slot, as ``tokens.check_llm_output``
    cuts the stream there too."""

    def __init__(self, callback: GroupCallback | None):
        self.callback, self.pending, self.position, self.broken = callback, [], 0, False

    def push(self, token: int) -> None:
        if self.callback is None or self.broken:
            return
        n = token - AUDIO_TOKEN_OFFSET
        if not (0 <= n < PROMPT_TOKEN_SPACE and group_position_ok(self.position, n)):
            self.broken = True
            return
        self.pending.append(n)
        self.position += 1
        if len(self.pending) == GROUP_SIZE:
            group, self.pending = tuple(self.pending), []
            self.callback(group)


RowGroupCallback = Callable[[int, tuple[int, ...]], None]


@torch.inference_mode()
def generate(model, prompt_ids: Sequence[int] | torch.Tensor, options: SamplingOptions = SamplingOptions(), *,
             on_group: GroupCallback | None = None, should_stop: Callable[[], bool] | None = None,
             prefix_cache: PrefixCache | None = None, prefix_boundaries: Sequence[int] = ()) -> GenerationResult:
    """Sample a continuation of ``prompt_ids`` (one sequence) with a Step1ForCausalLM and a static KV cache.

    Stops at ``<|EOT|>`` (reason "eot", EOT not included), after ``max_new_tokens`` new ids ("max_new_tokens")
    or when prompt + new reaches ``max_total_tokens`` ("max_total"); on a cap nothing is dropped.
    ``on_group`` receives each complete 2+3 group, in prompt-token space (0..5119), as soon as it is sampled.
    ``should_stop`` is polled before every decode step; when it returns True sampling ends ("cancelled").
    The prompt is prefilled in blocks (also ending at ``prefix_boundaries``), reusing ``prefix_cache``
    (model.prefix_cache). This is :func:`generate_batch` with one row.
    """
    remote = getattr(model, "remote_generate", None)
    if remote is not None:                                 # the LLM runs on a server (model.remote.RemoteStep1)
        return remote(prompt_ids, options, on_group=on_group, should_stop=should_stop)
    if torch.is_tensor(prompt_ids):
        if prompt_ids.dim() > 2 or (prompt_ids.dim() == 2 and prompt_ids.shape[0] != 1):
            raise InvalidInputError(f"one sequence at a time; got prompt ids of shape {tuple(prompt_ids.shape)}")
        prompt_ids = prompt_ids.reshape(-1).tolist()
    row_callback = None if on_group is None else (lambda _row, group: on_group(group))
    return generate_batch(model, prompt_ids, [options.seed], options, on_group=row_callback,
                          should_stop=should_stop, prefix_cache=prefix_cache,
                          prefix_boundaries=prefix_boundaries)[0]


class _Row:
    """One sequence of a batched decode: its seed and generator, history, new ids, emitter and stop."""

    def __init__(self, index: int, seed: int | None, prompt: list[int], options: SamplingOptions, device,
                 on_group: RowGroupCallback | None):
        self.index, self.seed, self.generator = index, None, None
        if options.do_sample:
            self.seed = seed if seed is not None else secrets.randbelow(2 ** 63)
            self.generator = torch.Generator(device=device).manual_seed(self.seed)
        self.history, self.new, self.stop, self.steps = list(prompt), [], None, 0
        self.emitter = _GroupEmitter(None if on_group is None else (lambda g: on_group(index, g)))

    def take(self, token: int, options: SamplingOptions, max_new: int, budget: int) -> None:
        """Record a drawn id; sets ``stop`` on <|EOT|> or a cap (the same rules as one sequence)."""
        if token == options.eot_id:
            self.stop = "eot"
            return
        self.new.append(token)
        self.history.append(token)
        self.emitter.push(token)
        if len(self.new) >= max_new:
            self.stop = "max_total" if len(self.new) >= budget else "max_new_tokens"


def _check_budget(ids: list[int], options: SamplingOptions) -> tuple[int, int]:
    """(room under the total cap, new ids allowed) for a prompt, or InvalidInputError."""
    if not ids:
        raise InvalidInputError("empty prompt")
    budget = options.max_total_tokens - len(ids)
    if budget <= 0:
        raise InvalidInputError(f"prompt of {len(ids)} tokens leaves no room under the "
                                f"{options.max_total_tokens}-token cap")
    max_new = budget if options.max_new_tokens is None else min(budget, options.max_new_tokens)
    if max_new <= 0:
        raise InvalidInputError(f"max_new_tokens must be positive, got {options.max_new_tokens}")
    return budget, max_new


@torch.inference_mode()
def _remote_rows(remote, ids: list[int], seeds: Sequence[int | None], options: SamplingOptions,
                 on_group: RowGroupCallback | None, should_stop: Callable[[], bool] | None) -> list[GenerationResult]:
    """The rows of a batch as concurrent requests to the LLM server (model.remote.RemoteStep1), which batches
    them on its side (and reuses the shared prompt through its own prefix cache)."""
    def row(i: int, seed: int | None) -> GenerationResult:
        callback = None if on_group is None else (lambda group: on_group(i, group))
        return remote(ids, replace(options, seed=seed), on_group=callback, should_stop=should_stop)

    with ThreadPoolExecutor(max_workers=len(seeds)) as pool:
        futures = [pool.submit(row, i, s) for i, s in enumerate(seeds)]
        return [f.result() for f in futures]


def padded_rows(rows: list[int], pad: bool = True) -> list[int]:
    """The cache rows a step runs: ``rows``, plus copies of the first when PAD_ROWS pads that many (CPU)."""
    return rows + rows[:1] * (PAD_ROWS.get(len(rows), len(rows)) - len(rows)) if pad else rows


def generate_batch(model, prompt_ids: Sequence[int], seeds: Sequence[int | None],
                   options: SamplingOptions = SamplingOptions(), *, on_group: RowGroupCallback | None = None,
                   should_stop: Callable[[], bool] | None = None,
                   prefix_cache: PrefixCache | None = None,
                   prefix_boundaries: Sequence[int] = ()) -> list[GenerationResult]:
    """Sample one continuation of the same prompt per seed: one prefill, then the rows decode together as a
    batch (B, 1) -> (B, V), each row with its own ``torch.Generator``, repetition history and stop; a finished
    row leaves the batch (its cache row is dropped). ``options.seed`` is ignored (``seeds`` rule; None draws).

    The first id of every row comes from the same prefill logits as alone; later steps of a row may differ
    from its solo run in the last bits when B > 1 (matrix kernels and int8 activation scales see the whole
    batch), so a take is fixed by its seed and the batch's seeds (the engine records them).
    ``on_group(row, group)``: each row's complete 2+3 groups as they are sampled (streaming).
    ``prefill_s`` / ``decode_s`` of every result are the batch's.
    """
    ids = [int(t) for t in prompt_ids]
    if not seeds:
        raise InvalidInputError("no seeds: a batch needs at least one row")
    if getattr(model, "remote_generate", None) is not None:
        return _remote_rows(model.remote_generate, ids, seeds, options, on_group, should_stop)
    budget, max_new = _check_budget(ids, options)
    device = model.get_input_embeddings().weight.device
    rows = [_Row(i, s, ids, options, device, on_group) for i, s in enumerate(seeds)]
    cache = model.new_cache(len(ids) + max_new)
    t0 = time.perf_counter()
    logits = prefill(model, ids, cache, prefix_cache, prefix_boundaries)
    first = next_tokens(logits.reshape(1, -1).expand(len(rows), -1), [row.history for row in rows],
                        [0] * len(rows), options, [row.generator for row in rows])
    for row, token in zip(rows, first):
        row.take(token, options, max_new, budget)
    t1 = time.perf_counter()
    live = [row for row in rows if row.stop is None]
    pad = device.type == "cpu"
    if len(live) > 1:
        cache = cache.expand(len(rows))
        slots = padded_rows([row.index for row in live], pad)
        if slots != list(range(len(rows))):
            cache.keep_rows(slots)
    while live:
        if should_stop is not None and should_stop():
            for row in live:
                row.stop = "cancelled"
            break
        tokens = torch.tensor([[live[b].new[-1]] for b in padded_rows(list(range(len(live))), pad)], device=device)
        logits = model.step(tokens, cache)[:len(live), -1]               # (B, V), pad rows dropped
        drawn = next_tokens(logits, [row.history for row in live], [len(row.new) for row in live], options,
                            [row.generator for row in live])
        for row, token in zip(live, drawn):
            row.take(token, options, max_new, budget)
            row.steps += 1
        still = [b for b, row in enumerate(live) if row.stop is None]
        if still and len(still) < len(live):
            cache.keep_rows(padded_rows(still, pad))
        live = [live[b] for b in still]
    t2 = time.perf_counter()
    return [GenerationResult(ids=tuple(row.new), stop_reason=row.stop, prompt_len=len(ids), seed=row.seed,
                             prefill_s=t1 - t0, decode_s=t2 - t1, decode_steps=row.steps) for row in rows]
