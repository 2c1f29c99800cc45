"""Streaming token2wav for the rows of one batch: the candidates of a clone play while their batch runs.

The LLM samples in a worker thread (``model.generate.generate_batch``: one prefill, the rows decoding together)
and hands each row's complete 2+3 groups, as they are sampled, to this thread through a queue; here every row
has its own streaming CosyVoice decoder (``decoder.stream``: the flow decodes each new group with a bounded
look-back, then HiFT) seeded with the row's own flow / HiFT sub-seeds. :func:`stream_rows` yields
``(row, chunk)`` pairs, 24 kHz float32; a row's chunks concatenate to its take. With one row this is the
engine's single stream (``StepAudioEngine.stream_clone`` / ``stream_edit``).

A row's LLM ids are the ones it draws alone in fp32 (generate_batch), and its decoder sees only its own
groups, so in fp32 a streamed row equals the same seed streamed alone; with int8 a row also depends on the
seeds decoded with it (stepedit_core.batching), which the take records.

Cancelling: ``should_stop()`` (polled between groups) or closing the iterator stops the sampling at its next
step; the stream then ends without its tails. The engine lock must be held by the caller for the whole stream.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterator, Mapping, Sequence

import numpy as np

from .interface import StopCheck
from .llm_wait import llm_wait
from .model.generate import SamplingOptions, generate_batch
from .runtime import PromptAudio
from .tokens import check_llm_output

_DONE = object()          # the worker's last item on the queue


def stream_rows(engine, ids: list[int], cap: int, prompt: PromptAudio, seeds: Sequence[Mapping[str, int]],
                should_stop: StopCheck, boundaries: tuple[int, ...] = ()) -> Iterator[tuple[int, np.ndarray]]:
    """``(row, chunk)`` for each row of sub-seeds ``seeds`` (runtime.derive_seeds: "llm", "flow", "hift") of
    one prompt ``ids``, as the rows' groups are decoded; then each row's tail, in row order."""
    groups: queue.Queue = queue.Queue()
    cancel = threading.Event()
    outcome: dict = {}
    opts = SamplingOptions(temperature=engine.options.temperature, top_k=engine.options.top_k,
                           top_p=engine.options.top_p, constrained=engine.options.constrained, max_new_tokens=cap)

    def work() -> None:
        try:
            outcome["gens"] = generate_batch(engine.llm, ids, [s["llm"] for s in seeds], opts,
                                             on_group=lambda row, group: groups.put((row, group)),
                                             prefix_cache=engine._prefix, prefix_boundaries=boundaries,
                                             should_stop=lambda: cancel.is_set() or should_stop())
        except BaseException as exc:  # noqa: BLE001 (re-raised in the consumer)
            outcome["error"] = exc
        finally:
            groups.put(_DONE)

    worker = threading.Thread(target=work, name="stepedit-llm", daemon=True)
    worker.start()
    streams = [engine.decoder.stream(list(prompt.tokens), prompt.speech_feat, prompt.embedding,
                                     seed=s["flow"], hift_seed=s["hift"]) for s in seeds]
    pushed = [0] * len(seeds)
    try:
        while (item := llm_wait(engine.llm, engine._lock).run(groups.get)) is not _DONE:
            if should_stop():
                return
            row, group = item
            pushed[row] += 1
            chunk = streams[row].push(group)
            if chunk.numel():
                yield row, chunk.numpy().reshape(-1)
        if should_stop():                              # the LLM saw it too and ended early: no tails
            return
        if "error" in outcome:
            raise outcome["error"]
        for row, (stream, gen) in enumerate(zip(streams, outcome["gens"])):
            if pushed[row] == 0:
                check_llm_output(gen.ids)              # raises TokenStreamError with the reason
            tail = stream.finish()
            if tail.numel():
                yield row, tail.numpy().reshape(-1)
    finally:
        cancel.set()
        worker.join()


__all__ = ["stream_rows"]
