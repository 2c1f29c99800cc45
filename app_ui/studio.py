"""The app's work, without widgets: decode inputs, call the runner, write takes, grow the take tree.

Every method takes the session's :class:`TakeTree` and returns a new one, so an event that fails (a
``gr.Error``) leaves the stored tree untouched: no user's history is lost on error. Audio leaves as 16-bit
wav files we write ourselves into a per-session folder (never as float arrays that Gradio would
peak-normalise).
"""
from __future__ import annotations

import binascii
import io
import json
import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Callable, Generator

import numpy as np
import soundfile as sf

import gradio as gr

from stepedit_core import catalog, checks, regions, validation
from stepedit_core import words as word_edits
from stepedit_core.audio import OUTPUT_SAMPLE_RATE, write_wav
from stepedit_core.errors import StepEditError
from stepedit_core.interface import (AudioClip, CloneRequest, EditRequest, EngineResult, PromptTokenStore,
                                     edit_result_text, resolve_seed)

from . import history, storage
from .history import TakeTree, file_sha256
from .plots import take_image
from .runner import EngineError, EngineRunner, Job, error_message

MAX_CANDIDATES = 4              # clone candidates per click (each a take with its own seed)
MAX_RECIPE_ACTIONS = 50         # a replay runs every action on the one engine slot; longer recipes are refused
SESSION_PREFIX = "session-"
SESSION_MAX_AGE_S = storage.SESSION_MAX_AGE_S
PRUNE_EVERY_S = 60              # at most one storage pass a minute (storage.py: TTLs and the size cap)
_SAFE = re.compile(r"[^A-Za-z0-9_-]")
log = logging.getLogger(__name__)

# A streaming action yields 24 kHz float32 chunks and *returns* what the plain action returns.
Stream = Generator[np.ndarray, None, object]


def load_clip(path: str | None, what: str, max_seconds: float = validation.MAX_AUDIO_SECONDS) -> AudioClip:
    """Decode an uploaded file (header checked first); messages name the user's file, not our folders."""
    if not path:
        raise gr.Error(f"Please provide {what}.")
    if not isinstance(path, (str, os.PathLike)):
        raise gr.Error(f"{what[0].upper() + what[1:]} must be an audio file.")
    try:
        return AudioClip.from_file(path, f"{what} ({validation.display_name(path)})", max_seconds)
    except StepEditError as exc:
        raise EngineError(error_message(exc)) from exc


class Studio:
    """Clone, edit, undo, export and replay for one app; sessions are distinguished by their tree."""

    def __init__(self, runner: EngineRunner, root: str | Path, upload_dir: str | Path | None = None,
                 check: bool = True):
        self.runner = runner
        self.root = Path(root)
        self.upload_dir = Path(upload_dir) if upload_dir is not None else None   # Gradio's folder (holds root)
        self._last_prune = 0.0
        self.last_prune: storage.PruneReport | None = None
        self._written = 0               # bytes of takes, API outputs and uploads since the last storage pass
        self._counted: set[str] = set()   # uploads already in _written
        # files in upload_dir that Gradio received or served for this app (app.build_demo wires it to
        # Blocks.temp_file_sets); nothing else in the folder is ever removed
        self.owned_files: Callable[[], list[str]] = lambda: []
        self.check_takes = check          # run the take check (ASR + speaker similarity) on every new take
        # (prompt clip, session hash) -> the prompt-token store of the saved voice that is exactly that clip, or
        # None; set by the Script tab (script_tab.build), which owns the voice library
        self.prompt_store: Callable[[AudioClip, str | None], PromptTokenStore | None] | None = None
        self._checker: checks.Checker | None = None

    # ------------------------------------------------------------------ the take check
    @property
    def checker(self) -> checks.Checker:
        if self._checker is None:
            self._checker = checks.checker_for(self.runner.engine)
        return self._checker

    def words_of(self, take) -> tuple[checks.Word, ...]:
        """The take's transcript words with times: from its check, else transcribed now."""
        if take.check and take.check.get("words"):
            return checks.TakeCheck.from_dict(take.check).words
        clip = load_clip(take.audio, f"take {take.id}")
        try:
            return self.checker.heard(clip, checks.language_of(take.text)).words
        except StepEditError as exc:
            raise EngineError(f"Cannot find the words of take {take.id}: {error_message(exc)}") from exc

    def _checked(self, results: list[EngineResult], source: AudioClip | None) -> list[EngineResult]:
        """Each round checked against the source voice; its expected length follows the previous round."""
        out = []
        for i, r in enumerate(results):
            before = results[i - 1].audio.duration if i else (source.duration if source is not None else None)
            if not self.check_takes:
                out.append(r)
                continue
            try:
                out.append(self.checker.check_result(r, source=source, source_seconds=before))
            except Exception as exc:  # noqa: BLE001 -- the take matters more than its score
                log.warning("take check failed: %s", exc)
                out.append(r)
        return out

    def _run_checked(self, run, source: AudioClip | None, first_seed: int, max_tries: int,
                     threshold: float) -> tuple[list[EngineResult], list[dict]]:
        """``run(seed) -> [results]``, checked; with ``max_tries`` > 1, seeds first_seed, first_seed + 1, ...
        until the last result's error rate is <= ``threshold``. Returns the best try's results and one
        record per try (seed, error rate, verdict) for the recipe."""
        if int(max_tries) <= 1:
            return self._checked(run(first_seed), source), []
        tries, kept = [], []
        for seed in checks.retry_seeds(first_seed, int(max_tries)):
            results = self._checked(run(seed), source)
            c = checks.check_of(results[-1])
            tries.append({"seed": seed, "error_rate": c.error_rate if c else None,
                          "verdict": c.verdict if c else None})
            kept.append(results)
            if c is None or c.passes(threshold):
                break
        scored = [checks.check_of(r[-1]) for r in kept]
        best = checks.rank(scored)[0] if all(scored) else len(kept) - 1
        return kept[best], tries

    # ------------------------------------------------------------------ files
    def session_dir(self, session_hash: str | None) -> Path:
        name = _SAFE.sub("", session_hash or "")[:64] or uuid.uuid4().hex
        path = self.root / f"{SESSION_PREFIX}{name}"
        path.mkdir(parents=True, exist_ok=True)
        os.utime(path)
        self.prune()
        return path

    def prune(self, max_age_s: float = SESSION_MAX_AGE_S, now: float | None = None) -> int:
        """Drop old sessions, API outputs and uploads, and keep under the size cap (see storage.py); at most
        every PRUNE_EVERY_S. Returns the number of session folders removed."""
        now = time.time() if now is None else now
        if now - self._last_prune < PRUNE_EVERY_S:
            return 0
        self._last_prune, self._written = now, 0
        self._counted.clear()
        self.last_prune = storage.prune(self.root, self.upload_dir, SESSION_PREFIX, now, max_age_s,
                                        owned=self.owned_files())
        return self.last_prune.sessions

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

    def _count_written(self, path: str | Path, copies: int = 1) -> None:
        """Between storage passes (one a minute), count what the app writes; once the app's bytes could reach
        the cap's low-water mark, prune at once, so the folder stays under the cap between passes (an upload
        is counted when a request reads it: Gradio has written it, at most app.MAX_FILE_SIZE, just before)."""
        self._written += copies * Path(path).stat().st_size
        known = self.last_prune.total_bytes if self.last_prune else 0
        if known + self._written >= storage.CAP_LOW_WATER * storage.storage_cap_bytes():
            self._last_prune = 0.0
            self.prune()

    def _load_input(self, path: str | None, what: str,
                    max_seconds: float = validation.MAX_AUDIO_SECONDS) -> AudioClip:
        """:func:`load_clip` for a file a user sent; an upload Gradio just wrote is counted like an output."""
        clip = load_clip(path, what, max_seconds)
        if self.upload_dir is not None and str(path) not in self._counted:
            try:
                Path(path).resolve().relative_to(self.upload_dir.resolve())
            except ValueError:
                return clip                   # not in Gradio's folder (a local caller's own file)
            self._counted.add(str(path))
            self._count_written(path)
        return clip

    def _write_take(self, tree: TakeTree, take_no: int, result: EngineResult) -> dict:
        path = Path(tree.workdir) / f"T{take_no}.wav"
        write_wav(path, result.audio.samples, result.audio.sample_rate)
        self._count_written(path)
        check = result.metadata.get("check") if result.metadata else None
        return {"audio": str(path), "duration": round(result.audio.duration, 4), "sha256": file_sha256(path),
                "seed": result.seed, "text": result.text, "check": dict(check) if check else None}

    # ------------------------------------------------------------------ seeds
    @staticmethod
    def candidate_seeds(seed: int | float | None, n: int) -> list[int]:
        """Seed ``s`` gives candidates s, s+1, ...; a negative or empty seed gives fresh random seeds."""
        if seed is None or seed < 0:
            return [resolve_seed(None) for _ in range(n)]
        first = resolve_seed(int(seed))
        return [resolve_seed((first + i) % 2**31) for i in range(n)]

    # ------------------------------------------------------------------ actions
    def _store(self, clip: AudioClip, session: str | None) -> PromptTokenStore | None:
        """The saved voice's token store when ``clip`` is a library prompt; a library problem never fails a clone."""
        if self.prompt_store is None:
            return None
        try:
            return self.prompt_store(clip, session)
        except (StepEditError, OSError, ValueError):
            log.warning("voice library lookup failed; cloning without cached prompt tokens", exc_info=True)
            return None

    def clone(self, tree: TakeTree, prompt_path: str, prompt_text: str, target_text: str,
              seeds: list[int], progress=None, max_tries: int = 1,
              threshold: float = checks.DEFAULT_RETRY_THRESHOLD,
              session: str | None = None) -> tuple[TakeTree, list[str]]:
        """Clone candidates (one per seed), each checked; with ``max_tries`` > 1 each candidate is re-rolled
        (seed, seed + n, seed + 2n, ...) until its error rate is <= ``threshold``."""
        if not 1 <= len(seeds) <= MAX_CANDIDATES:
            raise gr.Error(f"The number of candidates must be between 1 and {MAX_CANDIDATES}.")
        _check_retry(max_tries, threshold)
        _step(progress, 0.0, "Reading the prompt audio")
        clip = self._load_input(prompt_path, "the prompt audio")
        store = self._store(clip, session)
        source = self._keep_source(tree, prompt_path)
        results, tried = [], []
        if int(max_tries) <= 1:
            results = [self._checked([r], clip)[0] for r in
                       self.runner.clone([CloneRequest(clip, prompt_text, target_text, seed=s, prompt_store=store)
                                          for s in seeds])]
        else:
            for s in seeds:
                kept, tries = self._run_checked(
                    lambda seed: self.runner.clone([CloneRequest(clip, prompt_text, target_text, seed=seed,
                                                                 prompt_store=store)]),
                    clip, s, max_tries, threshold)
                results += kept
                tried += tries
        _step(progress, 1.0, "Writing the takes")
        takes = [{"op": catalog.CLONE, "option": None, "index": i + 1,
                  **self._write_take(tree, tree.next_take + i, r)} for i, r in enumerate(results)]
        params = {"prompt_text": prompt_text, "target_text": target_text, "source": source}
        if tried:
            params["retry"] = {"max_tries": int(max_tries), "threshold": float(threshold), "tried": tried}
        return tree.add(history.CLONE, None, params, tuple(r.seed for r in results), takes)

    def upload(self, tree: TakeTree, audio_path: str, text: str) -> tuple[TakeTree, list[str]]:
        clip = self._load_input(audio_path, "the recording")
        if clip.duration > self.runner.engine.capabilities().max_input_seconds:
            caps = self.runner.engine.capabilities()
            raise gr.Error(f"The recording is {clip.duration:.1f} s long; {caps.display_name} takes at most "
                           f"{caps.max_input_seconds:.0f} s.")
        source = self._keep_source(tree, audio_path)
        result = EngineResult(audio=clip, text=(text or "").strip(), seed=0, edit_type="upload")
        if result.text:
            result = self._checked([result], None)[0]
        take = {"op": history.UPLOAD, "option": None, "index": 1, **self._write_take(tree, tree.next_take, result)}
        take["seed"] = None
        params = {"text": (text or "").strip(), "source": source}
        return tree.add(history.UPLOAD, None, params, (), [take])

    def edit(self, tree: TakeTree, base: str | None, edit_type: str, edit_info: str | None,
             new_text: str | None, n_iterations: int, seed: int, progress=None,
             region: dict | None = None, max_tries: int = 1,
             threshold: float = checks.DEFAULT_RETRY_THRESHOLD) -> tuple[TakeTree, list[str]]:
        """Edit take ``base``; ``region`` ({"words": [first, last]} or {"seconds": [start, end]}) limits the
        edit to a window around the selection; ``max_tries`` > 1 re-rolls seeds until the check passes."""
        if not base or not tree.has(base):
            raise gr.Error("Pick a take to edit first (clone a voice, upload a recording, or select one "
                           "in the timeline).")
        _check_retry(max_tries, threshold)
        parent = tree.get(base)
        _step(progress, 0.0, f"Reading take {parent.id}")
        clip = load_clip(parent.audio, f"take {parent.id}")
        if edit_type == word_edits.WORDS:      # a word edit (stepedit_core.words): only the changed words are new
            result = self.runner.word_edit(clip, parent.text, new_text or "", seed)
            take = {"op": edit_type, "option": result.edit_info, "index": 1,
                    **self._write_take(tree, tree.next_take, result)}
            params = {"edit_type": edit_type, "edit_info": None, "new_text": new_text, "n_iterations": 1}
            return tree.add(history.EDIT, parent.id, params, (result.seed,), [take])
        request = EditRequest(audio=clip, audio_text=parent.text, edit_type=edit_type,
                              edit_info=edit_info or None, new_text=new_text,
                              n_iterations=int(n_iterations), seed=seed)
        selection = selection_of(region)
        words = self.words_of(parent) if selection is not None and selection.by_words else ()

        def run(s: int) -> list[EngineResult]:
            req = replace(request, seed=s)
            return self.runner.edit(req) if selection is None else self.runner.region_edit(req, words, selection)

        results, tried = self._run_checked(run, clip, seed, max_tries, threshold)
        _step(progress, 1.0, "Writing the takes")
        takes = [{"op": r.edit_type, "option": r.edit_info, "index": i + 1,
                  **self._write_take(tree, tree.next_take + i, r)} for i, r in enumerate(results)]
        params = {"edit_type": edit_type, "edit_info": edit_info or None, "new_text": new_text,
                  "n_iterations": int(n_iterations)}
        if selection is not None:
            params["region"] = {**dict(region), "window_s": results[0].metadata["region"]["window_s"]}
        if tried:
            params["retry"] = {"max_tries": int(max_tries), "threshold": float(threshold), "tried": tried}
        return tree.add(history.EDIT, parent.id, params, (results[0].seed,), takes)

    # ------------------------------------------------------------------ streamed actions
    def clone_stream(self, tree: TakeTree, prompt_path: str, prompt_text: str, target_text: str,
                     seeds: list[int], session: str | None = None) -> Stream:
        """:meth:`clone` through the engine's stream: yields candidate 1's chunks as they are generated (later
        candidates stream too, silently), then returns ``(tree, take ids)``. Each take is its stream's
        concatenation. A stream closed before its end (a cancel) adds nothing: the partial take is dropped."""
        if not 1 <= len(seeds) <= MAX_CANDIDATES:
            raise gr.Error(f"The number of candidates must be between 1 and {MAX_CANDIDATES}.")
        clip = self._load_input(prompt_path, "the prompt audio")
        store = self._store(clip, session)
        source = self._keep_source(tree, prompt_path)
        results = []
        for i, seed in enumerate(seeds):
            chunks = []
            request = CloneRequest(clip, prompt_text, target_text, seed, prompt_store=store)
            for chunk in self.runner.stream(Job("clone", (request,))):
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
            data = Path(recipe_path).read_bytes()
            try:
                first_look = json.loads(data)
            except ValueError:
                first_look = None                 # parse_recipe names the JSON error
            if isinstance(first_look, dict) and first_look.get("format") == history.RECIPE_FORMAT:
                check_recipe_shape(first_look)
            return self._replay(tree, check_recipe_shape(history.parse_recipe(data)), progress)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else error_message(exc)
            raise gr.Error(f"Cannot replay this recipe ({validation.display_name(recipe_path)}): {detail}",
                           title="Recipe not usable") from exc

    def _replay(self, tree: TakeTree, recipe: dict, progress=None) -> tuple[TakeTree, list[str], str]:
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
                region = p.get("region")
                tree, ids = self.edit(tree, id_map[a["parent"]], p["edit_type"], p.get("edit_info"),
                                      p.get("new_text"), int(p.get("n_iterations", 1)), int(a["seeds"][0]),
                                      region={k: v for k, v in region.items() if k != "window_s"} if region else None)
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
                   session_hash: str | None, max_tries: int = 1,
                   threshold: float = checks.DEFAULT_RETRY_THRESHOLD) -> tuple[str, str, int]:
        try:
            s = self.candidate_seeds(validation.check_seed(seed), 1)[0]
        except StepEditError as exc:
            raise EngineError(error_message(exc)) from exc
        max_tries, threshold = _check_retry(max_tries, threshold)
        clip = self._load_input(prompt_path, "the prompt audio", self.runner.engine.capabilities().max_input_seconds)
        store = self._store(clip, session_hash)

        def run(seed_: int) -> list[EngineResult]:
            return self.runner.clone([CloneRequest(clip, prompt_text, target_text, seed=seed_, prompt_store=store)])

        # as edit_once: no retry, no check (the /check endpoint scores on demand)
        result = run(s)[0] if max_tries <= 1 else self._run_checked(run, clip, s, max_tries, threshold)[0][0]
        return self._write_api(result, session_hash, "clone"), result.text, result.seed

    def edit_once(self, audio_path: str, audio_text: str, edit_type: str, edit_info: str | None,
                  new_text: str | None, n_iterations: int, seed: int | None,
                  session_hash: str | None, region: dict | None = None, max_tries: int = 1,
                  threshold: float = checks.DEFAULT_RETRY_THRESHOLD) -> tuple[str, str, int]:
        try:
            n_iterations = validation.check_iterations(1 if n_iterations in (None, "") else n_iterations)
            s = self.candidate_seeds(validation.check_seed(seed), 1)[0]
        except StepEditError as exc:
            raise EngineError(error_message(exc)) from exc
        max_tries, threshold = _check_retry(max_tries, threshold)
        clip = self._load_input(audio_path, "the audio to edit", self.runner.engine.capabilities().max_input_seconds)
        request = EditRequest(clip, audio_text or "", edit_type, edit_info or None, new_text, n_iterations, seed=s)
        selection = selection_of(region)
        words = ()
        if selection is not None and selection.by_words:
            try:
                words = self.checker.heard(clip, checks.language_of(audio_text or "")).words
            except StepEditError as exc:
                raise EngineError(f"Cannot find the words of the audio: {error_message(exc)}") from exc

        def run(seed_: int) -> list[EngineResult]:
            req = replace(request, seed=seed_)
            return self.runner.edit(req) if selection is None else self.runner.region_edit(req, words, selection)

        if max_tries <= 1:      # no retry: no check either (the /check endpoint scores on demand)
            results = run(s)
        else:
            results, _ = self._run_checked(run, clip, s, max_tries, threshold)
        last = results[-1]
        return self._write_api(last, session_hash, edit_type), last.text, results[0].seed

    def words_once(self, audio_path: str, audio_text: str, new_text: str, seed: int | None,
                   session_hash: str | None) -> tuple[str, str, int]:
        """A word edit of an audio file (stepedit_core.words): only the changed words are new."""
        try:
            s = self.candidate_seeds(validation.check_seed(seed), 1)[0]
        except StepEditError as exc:
            raise EngineError(error_message(exc)) from exc
        clip = self._load_input(audio_path, "the audio to edit", self.runner.engine.capabilities().max_input_seconds)
        take = self.runner.word_edit(clip, audio_text or "", new_text or "", s)
        return self._write_api(take, session_hash, "words"), take.text, take.seed

    def check_once(self, audio_path: str, text: str, source_path: str | None = None,
                   expected_seconds: float | None = None) -> dict:
        """The take check of an audio file against ``text`` (and a source voice), as JSON."""
        clip = self._load_input(audio_path, "the audio to check")
        source = self._load_input(source_path, "the source audio") if source_path else None
        if not (text or "").strip():
            raise gr.Error("Please enter the text the audio should say.")
        if expected_seconds is not None and expected_seconds <= 0:
            expected_seconds = None
        try:
            result = self.checker.check(clip, text, source=source, expected_seconds=expected_seconds)
        except StepEditError as exc:
            raise EngineError(f"Cannot check this audio: {error_message(exc)}") from exc
        return {**result.to_dict(), "summary": result.summary()}

    def clone_stream_once(self, prompt_path: str, prompt_text: str, target_text: str, seed: int | None,
                          session_hash: str | None) -> Stream:
        """The streamed one-shot clone: yields chunks, returns ``(wav path, text, seed)``."""
        clip = self._load_input(prompt_path, "the prompt audio")
        s = self.candidate_seeds(seed, 1)[0]
        request = CloneRequest(clip, prompt_text, target_text, s, prompt_store=self._store(clip, session_hash))
        chunks = yield from _relay(self.runner.stream(Job("clone", (request,))))
        result = _streamed(chunks, (target_text or "").strip(), s, catalog.CLONE)
        return self._write_api(result, session_hash, "clone"), result.text, s

    def edit_stream_once(self, audio_path: str, audio_text: str, edit_type: str, edit_info: str | None,
                         new_text: str | None, seed: int | None, session_hash: str | None) -> Stream:
        """The streamed one-shot edit (one round): yields chunks, returns ``(wav path, text, seed)``."""
        clip = self._load_input(audio_path, "the audio to edit")
        s = self.candidate_seeds(seed, 1)[0]
        request = EditRequest(clip, audio_text or "", edit_type, edit_info or None, new_text, seed=s)
        chunks = yield from _relay(self.runner.stream(Job("edit", (request,))))
        result = _streamed(chunks, edit_result_text(request, (audio_text or "").strip()), s, edit_type)
        return self._write_api(result, session_hash, edit_type), result.text, s

    def _write_api(self, result: EngineResult, session_hash: str | None, stem: str) -> str:
        path = self._api_dir(session_hash) / f"api-{stem}-{uuid.uuid4().hex[:10]}.wav"
        out = write_wav(path, result.audio.samples, result.audio.sample_rate)
        self._count_written(path, copies=2)      # Gradio serves it from a copy of the same size
        return out

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


def selection_of(region: dict | None) -> regions.Selection | None:
    """{"words": [first, last]} or {"seconds": [start, end]} -> a Selection; None for the whole take."""
    if not region:
        return None
    try:
        if "words" in region:
            first, last = region["words"]
            return regions.Selection(first_word=int(first), last_word=int(last))
        if "seconds" in region:
            start, end = region["seconds"]
            return regions.Selection(start_s=float(start), end_s=float(end))
    except (TypeError, ValueError) as exc:
        raise gr.Error(f"The selection {region!r} is not two numbers.") from exc
    raise gr.Error(f"The selection {region!r} needs 'words' or 'seconds'.")


def _check_retry(max_tries, threshold) -> tuple[int, float]:
    """Whole tries in 1..MAX_RETRIES + 1 and a threshold in [0, 1] (checks.check_retry, as every door)."""
    try:
        return checks.check_retry(max_tries, threshold)
    except StepEditError as exc:
        raise gr.Error(error_message(exc)) from exc


def check_recipe_shape(recipe: dict) -> dict:
    """The structure replay relies on, with a readable ValueError for each way a file can break it."""
    actions, sources = recipe.get("actions"), recipe.get("sources", {})
    if not isinstance(actions, list) or not actions:
        raise ValueError('it has no "actions" list (export a recipe from the app to see the format)')
    if len(actions) > MAX_RECIPE_ACTIONS:
        raise ValueError(f"it has {len(actions)} actions; at most {MAX_RECIPE_ACTIONS} are replayed")
    if not isinstance(sources, dict) or not all(
            isinstance(v, dict) and all(isinstance(v.get(k), str) for k in ("sha256", "data")) for v in sources.values()):
        raise ValueError('its "sources" are not a map of embedded audio files')
    for k, a in enumerate(actions, 1):
        if not isinstance(a, dict) or not isinstance(a.get("params", {}), dict):
            raise ValueError(f"action {k} is not an object with params")
        seeds, takes = a.get("seeds"), a.get("takes", [])
        if not isinstance(seeds, list) or not 1 <= len(seeds) <= MAX_CANDIDATES or \
                not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= validation.MAX_SEED
                        for x in seeds):
            raise ValueError(f"action {k} needs 1-{MAX_CANDIDATES} whole-number seeds")
        if not isinstance(takes, list) or not all(isinstance(x, str) for x in takes):
            raise ValueError(f"action {k} lists its takes wrongly")
    return recipe


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
