"""Paralinguistic tag vocabularies: the ten tags of the 2025 checkpoints and the 22 of the 2026 model.

Every door accepts both spellings (``[Laughter]`` and ``[laugh]``, case-insensitive, ``[clears  throat]`` with
any spacing). What reaches the model is the spelling of the *selected* vocabulary (:func:`for_model`):

- ``2025``: the ten tags of the 2025 releases (``Breathing, Laughter, ... Dissatisfaction-hnn``). A 2026-only tag
  goes to its nearest 2025 tag (``chuckle`` -> ``Laughter``, ``Question-yi`` -> ``Question-ei``); ``cough`` and
  ``clears throat`` have none and are refused with a message naming how to select the 2026 vocabulary.
- ``2026``: the 22 tags of the official README at a652e87 (the 20260129 model).

Which vocabulary the loaded weights expect cannot be read from the weight files, so it is a setting:
``$STEPEDIT_TAG_VOCABULARY`` (``2025`` by default, the spellings the app has always sent to the pinned checkpoint).
Point the app at the newer weights with ``--model-path DIR`` / ``$STEPEDIT_MODEL_PATH`` (a folder) or
``$STEPEDIT_MODEL_REVISION`` (a Hub revision hash you have checked yourself) and set the vocabulary to ``2026``.
"""
from __future__ import annotations

import os
import re

from .catalog import ACCEPTED_TAGS, PARALINGUISTIC_TAGS, PARALINGUISTIC_TAGS_2026
from .errors import InvalidInputError, UnsupportedEditError

VOCABULARY_2025, VOCABULARY_2026 = "2025", "2026"
VOCABULARIES: tuple[str, ...] = (VOCABULARY_2025, VOCABULARY_2026)
DEFAULT_VOCABULARY = VOCABULARY_2025
VOCABULARY_ENV = "STEPEDIT_TAG_VOCABULARY"

_SPELLED: dict[str, str] = {t.casefold(): t for t in ACCEPTED_TAGS}
_EXACT = frozenset(ACCEPTED_TAGS + PARALINGUISTIC_TAGS)       # "Uhm" stays "Uhm", "uhm" stays "uhm"
# older spelling -> the 2026 spelling of the same sound (Uhm / Sigh differ only in case)
_OLD_TO_NEW: dict[str, str] = {"Breathing": "breath", "Laughter": "laugh", "Uhm": "uhm", "Sigh": "sigh"}
# 2026 spelling -> the nearest 2025 tag (None: the 2025 model has no such sound)
_NEW_TO_OLD: dict[str, str | None] = {
    "sigh": "Sigh", "inhale": "Breathing", "laugh": "Laughter", "chuckle": "Laughter", "exhale": "Breathing",
    "clears throat": None, "snort": "Dissatisfaction-hnn", "giggle": "Laughter", "cough": None,
    "breath": "Breathing", "uhm": "Uhm", "Confirmation-en": "Confirmation-en", "Surprise-oh": "Surprise-oh",
    "Surprise-ah": "Surprise-ah", "Surprise-wa": "Surprise-wa", "Surprise-yo": "Surprise-oh",
    "Dissatisfaction-hnn": "Dissatisfaction-hnn", "Question-ei": "Question-ei", "Question-ah": "Question-ei",
    "Question-en": "Question-ei", "Question-yi": "Question-ei", "Question-oh": "Question-ei",
}
assert set(_NEW_TO_OLD) == set(PARALINGUISTIC_TAGS_2026)
assert {v for v in _NEW_TO_OLD.values() if v} <= set(PARALINGUISTIC_TAGS)


def _alternative(tag: str) -> str:
    return r"\s+".join(re.escape(word) for word in tag.split())


# ``[ tag ]`` for every accepted spelling; longest first so ``laughter`` is not read as ``laugh``.
TAG_PATTERN = re.compile(
    r"\[\s*(" + "|".join(_alternative(t) for t in sorted(ACCEPTED_TAGS, key=len, reverse=True)) + r")\s*\]", re.I)


def spelled(name: str) -> str | None:
    """The listed spelling of a tag name in any case and spacing (``"LAUGHTER"`` -> ``"Laughter"``), else None."""
    name = " ".join(name.split())
    return name if name in _EXACT else _SPELLED.get(name.casefold())


def canonical(name: str) -> str:
    """The 2026 spelling of a tag (``"Laughter"`` -> ``"laugh"``); InvalidInputError for an unknown tag."""
    tag = spelled(name)
    if tag is None:
        raise InvalidInputError(f"unknown paralinguistic tag [{name}]; tags: {', '.join(PARALINGUISTIC_TAGS_2026)}")
    return _OLD_TO_NEW.get(tag, tag)


def check_vocabulary(vocabulary: str) -> str:
    if vocabulary not in VOCABULARIES:
        raise InvalidInputError(f"unknown tag vocabulary {vocabulary!r}; expected one of {', '.join(VOCABULARIES)}")
    return vocabulary


def vocabulary_from_env() -> str:
    """``$STEPEDIT_TAG_VOCABULARY`` (checked), else the default."""
    return check_vocabulary(os.environ.get(VOCABULARY_ENV, "").strip() or DEFAULT_VOCABULARY)


def model_tag(name: str, vocabulary: str) -> str:
    """The spelling ``vocabulary``'s model was trained on for tag ``name`` (any accepted spelling)."""
    new = canonical(name)
    if check_vocabulary(vocabulary) == VOCABULARY_2026:
        return new
    old = _NEW_TO_OLD[new]
    if old is None:
        raise UnsupportedEditError(
            f"the tag [{spelled(name)}] needs the 2026 model: point the app at its weights and set "
            f"{VOCABULARY_ENV}=2026 (the selected {vocabulary} vocabulary has {', '.join(PARALINGUISTIC_TAGS)})")
    return old


def for_model(text: str, vocabulary: str) -> str:
    """``text`` with every accepted tag re-spelled for ``vocabulary`` (other text and unknown brackets kept)."""
    return TAG_PATTERN.sub(lambda m: f"[{model_tag(m.group(1), vocabulary)}]", text)


def tags_in(text: str) -> list[str]:
    """The 2026 spellings of the tags in ``text``, in order."""
    return [canonical(m.group(1)) for m in TAG_PATTERN.finditer(text)]


__all__ = ["VOCABULARIES", "DEFAULT_VOCABULARY", "VOCABULARY_ENV", "TAG_PATTERN", "spelled", "canonical",
           "check_vocabulary", "vocabulary_from_env", "model_tag", "for_model", "tags_in"]
