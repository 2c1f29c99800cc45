"""File names of the takes a user downloads: the take id, what made it and its seed (``T3-happy-seed7.wav``),
so a folder of downloads still says which take is which."""
from __future__ import annotations

import re

from stepedit_core.interface import EngineResult

_UNSAFE = re.compile(r"[^a-z0-9]+")


def take_filename(take_no: int, result: EngineResult) -> str:
    """``T{n}-{option or edit type}-seed{seed}.wav``; an uploaded recording has no seed: ``T{n}-recording.wav``."""
    if result.edit_type == "upload":
        return f"T{take_no}-recording.wav"
    label = _UNSAFE.sub("-", str(result.edit_info or result.edit_type or "take").lower()).strip("-") or "take"
    return f"T{take_no}-{label}-seed{result.seed}.wav"
