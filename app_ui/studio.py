"""The app's work, without widgets: decode inputs, call the runner, write takes, grow the take tree.

Every method takes the session's :class:`TakeTree` and returns a new one, so an event that fails (a
``gr.Error``) leaves the stored tree untouched: no user's history is lost on error. Audio leaves as 16-bit
wav files we write ourselves into a per-session folder (never as float arrays that Gradio would
peak-normalise).
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Generator

import numpy as np
import soundfile as sf

import gradio as gr

from stepedit_core import catalog
from stepedit_core.audio import OUTPUT_SAMPLE_RATE, write_wav
from stepedit_core.errors import StepEditError
from stepedit_core.interface import (MAX_ITERATIONS, AudioClip, CloneRequest, EditRequest, EngineResult,
                                     edit_result_text, resolve_seed)

from . import history
from .history import TakeTree, file_sha256
from .plots import take_image
from .runner import EngineError, EngineRunner, Job, error_message

MAX_CANDIDATES = 4              # clone candidates per click (each a take with its own seed)
SESSION_PREFIX = "session-"
SESSION_MAX_AGE_S = 6 * 3600    # session folders untouched this long are removed (API calls have no State)
PRUNE_EVERY_S = 600
_SAFE = re.compile(r"[^A-Za-z0-9_-]")

# A streaming action yields 24 kHz float32 chunks and *returns* what the plain action returns.
Stream = Generator[np.ndarray, None, object]


def load_clip(path: str | None, what: str) -> AudioClip:
    if not path:
        raise gr.Error(f"Please provide {what}.")
    try:
        return AudioClip.from_file(path)
    except StepEditError as exc:
        raise EngineError(f"{what[0].upper() + what[1:]}: {error_message(exc)}") from exc


class Studio:
    """Clone, edit, undo, export and replay for one app; sessions are distinguished by their tree."""

    def __init__(self, runner: EngineRunner, root: str | Path):
        self.runner = runner
        self.root = Path(root)
        self._last_prune = 0.0

    # ------------------------------------------------------------------ files
    def session_dir(self, session_hash: str | None) -> Path:
        name = _SAFE.sub("", session_hash or "")[:64] or uuid.uuid4().hex
        path = self.root / f"{SESSION_PREFIX}{name}"
        path.mkdir(parents=True, exist_ok=True)
        os.utime(path)
        self.prune()
        return path

    def prune(self, max_age_s: float = SESSION_MAX_AGE_S, now: float | None = None) -> int:
        """Remove session folders not touched for ``max_age_s`` (at most every PRUNE_EVERY_S); returns count."""
        now = time.time() if now is None else now
        if now - self._last_prune < PRUNE_EVERY_S:
            return 0
        self._last_prune = now
        removed = 0
        for d in self.root.glob(f"{SESSION_PREFIX}*"):
            if d.is_dir() and now - d.stat().st_mtime > max_age_s:
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
        return removed

    def ensure_workdir(self, tree: TakeTree, session_hash: str | None) -> TakeTree:
        if tree.workdir and Path(tree.workdir).is_dir():
            return tree
        return tree.with_workdir(str(self.session_dir(session_hash)))

    def remove_session(self, session_hash: str | None) -> None:
        if session_hash:
            shutil.rmtree(self.session_dir(session_hash), ignore_errors=True)

    def remove_workdir(self, tree: TakeTree) -> None:
        """``gr.State`` delete callback: drop the session's files (only folders this app created)."""
        if tree.workdir and Path(tree.workdir).parent == self.root and \
                Path(tree.workdir).name.startswith(SESSION_PREFIX):
            shutil.rmtree(tree.workdir, ignore_errors=True)

    @staticmethod
    def _keep_source(tree: TakeTree, path: str) -> str:
        """Copy an input file into the session folder (gradio's cache may drop it); returns the copy."""
        src = Path(path)
        dest = Path(tree.workdir) / f"source-{file_sha256(src)[:16]}{src.suffix or '.wav'}"
        if not dest.exists():
            shutil.copyfile(src, dest)
        return str(dest)

    @staticmethod
    def _write_take(tree: TakeTree, take_no: int, result: EngineResult) -> dict:
        path = Path(tree.workdir) / f"T{take_no}.wav"
        write_wav(path, result.audio.samples, result.audio.sample_rate)
        return {"audio": str(path), "duration": round(result.audio.duration, 4), "sha256": file_sha256(path),
                "seed": result.seed, "text": result.text}

    # ------------------------------------------------------------------ seeds
    @staticmethod
    def candidate_seeds(seed: int | float | None, n: int) -> list[int]:
        """Seed ``s`` gives candidates s, s+1, ...; a negative or empty seed gives fresh random seeds."""
        if seed is None or seed < 0:
            return [resolve_seed(None) for _ in range(n)]
        first = resolve_seed(int(seed))
        return [resolve_seed((first + i) % 2**31) for i in range(n)]

    # ------------------------------------------------------------------ actions
    def clone(self, tree: TakeTree, prompt_path: str, prompt_text: str, target_text: str,
              seeds: list[int], progress=None) -> tuple[TakeTree, list[str]]:
        if not 1 <= len(seeds) <= MAX_CANDIDATES:
            raise gr.Error(f"The number of candidates must be between 1 and {MAX_CANDIDATES}.")
        _step(progress, 0.0, "Reading the prompt audio")
        clip = load_clip(prompt_path, "the prompt audio")
        source = self._keep_source(tree, prompt_path)
        requests = [CloneRequest(clip, prompt_text, target_text, seed=s) for s in seeds]
        results = self.runner.clone(requests)
        _step(progress, 1.0, "Writing the takes")
        takes = [{"op": catalog.CLONE, "option": None, "index": i + 1,
                  **self._write_take(tree, tree.next_take + i, r)} for i, r in enumerate(results)]
        params = {"prompt_text": prompt_text, "target_text": target_text, "source": source}
        return tree.add(history.CLONE, None, params, tuple(r.seed for r in results), takes)

    def upload(self, tree: TakeTree, audio_path: str, text: str) -> tuple[TakeTree, list[str]]:
        clip = load_clip(audio_path, "the recording")
        if clip.duration > self.runner.engine.capabilities().max_input_seconds:
            caps = self.runner.engine.capabilities()
            raise gr.Error(f"The recording is {clip.duration:.1f} s long; {caps.display_name} takes at most "
                           f"{caps.max_input_seconds:.0f} s.")
        source = self._keep_source(tree, audio_path)
        result = EngineResult(audio=clip, text=(text or "").strip(), seed=0, edit_type="upload")
        take = {"op": history.UPLOAD, "option": None, "index": 1, **self._write_take(tree, tree.next_take, result)}
        take["seed"] = None
        params = {"text": (text or "").strip(), "source": source}
        return tree.add(history.UPLOAD, None, params, (), [take])

    def edit(self, tree: TakeTree, base: str | None, edit_type: str, edit_info: str | None,
             new_text: str | None, n_iterations: int, seed: int, progress=None) -> tuple[TakeTree, list[str]]:
        if not base or not tree.has(base):
            raise gr.Error("Pick a take to edit first (clone a voice, upload a recording, or select one "
                           "in the timeline).")
        parent = tree.get(base)
        _step(progress, 0.0, f"Reading take {parent.id}")
        clip = load_clip(parent.audio, f"take {parent.id}")
        request = EditRequest(audio=clip, audio_text=parent.text, edit_type=edit_type,
                              edit_info=edit_info or None, new_text=new_text,
                              n_iterations=int(n_iterations), seed=seed)
        results = self.runner.edit(request)
        _step(progress, 1.0, "Writing the takes")
        takes = [{"op": r.edit_type, "option": r.edit_info, "index": i + 1,
                  **self._write_take(tree, tree.next_take + i, r)} for i, r in enumerate(results)]
        params = {"edit_type": edit_type, "edit_info": edit_info or None, "new_text": new_text,
                  "n_iterations": int(n_iterations)}
        return tree.add(history.EDIT, parent.id, params, (results[0].seed,), takes)

    # ------------------------------------------------------------------ streamed actions
    def clone_stream(self, tree: TakeTree, prompt_path: str, prompt_text: str, target_text: str,
                     seeds: list[int]) -> Stream:
        """:meth:`clone` through the engine's stream: yields candidate 1's chunks as they are generated (later
        candidates stream too, silently), then returns ``(tree, take ids)``. Each take is its stream's
        concatenation. A stream closed before its end (a cancel) adds nothing: the partial take is dropped."""
        if not 1 <= len(seeds) <= MAX_CANDIDATES:
            raise gr.Error(f"The number of candidates must be between 1 and {MAX_CANDIDATES}.")
        clip = load_clip(prompt_path, "the prompt audio")
        source = self._keep_source(tree, prompt_path)
        results = []
        for i, seed in enumerate(seeds):
            chunks = []
            for chunk in self.runner.stream(Job("clone", (CloneRequest(clip, prompt_text, target_text, seed),))):
                chunks.append(chunk)
                if i == 0:
                    yield chunk
            results.append(_streamed(chunks, (target_text or "").strip(), seed, catalog.CLONE))
        takes = [{"op": catalog.CLONE, "option": None, "index": i + 1,
                  **self._write_take(tree, tree.next_take + i, r)} for i, r in enumerate(results)]
        params = {"prompt_text": prompt_text, "target_text": target_text, "source": source, "stream": True}
        return tree.add(history.CLONE, None, params, tuple(seeds), takes)

    def edit_stream(self, tree: TakeTree, base: str | None, edit_type: str, edit_info: str | None,
                    new_text: str | None, seed: int) -> Stream:
        """One round of :meth:`edit` through the engine's stream; yields chunks, returns ``(tree, [take id])``."""
        if not base or not tree.has(base):
            raise gr.Error("Pick a take to edit first (clone a voice, upload a recording, or select one "
                           "in the timeline).")
        parent = tree.get(base)
        request = EditRequest(audio=load_clip(parent.audio, f"take {parent.id}"), audio_text=parent.text,
                              edit_type=edit_type, edit_info=edit_info or None, new_text=new_text, seed=seed)
        chunks = []
        for chunk in self.runner.stream(Job("edit", (request,))):
            chunks.append(chunk)
            yield chunk
        result = _streamed(chunks, edit_result_text(request, (parent.text or "").strip()), seed, edit_type,
                           edit_info or None)
        take = {"op": edit_type, "option": edit_info or None, "index": 1,
                **self._write_take(tree, tree.next_take, result)}
        params = {"edit_type": edit_type, "edit_info": edit_info or None, "new_text": new_text,
                  "n_iterations": 1, "stream": True}
        return tree.add(history.EDIT, parent.id, params, (seed,), [take])

    # ------------------------------------------------------------------ recipes
    def export_recipe(self, tree: TakeTree) -> str:
        if not tree.actions:
            raise gr.Error("There is nothing to export yet.")
        recipe = history.to_recipe(tree, engine=self.runner.engine.capabilities().engine)
        path = Path(tree.workdir) / f"recipe-{len(tree.actions)}-actions.json"
        path.write_text(json.dumps(recipe, ensure_ascii=False, indent=1), encoding="utf-8")
        return str(path)

    def replay(self, tree: TakeTree, recipe_path: str, progress=None) -> tuple[TakeTree, list[str], str]:
        """Re-run a recipe's actions with their seeds, appended to ``tree``; returns a short report."""
        try:
            recipe = history.parse_recipe(Path(recipe_path).read_bytes())
        except (OSError, ValueError) as exc:
            raise gr.Error(f"Cannot replay this recipe: {error_message(exc)}") from exc
        id_map: dict[str, str] = {}
        new_ids: list[str] = []
        actions = recipe["actions"]
        for k, a in enumerate(actions):
            _step(progress, k / max(len(actions), 1), f"Replaying action {k + 1}/{len(actions)}")
            p = a.get("params", {})
            if a["kind"] in (history.CLONE, history.UPLOAD):
                name, data = history.recipe_source_bytes(recipe, p["source"])
                src = Path(tree.workdir) / f"replay-{uuid.uuid4().hex[:8]}{Path(name).suffix or '.wav'}"
                src.write_bytes(data)
                if a["kind"] == history.CLONE and p.get("stream"):
                    tree, ids = drain(self.clone_stream(tree, str(src), p["prompt_text"], p["target_text"],
                                                        [int(s) for s in a["seeds"]]))
                elif a["kind"] == history.CLONE:
                    tree, ids = self.clone(tree, str(src), p["prompt_text"], p["target_text"],
                                           [int(s) for s in a["seeds"]])
                else:
                    tree, ids = self.upload(tree, str(src), p.get("text", ""))
                src.unlink(missing_ok=True)
            elif p.get("stream"):
                tree, ids = drain(self.edit_stream(tree, id_map[a["parent"]], p["edit_type"], p.get("edit_info"),
                                                   p.get("new_text"), int(a["seeds"][0])))
            else:
                tree, ids = self.edit(tree, id_map[a["parent"]], p["edit_type"], p.get("edit_info"),
                                      p.get("new_text"), int(p.get("n_iterations", 1)), int(a["seeds"][0]))
            id_map.update(zip(a.get("takes", []), ids))
            new_ids += ids
        expected = recipe.get("expected", {})
        same = sum(1 for old, new in id_map.items()
                   if expected.get(old, {}).get("sha256") == tree.get(new).sha256)
        report = (f"Replayed {len(actions)} actions into {len(new_ids)} takes; {same}/{len(expected)} are "
                  f"bit-identical to the recipe's takes.")
        return tree, new_ids, report

    # ------------------------------------------------------------------ one-shot API (no session tree)
    def _api_dir(self, session_hash: str | None) -> Path:
        return self.session_dir(session_hash)

    def clone_once(self, prompt_path: str, prompt_text: str, target_text: str, seed: int | None,
                   session_hash: str | None) -> tuple[str, str, int]:
        clip = load_clip(prompt_path, "the prompt audio")
        s = self.candidate_seeds(seed, 1)[0]
        result = self.runner.clone([CloneRequest(clip, prompt_text, target_text, seed=s)])[0]
        return self._write_api(result, session_hash, "clone"), result.text, result.seed

    def edit_once(self, audio_path: str, audio_text: str, edit_type: str, edit_info: str | None,
                  new_text: str | None, n_iterations: int, seed: int | None,
                  session_hash: str | None) -> tuple[str, str, int]:
        clip = load_clip(audio_path, "the audio to edit")
        if not 1 <= int(n_iterations or 1) <= MAX_ITERATIONS:
            raise gr.Error(f"The number of iterations must be between 1 and {MAX_ITERATIONS}.")
        s = self.candidate_seeds(seed, 1)[0]
        results = self.runner.edit(EditRequest(clip, audio_text or "", edit_type, edit_info or None, new_text,
                                               int(n_iterations or 1), seed=s))
        last = results[-1]
        return self._write_api(last, session_hash, edit_type), last.text, results[0].seed

    def clone_stream_once(self, prompt_path: str, prompt_text: str, target_text: str, seed: int | None,
                          session_hash: str | None) -> Stream:
        """The streamed one-shot clone: yields chunks, returns ``(wav path, text, seed)``."""
        clip = load_clip(prompt_path, "the prompt audio")
        s = self.candidate_seeds(seed, 1)[0]
        chunks = yield from _relay(self.runner.stream(Job("clone", (CloneRequest(clip, prompt_text, target_text,
                                                                                 s),))))
        result = _streamed(chunks, (target_text or "").strip(), s, catalog.CLONE)
        return self._write_api(result, session_hash, "clone"), result.text, s

    def edit_stream_once(self, audio_path: str, audio_text: str, edit_type: str, edit_info: str | None,
                         new_text: str | None, seed: int | None, session_hash: str | None) -> Stream:
        """The streamed one-shot edit (one round): yields chunks, returns ``(wav path, text, seed)``."""
        clip = load_clip(audio_path, "the audio to edit")
        s = self.candidate_seeds(seed, 1)[0]
        request = EditRequest(clip, audio_text or "", edit_type, edit_info or None, new_text, seed=s)
        chunks = yield from _relay(self.runner.stream(Job("edit", (request,))))
        result = _streamed(chunks, edit_result_text(request, (audio_text or "").strip()), s, edit_type)
        return self._write_api(result, session_hash, edit_type), result.text, s

    def _write_api(self, result: EngineResult, session_hash: str | None, stem: str) -> str:
        path = self._api_dir(session_hash) / f"api-{stem}-{uuid.uuid4().hex[:10]}.wav"
        return write_wav(path, result.audio.samples, result.audio.sample_rate)

    # ------------------------------------------------------------------ pictures
    @staticmethod
    def take_picture(tree: TakeTree, take_id: str, span: float | None = None) -> str:
        take = tree.get(take_id)
        clip = AudioClip.from_file(take.audio)
        span_tag = f"-{span:.2f}" if span else ""
        path = Path(take.audio).with_name(f"{take.id}{span_tag}.png")
        if not path.exists():
            take_image(clip.samples, clip.sample_rate, path, span_seconds=span)
        return str(path)


def _relay(chunks) -> Stream:
    """Yield every chunk and return them all."""
    kept = []
    for chunk in chunks:
        kept.append(chunk)
        yield chunk
    return kept


def _streamed(chunks: list[np.ndarray], text: str, seed: int, edit_type: str,
              edit_info: str | None = None) -> EngineResult:
    """The take of a finished stream: exactly the concatenated chunks."""
    if not chunks or not sum(len(c) for c in chunks):
        raise gr.Error("The engine produced no audio for this request.")
    audio = np.concatenate([np.asarray(c, np.float32).reshape(-1) for c in chunks])
    return EngineResult(audio=AudioClip(samples=audio, sample_rate=OUTPUT_SAMPLE_RATE), text=text, seed=seed,
                        edit_type=edit_type, edit_info=edit_info, metadata={"streamed": True})


def drain(stream: Stream):
    """Run a streamed action to its end without playing it; returns what it returns."""
    while True:
        try:
            next(stream)
        except StopIteration as stop:
            return stop.value


def wav_bytes(chunk: np.ndarray, sample_rate: int = OUTPUT_SAMPLE_RATE) -> bytes:
    """One chunk as 16-bit wav bytes for a streaming ``gr.Audio`` (quantised like :func:`write_wav`; bytes, not
    a float array, so Gradio does not peak-normalise each chunk)."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(chunk, np.float32).reshape(-1), -1.0, 1.0), sample_rate, format="WAV",
             subtype="PCM_16")
    return buf.getvalue()


def _step(progress, fraction: float, desc: str) -> None:
    if progress is not None:
        progress(fraction, desc=desc)
