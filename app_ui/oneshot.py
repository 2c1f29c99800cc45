"""The app's stateless API actions (app_ui/api.py, also the MCP tools): clone, edit, check and their streamed forms
on one uploaded clip, without a session tree; outputs are 16-bit wav files in the caller's session folder."""
from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

from stepedit_core import catalog, checks, validation
from stepedit_core.audio import write_wav
from stepedit_core.errors import InvalidInputError, StepEditError
from stepedit_core.interface import CloneRequest, EditRequest, EngineResult, edit_result_text

from .runner import CloneJob, EditJob, EngineError, error_message
from .takes_io import Stream, check_retry as _check_retry, relay as _relay, selection_of


class OneShotActions:
    """The Studio's one-shot methods (a mixin: they use its runner, service, checker and file bookkeeping)."""

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
            return self.runner.edit_selected(req, words, selection)

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
        limit = validation.MAX_AUDIO_SECONDS       # a take to check may be longer than the engine's inputs
        clip = self._load_input(audio_path, "the audio to check", limit)
        source = self._load_input(source_path, "the source audio", limit) if source_path else None
        try:
            return self.service.check(clip, text, source=source, expected_seconds=expected_seconds)
        except InvalidInputError as exc:
            raise EngineError(error_message(exc)) from exc
        except StepEditError as exc:
            raise EngineError(f"Cannot check this audio: {error_message(exc)}") from exc

    def clone_stream_once(self, prompt_path: str, prompt_text: str, target_text: str, seed: int | None,
                          session_hash: str | None) -> Stream:
        """The streamed one-shot clone: yields chunks, returns ``(wav path, text, seed)``."""
        clip = self._load_input(prompt_path, "the prompt audio")
        s = self.candidate_seeds(seed, 1)[0]
        request = CloneRequest(clip, prompt_text, target_text, s, prompt_store=self._store(clip, session_hash))
        chunks = yield from _relay(self.runner.stream(CloneJob((request,))))
        result = self._finish_stream(chunks, (target_text or "").strip(), s, catalog.CLONE, check=False)
        return self._write_api(result, session_hash, "clone"), result.text, s

    def edit_stream_once(self, audio_path: str, audio_text: str, edit_type: str, edit_info: str | None,
                         new_text: str | None, seed: int | None, session_hash: str | None) -> Stream:
        """The streamed one-shot edit (one round): yields chunks, returns ``(wav path, text, seed)``."""
        clip = self._load_input(audio_path, "the audio to edit")
        s = self.candidate_seeds(seed, 1)[0]
        request = EditRequest(clip, audio_text or "", edit_type, edit_info or None, new_text, seed=s)
        chunks = yield from _relay(self.runner.stream(EditJob(request)))
        result = self._finish_stream(chunks, edit_result_text(request, (audio_text or "").strip()), s, edit_type,
                                     check=False)
        return self._write_api(result, session_hash, edit_type), result.text, s

    def _write_api(self, result: EngineResult, session_hash: str | None, stem: str) -> str:
        path = self._api_dir(session_hash) / f"api-{stem}-{uuid.uuid4().hex[:10]}.wav"
        out = write_wav(path, result.audio.samples, result.audio.sample_rate)
        self._count_written(path, copies=2)      # Gradio serves it from a copy of the same size
        return out
