"""Trustworthy takes over HTTP: the take check, best-of-N seeds and region-limited edits of ``/audio/speech`` and
``/audio/edits``, and the body of ``/audio/checks``.

The work is the service's (:class:`stepedit_core.service.Service`: ``best_of``, ``window_words``, ``check``;
:func:`~stepedit_core.service.parse_selection`), validated by the same functions with the same messages as the
app and the CLI; this module names the HTTP field in each error and fits the check into the take header
(``X-StepEdit-Take``):

    {..., "check": TakeCheck.to_dict(), "seeds_tried": [s, s+1, ...],
          "tries": [{"seed", "error_rate", "verdict"}, ...], "region": Window.to_dict()}
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Callable

from .. import checks, regions
from ..errors import InvalidInputError, StepEditError
from ..interface import AudioClip, EngineResult, resolve_seed
from ..service import HTTP_FIELDS, Service, parse_selection, user_message
from ..service.core import NO_CHECK_TEXT as service_NO_CHECK_TEXT
from ..validation import check_text
from .errors import APIError, from_core

# Clients cap a response's headers at 16 KiB in all (h11, which httpx uses; Node's default --max-http-header-size):
# the take header stays well under that, dropping the check's longest fields (in this order) when it would not.
MAX_TAKE_HEADER_BYTES = 8192
HEADER_DROPPABLE = ("words", "expected", "heard")
CHECK_LANGUAGES = ("en", "zh")        # the check's scoring: WER for English, CER (toneless pinyin) for Mandarin
NO_CHECK_TEXT = user_message(InvalidInputError(service_NO_CHECK_TEXT))   # every door's message
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
    """A word range or a time range (mutually exclusive), None for the whole take (the service's one parser,
    naming the HTTP fields); a time range is checked against the clip's ``duration`` here, a word range once
    the words are known (``Service.window_words``)."""
    param = ("start_s" if first_word is not None and start_s is not None else
             "last_word" if first_word is not None and last_word is None else
             "first_word" if last_word is not None and first_word is None else
             "end_s" if start_s is not None and end_s is None else "start_s")
    return named(param, parse_selection, first_word, last_word, start_s, end_s, names=HTTP_FIELDS,
                 duration=duration)


def check_inputs(text: str | None, language: str | None, expected_seconds: float | None) -> tuple:
    """``/audio/checks`` fields -> (text, language or None, expected seconds or None)."""
    if not (text or "").strip():
        raise from_core(InvalidInputError(service_NO_CHECK_TEXT), "text")
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


def window(service: Service, clip: AudioClip, text: str, selection: regions.Selection) -> tuple:
    """``Service.window_words`` naming the HTTP field of a selection that gives no window."""
    return named("first_word" if selection.by_words else "start_s", service.window_words, clip, text, selection)


def run_checked(service: Service, run: Callable[[int | None], list[EngineResult]], source: AudioClip | None,
                seed: int | None, retry: Retry) -> tuple[list[EngineResult], dict]:
    """``run(seed) -> takes``, plain when ``retry`` is inactive, else through ``Service.best_of`` (the last take
    checked and re-rolled). Returns the takes and the fields the take header gains (none for a plain run)."""
    if not retry.active:
        return run(seed), {}
    kept = service.best_of(run, source, resolve_seed(seed), retry.tries, retry.threshold)
    return kept.takes, {"check": kept.takes[-1].metadata["check"], "seeds_tried": kept.seeds, "tries": kept.tried}


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


__all__ = ["Retry", "retry_options", "selection_of", "check_inputs", "window", "run_checked", "fit_header", "named",
           "MAX_TAKE_HEADER_BYTES"]
