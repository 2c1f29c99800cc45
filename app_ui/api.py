"""The public, stateless API (also the MCP tools): clone, edit, paralinguistic, transcribe, engine_info.

Each endpoint takes audio and text explicitly and returns a wav file, its transcript and the seed used,
so API and MCP clients chain edits without any server-side session (feed one call's audio and text into
the next). Function names and docstrings are the API: Gradio names MCP tools after the function and
documents parameters from the ``Args:`` section.
"""
from __future__ import annotations

import gradio as gr

from stepedit_core import catalog
from stepedit_core.interface import MAX_ITERATIONS, MAX_SEED, MAX_TEXT_CHARS

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

    Returns:
        The edited speech after the last round (24 kHz wav), its transcript and the seed used.
    """


# ---------------------------------------------------------------------------- validators (run before the queue)
def check_text(text: str | None, what: str, required: bool = True) -> dict:
    text = (text or "").strip()
    if required and not text:
        return gr.validate(False, f"Please enter {what}.")
    if len(text) > MAX_TEXT_CHARS:
        return gr.validate(False, f"{what[0].upper() + what[1:]} is too long ({len(text)} characters; at most "
                                  f"{MAX_TEXT_CHARS}).")
    return gr.validate(True, "")


def check_audio(path: str | None, what: str) -> dict:
    return gr.validate(bool(path), f"Please provide {what}.")


def check_seed(seed: float | None) -> dict:
    ok = seed is None or (float(seed).is_integer() and seed <= MAX_SEED)
    return gr.validate(ok, f"The seed must be a whole number ≤ {MAX_SEED} (or −1 for random).")


def check_iterations(n: float | None) -> dict:
    ok = n is not None and float(n).is_integer() and 1 <= n <= MAX_ITERATIONS
    return gr.validate(ok, f"The number of iterations must be between 1 and {MAX_ITERATIONS}.")


def check_edit(edit_type: str | None, edit_info: str | None) -> tuple[dict, dict]:
    if edit_type not in catalog.AUDIO_EDIT_TYPES:
        return (gr.validate(False, f"Unknown edit type {edit_type!r}; use one of "
                                   f"{', '.join(catalog.AUDIO_EDIT_TYPES)}."), gr.validate(True, ""))
    try:
        catalog.check_edit(edit_type, edit_info or None)
    except ValueError as exc:
        return gr.validate(True, ""), gr.validate(False, error_message(exc))
    return gr.validate(True, ""), gr.validate(True, "")


def validate_clone(prompt_audio, prompt_text, target_text, seed, *_rest):
    return [check_audio(prompt_audio, "the prompt audio"), check_text(prompt_text, "the prompt transcript"),
            check_text(target_text, "the target text"), check_seed(seed)]


def validate_edit(audio, audio_text, edit_type, edit_info, n_iterations, seed, *_rest):
    text_needed = edit_type not in (catalog.DENOISE, catalog.VAD)
    return [check_audio(audio, "the audio to edit"),
            check_text(audio_text, "the transcript of the audio", required=text_needed),
            *check_edit(edit_type, edit_info), check_iterations(n_iterations), check_seed(seed)]


def validate_paralinguistic(audio, audio_text, new_text, seed, *_rest):
    return [check_audio(audio, "the audio to edit"), check_text(audio_text, "the transcript of the audio"),
            check_text(new_text, "the new text with [tags]"), check_seed(seed)]


def validate_edit_stream(audio, audio_text, edit_type, edit_info, seed, *_rest):
    return validate_edit(audio, audio_text, edit_type, edit_info, 1, seed)[:4] + [check_seed(seed)]


def validate_transcribe(audio, *_rest):
    return [check_audio(audio, "the audio to transcribe")]


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

    def _session(request: gr.Request | None) -> str | None:
        return getattr(request, "session_hash", None)

    def clone(prompt_audio: str, prompt_text: str, target_text: str, seed: int = -1,
              request: gr.Request = None, progress=gr.Progress()) -> tuple[str, str, int]:
        """Zero-shot voice clone: speak target_text in the voice of prompt_audio.

        Args:
            prompt_audio: 3-30 s recording of the voice to clone (wav, flac, mp3, ...).
            prompt_text: exactly what prompt_audio says.
            target_text: the text to speak; may start with [Cantonese], [Sichuanese], [Japanese] or [Korean].
            seed: random seed; the same seed and inputs give the same audio. -1 picks a random seed.

        Returns:
            The cloned speech (24 kHz wav), its transcript and the seed that was used.
        """
        return studio.clone_once(prompt_audio, prompt_text, target_text, seed, _session(request))

    def edit(audio: str, audio_text: str, edit_type: str, edit_info: str = "", n_iterations: int = 1,
             seed: int = -1, request: gr.Request = None, progress=gr.Progress()) -> tuple[str, str, int]:
        return studio.edit_once(audio, audio_text, edit_type, edit_info, None, n_iterations, seed,
                                _session(request))

    edit.__doc__ = EDIT_DOC

    def paralinguistic(audio: str, audio_text: str, new_text: str, seed: int = -1,
                       request: gr.Request = None, progress=gr.Progress()) -> tuple[str, str, int]:
        """Add non-verbal sounds (laughter, breathing, sighs, ...) where [tags] appear in the text.

        Tags: [Breathing], [Laughter], [Surprise-oh], [Confirmation-en], [Uhm], [Surprise-ah], [Surprise-wa],
        [Sigh], [Question-ei], [Dissatisfaction-hnn].

        Args:
            audio: the speech to edit.
            audio_text: what the audio says, without tags.
            new_text: the same text with [tags] inserted where the sounds go, e.g. "Well [Laughter] that is funny".
            seed: random seed; -1 picks a random seed.

        Returns:
            The edited speech (24 kHz wav), its transcript (new_text) and the seed used.
        """
        return studio.edit_once(audio, audio_text, catalog.PARALINGUISTIC, None, new_text, 1, seed,
                                _session(request))

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

    def transcribe(audio: str, progress=gr.Progress()) -> str:
        """Transcribe speech, e.g. to fill in the transcript of a prompt recording.

        Args:
            audio: the speech to transcribe.

        Returns:
            The transcript.
        """
        from .studio import load_clip  # noqa: PLC0415
        return studio.runner.transcribe(load_clip(audio, "the audio to transcribe"))

    def engine_info() -> dict:
        """Which engine is running and what it supports (edit types and their options, limits, device).

        Returns:
            A JSON object describing the active engine's capabilities.
        """
        caps = studio.runner.engine.capabilities()
        return {"engine": caps.engine, "display_name": caps.display_name, "approximate": caps.approximate,
                "device": caps.device, "clone": caps.clone, "transcribe": caps.transcribe,
                "edit_options": {k: list(v) for k, v in caps.edit_options.items()},
                "max_input_seconds": caps.max_input_seconds, "languages": list(caps.languages),
                "paralinguistic_tags": list(catalog.PARALINGUISTIC_TAGS),
                "language_tags": list(catalog.LANGUAGE_TAGS), "notes": caps.notes}

    return {"clone": clone, "edit": edit, "paralinguistic": paralinguistic, "transcribe": transcribe,
            "engine_info": engine_info, "clone_stream": clone_stream, "edit_stream": edit_stream}
