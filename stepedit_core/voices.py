"""A voice library: named prompt voices (prompt audio + its transcript) saved once, used by name.

A voice is what a clone needs from its prompt: the audio, the words spoken in it, and, for the real engine, the
prompt's dual-codebook tokens (41.67 tokens/s) cached under the key of the tokenizer that produced them, so a
saved voice is never tokenised twice. Layout on disk, one folder per voice under the library root::

    ROOT/<slug>/voice.json     {"name", "text", "sample_rate", "seconds", "created", "prompt_tokens": {key: [...]}}
    ROOT/<slug>/prompt.wav     the prompt as given (mono float32 WAV at its own rate)

Export/import is a zip with ``manifest.json`` ({"format": FORMAT, "version", "voices": [{"name", "text",
"file"}]}) and one WAV per voice. Imports are checked by :mod:`stepedit_core.voice_archive` (sizes counted
while inflating, the manifest's types, each voice's audio header before decoding) and staged whole before
anything moves into the library, so a hostile archive cannot write outside it, half-write it or exhaust memory.
A voice is stored mono at most MAX_STORED_RATE (a 60 s voice: at most 11.5 MB on disk).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import time
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import InvalidInputError
from .interface import MAX_TEXT_CHARS, AudioClip
from .voice_archive import FORMAT, FORMAT_VERSION, MAX_ARCHIVE_BYTES, MAX_ARCHIVE_VOICES  # noqa: F401  (re-exported)
from .voice_archive import ArchiveError, VoiceArchive

MAX_NAME_CHARS = 64
MAX_VOICE_SECONDS = 60.0                 # a prompt longer than this only costs time (the model uses ~3-30 s)
MAX_STORED_RATE = 48000                  # a saved prompt above this rate is resampled to it (the model uses 16/24 kHz)
DATA_DIR_ENV = "STEPEDIT_DATA_DIR"


class VoiceNotFoundError(InvalidInputError):
    """No voice of that name in the library."""


def default_root() -> Path:
    """``$STEPEDIT_DATA_DIR/voices``, else the user's data directory (platformdirs), else ~/.stepedit/voices."""
    base = os.environ.get(DATA_DIR_ENV)
    if not base:
        try:
            import platformdirs  # noqa: PLC0415  (a lite-engine dependency; optional for the core)
            base = platformdirs.user_data_dir("stepedit")
        except ImportError:
            base = str(Path.home() / ".stepedit")
    return Path(base) / "voices"


def check_name(name: object) -> str:
    """A voice name: 1..MAX_NAME_CHARS printable characters, trimmed; no path separators or control chars."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("A voice needs a name.")
    name = unicodedata.normalize("NFC", name.strip())
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInputError(f"Voice name {name[:20]!r}... is {len(name)} characters; the limit is "
                                f"{MAX_NAME_CHARS}.")
    if any(unicodedata.category(c).startswith("C") for c in name) or "/" in name or "\\" in name:
        raise InvalidInputError(f"Voice name {name!r} contains a control character or a slash.")
    return name


def check_voice(name: object, clip: AudioClip, text: object) -> tuple[str, str]:
    """Validate what a saved voice holds; returns the cleaned (name, transcript)."""
    name = check_name(name)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(f"Voice {name!r} needs the transcript of its prompt audio.")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInputError(f"The transcript of voice {name!r} has {len(text)} characters; the limit is "
                                f"{MAX_TEXT_CHARS}.")
    if clip.duration > MAX_VOICE_SECONDS:
        raise InvalidInputError(f"The prompt audio of voice {name!r} lasts {clip.duration:.1f} s; the limit "
                                f"is {MAX_VOICE_SECONDS:.0f} s.")
    return name, text.strip()


def _slug(name: str) -> str:
    """Folder name for a voice: lowercase ASCII letters/digits/dashes plus a short hash, so that names that differ
    only in case or script never share a folder on case-insensitive file systems."""
    ascii_part = re.sub(r"[^a-z0-9]+", "-", unicodedata.normalize("NFKD", name).encode("ascii", "ignore")
                        .decode().lower()).strip("-")[:32]
    digest = hashlib.sha256(name.casefold().encode()).hexdigest()[:10]
    return f"{ascii_part or 'voice'}-{digest}"


@dataclass(frozen=True)
class Voice:
    name: str
    text: str                                   # the transcript of the prompt audio
    sample_rate: int
    seconds: float
    folder: Path = field(repr=False)
    created: float = 0.0                        # unix time
    prompt_tokens: dict = field(default_factory=dict, repr=False, compare=False)   # tokenizer key -> [ids]

    @property
    def audio_path(self) -> Path:
        return self.folder / "prompt.wav"

    def clip(self) -> AudioClip:
        return AudioClip.from_file(str(self.audio_path))

    def to_json(self) -> dict:
        return {"name": self.name, "text": self.text, "sample_rate": self.sample_rate,
                "seconds": round(self.seconds, 3), "created": self.created}


class VoiceLibrary:
    """Named voices in a folder (default: :func:`default_root`). Names are unique ignoring case."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_root()

    # ---- reading ----------------------------------------------------------------------------------------
    def list(self) -> list[Voice]:
        if not self.root.is_dir():
            return []
        voices = [v for v in (self._read(d) for d in self.root.iterdir() if d.is_dir()) if v is not None]
        return sorted(voices, key=lambda v: v.name.casefold())

    def names(self) -> list[str]:
        return [v.name for v in self.list()]

    def get(self, name: str) -> Voice:
        name = check_name(name)
        voice = self._read(self.root / _slug(name))
        if voice is None:
            known = ", ".join(self.names()[:10]) or "none saved yet"
            raise VoiceNotFoundError(f"No voice named {name!r} in the library (voices: {known}).")
        return voice

    def __contains__(self, name: str) -> bool:
        try:
            self.get(name)
            return True
        except InvalidInputError:
            return False

    def _read(self, folder: Path) -> Voice | None:
        try:
            meta = json.loads((folder / "voice.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not (folder / "prompt.wav").is_file():
            return None
        return Voice(name=meta["name"], text=meta["text"], sample_rate=int(meta["sample_rate"]),
                     seconds=float(meta["seconds"]), folder=folder, created=float(meta.get("created", 0.0)),
                     prompt_tokens=dict(meta.get("prompt_tokens", {})))

    # ---- writing ----------------------------------------------------------------------------------------
    def save(self, name: str, clip: AudioClip, text: str, *, overwrite: bool = False) -> Voice:
        """Save ``clip`` with its transcript ``text`` under ``name``; refuses an existing name unless
        ``overwrite``."""
        name, text = check_voice(name, clip, text)
        if (self.root / _slug(name)).exists() and not overwrite:
            raise InvalidInputError(f"A voice named {name!r} already exists.")
        tmp = self.root / f".tmp-{_slug(name)}-{os.getpid()}-{time.monotonic_ns()}"
        try:
            self.stage(tmp, name, clip, text)
            self.commit_staged([tmp], overwrite=overwrite)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.get(name)

    def stage(self, folder: Path, name: str, clip: AudioClip, text: str) -> None:
        """Write a whole voice folder at ``folder`` (outside the library's names), stored bounded: mono at
        most MAX_STORED_RATE."""
        name, text = check_voice(name, clip, text)
        clip = stored_clip(clip)
        folder.mkdir(parents=True)
        sf.write(str(folder / "prompt.wav"), np.asarray(clip.samples, np.float32), clip.sample_rate,
                 subtype="FLOAT")
        meta = {"name": name, "text": text, "sample_rate": clip.sample_rate, "seconds": clip.duration,
                "created": time.time(), "audio_sha256": clip_digest(clip), "prompt_tokens": {}}
        (folder / "voice.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    def commit_staged(self, folders: list[Path], *, overwrite: bool = False) -> list[Voice]:
        """Move staged voice folders into the library, all or none: a clash (unless ``overwrite``) is refused
        before anything moves, and voices replaced by ``overwrite`` come back if a move fails."""
        names = [json.loads((f / "voice.json").read_text(encoding="utf-8"))["name"] for f in folders]
        targets = [self.root / _slug(n) for n in names]
        clash = [n for n, t in zip(names, targets) if t.exists()]
        if clash and not overwrite:
            raise InvalidInputError(f"A voice named {clash[0]!r} already exists.")
        moved, replaced = [], []
        try:
            for folder, target in zip(folders, targets):
                if target.exists():
                    aside = folder.with_name(folder.name + ".old")
                    target.rename(aside)
                    replaced.append((aside, target))
                folder.rename(target)              # atomic on one file system: a voice is whole or absent
                moved.append(target)
        except OSError:
            for target in moved:
                shutil.rmtree(target, ignore_errors=True)
            for aside, target in replaced:
                aside.rename(target)
            raise
        for aside, _ in replaced:
            shutil.rmtree(aside, ignore_errors=True)
        return [self.get(n) for n in names]

    def rename(self, old: str, new: str) -> Voice:
        voice, new = self.get(old), check_name(new)
        target = self.root / _slug(new)
        if target.exists() and target != voice.folder:
            raise InvalidInputError(f"A voice named {new!r} already exists.")
        meta = json.loads((voice.folder / "voice.json").read_text(encoding="utf-8"))
        meta["name"] = new
        (voice.folder / "voice.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        if target != voice.folder:
            voice.folder.rename(target)
        return self.get(new)

    def delete(self, name: str) -> None:
        shutil.rmtree(self.get(name).folder)

    def cache_prompt_tokens(self, name: str, key: str, tokens) -> None:
        """Remember the prompt's audio tokens as produced by the tokenizer identified by ``key``."""
        voice = self.get(name)
        meta = json.loads((voice.folder / "voice.json").read_text(encoding="utf-8"))
        meta.setdefault("prompt_tokens", {})[key] = [int(t) for t in tokens]
        tmp = voice.folder / f".voice-{os.getpid()}-{time.monotonic_ns()}.json"
        tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, voice.folder / "voice.json")      # readers see the old or the new file, never half

    def find_by_audio(self, clip: AudioClip) -> Voice | None:
        """The saved voice whose prompt is exactly ``clip`` (same rate and float32 samples), if any: a prompt
        loaded from the library into the clone tab is recognised, so its clone uses the voice's tokens."""
        digest = clip_digest(clip)
        for voice in self.list():
            if voice.sample_rate == clip.sample_rate and _voice_digest(voice) == digest:
                return voice
        return None

    def token_store(self, name: str) -> "VoiceTokens":
        """The voice's prompt-token cache as an engine reads and writes it (``CloneRequest.prompt_store``)."""
        return VoiceTokens(self.root, self.get(name).name)

    # ---- archives ---------------------------------------------------------------------------------------
    def export_zip(self, names: list[str] | None = None) -> bytes:
        """A zip of the named voices (all when ``names`` is None) with a JSON manifest."""
        voices = self.list() if names is None else [self.get(n) for n in names]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            entries = []
            for i, v in enumerate(voices):
                file = f"voices/{i:03d}.wav"
                zf.write(v.audio_path, file)
                entries.append({"name": v.name, "text": v.text, "file": file})
            zf.writestr("manifest.json", json.dumps({"format": FORMAT, "version": FORMAT_VERSION,
                                                     "voices": entries}, ensure_ascii=False, indent=1))
        return buf.getvalue()

    def import_zip(self, data: bytes | str | os.PathLike, *, overwrite: bool = False,
                   label: str = "the archive") -> list[Voice]:
        """Add the voices of an exported zip (bytes or a path); ``label`` names the archive in messages (never
        a server path). Nothing is written unless every voice in it is valid: checked by voice_archive, each
        voice staged to disk as it is decoded (memory holds one), then all moved in (commit_staged)."""
        with VoiceArchive(data, label) as archive:
            voices = archive.manifest(check_name)
            clash = [v.name for v in voices if v.name in self]
            if clash and not overwrite:
                raise ArchiveError(f"{label}: the library already has voices named {', '.join(map(repr, clash))}.")
            self.root.mkdir(parents=True, exist_ok=True)
            staging = self.root / f".import-{os.getpid()}-{time.monotonic_ns()}"
            staging.mkdir()
            try:
                for voice, clip in archive.clips(voices, MAX_VOICE_SECONDS):
                    try:
                        self.stage(staging / str(voice.number), voice.name, clip, voice.text)
                    except InvalidInputError as exc:
                        raise ArchiveError(f"{label}: {exc}") from None
                return self.commit_staged([staging / str(v.number) for v in voices], overwrite=overwrite)
            finally:
                shutil.rmtree(staging, ignore_errors=True)


def stored_clip(clip: AudioClip) -> AudioClip:
    """``clip`` as a voice is stored: mono (always) at most MAX_STORED_RATE."""
    if clip.sample_rate <= MAX_STORED_RATE:
        return clip
    import soxr  # noqa: PLC0415  (streams in C: ~no memory beyond the output; torchaudio's sinc needs ~3x more)
    samples = soxr.resample(np.asarray(clip.samples, np.float32), clip.sample_rate, MAX_STORED_RATE, quality="HQ")
    return AudioClip(samples=samples.astype(np.float32, copy=False), sample_rate=MAX_STORED_RATE)


def clip_digest(clip: AudioClip) -> str:
    """SHA-256 of a clip's rate and float32 samples (what a saved prompt is recognised by)."""
    h = hashlib.sha256(str(int(clip.sample_rate)).encode())
    h.update(np.ascontiguousarray(clip.samples, dtype=np.float32).tobytes())
    return h.hexdigest()


def _voice_digest(voice: Voice) -> str | None:
    """The prompt's digest from voice.json, or from its WAV for voices saved before it was recorded."""
    try:
        meta = json.loads((voice.folder / "voice.json").read_text(encoding="utf-8"))
        return meta.get("audio_sha256") or clip_digest(voice.clip())
    except (OSError, ValueError, InvalidInputError):
        return None


@dataclass(frozen=True)
class VoiceTokens:
    """:class:`~stepedit_core.interface.PromptTokenStore` of one library voice (picklable: a folder and a
    name). A voice renamed or deleted meanwhile just stops caching; it never fails a clone."""
    root: Path
    name: str

    def load(self, key: str) -> list[int] | None:
        try:
            return VoiceLibrary(self.root).get(self.name).prompt_tokens.get(key)
        except InvalidInputError:
            return None

    def store(self, key: str, tokens) -> None:
        try:
            VoiceLibrary(self.root).cache_prompt_tokens(self.name, key, tokens)
        except (InvalidInputError, OSError):
            pass


__all__ = ["Voice", "VoiceLibrary", "VoiceTokens", "clip_digest", "VoiceNotFoundError", "check_name", "check_voice", "default_root"]
