"""The engine interface: request and result types, capabilities, validation, and the base class.

Every engine (the neural Step-Audio-EditX engine, the offline lite engine, test fakes) implements
:class:`Engine`. The app only talks to this interface.

Iteration semantics follow the official app (GH:app.py / tts_infer.py ``generate_edit``): round k edits the
output of round k-1; the text that goes with the audio is the new text after a paralinguistic round and the
previous text otherwise.
"""
from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Mapping, Protocol, Sequence

import numpy as np

from . import audio as audio_io
from . import catalog, validation
from .errors import InvalidInputError, UnsupportedEditError
from .validation import MAX_ITERATIONS, MAX_SEED, MAX_TEXT_CHARS  # noqa: F401  (re-exported names)

# progress(fraction in [0, 1], stage description)
Progress = Callable[[float, str], None]
# should_stop() -> True ends a stream early (checked between chunks; the engine stops its work)
StopCheck = Callable[[], bool]

TEXT_FREE_EDITS = (catalog.DENOISE, catalog.VAD)   # official app accepts these without a transcript
STREAM_CHUNK_S = 0.5           # chunk length when an engine without incremental synthesis streams a take


def _no_progress(fraction: float, desc: str) -> None:
    return None


def _never() -> bool:
    return False


def chunk_audio(samples: np.ndarray, sample_rate: int, should_stop: StopCheck | None = None,
                chunk_s: float = STREAM_CHUNK_S) -> Iterator[np.ndarray]:
    """``samples`` in consecutive pieces of ``chunk_s`` seconds (their concatenation is ``samples``)."""
    step = max(1, int(chunk_s * sample_rate))
    for start in range(0, len(samples), step):
        if should_stop is not None and should_stop():
            return
        yield samples[start:start + step]


@dataclass(frozen=True)
class AudioClip:
    """Mono float32 samples at ``sample_rate``; ``raw`` keeps the channel-first array as decoded (C, N)."""
    samples: np.ndarray
    sample_rate: int
    raw: np.ndarray | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_file(cls, source: audio_io.AudioSource, what: str | None = None,
                  max_seconds: float = validation.MAX_AUDIO_SECONDS) -> "AudioClip":
        loaded = audio_io.load_audio(source, what, max_seconds)
        return cls(samples=loaded.wav, sample_rate=loaded.sample_rate, raw=loaded.raw)

    @classmethod
    def from_array(cls, wav: np.ndarray, sample_rate: int) -> "AudioClip":
        return cls(samples=audio_io.check_audio(wav, sample_rate), sample_rate=int(sample_rate))

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def loaded(self) -> np.ndarray:
        """The array the official speaker-name hash sees (channel-first as decoded)."""
        return self.raw if self.raw is not None else self.samples[None, :]

    def resampled(self, sample_rate: int) -> np.ndarray:
        return audio_io.resample(self.samples, self.sample_rate, sample_rate)


class PromptTokenStore(Protocol):
    """Where a saved voice keeps its prompt's audio tokens, one entry per tokenizer key
    (``voices.VoiceLibrary.token_store``). An engine that tokenizes prompts reads it before tokenizing and
    writes it after; the key names the tokenizer weights and the exact samples tokenized, so a stale or
    foreign entry is never used. Engines without a prompt tokenizer ignore it."""

    def load(self, key: str) -> Sequence[int] | None: ...

    def store(self, key: str, tokens: Sequence[int]) -> None: ...


@dataclass(frozen=True)
class CloneRequest:
    prompt_audio: AudioClip
    prompt_text: str
    target_text: str
    seed: int | None = None
    prompt_store: PromptTokenStore | None = field(default=None, repr=False, compare=False)  # a library voice


@dataclass(frozen=True)
class EditRequest:
    audio: AudioClip
    audio_text: str
    edit_type: str
    edit_info: str | None = None
    new_text: str | None = None        # paralinguistic only: the text with [tags] where sounds go
    n_iterations: int = 1
    seed: int | None = None


@dataclass(frozen=True)
class EngineResult:
    """One take: 24 kHz audio plus what produced it."""
    audio: AudioClip
    text: str                          # transcript of this take (with tags after a paralinguistic edit)
    seed: int
    edit_type: str
    edit_info: str | None = None
    iteration: int = 1
    timings: Mapping[str, float] = field(default_factory=dict)   # seconds per stage
    tokens: tuple[int, ...] | None = None                        # generated audio tokens, prompt-token space
    metadata: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Word:
    """One word the ASR heard and when (seconds from the clip's start)."""
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Heard:
    """What an ASR heard: text, language and word times (``Engine.transcribe_words``, the take check)."""
    text: str
    language: str | None
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do, for the UI to show and for validation."""
    engine: str                                   # "stepaudio" | "lite" | ...
    display_name: str
    clone: bool
    edit_options: Mapping[str, tuple[str, ...]]   # supported edit type -> supported options
    transcribe: bool = False
    approximate: bool = False                     # True when results only imitate the real model
    max_input_seconds: float = 30.0
    max_request_seconds: float | None = None      # refuse requests estimated to take longer (None: no cap)
    languages: tuple[str, ...] = ("zh", "en")
    device: str = "cpu"
    notes: str = ""
    display_name_zh: str = ""                     # the name and notes in Chinese, for the app's 中文 UI
    notes_zh: str = ""                            # ("" : the English text is shown)

    def supports(self, edit_type: str, edit_info: str | None = None) -> bool:
        if edit_type == catalog.CLONE:
            return self.clone
        if edit_type not in self.edit_options:
            return False
        options = self.edit_options[edit_type]
        return edit_info is None or not catalog.OPTIONS[edit_type] or edit_info in options


def resolve_seed(seed: int | None) -> int:
    """A caller's seed, or a fresh random one; always in [0, 2**31)."""
    checked = validation.check_seed(seed)
    return secrets.randbelow(MAX_SEED) if checked is None else checked


def round_seed(seed: int, iteration: int) -> int:
    """The seed of round ``iteration`` (1-based) of an iterative edit: one request seed fixes every round."""
    return (seed + iteration - 1) % (MAX_SEED + 1)


def _check_text(text: str | None, what: str, *, required: bool = True, speech: bool = False) -> str:
    return validation.check_text(text, what, required=required, speech=speech)


def _check_clip(clip: AudioClip, what: str, caps: Capabilities, *, voice: bool = False,
                speech: bool = False) -> None:
    if not isinstance(clip, AudioClip):
        raise InvalidInputError(f"{what} is missing")
    validation.check_format(len(clip.samples), int(clip.sample_rate), 1, what, caps.max_input_seconds)
    validation.check_samples(clip.samples, clip.sample_rate, what)
    if speech:
        validation.check_voice_like(clip.samples, clip.sample_rate, what)
    elif voice:
        validation.check_not_silent(clip.samples, clip.sample_rate, what)


def validate_clone(request: CloneRequest, caps: Capabilities) -> CloneRequest:
    if not caps.clone:
        raise UnsupportedEditError(f"{caps.display_name} cannot clone voices")
    _check_clip(request.prompt_audio, "the prompt audio", caps, voice=True)
    return replace(request,
                   prompt_text=_check_text(request.prompt_text, "the prompt transcript"),
                   target_text=_check_text(request.target_text, "the target text", speech=True),
                   seed=resolve_seed(request.seed))


def validate_stream_edit(request: EditRequest, caps: Capabilities) -> EditRequest:
    """An edit that can stream: one round (round k needs all of round k-1 before it starts)."""
    request = validate_edit(request, caps)
    if request.n_iterations != 1:
        raise InvalidInputError("a streamed edit runs one round (n_iterations must be 1)")
    return request


def check_edit_choice(edit_type: object, edit_info: object, caps: Capabilities) -> tuple[str, str | None]:
    """An edit type and its option, known to the catalogue and supported by the engine (every door's
    message for a wrong type or option)."""
    edit_type = validation.check_edit_type(edit_type)
    edit_info = validation.check_edit_info(edit_type, edit_info)
    if not caps.supports(edit_type, edit_info):
        raise UnsupportedEditError(
            f"{caps.display_name} does not support the {edit_type} edit"
            + (f" option {edit_info!r}" if edit_info else ""))
    return edit_type, edit_info


def validate_edit(request: EditRequest, caps: Capabilities) -> EditRequest:
    edit_type, edit_info = check_edit_choice(request.edit_type, request.edit_info, caps)
    n_iterations = validation.check_iterations(request.n_iterations)
    _check_clip(request.audio, "the audio to edit", caps)
    audio_text = _check_text(request.audio_text, "the transcript of the audio",
                             required=edit_type not in TEXT_FREE_EDITS)
    new_text = None
    if edit_type == catalog.PARALINGUISTIC:
        new_text = _check_text(request.new_text, "the new text with [tags]", speech=True)
    return replace(request, edit_type=edit_type, edit_info=edit_info, audio_text=audio_text,
                   new_text=new_text, n_iterations=n_iterations, seed=resolve_seed(request.seed))


def validate_transcribe(clip: AudioClip, caps: Capabilities) -> AudioClip:
    """Audio to transcribe: within the engine's length limit and not silent (whisper loops on silence).
    Engines whose ASR also loops on steady tones and noise add ``validation.check_voice_like``."""
    if not caps.transcribe:
        raise UnsupportedEditError(f"{caps.display_name} cannot transcribe audio")
    _check_clip(clip, "the audio to transcribe", caps, voice=True)
    return clip


def check_work(engine: "Engine", kind: str, audio_seconds: float, text_chars: int = 0,
               n_iterations: int = 1) -> None:
    """Refuse a request ``engine`` estimates to need more than its ``max_request_seconds``."""
    caps = engine.capabilities()
    if caps.max_request_seconds is not None:
        validation.check_work(engine.estimate_seconds(kind, audio_seconds, text_chars, n_iterations),
                              caps.display_name, caps.max_request_seconds)


class Engine(ABC):
    """Clone voices and edit speech. Subclasses implement ``capabilities``, ``_clone`` and ``_edit_once``."""

    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abstractmethod
    def _clone(self, request: CloneRequest, progress: Progress) -> EngineResult:
        """Clone with a validated request (seed resolved)."""

    @abstractmethod
    def _edit_once(self, clip: AudioClip, audio_text: str, request: EditRequest, seed: int,
                   iteration: int, progress: Progress) -> EngineResult:
        """One round of an edit on ``clip`` (the previous round's output from round 2 on)."""

    def clone(self, request: CloneRequest, progress: Progress | None = None) -> EngineResult:
        request = validate_clone(request, self.capabilities())
        check_work(self, catalog.CLONE, request.prompt_audio.duration, len(request.target_text))
        return self._clone(request, progress or _no_progress)

    def edit(self, request: EditRequest, progress: Progress | None = None) -> list[EngineResult]:
        """Run ``n_iterations`` rounds; returns one result per round, each stacked on the previous one."""
        request = validate_edit(request, self.capabilities())
        check_work(self, request.edit_type, request.audio.duration,
                   len(request.new_text or request.audio_text or ""), request.n_iterations)
        progress = progress or _no_progress
        clip, text, results = request.audio, request.audio_text, []
        n = request.n_iterations
        for k in range(1, n + 1):
            def round_progress(fraction: float, desc: str, _k=k) -> None:
                progress(((_k - 1) + fraction) / n, f"round {_k}/{n}: {desc}" if n > 1 else desc)
            result = self._edit_once(clip, text, request, round_seed(request.seed, k), k, round_progress)
            results.append(result)
            clip, text = result.audio, result.text
        return results

    def clone_batch(self, request: CloneRequest, seeds: Sequence[int],
                    progress: Progress | None = None) -> list[EngineResult]:
        """One take per seed (``request.seed`` ignored). Engines that decode candidates together override it
        (StepAudioEngine: one prefill, one batched decode; stepedit_core.batching)."""
        return [self.clone(replace(request, seed=s), progress) for s in seeds]

    def edit_batch(self, request: EditRequest, seeds: Sequence[int],
                   progress: Progress | None = None) -> list[list[EngineResult]]:
        """``edit`` once per seed (``request.seed`` ignored), one list of rounds per seed; see clone_batch."""
        return [self.edit(replace(request, seed=s), progress) for s in seeds]

    # -- streaming: every door (app, API, CLI, HTTP server) plays audio while it is being generated ----------
    def stream_clone(self, request: CloneRequest, should_stop: StopCheck | None = None) -> Iterator[np.ndarray]:
        """Clone, yielding 24 kHz float32 chunks whose concatenation is the take.

        The stream ends early, without finishing the take, when ``should_stop()`` returns True (checked
        between chunks) or when the caller closes the iterator; either way the engine stops working. Pass a
        seed to know it: the seed of a streamed take is the request's (``resolve_seed``).
        """
        request = validate_clone(request, self.capabilities())
        check_work(self, catalog.CLONE, request.prompt_audio.duration, len(request.target_text))
        yield from self._stream_clone(request, should_stop or _never)

    def stream_clone_batch(self, request: CloneRequest, seeds: Sequence[int],
                           should_stop: StopCheck | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """The candidates of a clone (one per seed, ``request.seed`` ignored) streamed: ``(row, chunk)`` pairs,
        row i's chunks concatenating to seed i's take, each row's in order. Engines that decode candidates
        together override it (StepAudioEngine: one batch, every row streaming while it runs); this default
        streams the seeds one after another. Stops as :meth:`stream_clone`."""
        for row, seed in enumerate(seeds):
            for chunk in self.stream_clone(replace(request, seed=seed), should_stop):
                yield row, chunk
            if should_stop is not None and should_stop():
                return

    def stream_edit(self, request: EditRequest, should_stop: StopCheck | None = None) -> Iterator[np.ndarray]:
        """One round of an edit (``n_iterations`` must be 1), yielding 24 kHz float32 chunks; see
        :meth:`stream_clone`. The take's transcript is ``edit_result_text(request, request.audio_text)``."""
        request = validate_stream_edit(request, self.capabilities())
        check_work(self, request.edit_type, request.audio.duration, len(request.new_text or request.audio_text or ""))
        yield from self._stream_edit(request, should_stop or _never)

    def _stream_clone(self, request: CloneRequest, should_stop: StopCheck) -> Iterator[np.ndarray]:
        """The hook :meth:`stream_clone` calls with a validated request within the work cap (engines with
        incremental synthesis override it). Default for engines without incremental synthesis: the whole take, then in STREAM_CHUNK_S pieces."""
        result = self._clone(request, _no_progress)
        yield from chunk_audio(result.audio.resampled(audio_io.OUTPUT_SAMPLE_RATE), audio_io.OUTPUT_SAMPLE_RATE,
                               should_stop)

    def _stream_edit(self, request: EditRequest, should_stop: StopCheck) -> Iterator[np.ndarray]:
        result = self._edit_once(request.audio, request.audio_text, request, request.seed, 1, _no_progress)
        yield from chunk_audio(result.audio.resampled(audio_io.OUTPUT_SAMPLE_RATE), audio_io.OUTPUT_SAMPLE_RATE,
                               should_stop)

    def transcribe(self, clip: AudioClip, language: str | None = None) -> str:
        """Transcribe prompt audio; engines without ASR raise UnsupportedEditError."""
        raise UnsupportedEditError(f"{self.capabilities().display_name} cannot transcribe audio")

    # -- what the take check (stepedit_core.checks.checker_for) takes from an engine ---------------------------
    #: name of the speaker embedder behind :meth:`speaker_embedding` ("campplus", ...); None: the engine has
    #: none and the check uses the lite embedder
    speaker_model: str | None = None

    @property
    def has_own_asr(self) -> bool:
        """True when the engine overrides :meth:`transcribe_words` (else the check uses the lite whisper)."""
        return type(self).transcribe_words is not Engine.transcribe_words

    def transcribe_words(self, clip: AudioClip, language: str | None = None) -> Heard:
        """What ``clip`` says with word times, for the take check and word selections."""
        raise UnsupportedEditError(f"{self.capabilities().display_name} has no speech recogniser of its own")

    def speaker_embedding(self, clip: AudioClip) -> np.ndarray:
        """A speaker embedding (1-D) of ``clip`` by :attr:`speaker_model`, for the check's voice similarity."""
        raise UnsupportedEditError(f"{self.capabilities().display_name} has no speaker embedder")

    def estimate_seconds(self, kind: str, audio_seconds: float, text_chars: int = 0, n_iterations: int = 1,
                         candidates: int = 1) -> float:
        """Rough wall-clock estimate of a request, for progress display and GPU time requests; ``candidates``
        takes of it made in one call (an engine that does not batch makes them one after another)."""
        return candidates * (2.0 + n_iterations * (0.5 * audio_seconds + 0.05 * text_chars))


def edit_result_text(request: EditRequest, audio_text: str) -> str:
    """The transcript of an edit's output (official app semantics)."""
    return request.new_text if request.edit_type == catalog.PARALINGUISTIC and request.new_text else audio_text
