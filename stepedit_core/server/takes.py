"""Trustworthy takes over HTTP: the take check, best-of-N seeds and region-limited edits of ``/audio/speech`` and
``/audio/edits``, and the body of ``/audio/checks``.

The work is the core's (:mod:`stepedit_core.checks`: ``check_retry``, ``best_of``, ``Checker``;
:mod:`stepedit_core.regions`: ``Selection``, ``find_window``, ``region_edit``), validated by the same functions
with the same messages as the app and the CLI; this module names the HTTP field in each error, runs checked
takes behind the engine gate, and fits the check into the take header (``X-StepEdit-Take``):

    {..., "check": TakeCheck.to_dict(), "seeds_tried": [s, s+1, ...],
          "tries": [{"seed", "error_rate", "verdict"}, ...], "region": Window.to_dict()}
"""
from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from typing import Callable

from .. import checks, regions
from ..errors import StepEditError
from ..interface import AudioClip, EngineResult, resolve_seed
from ..validation import check_text
from .errors import APIError, from_core

# Clients cap a response's headers at 16 KiB in all (h11, which httpx uses; Node's default --max-http-header-size):
# the take header stays well under that, dropping the check's longest fields (in this order) when it would not.
MAX_TAKE_HEADER_BYTES = 8192
HEADER_DROPPABLE = ("words", "expected", "heard")
CHECK_LANGUAGES = ("en", "zh")        # the check's scoring: WER for English, CER (toneless pinyin) for Mandarin
NO_CHECK_TEXT = "Please enter the text the audio should say."          # the app's message (studio.check_once)
BOTH_RANGES = "Give a word range (first_word, last_word) or a time range (start_s, end_s), not both."


def named(param: str, fn: Callable, *args, **kwargs):
    """Run a core check, naming ``param`` in the HTTP error it raises."""
    try:
        return fn(*args, **kwargs)
    except StepEditError as exc:
        raise from_core(exc, param) from None


@dataclass(frozen=True)
class Retry:
    """``check`` / ``max_tries`` / ``threshold`` of a request; inactive = the plain, unchecked take."""
    check: bool = False
    tries: int = 1
    threshold: float = checks.DEFAULT_RETRY_THRESHOLD

    @property
    def active(self) -> bool:
        return self.check or self.tries > 1


def retry_options(check: bool, max_tries: object, threshold: object) -> Retry:
    """The fields as sent (None = default), checked by ``checks.check_retry`` like the app's and MCP's."""
    tries, _ = named("max_tries", checks.check_retry, max_tries, None)
    _, limit = named("threshold", checks.check_retry, None, threshold)
    return Retry(bool(check), tries, limit)


def selection_of(first_word: int | None, last_word: int | None, start_s: float | None, end_s: float | None,
                 duration: float) -> regions.Selection | None:
    """A word range or a time range (mutually exclusive), None for the whole take; a time range is checked
    against the clip's ``duration`` here (outside, empty, inside one sound), a word range once the words are
    known (:meth:`TakeService.window`)."""
    words = first_word is not None or last_word is not None
    times = start_s is not None or end_s is not None
    if words and times:
        raise APIError(400, BOTH_RANGES, param="start_s", code="invalid_value")
    if words:
        if first_word is None or last_word is None:
            raise APIError(400, "Give both first_word and last_word (or neither).",
                           param="first_word" if first_word is None else "last_word", code="invalid_value")
        return regions.Selection(first_word=first_word, last_word=last_word)
    if times:
        if start_s is None or end_s is None:
            raise APIError(400, "Give both start_s and end_s (or neither).",
                           param="start_s" if start_s is None else "end_s", code="invalid_value")
        named("start_s", regions.check_seconds, start_s, end_s, duration)
        return regions.Selection(start_s=start_s, end_s=end_s)
    return None


def check_inputs(text: str | None, language: str | None, expected_seconds: float | None) -> tuple:
    """``/audio/checks`` fields -> (text, language or None, expected seconds or None)."""
    if not (text or "").strip():
        raise APIError(400, NO_CHECK_TEXT, param="text", code="invalid_value")
    text = named("text", check_text, text, "the text")
    lang = (language or "").strip().lower() or None
    if lang is not None and lang not in CHECK_LANGUAGES:
        raise APIError(400, f"language must be one of {', '.join(CHECK_LANGUAGES)} (or omitted to follow the "
                       f"text), got {language[:40]!r}.", param="language", code="invalid_value")
    if expected_seconds is not None and not math.isfinite(expected_seconds):
        raise APIError(400, f"expected_seconds must be a number of seconds, got {expected_seconds}.",
                       param="expected_seconds", code="invalid_value")
    if expected_seconds is not None and expected_seconds <= 0:      # as the app: <= 0 = not checked
        expected_seconds = None
    return text, lang, expected_seconds


class TakeService:
    """The server's one :class:`~stepedit_core.checks.Checker` (made on first use: it loads an ASR) and the
    checked runs; every method runs inside the engine gate (the checker may use the engine's own ASR and
    speaker model)."""

    def __init__(self, engine):
        self.engine = engine
        self._checker: checks.Checker | None = None
        self._lock = threading.Lock()

    @property
    def checker(self) -> checks.Checker:
        with self._lock:
            if self._checker is None:
                self._checker = checks.checker_for(self.engine)
            return self._checker

    def report(self, clip: AudioClip, text: str, source: AudioClip | None, language: str | None,
               expected_seconds: float | None) -> dict:
        """The check's JSON (as the app's /check): TakeCheck.to_dict() plus a one-line summary."""
        c = self.checker.check(clip, text, source=source, expected_seconds=expected_seconds, language=language)
        return {**c.to_dict(), "summary": c.summary()}

    def window(self, clip: AudioClip, text: str, selection: regions.Selection) -> tuple:
        """The transcript words a selection indexes (none for a time range), after checking that the selection
        gives a window (word range outside the transcript, inside one sound, longer than the engine takes)."""
        words = self.checker.heard(clip, checks.language_of(text)).words if selection.by_words else ()
        limit = min(regions.MAX_WINDOW_S, self.engine.capabilities().max_input_seconds)
        named("first_word" if selection.by_words else "start_s", regions.find_window, clip, words, selection, limit)
        return words

    def run(self, run: Callable[[int | None], list[EngineResult]], source: AudioClip | None, seed: int | None,
            retry: Retry) -> tuple[list[EngineResult], dict]:
        """``run(seed) -> takes``, plain when ``retry`` is inactive, else with its last take checked and re-rolled
        (seeds s, s+1, ... until WER/CER <= threshold; the best try is kept). Returns the takes and the fields
        the take header gains (none for a plain run)."""
        if not retry.active:
            return run(seed), {}
        first = resolve_seed(seed)
        takes, done = checks.best_of(run, self.checker, source, first, retry.tries, retry.threshold)
        seeds = checks.retry_seeds(first, len(done))
        tries = [{"seed": s, "error_rate": r.metadata["check"]["error_rate"], "verdict": r.metadata["check"]["verdict"]}
                 for s, r in zip(seeds, done)]
        return takes, {"check": takes[-1].metadata["check"], "seeds_tried": seeds, "tries": tries}


def fit_header(info: dict) -> dict:
    """``info`` with its check's longest fields dropped (listed under ``check.omitted``) until its JSON fits
    MAX_TAKE_HEADER_BYTES; ``/audio/checks`` on the returned audio gives them all."""
    check = info.get("check")
    for key in HEADER_DROPPABLE:
        if not check or len(json.dumps(info, ensure_ascii=True)) <= MAX_TAKE_HEADER_BYTES:
            break
        check = {k: v for k, v in check.items() if k != key} | {"omitted": [*check.get("omitted", []), key]}
        info = {**info, "check": check}
    return info


__all__ = ["Retry", "retry_options", "selection_of", "check_inputs", "TakeService", "fit_header", "named",
           "MAX_TAKE_HEADER_BYTES"]
