"""Script recipes: the JSON that reproduces a rendered script, and its replay.

A recipe holds the script text, the seed, every voice it uses (prompt WAV bytes, base64, with its transcript
and SHA-256, so it replays on a machine whose library lacks them), and every take of every segment (op,
option, rounds, seed, parent, SHA-256 of its float32 samples) with the take the master uses. Replay re-runs each
take in creation order and reassembles the master; on a deterministic engine (lite, and the real engine on one
device) the master comes out bit-identical, which the report checks against the recorded hashes.
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

import numpy as np

from .. import catalog
from ..audio import OUTPUT_SAMPLE_RATE
from ..errors import InvalidInputError
from ..interface import AudioClip, CloneRequest, EditRequest, Engine, Progress
from .grammar import parse_script
from .render import LineRender, LineTake, ScriptRender, VoiceSource, _assemble, _to_output_rate

FORMAT = "stepedit-script-recipe"
VERSION = 1
MAX_RECIPE_BYTES = 100 * 1024 * 1024


def samples_sha256(samples: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(samples, dtype=np.float32).tobytes()).hexdigest()


def to_recipe(render: ScriptRender, voices: VoiceSource) -> dict:
    """A self-contained JSON-able recipe of ``render`` (voices embedded)."""
    embedded = {}
    for name in render.script.speakers:
        voice = voices.get(name)
        data = voice.wav if isinstance(voice, _EmbeddedVoice) else voice.audio_path.read_bytes()
        embedded[name] = {"text": voice.text, "sha256": hashlib.sha256(data).hexdigest(),
                          "wav": base64.b64encode(data).decode("ascii")}
    lines = [{"index": ln.index, "line": ln.segment.line, "speaker": ln.segment.speaker, "current": ln.current,
              "takes": [{"id": t.id, "parent": t.parent, "op": t.op, "option": t.option,
                         "iterations": t.iterations, "seed": t.seed, "text": t.text,
                         "sha256": samples_sha256(t.samples)} for t in ln.takes]}
             for ln in render.lines]
    return {"format": FORMAT, "version": VERSION, "engine": render.engine, "seed": render.seed,
            "script": render.script.source, "default_voice": render.script.default_voice,
            "voices": embedded, "lines": lines,
            "expected": {"master_sha256": samples_sha256(render.master), "samples": int(len(render.master)),
                         "sample_rate": render.sample_rate}}


def recipe_json(render: ScriptRender, voices: VoiceSource) -> str:
    return json.dumps(to_recipe(render, voices), ensure_ascii=False, indent=1)


def load_recipe(data: str | bytes | dict) -> dict:
    """Parse and check a recipe; InvalidInputError names what is wrong."""
    if isinstance(data, (str, bytes)):
        if len(data) > MAX_RECIPE_BYTES:
            raise InvalidInputError(f"The script recipe is larger than {MAX_RECIPE_BYTES >> 20} MB.")
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"The script recipe is not valid JSON ({exc}).") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInputError(f"Not a script recipe (expected format {FORMAT!r}).")
    if data.get("version") != VERSION:
        raise InvalidInputError(f"Unsupported script recipe version {data.get('version')!r} (this reads {VERSION}).")
    for key, kind in (("script", str), ("seed", int), ("voices", dict), ("lines", list)):
        if not isinstance(data.get(key), kind):
            raise InvalidInputError(f"The script recipe has no valid {key!r}.")
    return data


@dataclass(frozen=True)
class _EmbeddedVoice:
    name: str
    text: str
    wav: bytes

    def clip(self) -> AudioClip:
        return AudioClip.from_file(self.wav)


class EmbeddedVoices:
    """The voices a recipe carries, as a VoiceSource."""

    def __init__(self, recipe: dict):
        self._voices = {}
        for name, v in recipe["voices"].items():
            try:
                wav = base64.b64decode(v["wav"], validate=True)
                ok = hashlib.sha256(wav).hexdigest() == v["sha256"] and isinstance(v["text"], str)
            except (KeyError, TypeError, ValueError):
                ok = False
            if not ok:
                raise InvalidInputError(f"The recipe's voice {name!r} is corrupt (bad audio or hash).")
            self._voices[name.casefold()] = _EmbeddedVoice(name, v["text"], wav)

    def get(self, name: str) -> _EmbeddedVoice:
        try:
            return self._voices[name.casefold()]
        except KeyError:
            raise InvalidInputError(f"The recipe does not hold the voice {name!r}.") from None

    def names(self) -> list[str]:
        return [v.name for v in self._voices.values()]


@dataclass(frozen=True)
class ReplayReport:
    takes: int
    takes_matching: int
    master_matches: bool

    def summary(self) -> str:
        master = "bit-identical" if self.master_matches else "DIFFERENT from the recorded master"
        return f"{self.takes_matching}/{self.takes} takes reproduced exactly; master {master}."


def _replay_take(engine: Engine, spec: dict, parent: LineTake | None, voice, target: str) -> LineTake:
    op = spec.get("op")
    if op == catalog.CLONE:
        result = engine.clone(CloneRequest(prompt_audio=voice.clip(), prompt_text=voice.text, target_text=target,
                                           seed=int(spec["seed"])))
        text = result.text or target
    else:
        if parent is None:
            raise InvalidInputError(f"The recipe's take {spec.get('id')!r} edits a take that does not exist.")
        result = engine.edit(EditRequest(audio=AudioClip.from_array(parent.samples, OUTPUT_SAMPLE_RATE), audio_text=parent.text,
                                         edit_type=op, edit_info=spec.get("option"),
                                         n_iterations=int(spec.get("iterations", 1)), seed=int(spec["seed"])))[-1]
        text = result.text or parent.text
    return LineTake(id=str(spec["id"]), parent=spec.get("parent"), op=op, option=spec.get("option"),
                    iterations=int(spec.get("iterations", 1)), seed=int(spec["seed"]), text=text,
                    samples=_to_output_rate(result.audio))


def replay_recipe(engine: Engine, recipe: str | bytes | dict, *,
                  progress: Progress | None = None) -> tuple[ScriptRender, ReplayReport]:
    """Re-run every take of a recipe; the rebuilt render and how much of it matches the recorded hashes."""
    recipe = load_recipe(recipe)
    progress = progress or (lambda f, d: None)
    voices = EmbeddedVoices(recipe)
    script = parse_script(recipe["script"], voices=voices.names(), default_voice=recipe.get("default_voice"))
    if len(recipe["lines"]) != len(script.segments):
        raise InvalidInputError(f"The recipe lists {len(recipe['lines'])} lines but its script has "
                                f"{len(script.segments)}.")
    lines, total, matching = [], 0, 0
    for i, (spec, segment) in enumerate(zip(recipe["lines"], script.segments)):
        progress(i / len(script.segments), f"replaying line {i + 1}/{len(script.segments)}")
        made: dict[str, LineTake] = {}
        for t in spec.get("takes", []):
            take = _replay_take(engine, t, made.get(t.get("parent")), voices.get(segment.speaker), segment.text)
            made[take.id] = take
            total += 1
            matching += samples_sha256(take.samples) == t.get("sha256")
        if spec.get("current") not in made:
            raise InvalidInputError(f"The recipe's line {i + 1} uses take {spec.get('current')!r}, which it "
                                    f"does not describe.")
        lines.append(LineRender(index=i, segment=segment, takes=tuple(made.values()), current=spec["current"]))
    render = _assemble(script, int(recipe["seed"]), lines, engine.capabilities().engine)
    progress(1.0, "replayed")
    expected = recipe.get("expected", {})
    return render, ReplayReport(takes=total, takes_matching=matching,
                                master_matches=samples_sha256(render.master) == expected.get("master_sha256"))
