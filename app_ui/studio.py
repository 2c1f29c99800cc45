"""The app's session work, without widgets: decode inputs, call the runner, write takes, grow the take tree
(recipes: recipes.py; the stateless API actions: oneshot.py; shared helpers: takes_io.py).

Every method takes the session's :class:`TakeTree` and returns a new one, so an event that fails (a
``gr.Error``) leaves the stored tree untouched: no user's history is lost on error. Audio leaves as 16-bit
wav files we write ourselves into a per-session folder (never as float arrays that Gradio would
peak-normalise).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

import gradio as gr

from stepedit_core import catalog, checks
from stepedit_core.audio import write_wav
from stepedit_core.errors import InvalidInputError, StepEditError
from stepedit_core import words as word_edits
from stepedit_core.interface import (AudioClip, CloneRequest, EditRequest, EngineResult, PromptTokenStore,
                                     edit_result_text)
from stepedit_core.service import Service
from stepedit_core.voices import VoiceLibrary

from . import history, storage
from .history import TakeTree, file_sha256
from .names import take_filename
from .plots import take_image
from .oneshot import OneShotActions
from .recipes import MAX_RECIPE_ACTIONS, RecipeActions, check_recipe_shape  # noqa: F401  (re-exported)
from .runner import CloneRowsJob, EditJob, EngineError, EngineRunner, TryBatchJob, error_message
from .takes_io import MAX_CANDIDATES, Stream, drain, load_clip, selection_of, wav_bytes  # noqa: F401
from .takes_io import check_retry as _check_retry
from .takes_io import step as _step
SESSION_PREFIX = "session-"
SESSION_MAX_AGE_S = storage.SESSION_MAX_AGE_S
PRUNE_EVERY_S = 60              # at most one storage pass a minute (storage.py: TTLs and the size cap)
_SAFE = re.compile(r"[^A-Za-z0-9_-]")
log = logging.getLogger(__name__)


class Studio(RecipeActions, OneShotActions):
    """Clone, edit, undo, export and replay for one app; sessions are distinguished by their tree."""

    def __init__(self, runner: EngineRunner, root: str | Path, upload_dir: str | Path | None = None,
                 check: bool = True, keep: storage.KeepFiles = storage.KeepFiles(), voice_library: bool = False,
                 owned_files: Callable[[], list[str]] = lambda: []):
        self.runner = runner
        self.service: Service = runner.service      # the engine's one service (checks, seeds, selections)
        self.root = Path(root)
        self.upload_dir = Path(upload_dir) if upload_dir is not None else None   # Gradio's folder (holds root)
        self._last_prune = 0.0
        self.last_prune: storage.PruneReport | None = None
        self._written = 0               # bytes of takes, API outputs and uploads since the last storage pass
        self._counted: set[str] = set()   # uploads already in _written
        # files in upload_dir that Gradio received or served for this app (app.build_demo: the Blocks'
        # temp_file_sets); nothing else in the folder is ever removed
        self.owned_files = owned_files
        self.keep = keep                  # copies of these (the examples) are never pruned
        self.check_takes = check          # run the take check (ASR + speaker similarity) on every new take
        # clones from a saved voice's prompt use its cached prompt tokens (the app's voice library: library())
        self.voice_library = voice_library

    # ------------------------------------------------------------------ the take check
    @property
    def checker(self) -> checks.Checker:
        return self.service.checker

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
        """Each round checked against the source voice (Service.checked), unless this app checks no takes."""
        return self.service.checked(results, source) if self.check_takes else list(results)

    def _run_checked(self, run, source: AudioClip | None, first_seed: int, max_tries: int,
                     threshold: float) -> tuple[list[EngineResult], list[dict]]:
        """``run(seed) -> [results]``, every round checked; with ``max_tries`` > 1, Service.best_of re-rolls
        seeds first_seed, first_seed + 1, ... until the last result's error rate is <= ``threshold``. Returns
        the best try's results and one record per try (seed, error rate, verdict) for the recipe."""
        if int(max_tries) <= 1:
            return self._checked(run(first_seed), source), []
        if not self.check_takes:                 # nothing to judge a try by: the first one stands
            return run(first_seed), [{"seed": first_seed, "error_rate": None, "verdict": None}]
        try:
            kept = self.service.best_of(run, source, first_seed, max_tries, threshold, every_round=True)
        except InvalidInputError as exc:
            raise EngineError(error_message(exc)) from exc
        return kept.takes, kept.tried

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
                                        owned=self.owned_files(), keep=self.keep)
        return self.last_prune.sessions

    def ensure_workdir(self, tree: TakeTree, session_hash: str | None) -> TakeTree:
        if tree.workdir and Path(tree.workdir).is_dir():
            return tree
        return tree.with_workdir(str(self.session_dir(session_hash)))

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

    def _load_input(self, path: str | None, what: str, max_seconds: float | None = None) -> AudioClip:
        """:func:`load_clip` for a file a user sent, its header checked against ``max_seconds`` (default: the
        engine's own input limit) before decoding; an upload Gradio just wrote is counted like an output."""
        if max_seconds is None:
            max_seconds = self.runner.engine.capabilities().max_input_seconds
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
        path = Path(tree.workdir) / take_filename(take_no, result)
        write_wav(path, result.audio.samples, result.audio.sample_rate)
        self._count_written(path)
        check = result.metadata.get("check") if result.metadata else None
        return {"audio": str(path), "duration": round(result.audio.duration, 4), "sha256": file_sha256(path),
                "seed": result.seed, "text": result.text, "check": dict(check) if check else None}

    # ------------------------------------------------------------------ seeds
    @staticmethod
    def candidate_seeds(seed: int | float | None, n: int) -> list[int]:
        """Seed ``s`` gives candidates s, s+1, ...; a negative or empty seed gives fresh random seeds."""
        try:
            return Service.seeds(seed, n)
        except StepEditError as exc:
            raise EngineError(error_message(exc)) from exc

    # ------------------------------------------------------------------ the voice library
    def library(self, session: str | None) -> VoiceLibrary:
        """Per session on a Space (gone with the session unless exported); the user's data dir otherwise."""
        if os.environ.get("SPACE_ID"):
            return VoiceLibrary(self.session_dir(session) / "voices")
        return VoiceLibrary()

    def prompt_store(self, clip: AudioClip, session: str | None) -> PromptTokenStore | None:
        """The token store of the saved voice whose prompt is exactly ``clip`` (the clone tab's prompt when it
        was loaded from the library), else None."""
        voice = self.library(session).find_by_audio(clip)
        return None if voice is None else self.library(session).token_store(voice.name)

    # ------------------------------------------------------------------ actions
    def _store(self, clip: AudioClip, session: str | None) -> PromptTokenStore | None:
        """The saved voice's token store when ``clip`` is a library prompt; a library problem never fails a clone."""
        if not self.voice_library:
            return None
        try:
            return self.prompt_store(clip, session)
        except (StepEditError, OSError, ValueError):
            log.warning("voice library lookup failed; cloning without cached prompt tokens", exc_info=True)
            return None

    def clone(self, tree: TakeTree, prompt_path: str, prompt_text: str, target_text: str,
              seeds: list[int], progress=None, max_tries: int = 1,
              threshold: float = checks.DEFAULT_RETRY_THRESHOLD,
              session: str | None = None, batch: bool = True,
              made_with: Mapping[int, Sequence[int]] | None = None) -> tuple[TakeTree, list[str]]:
        """Clone candidates (one per seed), each checked; with ``max_tries`` > 1 each candidate is re-rolled
        (seed, seed + n, seed + 2n, ...) until its error rate is <= ``threshold``. Candidates without retries
        run as one batch (``batch``: a take depends on the seeds batched with it; replay keeps the grouping);
        ``made_with`` (replay) maps a seed to the seeds its take was decoded with, when those were tries."""
        if not 1 <= len(seeds) <= MAX_CANDIDATES:
            raise gr.Error(f"The number of candidates must be between 1 and {MAX_CANDIDATES}.")
        _check_retry(max_tries, threshold)
        _step(progress, 0.0, "Reading the prompt audio")
        clip = self._load_input(prompt_path, "the prompt audio")
        store = self._store(clip, session)
        source = self._keep_source(tree, prompt_path)
        results, tried = [], []
        if int(max_tries) <= 1:
            requests = [CloneRequest(clip, prompt_text, target_text, seed=s, prompt_store=store) for s in seeds]
            made = (self.runner.clone(requests) if batch else
                    [self._as_made(r, (made_with or {}).get(r.seed)) for r in requests])
            results = [self._checked([r], clip)[0] for r in made]
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

    def _as_made(self, request: CloneRequest | EditRequest, batch_seeds: Sequence[int] | None):
        """The take of ``request.seed`` as it was first made (replay): alone, or as its row of the batch of
        ``batch_seeds`` (the tries decoded together: int8 rows depend on their batch). A clone's result, or an
        edit's list of rounds."""
        if not batch_seeds or len(batch_seeds) < 2 or request.seed not in batch_seeds:
            return (self.runner.clone([request])[0] if isinstance(request, CloneRequest) else
                    self.runner.edit(request))
        seeds = tuple(int(s) for s in batch_seeds)
        rows = self.runner.run(TryBatchJob(replace(request, seed=seeds[0]), seeds))
        if rows is None:
            raise EngineError(f"Cannot remake the take of seed {request.seed}: its batch of {len(seeds)} tries is "
                              "over this engine's limits.")
        return rows[seeds.index(request.seed)]

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
             threshold: float = checks.DEFAULT_RETRY_THRESHOLD,
             made_with: Sequence[int] = ()) -> tuple[TakeTree, list[str]]:
        """Edit take ``base``; ``region`` ({"words": [first, last]} or {"seconds": [start, end]}) limits the
        edit to a window around the selection; ``max_tries`` > 1 re-rolls seeds until the check passes;
        ``made_with`` (replay): the seeds the take was decoded with, when those were tries."""
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
            if made_with and selection is None:
                return self._as_made(req, made_with)
            return self.runner.edit_selected(req, words, selection)

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
    def _finish_stream(self, chunks: list[np.ndarray], text: str, seed: int, edit_type: str,
                       edit_info: str | None = None, *, source: AudioClip | None = None,
                       check: bool | None = None) -> EngineResult:
        """The take of a finished stream (its chunks, concatenated), checked like a whole take of a session."""
        try:
            return self.service.finish_stream(chunks, text, seed, edit_type, edit_info, source=source,
                                              check=self.check_takes if check is None else check)
        except StepEditError as exc:
            raise EngineError(error_message(exc)) from exc

    def clone_stream(self, tree: TakeTree, prompt_path: str, prompt_text: str, target_text: str,
                     seeds: list[int], session: str | None = None, batch: bool = True) -> Stream:
        """:meth:`clone` through the engine's stream: yields candidate 1's chunks as they are generated (the
        others stream too, silently, decoded in the same batch when the engine batches), then returns
        ``(tree, take ids)``. Each take is its stream's concatenation. A stream closed before its end (a
        cancel) adds nothing: the partial takes are dropped."""
        if not 1 <= len(seeds) <= MAX_CANDIDATES:
            raise gr.Error(f"The number of candidates must be between 1 and {MAX_CANDIDATES}.")
        clip = self._load_input(prompt_path, "the prompt audio")
        store = self._store(clip, session)
        source = self._keep_source(tree, prompt_path)
        chunks: list[list[np.ndarray]] = [[] for _ in seeds]
        requests = tuple(CloneRequest(clip, prompt_text, target_text, seed, prompt_store=store) for seed in seeds)
        # one batch when the engine batches; a recipe made before batched streams replays one after another
        jobs = [(0, CloneRowsJob(requests))] if batch else [(i, CloneRowsJob((r,))) for i, r in enumerate(requests)]
        for first, job in jobs:
            for row, chunk in self.runner.stream(job):
                chunks[first + row].append(chunk)
                if first + row == 0:
                    yield chunk
        results = [self._finish_stream(rows, (target_text or "").strip(), seed, catalog.CLONE, source=clip)
                   for rows, seed in zip(chunks, seeds)]
        takes = [{"op": catalog.CLONE, "option": None, "index": i + 1,
                  **self._write_take(tree, tree.next_take + i, r)} for i, r in enumerate(results)]
        params = {"prompt_text": prompt_text, "target_text": target_text, "source": source, "stream": True,
                  **({"stream_batch": True} if batch and len(seeds) > 1 else {})}
        return tree.add(history.CLONE, None, params, tuple(seeds), takes)

    def edit_stream(self, tree: TakeTree, base: str | None, edit_type: str, edit_info: str | None,
                    new_text: str | None, seed: int) -> Stream:
        """One round of :meth:`edit` through the engine's stream; yields chunks, returns ``(tree, [take id])``."""
        if not base or not tree.has(base):
            raise gr.Error("Pick a take to edit first (clone a voice, upload a recording, or select one "
                           "in the timeline).")
        parent = tree.get(base)
        clip = load_clip(parent.audio, f"take {parent.id}")
        request = EditRequest(audio=clip, audio_text=parent.text, edit_type=edit_type, edit_info=edit_info or None,
                              new_text=new_text, seed=seed)
        chunks = []
        for chunk in self.runner.stream(EditJob(request)):
            chunks.append(chunk)
            yield chunk
        result = self._finish_stream(chunks, edit_result_text(request, (parent.text or "").strip()), seed,
                                     edit_type, edit_info or None, source=clip)
        take = {"op": edit_type, "option": edit_info or None, "index": 1,
                **self._write_take(tree, tree.next_take, result)}
        params = {"edit_type": edit_type, "edit_info": edit_info or None, "new_text": new_text,
                  "n_iterations": 1, "stream": True}
        return tree.add(history.EDIT, parent.id, params, (seed,), [take])

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
