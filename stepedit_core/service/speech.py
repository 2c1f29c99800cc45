"""The speech plan: OpenAI speech parameters in the engine's terms: ``instructions`` -> emotion / style edits, ``speed`` -> a
speed edit, ``voice`` -> a library voice; and the plan that runs them (a clone, then each edit once).

``instructions`` is a plain-language edit plan in English or Mandarin ("a bit happier and slower, laugh after
'morning'", "更开心一点，语速慢一点"), parsed offline by stepedit_core/plans.py into catalogue steps with rounds and
anchored sounds, run in order after the clone. Words the parser does not understand are an error naming them
and the closest options, never silently ignored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import catalog, plans
from ..errors import InvalidInputError
from ..interface import AudioClip, CloneRequest, EngineResult, Progress

# OpenAI's accepted range of ``speed`` (duration divisor); 1.0 = as cloned.
MIN_SPEED, MAX_SPEED = 0.25, 4.0
MAX_INSTRUCTION_CHARS = 500


Step = plans.PlanStep          # edit_type, edit_info, rounds; a sound's tag and anchor


@dataclass(frozen=True)
class SpeechPlan:
    """A clone request plus the edits applied to its take, in order."""
    clone: CloneRequest
    edits: tuple[Step, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        return ", ".join(f"{s.edit_type}={s.edit_info}" for s in self.edits)


def parse_instructions(text: str | None) -> tuple[Step, ...]:
    """The plan ``text`` asks for (empty for no instructions); plans.PlanError names what it did not understand."""
    text = (text or "").strip()
    if not text:
        return ()
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise InvalidInputError(f"instructions are {len(text)} characters long; at most {MAX_INSTRUCTION_CHARS}")
    return plans.parse_plan(text)


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
        request = plans.edit_request(step, previous.audio, previous.text, previous.seed)
        takes.append(engine.edit(request, lambda f, d, _i=i: progress((_i + f) / n, d))[-1])
    progress(1.0, "done")
    return takes


__all__ = ["Step", "SpeechPlan", "parse_instructions", "speed_step", "plan_speech", "run_plan"]
