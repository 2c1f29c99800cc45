"""The speech plan: OpenAI speech parameters in the engine's terms: ``instructions`` -> emotion / style edits, ``speed`` -> a
speed edit, ``voice`` -> a library voice; and the plan that runs them (a clone, then each edit once).

``instructions`` is free text ("Speak in a happy, whispering voice") or explicit ``emotion: happy; style:
whisper``. Every official emotion and style option (or its English label) found as a whole word counts; at
most one emotion and one style, applied in that order after the clone, like the app's edit chain. Text that
names none is an error listing the choices, never silently ignored.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .. import catalog
from ..errors import InvalidInputError
from ..interface import AudioClip, CloneRequest, EditRequest, EngineResult, Progress

# OpenAI's accepted range of ``speed`` (duration divisor); 1.0 = as cloned.
MIN_SPEED, MAX_SPEED = 0.25, 4.0
MAX_INSTRUCTION_CHARS = 500
_WORD = re.compile(r"[a-z]+(?:[ _-][a-z]+)?")


@dataclass(frozen=True)
class Step:
    edit_type: str
    edit_info: str


@dataclass(frozen=True)
class SpeechPlan:
    """A clone request plus the edits applied to its take, in order."""
    clone: CloneRequest
    edits: tuple[Step, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        return ", ".join(f"{s.edit_type}={s.edit_info}" for s in self.edits)


def _names(options: tuple[str, ...]) -> dict[str, str]:
    """spoken form -> option: ``act_coy`` and ``act coy`` and its label all select ``act_coy``."""
    out = {}
    for option in options:
        if option == catalog.REMOVE:
            continue
        for form in (option, option.replace("_", " "), catalog.OPTION_LABELS[option].en):
            out[form.lower()] = option
    return out


_EMOTION_NAMES = _names(catalog.EMOTIONS)
_STYLE_NAMES = _names(catalog.STYLES)


def parse_instructions(text: str | None) -> tuple[Step, ...]:
    """The emotion / style edits ``text`` asks for (empty for no instructions)."""
    text = (text or "").strip()
    if not text:
        return ()
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise InvalidInputError(f"instructions are {len(text)} characters long; at most {MAX_INSTRUCTION_CHARS}")
    lowered = text.lower()
    found: dict[str, list[str]] = {catalog.EMOTION: [], catalog.STYLE: []}
    for kind, names in ((catalog.EMOTION, _EMOTION_NAMES), (catalog.STYLE, _STYLE_NAMES)):
        for form in sorted(names, key=len, reverse=True):          # "more ..." and two-word labels first
            if re.search(rf"(?<![a-z]){re.escape(form)}(?![a-z])", lowered) and names[form] not in found[kind]:
                found[kind].append(names[form])
                lowered = re.sub(rf"(?<![a-z]){re.escape(form)}(?![a-z])", " ", lowered)
    for kind, picked in found.items():
        if len(picked) > 1:
            raise InvalidInputError(f"instructions name more than one {kind} ({', '.join(picked)}); pick one")
    steps = tuple(Step(kind, picked[0]) for kind, picked in found.items() if picked)
    if not steps:
        raise InvalidInputError(
            f"instructions {text[:60]!r} name no emotion or style; use emotions "
            f"({', '.join(o for o in catalog.EMOTIONS if o != catalog.REMOVE)}) or styles "
            f"({', '.join(o for o in catalog.STYLES if o != catalog.REMOVE)})")
    return steps


def speed_step(speed: float | None) -> Step | None:
    """The speed option whose nominal ratio (``catalog.SPEED_RATIOS``) is nearest to ``speed`` on a log scale;
    None when 1.0 is nearest."""
    if speed is None:
        return None
    try:
        speed = float(speed)
    except (TypeError, ValueError):
        raise InvalidInputError(f"speed must be a number, got {speed!r}") from None
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise InvalidInputError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}")
    candidates = {None: 1.0, **catalog.SPEED_RATIOS}
    best = min(candidates, key=lambda option: abs(math.log(speed) - math.log(candidates[option])))
    return None if best is None else Step(catalog.SPEED, best)


def plan_speech(voice_clip: AudioClip, voice_text: str, text: str, *, instructions: str | None = None,
                speed: float | None = None, seed: int | None = None) -> SpeechPlan:
    edits = parse_instructions(instructions)
    step = speed_step(speed)
    return SpeechPlan(CloneRequest(prompt_audio=voice_clip, prompt_text=voice_text, target_text=text, seed=seed),
                      edits + ((step,) if step else ()))


def run_plan(engine, plan: SpeechPlan, progress: Progress | None = None) -> list[EngineResult]:
    """Clone, then apply each edit to the previous take; every take is returned (the last is the answer).
    ``engine`` is anything with ``clone`` and ``edit`` (the :class:`~stepedit_core.service.Service`)."""
    progress = progress or (lambda fraction, desc: None)
    n = 1 + len(plan.edits)
    takes = [engine.clone(plan.clone, lambda f, d: progress(f / n, d))]
    for i, step in enumerate(plan.edits, 1):
        previous = takes[-1]
        request = EditRequest(audio=previous.audio, audio_text=previous.text, edit_type=step.edit_type,
                              edit_info=step.edit_info, seed=previous.seed)
        takes.append(engine.edit(request, lambda f, d, _i=i: progress((_i + f) / n, d))[-1])
    progress(1.0, "done")
    return takes


__all__ = ["Step", "SpeechPlan", "parse_instructions", "speed_step", "plan_speech", "run_plan"]
