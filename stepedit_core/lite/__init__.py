"""The lite engine: offline edits, TTS and ASR from components shipped in PyPI wheels (no hub downloads)."""
from .engine import LiteEngine, strip_language_tag

__all__ = ["LiteEngine", "strip_language_tag"]
