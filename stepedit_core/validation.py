"""The one place every public input is checked: named limits and checks with messages a user understands.

Every door (the app's UI and its gradio API / MCP tools, the CLI and the HTTP server) calls these functions,
directly or through :func:`stepedit_core.interface.validate_clone` / ``validate_edit`` and
:func:`stepedit_core.audio.load_audio`, so the same input gets the same answer everywhere. Each check
raises :class:`~stepedit_core.errors.InvalidInputError` (or ``AudioDecodeError``) naming what the caller
sent — an uploaded file by its own name, never a server path.

Audio files are checked from their header (:func:`probe_audio`, ``soundfile.info``) before a single sample
is decoded, so a small compressed file that would decode to gigabytes is refused cheaply.
"""
from __future__ import annotations

import io
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf

from . import catalog
from .errors import AudioDecodeError, InvalidInputError, shown  # noqa: F401  (shown: re-exported)

# ---------------------------------------------------------------------------- the limits (stated in README)
MAX_TEXT_CHARS = 1000            # the official app's text box limit
MAX_WORD_CHARS = 60              # longest run of letters without a space (longest dictionary words are ~45)
MAX_ITERATIONS = 5               # official CLI allows any n; the app offers up to 5 rounds
MAX_SEED = 2**31 - 1
MIN_AUDIO_SECONDS = 0.1          # shorter clips carry no usable voice or words
MAX_AUDIO_SECONDS = 120.0        # hard cap of any decode, above every engine's own max_input_seconds
MIN_SAMPLE_RATE = 8000           # telephone audio
MAX_SAMPLE_RATE = 192000         # studio rates; more only costs memory
MAX_CHANNELS = 8                 # 7.1 surround
MAX_REQUEST_SECONDS = 60.0       # CPU engines refuse requests they estimate to need longer (one engine slot)
# The neural engine: a ZeroGPU allocation lasts at most 300 s (app_ui.runner.MAX_GPU_SECONDS) and the app asks
# for 1.5 x the engine's estimate (GPU_SAFETY), so a request estimated above 200 s could not finish in one.
MAX_NEURAL_REQUEST_SECONDS = 200.0
# On a CPU (or MPS) the real model is slow but nobody else waits for a GPU slot: a request may take up to half
# an hour (a 30 s edit with the int8 LLM is ~5 min: BENCHMARKS.md), with progress; longer ones are refused.
MAX_NEURAL_CPU_REQUEST_SECONDS = 1800.0
SILENCE_DBFS = -55.0             # loudest 32 ms frame below this: the audio is silent (no speech to use)
SILENCE_FRAME_S = 0.032
UTF8_MAX_BYTES = 4                # bytes of one character in UTF-8
STEADY_RANGE_DB = 1.5            # frame levels (10th..95th percentile) within this: a steady tone or noise

AudioSource = Union[str, os.PathLike, bytes, BinaryIO]

_NON_CJK_WORD = re.compile(r"[^\W\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]{%d,}" % (MAX_WORD_CHARS + 1))
_TAG = re.compile(r"\[[^\[\]]{1,40}\]")
_PATHLIKE = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][^\\/\s'\"]+){2,}")


# ---------------------------------------------------------------------------- names and messages
def display_name(source: object, default: str = "the audio data") -> str:
    """What to call ``source`` in a message: a file's own name (never its folder), else ``default``."""
    if isinstance(source, (str, os.PathLike)) and str(source):
        return Path(str(source)).name or default
    name = getattr(source, "name", None)
    if isinstance(name, str) and name:
        return Path(name).name
    return default


def scrub_paths(message: str) -> str:
    """Replace every absolute-looking path in ``message`` by its last component."""
    return _PATHLIKE.sub(lambda m: re.split(r"[\\/]", m.group(0))[-1], message)


# ---------------------------------------------------------------------------- numbers
def check_int(value: object, what: str, lo: int, hi: int) -> int:
    """A whole number in [lo, hi]; NaN, infinities, fractions, strings and booleans are refused."""
    if isinstance(value, bool) or value is None:
        raise InvalidInputError(f"{what} must be a whole number between {lo} and {hi} (got {shown(value)})")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} must be a whole number between {lo} and {hi} (got {shown(value)})") from None
    if not math.isfinite(number) or not number.is_integer() or not lo <= number <= hi:
        raise InvalidInputError(f"{what} must be a whole number between {lo} and {hi} (got {shown(value)})")
    return int(number)


def check_iterations(value: object) -> int:
    return check_int(value, "the number of iterations", 1, MAX_ITERATIONS)


def check_seed(value: object) -> int | None:
    """None or a negative number mean "random" (None returned); otherwise a whole number <= MAX_SEED."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value < 0:
        return None
    try:
        return check_int(value, "the seed", 0, MAX_SEED)
    except InvalidInputError:
        raise InvalidInputError(f"the seed must be a whole number between 0 and {MAX_SEED}, or -1 for a "
                                f"random seed (got {shown(value)})") from None


# ---------------------------------------------------------------------------- text
def clean_text(text: object, what: str) -> str:
    """NFC text without control or invisible format characters; line breaks and tabs become spaces."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise InvalidInputError(f"{what} must be text (got {type(text).__name__})")
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if ch in "\t\r\n" else ch for ch in text
                   if ch in "\t\r\n" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    return text.strip()


def speakable(text: str) -> bool:
    """True when the text, without [tags], has at least one letter or digit to say."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in _TAG.sub(" ", text))


def check_text(text: object, what: str, *, required: bool = True, speech: bool = False) -> str:
    """Clean ``text`` and check its length; ``speech=True`` also needs words to speak, of sane length."""
    raw_len = len(text) if isinstance(text, str) else 0
    if raw_len > 4 * MAX_TEXT_CHARS:     # do not even normalise a megabyte of text
        raise InvalidInputError(f"{what} is too long ({raw_len} characters; at most {MAX_TEXT_CHARS})")
    text = clean_text(text, what)
    if not text:
        if required:
            raise InvalidInputError(f"{what} is empty")
        return text
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInputError(f"{what} is too long ({len(text)} characters; at most {MAX_TEXT_CHARS})")
    if speech:
        if not speakable(text):
            raise InvalidInputError(f"{what} has no words to speak (only punctuation, symbols or emoji); "
                                    "write at least one word")
        long_word = _NON_CJK_WORD.search(text)
        if long_word:
            raise InvalidInputError(f"{what} has a {len(long_word.group(0))}-letter word "
                                    f"({long_word.group(0)[:12]}…); words may have at most {MAX_WORD_CHARS} "
                                    "letters")
    return text


def read_text_file(path: str | os.PathLike, what: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """A UTF-8 text file, read with a bound: at most UTF8_MAX_BYTES per character of the 4 x ``max_chars``
    :func:`check_text` looks at (so ``/dev/zero`` costs 16 kB, not memory). Invalid UTF-8 or a longer file raise
    InvalidInputError naming the file; a missing one raises OSError (the CLI's exit code 6)."""
    limit = UTF8_MAX_BYTES * 4 * max_chars
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    name = display_name(path, what)
    if len(data) > limit:
        raise InvalidInputError(f"{what} ({name}) is larger than {limit // 1000} kB; a text has at most "
                                f"{max_chars} characters")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{what} ({name}) is not UTF-8 text (byte {exc.start} cannot be decoded); "
                                "save it as UTF-8") from None


# the edit type and its option: one check and one message for every door and the core (catalog.py)
check_edit_type = catalog.check_edit_type
check_edit_info = catalog.check_edit


def check_work(estimated_seconds: float, engine_name: str, limit: float = MAX_REQUEST_SECONDS) -> None:
    """Refuse a request the engine itself expects to take longer than ``limit`` seconds."""
    if estimated_seconds > limit:
        raise InvalidInputError(
            f"this request would take about {estimated_seconds:.0f} s on the {engine_name}; one request may "
            f"take at most {limit:.0f} s: use a shorter text or shorter audio (or split it)")


# ---------------------------------------------------------------------------- audio
@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, before decoding."""
    frames: int
    sample_rate: int
    channels: int
    format: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate > 0 else 0.0


def check_format(frames: int, sample_rate: int, channels: int, name: str,
                 max_seconds: float = MAX_AUDIO_SECONDS) -> None:
    """Rate, channel count and length limits (header numbers or an array's shape)."""
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise InvalidInputError(f"{name} has a sample rate of {sample_rate} Hz; use {MIN_SAMPLE_RATE}-"
                                f"{MAX_SAMPLE_RATE} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise InvalidInputError(f"{name} has {channels} channels; at most {MAX_CHANNELS} are accepted")
    if frames <= 0:
        raise AudioDecodeError(f"{name} is empty (no samples)")
    duration = frames / sample_rate
    if duration < MIN_AUDIO_SECONDS:
        raise InvalidInputError(f"{name} is too short ({duration:.2f} s; at least {MIN_AUDIO_SECONDS} s is needed)")
    limit = min(max_seconds, MAX_AUDIO_SECONDS)
    if duration > limit:
        raise InvalidInputError(f"{name} is {_span(duration)} long; at most {limit:.0f} s is accepted")


def probe_audio(source: AudioSource, what: str | None = None,
                max_seconds: float = MAX_AUDIO_SECONDS) -> AudioInfo:
    """Read only the header of a file and check it; raises before any sample is decoded."""
    name = what or display_name(source)
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    if isinstance(source, (str, os.PathLike)) and not os.path.isfile(source):
        raise AudioDecodeError(f"{name} was not found (upload it again)")
    try:
        info = sf.info(source)
    except Exception as exc:  # noqa: BLE001  libsndfile raises several types for unreadable data
        raise AudioDecodeError(f"{name} is not an audio file this app can read ({_reason(exc)}); "
                               "use wav, flac, ogg or mp3") from exc
    finally:
        if hasattr(source, "seek"):
            source.seek(0)
    frames = int(info.frames) if 0 <= info.frames < 2**62 else -1
    if frames < 0:
        raise AudioDecodeError(f"{name} does not state its length; save it as wav or flac")
    check_format(frames, int(info.samplerate), int(info.channels), name, max_seconds)
    return AudioInfo(frames, int(info.samplerate), int(info.channels), str(info.format))


def check_samples(wav: np.ndarray, sample_rate: int, name: str = "the audio") -> None:
    """Finite samples (decoded data may still hold NaN / Inf in float files)."""
    if not np.all(np.isfinite(wav)):
        raise AudioDecodeError(f"{name} contains NaN or infinite samples")


def loudest_dbfs(wav: np.ndarray, sample_rate: int) -> float:
    """Level of the loudest SILENCE_FRAME_S frame (RMS, dB re full scale); -inf for digital silence."""
    x = np.asarray(wav, dtype=np.float32).reshape(-1)
    n = max(1, int(SILENCE_FRAME_S * sample_rate))
    frames = x[: len(x) // n * n].reshape(-1, n) if len(x) >= n else x[None, :]
    rms = float(np.sqrt(np.max(np.mean(frames.astype(np.float64) ** 2, axis=1)))) if frames.size else 0.0
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def check_not_silent(wav: np.ndarray, sample_rate: int, name: str) -> None:
    """Refuse audio with nothing above SILENCE_DBFS: it has no voice to clone and no words to transcribe."""
    level = loudest_dbfs(wav, sample_rate)
    if level < SILENCE_DBFS:
        shown = "digital silence" if level == -math.inf else f"its loudest moment is {level:.0f} dBFS"
        raise InvalidInputError(f"{name} is silent ({shown}); no speech found")


def check_voice_like(wav: np.ndarray, sample_rate: int, name: str) -> None:
    """Refuse silence and steady sounds (a tone, a square wave, constant noise): speech rises and falls
    by tens of dB between syllables and pauses; a steady sound stays within STEADY_RANGE_DB."""
    check_not_silent(wav, sample_rate, name)
    x = np.asarray(wav, dtype=np.float32).reshape(-1)
    n = max(1, int(SILENCE_FRAME_S * sample_rate))
    if len(x) < 4 * n:
        return
    power = np.mean(x[: len(x) // n * n].reshape(-1, n).astype(np.float64) ** 2, axis=1)
    db = 10.0 * np.log10(power + 1e-12)
    if float(np.percentile(db, 95) - np.percentile(db, 10)) < STEADY_RANGE_DB:
        raise InvalidInputError(f"{name} is a steady sound (a tone or noise), not speech; no speech found")


def _span(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _reason(exc: BaseException) -> str:
    """libsndfile's own reason, without the file path it quotes."""
    text = str(exc).strip()
    text = re.sub(r"Error opening .*?: ", "", text)
    return scrub_paths(text).rstrip(".") or type(exc).__name__
