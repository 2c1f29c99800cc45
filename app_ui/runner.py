"""Run engine work: one small GPU island, progress forwarding, typed-error mapping, CPU fallback.

On a ZeroGPU Space ``@spaces.GPU`` forks a worker per call and pickles arguments and results, so the
island takes a plain :class:`Job` (requests holding numpy clips) and returns engine results (numpy again);
the engine itself is reached through the closure, never pickled. Off ZeroGPU the decorator is the
identity and the island is a plain call.

Errors: a :class:`~stepedit_core.errors.StepEditError` is the user's problem (bad input, unsupported
edit) and becomes :class:`EngineError`, a ``gr.Error`` whose message survives the worker's pickling. Any
other failure of the GPU call on ZeroGPU (quota, worker crash) falls back to running in this process with
a ``gr.Warning`` when the engine runs on the CPU (the lite engine); an engine placed on the GPU cannot run
outside the worker, so the user is told to retry instead. Elsewhere a failure becomes a ``gr.Error`` naming
the exception.

Streaming (:meth:`EngineRunner.stream`) is a second island, a generator: ZeroGPU runs a decorated generator
in one worker and sends each yield back, so a whole stream stays inside one GPU allocation. The same
fallback applies while nothing has been played yet; a stream that fails half-way raises instead (the audio
already played cannot be taken back).

ZeroGPU duration (:meth:`EngineRunner.gpu_seconds`): ``ceil(GPU_SAFETY x estimate)`` clamped to
[MIN_GPU_SECONDS, MAX_GPU_SECONDS]; ``estimate`` sums the engine's ``estimate_seconds`` over the job's
requests. The neural engine's per-stage cost model (stepedit_core/workload.py constants, per device type):

- fixed: ``FIXED_OVERHEAD_S`` (3 s; moving the weights into the worker, prompt building);
- LLM: generated tokens / ``DECODE_TOKENS_PER_S`` (cuda 40, mps 12 tok/s; cpu 1.4 fp32, 1.9 bf16, 5.2 int8,
  measured), scaled by the LLM's weight count, with 41.67 tokens per
  second of speech (2 vq02 + 3 vq06 per 120 ms); a clone's output lasts ``CJK_CHAR_S`` x characters + 1 s,
  an edit's output is as long as its input; prefill is not counted separately (it is small next to decode
  on a GPU; on the CPU it is not: BENCHMARKS.md "Real-size engine");
- everything else (vq02 + vq06 tokenizers, prompt mel + CAM++, flow with 10 Euler steps, HiFT):
  ``OTHER_S_PER_AUDIO_S`` per second of audio processed (cuda 0.15, mps 0.6, cpu 2.0), counted once for the
  prompt and once for the output (an edit: 2 x its input);
- an edit of n rounds costs n times one round; a transcription ``listen.asr.SECONDS_PER_AUDIO_S`` per second.
- candidates of one clone run as one batch in one GPU call (``Engine.clone_batch``): the LLM decode costs
  ``1 + BATCH_ROW_STEP_COST[device] x (B - 1)`` times one candidate's, the other stages run per candidate;
  so do the tries of one best_of (:class:`TryBatchJob`): try 1's GPU call makes every try's take, the later
  tries are served from it in this process (service/tries.py), with no GPU call of their own.

The GPU figures are estimates (no GPU has run the real model here); the CPU ones are checked against the
real-size measurements of bench/bench_realsize.py (BENCHMARKS.md).
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass
from typing import Callable, Iterator, Union

import gradio as gr
import numpy as np

from stepedit_core import catalog, regions
from stepedit_core.checks import Word
from stepedit_core import words as word_edits
from stepedit_core.errors import InvalidInputError, ModelUnavailableError, StepEditError, UnsupportedEditError
from stepedit_core.interface import AudioClip, CloneRequest, EditRequest, Engine, EngineResult, Progress
from stepedit_core.service import Service, service_for, user_message
from stepedit_core.service.tries import TryBatch

log = logging.getLogger(__name__)

MIN_GPU_SECONDS = 15           # ZeroGPU rounds short requests up anyway; shorter asks queue faster
MAX_GPU_SECONDS = 300          # the longest single allocation we ask for
GPU = "gpu"                    # the one concurrency group shared by every event that calls the engine
GPU_SAFETY = 1.5               # margin over the engine's own estimate (cold caches, long prompts)


class EngineError(gr.Error):
    """A StepEditError shown as a toast (and as AppError to API clients)."""


def error_message(exc: BaseException) -> str:
    """The exception's message as every door shows it (stepedit_core.service.user_message; gr.Error keeps it in
    ``.message``, its str() is a repr)."""
    return user_message(exc)


# ---- jobs: one unit of engine work each, picklable (numpy clips), run by the service inside the island --------
@dataclass(frozen=True)
class CloneJob:
    """Clone candidates, one take per request; candidates of one clone (same inputs, distinct given seeds) run
    as one batch when the engine batches (one prefill, one batched decode, one GPU call)."""
    requests: tuple[CloneRequest, ...]

    def batch(self) -> tuple[CloneRequest, list[int]] | None:
        """(the shared request, the seeds) when the requests are candidates of one clone, else None."""
        reqs = self.requests
        if len(reqs) < 2:
            return None
        first = reqs[0]
        same = all(r.prompt_audio is first.prompt_audio and r.prompt_text == first.prompt_text
                   and r.target_text == first.target_text and r.prompt_store is first.prompt_store for r in reqs)
        seeds = [r.seed for r in reqs]
        if not same or None in seeds or len(set(seeds)) != len(seeds):
            return None
        return first, seeds

    def estimate(self, engine: Engine) -> float:
        batch = self.batch() if type(engine).clone_batch is not Engine.clone_batch else None
        if batch is not None:
            req, seeds = batch
            return engine.estimate_seconds(catalog.CLONE, req.prompt_audio.duration, len(req.target_text),
                                           candidates=len(seeds))
        return sum(engine.estimate_seconds(catalog.CLONE, r.prompt_audio.duration, len(r.target_text))
                   for r in self.requests)

    def run(self, service: Service, progress: Progress) -> list[list[EngineResult]]:
        batch = self.batch() if service.batches_candidates() else None
        if batch is not None:
            return [[r] for r in service.clone_batch(*batch, progress)]
        n = len(self.requests)
        return [[service.clone(r, _part(progress, i, n))] for i, r in enumerate(self.requests)]

    def stream(self, service: Service) -> Iterator[np.ndarray]:
        (request,) = self.requests
        return service.stream_clone(request)


@dataclass(frozen=True)
class CloneRowsJob(CloneJob):
    """Clone candidates streamed: ``(row, chunk)`` pairs, row i's chunks making request i's take; candidates of
    one clone stream while their batch runs (Service.stream_clone_batch), other requests one after another."""

    def stream(self, service: Service) -> Iterator[tuple[int, np.ndarray]]:
        batch = self.batch()
        if batch is not None:
            return service.stream_clone_batch(*batch)
        return ((i, chunk) for i, r in enumerate(self.requests) for chunk in service.stream_clone(r))


@dataclass(frozen=True)
class EditJob:
    """An edit of ``n_iterations`` rounds (a stream: one round)."""
    request: EditRequest

    def estimate(self, engine: Engine) -> float:
        r = self.request
        return engine.estimate_seconds(r.edit_type, r.audio.duration, len(r.new_text or r.audio_text or ""),
                                       r.n_iterations)

    def run(self, service: Service, progress: Progress) -> list[list[EngineResult]]:
        return [service.edit(self.request, _part(progress, 0, 1))]

    def stream(self, service: Service) -> Iterator[np.ndarray]:
        return service.stream_edit(self.request)


@dataclass(frozen=True)
class RegionEditJob:
    """An edit of the window around ``selection`` only (stepedit_core.regions)."""
    request: EditRequest
    words: tuple[Word, ...]
    selection: regions.Selection

    def estimate(self, engine: Engine) -> float:
        r = self.request
        return engine.estimate_seconds(r.edit_type, min(r.audio.duration, regions.MAX_WINDOW_S),
                                       len(r.audio_text or ""), r.n_iterations)

    def run(self, service: Service, progress: Progress) -> list[list[EngineResult]]:
        return [service.region_edit(self.request, self.words, self.selection, _part(progress, 0, 1))]


@dataclass(frozen=True)
class TranscribeJob:
    clip: AudioClip
    language: str | None = None

    def estimate(self, engine: Engine) -> float:
        return 1.0 + 0.1 * self.clip.duration

    def run(self, service: Service, progress: Progress) -> list[str]:
        return [service.transcribe(self.clip, self.language)]


@dataclass(frozen=True)
class WordEditJob:
    """A word edit (stepedit_core.words): only the changed words are new, checked."""
    clip: AudioClip
    text: str
    new_text: str
    seed: int | None

    def estimate(self, engine: Engine) -> float:     # the take is heard, then a short clone around the change
        return 1.0 + 0.1 * self.clip.duration + engine.estimate_seconds(
            catalog.CLONE, min(self.clip.duration, word_edits.PROMPT_MAX_S), len(self.new_text or ""))

    def run(self, service: Service, progress: Progress) -> list[list[EngineResult]]:
        return [[service.word_edit(self.clip, self.text, self.new_text, seed=self.seed, progress=progress)]]


@dataclass(frozen=True)
class TryBatchJob:
    """The first engine call of every try of one best_of (service/tries.py) made at once, in one GPU call:
    ``clone_batch`` / ``edit_batch`` of one request over ``seeds``. Runs to None when the engine refuses the
    batch up front (the work cap or the memory bound, an InvalidInputError): the try then runs alone."""
    request: Union[CloneRequest, EditRequest]
    seeds: tuple[int, ...]

    def estimate(self, engine: Engine) -> float:
        r, n = self.request, len(self.seeds)
        if isinstance(r, CloneRequest):
            return engine.estimate_seconds(catalog.CLONE, r.prompt_audio.duration, len(r.target_text), candidates=n)
        return engine.estimate_seconds(r.edit_type, r.audio.duration, len(r.new_text or r.audio_text or ""),
                                       r.n_iterations, candidates=n)

    def run(self, service: Service, progress: Progress) -> list | None:
        try:
            if isinstance(self.request, CloneRequest):
                return service.clone_batch(self.request, self.seeds, progress)
            return service.edit_batch(self.request, self.seeds, progress)
        except InvalidInputError:
            return None


Job = Union[CloneJob, EditJob, RegionEditJob, TranscribeJob, WordEditJob, TryBatchJob]
StreamJob = Union[CloneJob, CloneRowsJob, EditJob]


def _part(progress: Progress, i: int, n: int) -> Progress:
    """Progress of part ``i`` of ``n`` as a share of the whole."""
    def report(fraction: float, desc: str) -> None:
        progress((i + min(max(fraction, 0.0), 1.0)) / n, f"{desc} ({i + 1}/{n})" if n > 1 else desc)
    return report


def _zero_gpu_active() -> bool:
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def _identity_gpu(duration=None, **_kw):
    return lambda fn: fn


class EngineRunner:
    """Owns the GPU island around the engine's service; every engine call of the app goes through :meth:`run`
    or :meth:`stream`, under the service's one gate (shared with the HTTP API when it is mounted too)."""

    def __init__(self, engine: Engine, gpu: Callable | None = None, zero_gpu: bool | None = None):
        self.engine = engine
        self.service = service_for(engine)
        self.zero_gpu = _zero_gpu_active() if zero_gpu is None else zero_gpu
        decorate = gpu or _identity_gpu
        self._island = decorate(duration=self.gpu_seconds)(self._on_device)
        self._stream_island = decorate(duration=self.gpu_seconds)(self._stream_on_device)

    # -- sizing -----------------------------------------------------------------------------------------
    def estimate(self, job: Job) -> float:
        """Seconds of engine work the job should take (the engine's own estimate)."""
        return job.estimate(self.engine)

    def gpu_seconds(self, job: Job) -> int:
        """``@spaces.GPU`` duration callable: same signature as the island."""
        return int(min(MAX_GPU_SECONDS, max(MIN_GPU_SECONDS, math.ceil(GPU_SAFETY * self.estimate(job)))))

    # -- execution --------------------------------------------------------------------------------------
    def _on_device(self, job: Job) -> list:
        """The GPU island: service calls only; no files, no state. Returns one list of results per request.
        On ZeroGPU it stands for a worker process, which cannot hand rows made ahead for the tries of a best_of
        back to this one: it makes only what the job asks (the tries' batch is :class:`TryBatchJob`)."""
        progress = gr.Progress()
        try:
            with self.service.outside_tries() if self.zero_gpu else contextlib.nullcontext():
                return job.run(self.service, lambda fraction, desc: progress(fraction, desc=desc))
        except StepEditError as exc:
            raise EngineError(error_message(exc), title=_title(exc)) from exc

    def run(self, job: Job) -> list:
        with self.service.gate.hold():
            tries = self.service.tries_under_way() if self.zero_gpu else None
            if tries is not None and _one_take(job):
                return self._run_try(job, tries)
            return self._run(job)

    def _run_try(self, job: Union[CloneJob, EditJob], tries: TryBatch) -> list:
        """A try's engine call on ZeroGPU: try 1's first call makes every try's take in one GPU call
        (:class:`TryBatchJob`), kept here for the later tries, whose calls then need no GPU at all."""
        calls = _GpuCalls(self)
        if isinstance(job, CloneJob):
            return [[tries.clone(calls, job.requests[0], None, batches=self.service.batches_candidates())]]
        return [tries.edit(calls, job.request, None, batches=self.service.batches_edits())]

    def _run(self, job: Job) -> list:
        try:
            return self._island(job)
        except gr.Error as exc:
            if isinstance(exc, EngineError) or not self.zero_gpu:
                raise
            return self._fallback(job, exc)
        except Exception as exc:  # noqa: BLE001 -- engine bugs must reach the user as a message, not a crash
            if self.zero_gpu:
                return self._fallback(job, exc)
            log.exception("engine call failed")
            raise gr.Error(f"The engine failed: {type(exc).__name__}: {error_message(exc)}") from exc

    def _fallback(self, job: Job, exc: BaseException) -> list:
        self._check_cpu_fallback(exc)
        return self._on_device(job)

    def _check_cpu_fallback(self, exc: BaseException) -> None:
        """Raise when the engine cannot run outside the GPU worker; else warn that we fall back to the CPU."""
        if not self.engine.capabilities().device.startswith("cpu"):
            # A model placed on (emulated) cuda cannot run in the main process of a ZeroGPU Space.
            log.warning("GPU call failed (%s: %s); the engine needs a GPU", type(exc).__name__, exc)
            raise gr.Error(f"The GPU is not available right now: {error_message(exc)} This model needs a GPU; "
                           "please try again in a few minutes.", title="GPU unavailable") from exc
        log.warning("GPU call failed (%s: %s); running on CPU", type(exc).__name__, exc)
        gr.Warning(f"The GPU is not available right now: {error_message(exc)} Running on the CPU instead; "
                   "this is slower.")

    # -- streaming --------------------------------------------------------------------------------------------
    def _stream_on_device(self, job: StreamJob) -> Iterator[np.ndarray]:
        """The streaming GPU island: one clone or one edit round, yielding 24 kHz float32 chunks. Closing
        it closes the engine's stream, which stops the engine."""
        try:
            yield from job.stream(self.service)
        except StepEditError as exc:
            raise EngineError(error_message(exc), title=_title(exc)) from exc

    def stream(self, job: StreamJob) -> Iterator[np.ndarray]:
        """Chunks of one streamed take (a CloneJob of one request or an EditJob of one round), or ``(row, chunk)``
        pairs of a clone's candidates (a CloneRowsJob), under the gate."""
        with self.service.gate.hold():
            yield from self._stream(job)

    def _stream(self, job: StreamJob) -> Iterator[np.ndarray]:
        started = False
        try:
            for chunk in self._stream_island(job):
                started = True
                yield chunk
        except gr.Error as exc:
            if isinstance(exc, EngineError) or not self.zero_gpu or started:
                raise
            yield from self._stream_fallback(job, exc)
        except Exception as exc:  # noqa: BLE001 -- engine bugs must reach the user as a message, not a crash
            if self.zero_gpu and not started:
                yield from self._stream_fallback(job, exc)
                return
            log.exception("engine stream failed")
            raise gr.Error(f"The engine failed: {type(exc).__name__}: {error_message(exc)}") from exc

    def _stream_fallback(self, job: Job, exc: BaseException) -> Iterator[np.ndarray]:
        self._check_cpu_fallback(exc)
        yield from self._stream_on_device(job)

    # -- convenience ------------------------------------------------------------------------------------
    def clone(self, requests: list[CloneRequest]) -> list[EngineResult]:
        return [r[0] for r in self.run(CloneJob(tuple(requests)))]

    def edit(self, request: EditRequest) -> list[EngineResult]:
        return self.run(EditJob(request))[0]

    def transcribe(self, clip: AudioClip, language: str | None = None) -> str:
        return self.run(TranscribeJob(clip, language))[0]

    def region_edit(self, request: EditRequest, words, selection) -> list[EngineResult]:
        """An edit limited to a window around ``selection`` (stepedit_core.regions)."""
        return self.run(RegionEditJob(request, tuple(words), selection))[0]

    def edit_selected(self, request: EditRequest, words, selection) -> list[EngineResult]:
        """:meth:`edit` for the whole take (``selection`` None), else :meth:`region_edit`."""
        return self.edit(request) if selection is None else self.region_edit(request, words, selection)

    def word_edit(self, clip: AudioClip, text: str, new_text: str, seed: int | None) -> EngineResult:
        """A word edit (stepedit_core.words), checked: only the changed words are new."""
        return self.run(WordEditJob(clip, text, new_text, seed))[0][0]


def _one_take(job: Job) -> bool:
    """A job the tries of a best_of may batch: one clone request, or one edit."""
    return (isinstance(job, CloneJob) and len(job.requests) == 1) or isinstance(job, EditJob)


class _GpuCalls:
    """The four engine entries service/tries.TryBatch calls, each one GPU call of ``runner`` (ZeroGPU)."""

    def __init__(self, runner: EngineRunner):
        self.runner = runner

    def clone(self, request: CloneRequest, progress: Progress | None = None) -> EngineResult:
        return self.runner._run(CloneJob((request,)))[0][0]

    def edit(self, request: EditRequest, progress: Progress | None = None) -> list[EngineResult]:
        return self.runner._run(EditJob(request))[0]

    def clone_batch(self, request: CloneRequest, seeds, progress: Progress | None = None) -> list[EngineResult]:
        return self._batch(request, seeds)

    def edit_batch(self, request: EditRequest, seeds, progress: Progress | None = None) -> list[list[EngineResult]]:
        return self._batch(request, seeds)

    def _batch(self, request, seeds) -> list:
        made = self.runner._run(TryBatchJob(request, tuple(int(s) for s in seeds)))
        if made is None:
            raise InvalidInputError(f"the engine refused a batch of {len(seeds)} tries")
        return made


def _title(exc: StepEditError) -> str:
    if isinstance(exc, UnsupportedEditError):
        return "Not supported by this engine"
    if isinstance(exc, ModelUnavailableError):
        return "Model unavailable"
    return "Cannot do that"
