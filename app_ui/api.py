"""The public, stateless API (also the MCP tools): clone, edit, paralinguistic, edit_words, transcribe, engine_info,
plan.

Each endpoint takes audio and text explicitly and returns a wav file, its transcript and the seed used,
so API and MCP clients chain edits without any server-side session (feed one call's audio and text into
the next). Function names and docstrings are the API: Gradio names MCP tools after the function and
documents parameters from the ``Args:`` section.
"""
from __future__ import annotations

import dataclasses

import gradio as gr

from stepedit_core import catalog, checks, plans, validation
from stepedit_core.errors import StepEditError
from stepedit_core.interface import Engine
from stepedit_core.service import API_FIELDS, parse_selection, recipe_of_selection, service_for

from .guard import RefusedFile
from .runner import error_message
from .studio import Stream, Studio, wav_bytes

EDIT_TYPES_NO_PARA = tuple(t for t in catalog.AUDIO_EDIT_TYPES if t != catalog.PARALINGUISTIC)


EDIT_DOC = f"""Edit the emotion, speaking style or speed of speech, denoise it, or remove silences.

    Sub-types (edit_info) by edit type. emotion: {", ".join(catalog.EMOTIONS)}. style: {", ".join(catalog.STYLES)}.
    speed: {", ".join(catalog.SPEEDS)}. denoise and vad take none (empty edit_info).

    Args:
        audio: the speech to edit (at most 30 s for the real model).
        audio_text: what the audio says (may be empty for denoise and vad).
        edit_type: one of emotion, style, speed, denoise, vad.
        edit_info: the sub-type for emotion, style and speed (listed above); empty for denoise and vad.
        n_iterations: 1-5 rounds, each editing the previous round's output (a stronger effect).
        seed: random seed of round 1 (round k uses seed + k - 1); -1 picks a random seed.
        first_word: with last_word, edit only these words (0-based, inclusive, in the order the ASR hears them;
            see the words returned by /check); -1 = the whole clip. Not for denoise or vad.
        last_word: the last word of the selection; -1 = the whole clip.
        region_start: with region_end, edit only this time range (seconds); -1 = the whole clip. Only a window
            around the selection, cut at pauses (at most 30 s), is edited; every other sample stays identical.
        region_end: end of the time range in seconds; -1 = the whole clip.
        max_tries: 1-9; above 1, re-roll with seeds seed, seed+1, ... until the take check's WER/CER is at most
            threshold, and return the best try.
        threshold: the WER/CER (0-1) a try must reach to stop re-rolling.

    Returns:
        The edited speech after the last round (24 kHz wav), its transcript and the seed used.
    """


# ---------------------------------------------------------------------------- validators (run before the queue)
# Thin wrappers over stepedit_core.validation, the one place every door checks its input; each returns
# gr.validate(...) so Gradio shows the message on the component (and API clients get it as ValidationError).
def _verdict(check, *args, **kwargs) -> dict:
    try:
        check(*args, **kwargs)
    except StepEditError as exc:
        return gr.validate(False, error_message(exc))
    return gr.validate(True, "")


def _named(path: str, what: str) -> str:
    """"the prompt audio (voice.wav)": the user's own file name, never the upload folder."""
    return f"{what} ({validation.display_name(path)})"


def check_text(text: str | None, what: str, required: bool = True, speech: bool = False) -> dict:
    return _verdict(validation.check_text, text, what, required=required, speech=speech)


def check_audio(path: str | None, what: str, max_seconds: float = validation.MAX_AUDIO_SECONDS) -> dict:
    if isinstance(path, RefusedFile):          # Gradio would not take it as a file (see guard.py)
        return gr.validate(False, f"{what[0].upper() + what[1:]}: {path.reason}.")
    if not path:
        return gr.validate(False, f"Please provide {what}.")
    if not isinstance(path, str):
        return gr.validate(False, f"{what[0].upper() + what[1:]} must be an uploaded audio file.")
    return _verdict(validation.probe_audio, path, _named(path, what), max_seconds)


def check_seed(seed: float | None) -> dict:
    return _verdict(validation.check_seed, seed)


def check_iterations(n: float | None) -> dict:
    return _verdict(validation.check_iterations, n)


def check_edit(edit_type: str | None, edit_info: str | None) -> tuple[dict, dict]:
    type_ok = _verdict(validation.check_edit_type, edit_type)
    if not type_ok["is_valid"]:
        return type_ok, gr.validate(True, "")
    return type_ok, _verdict(validation.check_edit_info, edit_type, edit_info)


def validate_clone(prompt_audio, prompt_text, target_text, seed, *rest):
    return [check_audio(prompt_audio, "the prompt audio"), check_text(prompt_text, "the prompt transcript"),
            check_text(target_text, "the target text", speech=True), check_seed(seed),
            *[gr.validate(True, "")] * len(rest)]


def validate_edit(audio, audio_text, edit_type, edit_info, n_iterations, seed, *rest):
    text_needed = edit_type not in (catalog.DENOISE, catalog.VAD)
    type_ok, info_ok = check_edit(edit_type, edit_info)
    if type_ok["is_valid"] and edit_type == catalog.PARALINGUISTIC:
        type_ok = gr.validate(False, "Paralinguistic edits need the new text with [tags]: use the "
                                     "paralinguistic endpoint.")
    return [check_audio(audio, "the audio to edit"),
            check_text(audio_text, "the transcript of the audio", required=text_needed),
            type_ok, info_ok, check_iterations(n_iterations), check_seed(seed), *[gr.validate(True, "")] * len(rest)]


def validate_check(audio, text, *rest):
    return [check_audio(audio, "the audio to check"), check_text(text, "the text the audio should say"),
            *[gr.validate(True, "")] * len(rest)]


def validate_paralinguistic(audio, audio_text, new_text, seed, *rest):
    return [check_audio(audio, "the audio to edit"), check_text(audio_text, "the transcript of the audio"),
            check_text(new_text, "the new text with [tags]", speech=True), check_seed(seed),
            *[gr.validate(True, "")] * len(rest)]


def validate_edit_stream(audio, audio_text, edit_type, edit_info, seed, *_rest):
    return validate_edit(audio, audio_text, edit_type, edit_info, 1, seed)[:4] + [check_seed(seed)]


def validate_transcribe(audio, *_rest):
    # one input: Gradio wraps a lone output itself, so the verdict goes back bare (a list would be ignored)
    return check_audio(audio, "the audio to transcribe")


def make_validators(engine: Engine) -> dict:
    """The validators above with ``engine``'s own limits: its longest input and its work cap, so an
    over-long or over-costly request is refused before it takes the engine slot."""
    caps = engine.capabilities()
    service = service_for(engine)

    def audio_check(path, what):
        return check_audio(path, what, min(caps.max_input_seconds, validation.MAX_AUDIO_SECONDS))

    def work_check(kind: str, path, text: str | None, n_iterations=1) -> dict:
        try:
            seconds = validation.probe_audio(path).duration if path else 0.0
            n = validation.check_iterations(n_iterations)
            validation.clean_text(text, "the text")
        except StepEditError:
            return gr.validate(True, "")        # the field checks report these
        return _verdict(service.check_work, kind, seconds, text, n)

    def merge(first: dict, second: dict) -> dict:
        return first if not first["is_valid"] else second

    def clone_v(prompt_audio, prompt_text, target_text, seed, *rest):
        out = validate_clone(prompt_audio, prompt_text, target_text, seed, *rest)
        out[0] = audio_check(prompt_audio, "the prompt audio")
        out[2] = merge(out[2], work_check(catalog.CLONE, prompt_audio, target_text))
        return out

    def edit_v(audio, audio_text, edit_type, edit_info, n_iterations, seed, *rest):
        out = validate_edit(audio, audio_text, edit_type, edit_info, n_iterations, seed, *rest)
        out[0] = merge(audio_check(audio, "the audio to edit"),
                       work_check(str(edit_type), audio, audio_text, n_iterations) if out[4]["is_valid"]
                       and out[2]["is_valid"] else gr.validate(True, ""))
        return out

    def para_v(audio, audio_text, new_text, seed, *rest):
        out = validate_paralinguistic(audio, audio_text, new_text, seed, *rest)
        out[0] = merge(audio_check(audio, "the audio to edit"),
                       work_check(catalog.PARALINGUISTIC, audio, new_text))
        return out

    def transcribe_v(audio, *_rest):     # a bare verdict: see validate_transcribe
        return merge(audio_check(audio, "the audio to transcribe"), work_check(catalog.TRANSCRIBE, audio, None))

    def take_work(kind: str, tree, base_take, text: str | None, n_iterations=1) -> dict:
        """The work cap for a session action on take ``base_take`` of ``tree`` (its length, the text)."""
        if not base_take or tree is None or not tree.has(base_take):
            return gr.validate(True, "")        # the action itself names a missing take
        try:
            n = validation.check_iterations(n_iterations)
            validation.clean_text(text, "the text")
        except StepEditError:
            return gr.validate(True, "")
        return _verdict(service.check_work, kind, tree.get(base_take).duration, text, n)

    return {"clone": clone_v, "edit": edit_v, "paralinguistic": para_v, "transcribe": transcribe_v,
            "take_work": take_work}


# ---------------------------------------------------------------------------- streaming
def play(stream: Stream, n_other: int):
    """Relay a streamed action to a streaming ``gr.Audio`` (the first output) as 16-bit wav chunks, leaving
    the other ``n_other`` outputs untouched; returns what the action returns."""
    try:
        while True:
            try:
                chunk = next(stream)
            except StopIteration as stop:
                return stop.value
            if len(chunk):
                yield (wav_bytes(chunk),) + (gr.skip(),) * n_other
    finally:
        stream.close()          # a cancel (Gradio closes this generator) reaches the engine at once


# ---------------------------------------------------------------------------- endpoints
def make_api(studio: Studio) -> dict:
    """The endpoint functions, bound to ``studio``; keys are the api names."""
    return {**_whole_endpoints(studio), **_info_endpoints(studio), **_stream_endpoints(studio)}


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


def _whole_endpoints(studio: Studio) -> dict:
    """clone, edit, paralinguistic: one whole take each (re-rolled with max_tries)."""
    def clone(prompt_audio: str, prompt_text: str, target_text: str, seed: int = -1, max_tries: int = 1,
              threshold: float = checks.DEFAULT_RETRY_THRESHOLD,
              request: gr.Request = None, progress=gr.Progress()) -> tuple[str, str, int]:
        """Zero-shot voice clone: speak target_text in the voice of prompt_audio.

        Args:
            prompt_audio: 3-30 s recording of the voice to clone (wav, flac, mp3, ...).
            prompt_text: exactly what prompt_audio says.
            target_text: the text to speak; may start with [Cantonese], [Sichuanese], [Japanese] or [Korean].
            seed: random seed; the same seed and inputs give the same audio. -1 picks a random seed.
            max_tries: 1-9; above 1, re-roll with seeds seed, seed+1, ... until the take check's WER/CER is at
                most threshold, and return the best try.
            threshold: the WER/CER (0-1) a try must reach to stop re-rolling.

        Returns:
            The cloned speech (24 kHz wav), its transcript and the seed that was used.
        """
        return studio.clone_once(prompt_audio, prompt_text, target_text, seed, _session(request),
                                 *_retry(max_tries, threshold))

    def edit(audio: str, audio_text: str, edit_type: str, edit_info: str = "", n_iterations: int = 1,
             seed: int = -1, first_word: int = -1, last_word: int = -1, region_start: float = -1,
             region_end: float = -1, max_tries: int = 1, threshold: float = checks.DEFAULT_RETRY_THRESHOLD,
             request: gr.Request = None, progress=gr.Progress()) -> tuple[str, str, int]:
        return studio.edit_once(audio, audio_text, edit_type, edit_info, None, n_iterations, seed,
                                _session(request), region_of(first_word, last_word, region_start, region_end),
                                *_retry(max_tries, threshold))

    edit.__doc__ = EDIT_DOC

    def paralinguistic(audio: str, audio_text: str, new_text: str, seed: int = -1, max_tries: int = 1,
                       threshold: float = checks.DEFAULT_RETRY_THRESHOLD,
                       request: gr.Request = None, progress=gr.Progress()) -> tuple[str, str, int]:
        """Add non-verbal sounds (laughter, breathing, sighs, ...) where [tags] appear in the text.

        Tags (2026 spellings; the older [Breathing], [Laughter], [Uhm], [Sigh] also work): [sigh], [inhale],
        [laugh], [chuckle], [exhale], [clears throat], [snort], [giggle], [cough], [breath], [uhm], [Confirmation-en],
        [Surprise-oh], [Surprise-ah], [Surprise-wa], [Surprise-yo], [Dissatisfaction-hnn], [Question-ei],
        [Question-ah], [Question-en], [Question-yi], [Question-oh].

        Args:
            audio: the speech to edit.
            audio_text: what the audio says, without tags.
            new_text: the same text with [tags] inserted where the sounds go, e.g. "Well [Laughter] that is funny".
            seed: random seed; -1 picks a random seed.
            max_tries: 1-9; above 1, re-roll with seeds seed, seed+1, ... until the take check's WER/CER is at
                most threshold, and return the best try.
            threshold: the WER/CER (0-1) a try must reach to stop re-rolling.

        Returns:
            The edited speech (24 kHz wav), its transcript (new_text) and the seed used.
        """
        return studio.edit_once(audio, audio_text, catalog.PARALINGUISTIC, None, new_text, 1, seed,
                                _session(request), None, *_retry(max_tries, threshold))

    def edit_words(audio: str, audio_text: str, new_text: str, seed: int = -1,
                   request: gr.Request = None, progress=gr.Progress()) -> tuple[str, str, int]:
        """Change the words of speech like text: replace, insert or delete up to 8 words. Only the changed words
        are regenerated, in the speaker's own voice and with the sentence around them as context; every other
        sample stays bit-identical. The result's take check (heard words, untouched rest) is in its metadata.

        Args:
            audio: the speech to edit.
            audio_text: what the audio says now (empty: transcribed).
            new_text: the same transcript with the words changed, e.g. "See you on Thursday" for "See you on
                Tuesday".
            seed: random seed; -1 picks a random seed.

        Returns:
            The edited speech (24 kHz wav), its transcript (new_text) and the seed used.
        """
        return studio.words_once(audio, audio_text, new_text, seed, _session(request))

    return {"clone": clone, "edit": edit, "paralinguistic": paralinguistic, "edit_words": edit_words}


def _stream_endpoints(studio: Studio) -> dict:
    """clone_stream, edit_stream: the take plays while it is generated, then comes whole."""
    def clone_stream(prompt_audio: str, prompt_text: str, target_text: str, seed: int = -1,
                     request: gr.Request = None):
        """Zero-shot voice clone, streamed: the speech plays while it is generated.

        Args:
            prompt_audio: 3-30 s recording of the voice to clone (wav, flac, mp3, ...).
            prompt_text: exactly what prompt_audio says.
            target_text: the text to speak; may start with [Cantonese], [Sichuanese], [Japanese] or [Korean].
            seed: random seed; -1 picks a random seed.

        Returns:
            The live stream (audio chunks as they are generated), then the whole take as a 24 kHz wav (its
            samples are the stream's chunks, in order), its transcript and the seed that was used.
        """
        path, text, used = yield from play(studio.clone_stream_once(prompt_audio, prompt_text, target_text, seed,
                                                                    _session(request)), 3)
        yield gr.skip(), path, text, used

    def edit_stream(audio: str, audio_text: str, edit_type: str, edit_info: str = "", seed: int = -1,
                    request: gr.Request = None):
        """Edit speech (one round of emotion, style, speed, denoise or vad), streamed while it is generated.

        Args:
            audio: the speech to edit (at most 30 s for the real model).
            audio_text: what the audio says (may be empty for denoise and vad).
            edit_type: one of emotion, style, speed, denoise, vad.
            edit_info: the sub-type for emotion, style and speed (see the edit endpoint); empty otherwise.
            seed: random seed; -1 picks a random seed.

        Returns:
            The live stream, then the whole edited take (24 kHz wav), its transcript and the seed used.
        """
        path, text, used = yield from play(studio.edit_stream_once(audio, audio_text, edit_type, edit_info, None,
                                                                   seed, _session(request)), 3)
        yield gr.skip(), path, text, used

    return {"clone_stream": clone_stream, "edit_stream": edit_stream}


def _info_endpoints(studio: Studio) -> dict:
    """transcribe, check, engine_info."""
    def transcribe(audio: str, progress=gr.Progress()) -> str:
        """Transcribe speech, e.g. to fill in the transcript of a prompt recording.

        Args:
            audio: the speech to transcribe.

        Returns:
            The transcript.
        """
        from .studio import load_clip  # noqa: PLC0415
        caps = studio.runner.engine.capabilities()
        return studio.runner.transcribe(load_clip(audio, "the audio to transcribe", caps.max_input_seconds))

    def check(audio: str, text: str, source_audio: str | None = None, expected_seconds: float = -1,
              progress=gr.Progress()) -> dict:
        """Check a take: transcribe it offline and score it against the text it should say (WER for English,
        CER for Chinese; [tags] ignored), its speaker similarity to source_audio, its duration ratio and
        clipping. Each measure is green, amber or red; the verdict is the worst.

        Args:
            audio: the take to check.
            text: the text it should say.
            source_audio: the voice it should have (the clone prompt or the edited clip); optional.
            expected_seconds: the length it should have; -1 = not checked.

        Returns:
            JSON: error_rate, metric, heard, words [[word, start s, end s], ...], speaker_similarity,
            speaker_model, duration_ratio, clipped, levels, verdict and a one-line summary.
        """
        return studio.check_once(audio, text, source_audio,
                                 float(expected_seconds) if expected_seconds not in (None, "") else None)

    def engine_info() -> dict:
        """Which engine is running and what it supports (edit types and their options, limits, device).

        Returns:
            A JSON object describing the active engine's capabilities.
        """
        return studio.service.engine_info()

    def plan(instructions: str) -> dict:
        """Turn a plain-language instruction (English or Mandarin) into a plan of edit steps, offline: e.g.
        "a bit happier and slower, laugh after 'morning'" or "更开心一点，语速慢一点，在'早上'后面笑一下".

        Args:
            instructions: what to change: emotions, styles, slower / faster with intensity words (slightly /
                a bit = 1 round, quite = 2, much / very = 3), sounds anchored to a word, denoise, remove silences.

        Returns:
            JSON: "plan" (one line a step, in the order they run) and "steps" (edit_type, edit_info, rounds, and
            for a sound its tag, anchor word and position): run each with /edit (n_iterations = rounds) or
            /paralinguistic (the tag inserted at its place in the text).
        """
        try:
            steps = plans.parse_plan(instructions)
        except StepEditError as exc:
            raise gr.Error(error_message(exc)) from None
        return {"plan": plans.describe(steps), "steps": [dataclasses.asdict(s) for s in steps]}

    return {"transcribe": transcribe, "engine_info": engine_info, "check": check, "plan": plan}


def _retry(max_tries, threshold) -> tuple:
    """Optional retry inputs as sent (None = the default); the studio validates them (NaN, fractions, ranges)."""
    return (1 if max_tries is None else max_tries,
            checks.DEFAULT_RETRY_THRESHOLD if threshold is None else threshold)


def region_of(first_word, last_word, region_start, region_end) -> dict | None:
    """API selection arguments (-1 = unset) -> the studio's region dict, or None for the whole clip (the
    service's one parser, naming this API's fields)."""
    try:
        return recipe_of_selection(parse_selection(first_word, last_word, region_start, region_end, names=API_FIELDS))
    except StepEditError as exc:
        raise gr.Error(error_message(exc)) from exc
