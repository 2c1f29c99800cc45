"""The service every door calls: the work above the engine, written once.

:class:`Service` wraps one :class:`~stepedit_core.interface.Engine` and gives the app (its session UI and its
API / MCP tools), the HTTP server and the CLI the same entry for each feature:

- engine work: ``clone``, ``edit``, ``region_edit``, ``stream_clone``, ``stream_edit`` (streamed takes go
  through the engine's same validation and work cap as whole ones), ``transcribe`` and ``fill_transcript``
  (transcribe when the text is missing), the speech plan (``speak``);
- checks: ``check`` (a take against its text), ``checked`` (every round of a run), ``best_of`` (re-roll seeds
  until a take passes, keep the best), ``finish_stream`` (a streamed take, checked when the stream ends),
  ``window_words`` (the words a region selection indexes);
- validation that must run before slow work: ``check_edit_choice``, ``check_retry``, ``check_work``;
- ``seeds``, ``engine_info`` (the capabilities JSON) and the one concurrency :class:`~.gate.Gate`.

Errors are the typed ones of :mod:`stepedit_core.errors`; each door turns them into its own kind (``gr.Error``,
4xx JSON, an exit code) with :func:`user_message`'s sentence. One service per engine (:func:`service_for`),
so doors mounted together (``app.py --api``) share its gate and its checker.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .. import catalog, checks, regions, validation
from ..audio import OUTPUT_SAMPLE_RATE
from ..errors import InvalidInputError, StepEditError
from ..interface import (TEXT_FREE_EDITS, AudioClip, CloneRequest, EditRequest, Engine, EngineResult, Progress,
                         StopCheck, check_edit_choice, check_work, resolve_seed, validate_transcribe)
from . import speech
from .gate import Gate
from .tries import TryBatch, TryScopes

log = logging.getLogger(__name__)

NO_CHECK_TEXT = "please enter the text the audio should say"
NO_AUDIO = "the engine produced no audio for this request"


def user_message(exc: BaseException) -> str:
    """A typed error as the one sentence every door shows: capitalised, ending in a full stop, any server
    path cut to its last component."""
    text = validation.scrub_paths(str(getattr(exc, "message", None) or exc).strip()) or type(exc).__name__
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


@dataclass(frozen=True)
class Tries:
    """What :meth:`Service.best_of` kept: the best run's takes (its last take checked) and one record per try
    ``{"seed", "error_rate", "verdict"}`` in the order tried, plus ``"batch_seeds"`` for a try made in a batch
    with the others (service/tries.py: replay re-runs those seeds as one batch)."""
    takes: list[EngineResult]
    tried: list[dict]

    @property
    def seeds(self) -> list[int]:
        return [t["seed"] for t in self.tried]


class Service:
    """Clone, edit, stream, transcribe and check through one engine; see the module docstring."""

    def __init__(self, engine: Engine, checker: checks.Checker | None = None):
        self.engine = engine
        self.gate = Gate()
        self._checker = checker
        self._checker_lock = threading.Lock()
        self._tries = TryScopes()           # the tries of a best_of in this thread, decoded as one batch

    # ------------------------------------------------------------------ what the engine offers
    def capabilities(self):
        return self.engine.capabilities()

    def engine_info(self) -> dict:
        """The capabilities JSON (the app's ``engine_info`` tool; the HTTP ``/health`` takes its fields)."""
        caps = self.engine.capabilities()
        return {"engine": caps.engine, "display_name": caps.display_name, "approximate": caps.approximate,
                "device": caps.device, "clone": caps.clone, "transcribe": caps.transcribe,
                "edit_options": {k: list(v) for k, v in caps.edit_options.items()},
                "max_input_seconds": caps.max_input_seconds, "languages": list(caps.languages),
                "paralinguistic_tags": list(catalog.ACCEPTED_TAGS),
                "language_tags": list(catalog.LANGUAGE_TAGS), "notes": caps.notes}

    # ------------------------------------------------------------------ validation before slow work
    def check_edit_choice(self, edit_type: object, edit_info: object) -> tuple[str, str | None]:
        """A known, supported edit type and option (checked again, identically, by the edit itself)."""
        return check_edit_choice(edit_type, edit_info or None, self.engine.capabilities())

    @staticmethod
    def check_retry(max_tries: object, threshold: object) -> tuple[int, float]:
        return checks.check_retry(max_tries, threshold)

    def check_work(self, kind: str, audio_seconds: float, text: str | None = None, n_iterations: object = 1) -> None:
        """Refuse work the engine estimates above its cap (the same test the engine runs before the work)."""
        n = validation.check_iterations(n_iterations)
        check_work(self.engine, kind, audio_seconds, len(validation.clean_text(text, "the text")), n)

    @staticmethod
    def seeds(seed: object, n: int = 1) -> list[int]:
        """Seed ``s`` gives s, s+1, ...; None, "" or a negative seed gives fresh random seeds."""
        first = validation.check_seed(seed)
        if first is None:
            return [resolve_seed(None) for _ in range(n)]
        return [resolve_seed((first + i) % (validation.MAX_SEED + 1)) for i in range(n)]

    # ------------------------------------------------------------------ engine work
    def clone(self, request: CloneRequest, progress: Progress | None = None) -> EngineResult:
        tries = self._tries.current()                 # inside best_of: maybe made with the other tries (tries.py)
        return tries.clone(self.engine, request, progress) if tries else self.engine.clone(request, progress)

    def edit(self, request: EditRequest, progress: Progress | None = None) -> list[EngineResult]:
        tries = self._tries.current()
        return tries.edit(self.engine, request, progress) if tries else self.engine.edit(request, progress)

    def word_edit(self, clip: AudioClip, text: str | None, new_text: str | None, *, seed: int | None = None,
                  check: bool = True, progress: Progress | None = None) -> EngineResult:
        """A word edit (stepedit_core.words): only the changed words are new; checked when ``check``."""
        from .. import words  # noqa: PLC0415  (words imports regions and checks, light)
        return words.edit_take(self.engine, clip, text, new_text, seed=seed, check=check, checker=self.checker,
                               progress=progress)

    def batches_candidates(self) -> bool:
        """Whether the engine decodes candidates of one clone together (it overrides ``Engine.clone_batch``)."""
        return type(self.engine).clone_batch is not Engine.clone_batch

    def clone_batch(self, request: CloneRequest, seeds: Sequence[int],
                    progress: Progress | None = None) -> list[EngineResult]:
        """One take per seed, made together where the engine batches (one prefill, one batched decode)."""
        return self.engine.clone_batch(request, seeds, progress)

    def batches_edits(self) -> bool:
        """Whether the engine decodes one-round edits of several seeds together (overrides ``edit_batch``)."""
        return type(self.engine).edit_batch is not Engine.edit_batch

    def edit_batch(self, request: EditRequest, seeds: Sequence[int],
                   progress: Progress | None = None) -> list[list[EngineResult]]:
        """``edit`` once per seed (one list of rounds each), round 1 made together where the engine batches."""
        return self.engine.edit_batch(request, seeds, progress)

    def tries_under_way(self) -> TryBatch | None:
        """The tries of the best_of running in this thread (service/tries.py), if any: a door whose engine
        calls leave this process (the app on ZeroGPU) makes them through :meth:`TryBatch.clone` / ``edit``."""
        return self._tries.current()

    def outside_tries(self):
        """A context in which this thread's engine calls make only what they are asked for (no rows ahead)."""
        return self._tries.suspended()

    def region_edit(self, request: EditRequest, words: Sequence[checks.Word], selection: regions.Selection,
                    progress: Progress | None = None) -> list[EngineResult]:
        """An edit of the window around ``selection`` only (stepedit_core.regions)."""
        return regions.region_edit(self.engine, request, words, selection, progress)

    def edit_selected(self, request: EditRequest, words: Sequence[checks.Word],
                      selection: regions.Selection | None, progress: Progress | None = None) -> list[EngineResult]:
        """:meth:`edit` for the whole take (``selection`` None), else :meth:`region_edit`."""
        if selection is None:
            return self.edit(request, progress)
        return self.region_edit(request, words, selection, progress)

    def stream_clone(self, request: CloneRequest, should_stop: StopCheck | None = None) -> Iterator[np.ndarray]:
        """24 kHz float32 chunks of a clone; validation and the work cap run at the first ``next``."""
        return self.engine.stream_clone(request, should_stop)

    def stream_clone_batch(self, request: CloneRequest, seeds: Sequence[int],
                           should_stop: StopCheck | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(row, chunk)`` of one clone's candidates (Engine.stream_clone_batch): row i is seed i's take."""
        return self.engine.stream_clone_batch(request, seeds, should_stop)

    def stream_edit(self, request: EditRequest, should_stop: StopCheck | None = None) -> Iterator[np.ndarray]:
        """24 kHz float32 chunks of one edit round; validation and the work cap run at the first ``next``."""
        return self.engine.stream_edit(request, should_stop)

    def transcribe(self, clip: AudioClip, language: str | None = None) -> str:
        caps = self.engine.capabilities()
        validate_transcribe(clip, caps)                       # every engine: the same limits
        self.check_work(catalog.TRANSCRIBE, clip.duration)
        return self.engine.transcribe(clip, language)

    def fill_transcript(self, clip: AudioClip, text: str | None, edit_type: str = catalog.CLONE) -> str:
        """``text``, or the clip transcribed when ``text`` is empty, the edit needs one and the engine can."""
        if (text or "").strip() or edit_type in TEXT_FREE_EDITS or not self.engine.capabilities().transcribe:
            return text or ""
        return self.transcribe(clip)

    def speak(self, plan: speech.SpeechPlan, progress: Progress | None = None) -> list[EngineResult]:
        """The speech plan: a clone, then each of its edits on the previous take."""
        return speech.run_plan(self, plan, progress)

    # ------------------------------------------------------------------ checks
    @property
    def checker(self) -> checks.Checker:
        """The take check of this engine (made on first use: it may load an ASR)."""
        with self._checker_lock:
            if self._checker is None:
                self._checker = checks.checker_for(self.engine)
            return self._checker

    def check(self, clip: AudioClip, text: str | None, *, source: AudioClip | None = None,
              expected_seconds: float | None = None, language: str | None = None) -> dict:
        """The check of ``clip`` against ``text`` as JSON (TakeCheck.to_dict() and a one-line summary);
        ``expected_seconds`` <= 0 means not checked."""
        if not (text or "").strip():
            raise InvalidInputError(NO_CHECK_TEXT)
        text = validation.check_text(text, "the text the audio should say")
        if expected_seconds is not None and expected_seconds <= 0:
            expected_seconds = None
        with self.gate.hold():
            c = self.checker.check(clip, text, source=source, expected_seconds=expected_seconds, language=language)
        return {**c.to_dict(), "summary": c.summary()}

    def check_last(self, results: list[EngineResult], source: AudioClip | None) -> list[EngineResult]:
        """``results`` with the last one checked (its expected length from the one before, else ``source``)."""
        before = results[-2].audio.duration if len(results) > 1 else source.duration if source else None
        with self.gate.hold():
            return results[:-1] + [self.checker.check_result(results[-1], source=source, source_seconds=before)]

    def checked(self, results: Iterable[EngineResult], source: AudioClip | None) -> list[EngineResult]:
        """Every round checked against the source voice, its expected length following the round before; a
        check that fails leaves its take unchecked (the take matters more than its score)."""
        out: list[EngineResult] = []
        for r in results:
            before = out[-1].audio.duration if out else (source.duration if source is not None else None)
            try:
                with self.gate.hold():
                    out.append(self.checker.check_result(r, source=source, source_seconds=before))
            except Exception as exc:  # noqa: BLE001 -- a check must never lose a take
                log.warning("take check failed: %s", exc)
                out.append(r)
        return out

    def best_of(self, run: Callable[[int], list[EngineResult]], source: AudioClip | None, first_seed: int,
                max_tries: int, threshold: float = checks.DEFAULT_RETRY_THRESHOLD, *,
                every_round: bool = False, batch: bool = True) -> Tries:
        """``run(seed) -> takes`` with seeds first_seed, first_seed + 1, ... (checks.retry_seeds) until the last
        take's WER/CER <= ``threshold`` or ``max_tries`` runs; the best run is kept (checks.rank). With
        ``every_round`` every take of a run is checked and a failing check ends the tries (the app's takes);
        otherwise only the last take is, and a failing check is an error. With ``batch`` (and an engine that
        batches) the first engine call of every try is made at once, one prefill and one batched decode
        (service/tries.py); the tries are still checked in seed order and the first passing one wins. A
        door whose engine calls leave this process (the app on ZeroGPU) routes them through
        :meth:`tries_under_way` so the rows made ahead stay here (app_ui/runner.py)."""
        max_tries, threshold = self.check_retry(max_tries, threshold)
        runs, tried = [], []
        seeds = checks.retry_seeds(first_seed, max_tries)
        scope = self._tries.open(seeds) if batch and max_tries > 1 else contextlib.nullcontext()
        with scope as ahead:
            for seed in seeds:
                if ahead is not None:
                    ahead.begin(seed)
                results = run(seed)
                results = self.checked(results, source) if every_round else self.check_last(results, source)
                c = checks.check_of(results[-1])
                tried.append({"seed": seed, "error_rate": c.error_rate if c else None,
                              "verdict": c.verdict if c else None, **(ahead.record(seed) if ahead else {})})
                runs.append(results)
                if c is None or c.passes(threshold):
                    break
        scored = [checks.check_of(r[-1]) for r in runs]
        best = checks.rank(scored)[0] if all(scored) else len(runs) - 1
        return Tries(runs[best], tried)

    def window_words(self, clip: AudioClip, text: str, selection: regions.Selection) -> tuple:
        """The transcript words a selection indexes (none for a time range), after checking the selection gives
        a window (word range outside the transcript, inside one sound, longer than the engine takes)."""
        with self.gate.hold():
            words = self.checker.heard(clip, checks.language_of(text)).words if selection.by_words else ()
        limit = min(regions.MAX_WINDOW_S, self.engine.capabilities().max_input_seconds)
        regions.find_window(clip, words, selection, limit)
        return words

    def finish_stream(self, chunks: list[np.ndarray], text: str, seed: int, edit_type: str,
                      edit_info: str | None = None, *, source: AudioClip | None = None,
                      check: bool = False) -> EngineResult:
        """The take of a finished stream (exactly its concatenated chunks), checked like a whole take when
        ``check`` (against ``source``, the prompt or the edited clip)."""
        if not chunks or not sum(len(c) for c in chunks):
            raise StepEditError(NO_AUDIO)
        audio = np.concatenate([np.asarray(c, np.float32).reshape(-1) for c in chunks])
        result = EngineResult(audio=AudioClip(samples=audio, sample_rate=OUTPUT_SAMPLE_RATE), text=text, seed=seed,
                              edit_type=edit_type, edit_info=edit_info, metadata={"streamed": True})
        return self.checked([result], source)[0] if check else result



_services: "weakref.WeakKeyDictionary[Engine, Service]" = weakref.WeakKeyDictionary()
_services_lock = threading.Lock()


def service_for(engine: Engine | Service) -> Service:
    """The one service of ``engine`` (made on first use), so every door over one engine shares its gate."""
    if isinstance(engine, Service):
        return engine
    with _services_lock:
        service = _services.get(engine)
        if service is None:
            service = _services[engine] = Service(engine)
        return service


__all__ = ["Service", "Tries", "service_for", "user_message", "NO_CHECK_TEXT", "NO_AUDIO"]
