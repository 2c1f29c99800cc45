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
- an edit of n rounds costs n times one round; a transcription ``lite.asr.SECONDS_PER_AUDIO_S`` per second.

The GPU figures are estimates (no GPU has run the real model here); the CPU ones are checked against the
real-size measurements of bench/bench_realsize.py (BENCHMARKS.md).
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Callable, Iterator

import gradio as gr
import numpy as np

from stepedit_core import catalog, regions
from stepedit_core import words as word_edits
from stepedit_core.errors import ModelUnavailableError, StepEditError, UnsupportedEditError
from stepedit_core.validation import scrub_paths
from stepedit_core.interface import (AudioClip, CloneRequest, EditRequest, Engine, EngineResult,
                                     validate_transcribe)

log = logging.getLogger(__name__)

MIN_GPU_SECONDS = 15           # ZeroGPU rounds short requests up anyway; shorter asks queue faster
MAX_GPU_SECONDS = 300          # the longest single allocation we ask for
GPU = "gpu"                    # the one concurrency group shared by every event that calls the engine
GPU_SAFETY = 1.5               # margin over the engine's own estimate (cold caches, long prompts)


class EngineError(gr.Error):
    """A StepEditError shown as a toast (and as AppError to API clients)."""


def error_message(exc: BaseException) -> str:
    """The exception's message as one sentence (gr.Error keeps it in ``.message``; its str() is a repr),
    with any server path cut to its last component."""
    text = scrub_paths(str(getattr(exc, "message", None) or exc).strip()) or type(exc).__name__
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


@dataclass(frozen=True)
class Job:
    """One unit of engine work, picklable: ``kind`` is "clone", "edit", "region_edit" or "transcribe"."""
    kind: str
    requests: tuple                     # CloneRequest / EditRequest / AudioClip, one per result list
    language: str | None = None         # transcribe only


def _zero_gpu_active() -> bool:
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def _identity_gpu(duration=None, **_kw):
    return lambda fn: fn


class EngineRunner:
    """Owns the engine and the GPU island; every engine call of the app goes through :meth:`run`."""

    def __init__(self, engine: Engine, gpu: Callable | None = None, zero_gpu: bool | None = None):
        self.engine = engine
        self.zero_gpu = _zero_gpu_active() if zero_gpu is None else zero_gpu
        decorate = gpu or _identity_gpu
        self._island = decorate(duration=self.gpu_seconds)(self._on_device)
        self._stream_island = decorate(duration=self.gpu_seconds)(self._stream_on_device)

    # -- sizing -----------------------------------------------------------------------------------------
    def estimate(self, job: Job) -> float:
        """Seconds of engine work the job should take (the engine's own estimate, summed)."""
        total = 0.0
        for req in job.requests:
            if isinstance(req, CloneRequest):
                total += self.engine.estimate_seconds(catalog.CLONE, req.prompt_audio.duration,
                                                      len(req.target_text))
            elif isinstance(req, EditRequest):
                total += self.engine.estimate_seconds(req.edit_type, req.audio.duration,
                                                      len(req.new_text or req.audio_text or ""), req.n_iterations)
            elif isinstance(req, tuple) and req and isinstance(req[0], EditRequest):   # a region edit
                total += self.engine.estimate_seconds(req[0].edit_type, min(req[0].audio.duration,
                                                                            regions.MAX_WINDOW_S),
                                                      len(req[0].audio_text or ""), req[0].n_iterations)
            elif isinstance(req, AudioClip):
                total += 1.0 + 0.1 * req.duration
            elif isinstance(req, tuple) and req and isinstance(req[0], AudioClip):    # a word edit: a short clone
                total += 1.0 + 0.1 * req[0].duration + self.engine.estimate_seconds(
                    catalog.CLONE, min(req[0].duration, word_edits.PROMPT_MAX_S), len(req[2] or ""))
        return total

    def gpu_seconds(self, job: Job) -> int:
        """``@spaces.GPU`` duration callable: same signature as the island."""
        return int(min(MAX_GPU_SECONDS, max(MIN_GPU_SECONDS, math.ceil(GPU_SAFETY * self.estimate(job)))))

    # -- execution --------------------------------------------------------------------------------------
    def _on_device(self, job: Job) -> list:
        """The GPU island: engine calls only; no files, no state. Returns one list of results per request."""
        progress = gr.Progress()
        n = len(job.requests)
        out: list = []
        try:
            for i, req in enumerate(job.requests):
                def report(fraction: float, desc: str, _i=i) -> None:
                    label = f"{desc} ({_i + 1}/{n})" if n > 1 else desc
                    progress((_i + min(max(fraction, 0.0), 1.0)) / n, desc=label)
                if job.kind == "clone":
                    out.append([self.engine.clone(req, report)])
                elif job.kind == "edit":
                    out.append(self.engine.edit(req, report))
                elif job.kind == "region_edit":
                    request, words, selection = req
                    out.append(regions.region_edit(self.engine, request, words, selection, report))
                elif job.kind == "word_edit":          # (clip, text, new_text, seed): words.edit_take
                    out.append([word_edits.edit_take(self.engine, *req[:3], seed=req[3], progress=report)])
                elif job.kind == "transcribe":
                    validate_transcribe(req, self.engine.capabilities())    # every engine: same limits
                    out.append(self.engine.transcribe(req, job.language))
                else:
                    raise ValueError(f"unknown job kind {job.kind!r}")
        except StepEditError as exc:
            raise EngineError(error_message(exc), title=_title(exc)) from exc
        return out

    def run(self, job: Job) -> list:
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
    def _stream_on_device(self, job: Job) -> Iterator[np.ndarray]:
        """The streaming GPU island: one clone or one edit round, yielding 24 kHz float32 chunks. Closing
        it closes the engine's stream, which stops the engine."""
        (req,) = job.requests
        try:
            if job.kind == "clone":
                yield from self.engine.stream_clone(req)
            elif job.kind == "edit":
                yield from self.engine.stream_edit(req)
            else:
                raise ValueError(f"cannot stream a {job.kind!r} job")
        except StepEditError as exc:
            raise EngineError(error_message(exc), title=_title(exc)) from exc

    def stream(self, job: Job) -> Iterator[np.ndarray]:
        """Chunks of one streamed take (``job`` holds one CloneRequest or one EditRequest of one round)."""
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
        return [r[0] for r in self.run(Job("clone", tuple(requests)))]

    def edit(self, request: EditRequest) -> list[EngineResult]:
        return self.run(Job("edit", (request,)))[0]

    def transcribe(self, clip: AudioClip, language: str | None = None) -> str:
        return self.run(Job("transcribe", (clip,), language))[0]

    def region_edit(self, request: EditRequest, words, selection) -> list[EngineResult]:
        """An edit limited to a window around ``selection`` (stepedit_core.regions)."""
        return self.run(Job("region_edit", ((request, tuple(words), selection),)))[0]

    def word_edit(self, clip: AudioClip, text: str, new_text: str, seed: int | None) -> EngineResult:
        """A word edit (stepedit_core.words), checked: only the changed words are new."""
        return self.run(Job("word_edit", ((clip, text, new_text, seed),)))[0][0]


def _title(exc: StepEditError) -> str:
    if isinstance(exc, UnsupportedEditError):
        return "Not supported by this engine"
    if isinstance(exc, ModelUnavailableError):
        return "Model unavailable"
    return "Cannot do that"
