"""The one parser of a region selection: a word range, a time range, or nothing (the whole take).

Every door sends the same four values under its own names (HTTP ``start_s`` / ``end_s``, the app API
``region_start`` / ``region_end``, the session UI's boxes); :func:`parse_selection` reads them with one set of
rules and messages that name the door's own fields. An unset word index is None, "" or negative (the app's
-1); an unset time is None, "" or -1. Recipes keep a selection as ``{"words": [first, last]}`` or
``{"seconds": [start, end]}`` (:func:`selection_of_recipe` / :func:`recipe_of_selection`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InvalidInputError
from ..regions import Selection, check_seconds
from ..validation import check_int, shown

MAX_WORD_INDEX = 100_000          # far above the words of any take an engine accepts (<= 120 s)


@dataclass(frozen=True)
class FieldNames:
    """What a door calls the four selection fields (used in its messages)."""
    first: str = "first_word"
    last: str = "last_word"
    start: str = "start_s"
    end: str = "end_s"


HTTP_FIELDS = FieldNames()
API_FIELDS = FieldNames(start="region_start", end="region_end")


def _unset(value: object, *, index: bool) -> bool:
    if value is None or value == "":
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value < 0 if index else value == -1
    return False


def parse_selection(first_word: object = None, last_word: object = None, start_s: object = None,
                    end_s: object = None, *, names: FieldNames = HTTP_FIELDS,
                    duration: float | None = None) -> Selection | None:
    """A :class:`~stepedit_core.regions.Selection`, or None for the whole take. A time range is checked
    against ``duration`` here when it is known (outside, empty, inside one sound); a word range once the
    take's words are known (``Service.window_words``)."""
    words = not (_unset(first_word, index=True) and _unset(last_word, index=True))
    times = not (_unset(start_s, index=False) and _unset(end_s, index=False))
    if words and times:
        raise InvalidInputError(f"give a word range ({names.first}, {names.last}) or a time range ({names.start}, "
                                f"{names.end}), not both")
    if words:
        if _unset(first_word, index=True) or _unset(last_word, index=True):
            raise InvalidInputError(f"give both {names.first} and {names.last} (or neither)")
        return Selection(first_word=check_int(first_word, names.first, 0, MAX_WORD_INDEX),
                         last_word=check_int(last_word, names.last, 0, MAX_WORD_INDEX))
    if times:
        if _unset(start_s, index=False) or _unset(end_s, index=False):
            raise InvalidInputError(f"give both {names.start} and {names.end} (or neither)")
        try:
            start, end = float(start_s), float(end_s)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{names.start} and {names.end} must be numbers of seconds "
                                    f"(got {shown(start_s)}, {shown(end_s)})") from None
        if duration is not None:
            start, end = check_seconds(start, end, duration)
        return Selection(start_s=start, end_s=end)
    return None


def selection_of_recipe(region: dict | None) -> Selection | None:
    """A recipe's ``{"words": [first, last]}`` / ``{"seconds": [start, end]}`` -> a Selection (None: whole)."""
    if not region:
        return None
    if not isinstance(region, dict) or not ("words" in region or "seconds" in region):
        raise InvalidInputError(f"the selection {shown(region, 60)} needs 'words' or 'seconds'")
    pair = region.get("words", region.get("seconds"))
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise InvalidInputError(f"the selection {shown(region, 60)} is not two numbers")
    if "words" in region:
        return parse_selection(pair[0], pair[1], names=FieldNames("the first word", "the last word"))
    return parse_selection(None, None, pair[0], pair[1], names=FieldNames(start="the start", end="the end"))


def recipe_of_selection(selection: Selection | None) -> dict | None:
    """The recipe form of a selection (the inverse of :func:`selection_of_recipe`)."""
    if selection is None:
        return None
    if selection.by_words:
        return {"words": [selection.first_word, selection.last_word]}
    return {"seconds": [selection.start_s, selection.end_s]}


__all__ = ["FieldNames", "HTTP_FIELDS", "API_FIELDS", "parse_selection", "selection_of_recipe",
           "recipe_of_selection"]
