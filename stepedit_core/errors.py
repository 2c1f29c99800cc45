"""Typed errors of stepedit_core.

Every failure a caller can act on is one of these; the app maps them to ``gr.Error`` toasts.
"""
from __future__ import annotations


def shown(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for echoing a caller's input inside a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "…" + text[-3:]


class StepEditError(Exception):
    """Base class of every error raised on purpose by stepedit_core."""


class InvalidInputError(StepEditError, ValueError):
    """The caller's input is unusable: empty text, unknown edit type, bad option, too long, ..."""


class AudioDecodeError(InvalidInputError):
    """An audio file or array could not be decoded into finite mono samples."""


class UnsupportedEditError(InvalidInputError):
    """The edit type or option is valid, but the active engine does not support it."""


class ModelUnavailableError(StepEditError):
    """A model, weight file or optional dependency that the request needs is not available."""


class CheckpointError(StepEditError):
    """A checkpoint folder or file is missing, corrupt, or does not match the expected layout.

    ``missing`` and ``unexpected`` list state-dict keys (or file names) when the mismatch is about keys.
    """

    def __init__(self, message: str, *, missing: list[str] | None = None,
                 unexpected: list[str] | None = None, mismatched: list[str] | None = None):
        self.missing = list(missing or [])
        self.unexpected = list(unexpected or [])
        self.mismatched = list(mismatched or [])
        details = []
        for name, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                           ("shape mismatch", self.mismatched)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... (+{len(keys) - 8} more)" if len(keys) > 8 else "")
                details.append(f"{name} ({len(keys)}): {shown}")
        super().__init__(message + ("\n  " + "\n  ".join(details) if details else ""))


class TokenStreamError(StepEditError):
    """The LLM produced a token stream that cannot be decoded (non-audio ids, broken 2+3 groups, ...)."""


class LLMServerError(ModelUnavailableError):
    """The remote LLM server (``--llm-server``) cannot serve: unreachable, another model, timed out, overloaded.

    ``reason`` is one of ``unreachable``, ``wrong_model``, ``timeout``, ``overloaded``, ``refused``."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason
