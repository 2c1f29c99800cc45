"""Importing a voice-library zip without trusting it (``VoiceLibrary.import_zip``; every door calls that).

An archive is checked in this order, and nothing is written to the library unless every step passes:

1. the file: a regular file (never a device or a pipe) or bytes, at most MAX_ARCHIVE_FILE_BYTES;
2. the zip: a readable central directory, at most MAX_ARCHIVE_VOICES + 1 entries, no encrypted entry, only
   stored or deflated entries (deflate is inflated in bounded steps; bzip2 / lzma are not);
3. ``manifest.json``: at most MAX_MANIFEST_BYTES once inflated (counted while reading, never from the header),
   nesting at most MAX_MANIFEST_DEPTH deep (checked before parsing), ``format`` right, ``voices`` a list of at
   most MAX_ARCHIVE_VOICES objects whose ``name``, ``text`` and ``file`` are strings; names unique ignoring
   case, each file named once;
4. each voice: its entry inflated with a MAX_ENTRY_BYTES bound and the whole archive with MAX_ARCHIVE_BYTES,
   the audio header checked (rate, channels, at most voices.MAX_VOICE_SECONDS) before a sample is decoded,
   all voices together at most MAX_IMPORT_SECONDS; then staged to disk (mono, at most voices.MAX_STORED_RATE)
   so memory holds one voice at a time;
5. (``VoiceLibrary.import_zip``) clashes with the library are refused (unless ``overwrite``) before any
   decoding, then the staged folders are moved in.

Damaged archives (a bad CRC, sizes that lie, names that differ between headers, corrupt deflate data) raise
:class:`ArchiveError` naming the entry and the problem, never a server path.
"""
from __future__ import annotations

import io
import json
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .errors import InvalidInputError
from .interface import AudioClip
from .validation import scrub_paths, shown

FORMAT = "stepedit-voices"
FORMAT_VERSION = 1
MAX_ARCHIVE_FILE_BYTES = 100 * 1024 * 1024    # the zip itself (the HTTP upload limit of an archive)
MAX_ARCHIVE_VOICES = 200
MAX_ARCHIVE_BYTES = 200 * 1024 * 1024         # everything an import may inflate, counted while inflating
MAX_ENTRY_BYTES = 64 * 1024 * 1024            # one voice's audio file inflated (60 s at 192 kHz float32: 46 MB)
MAX_MANIFEST_BYTES = 2 * 1024 * 1024          # 200 voices with 1000-character transcripts fit in ~1 MB
MAX_MANIFEST_DEPTH = 8                        # an export nests 3 deep ({"voices": [{...}]})
MAX_IMPORT_SECONDS = 1800.0                   # all voices of one import together (30 min; at 48 kHz ~350 MB)
READ_CHUNK_BYTES = 1024 * 1024
READABLE_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
ENCRYPTED_FLAG = 0x1
# what zipfile / zlib raise for a damaged archive (a bad CRC, short data, a lying header, corrupt deflate)
DAMAGED = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError, struct.error,
           NotImplementedError, RuntimeError)


class ArchiveError(InvalidInputError):
    """A voice-library zip is malformed, too large, or holds an unusable voice."""


@dataclass(frozen=True)
class ArchiveVoice:
    """One voice as the manifest lists it (types checked, values not yet)."""
    number: int               # 1-based position in the manifest
    name: str
    text: str
    file: str


def open_archive(data: bytes | str | os.PathLike, label: str) -> zipfile.ZipFile:
    """The zip in ``data`` (bytes or a path), after the file and central-directory checks (steps 1-2)."""
    if isinstance(data, (bytes, bytearray)):
        if len(data) > MAX_ARCHIVE_FILE_BYTES:
            raise ArchiveError(f"{label} is larger than {MAX_ARCHIVE_FILE_BYTES >> 20} MB.")
        source = io.BytesIO(data)
    else:
        try:
            info = os.stat(data)
        except OSError:
            raise ArchiveError(f"{label} was not found.") from None
        if not stat.S_ISREG(info.st_mode):
            raise ArchiveError(f"{label} is not a regular file (a device, pipe or folder cannot be imported).")
        if info.st_size > MAX_ARCHIVE_FILE_BYTES:
            raise ArchiveError(f"{label} is larger than {MAX_ARCHIVE_FILE_BYTES >> 20} MB.")
        source = data
    try:
        zf = zipfile.ZipFile(source)
    except DAMAGED as exc:
        raise ArchiveError(f"{label} is not a voice-library zip ({_reason(exc)}).") from None
    infos = zf.infolist()
    if len(infos) > MAX_ARCHIVE_VOICES + 1:
        zf.close()
        raise ArchiveError(f"{label} holds {len(infos)} files; a voice library has at most {MAX_ARCHIVE_VOICES} "
                           "voices and a manifest.")
    return zf


class _Reader:
    """Inflates entries with a per-entry and an archive-wide bound, counting the bytes actually produced."""

    def __init__(self, zf: zipfile.ZipFile, label: str):
        self.zf, self.label, self.total = zf, label, 0
        self.infos = {info.filename: info for info in zf.infolist()}

    def read(self, name: str, limit: int) -> bytes:
        info = self.infos.get(name)
        if info is None:
            raise ArchiveError(f"{self.label} has no file {shown(name)}.")
        what = f"{self.label}: {shown(name)}"
        if info.flag_bits & ENCRYPTED_FLAG:
            raise ArchiveError(f"{what} is encrypted; export the voices again without a password.")
        if info.compress_type not in READABLE_METHODS:
            raise ArchiveError(f"{what} uses compression method {info.compress_type}; only stored or deflated "
                               "files are read.")
        pieces, size = [], 0
        try:
            with self.zf.open(info) as f:
                while chunk := f.read(READ_CHUNK_BYTES):
                    size += len(chunk)
                    self.total += len(chunk)
                    if size > limit:
                        raise ArchiveError(f"{what} inflates to more than {_mb(limit)}.")
                    if self.total > MAX_ARCHIVE_BYTES:
                        raise ArchiveError(f"{self.label} inflates to more than {_mb(MAX_ARCHIVE_BYTES)}.")
                    pieces.append(chunk)
        except ArchiveError:
            raise
        except DAMAGED as exc:
            raise ArchiveError(f"{what} is damaged ({_reason(exc)}).") from None
        return b"".join(pieces)


def read_manifest(reader: _Reader, check_name: Callable[[object], str]) -> list[ArchiveVoice]:
    """The manifest's voices, every field type-checked, names (cleaned by ``check_name``) and files unique
    (step 3)."""
    label = reader.label
    raw = reader.read("manifest.json", MAX_MANIFEST_BYTES) if "manifest.json" in reader.infos else None
    if raw is None:
        raise ArchiveError(f"{label} has no manifest.json ({FORMAT}).")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except RecursionError:          # json's C parser stops at the interpreter's recursion limit (~1000 levels)
        raise ArchiveError(f"{label}: manifest.json nests more than {MAX_MANIFEST_DEPTH} levels deep.") from None
    except ValueError as exc:
        raise ArchiveError(f"{label}: manifest.json is not valid JSON ({type(exc).__name__}).") from None
    if _depth(manifest) > MAX_MANIFEST_DEPTH:
        raise ArchiveError(f"{label}: manifest.json nests more than {MAX_MANIFEST_DEPTH} levels deep.")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArchiveError(f"{label} has no valid manifest.json (format {FORMAT!r} expected).")
    entries = manifest.get("voices")
    if not isinstance(entries, list):
        raise ArchiveError(f"{label}: manifest.json has no list of voices.")
    if len(entries) > MAX_ARCHIVE_VOICES:
        raise ArchiveError(f"{label} lists {len(entries)} voices; at most {MAX_ARCHIVE_VOICES} per import.")
    voices, names, files = [], {}, {}
    for k, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise ArchiveError(f"{label}: voice {k} is not an object with name, text and file.")
        for key in ("name", "text", "file"):
            if not isinstance(entry.get(key), str):
                raise ArchiveError(f"{label}: voice {k} has no {key} as text (got {shown(entry.get(key))}).")
        try:
            name = check_name(entry["name"])
        except InvalidInputError as exc:
            raise ArchiveError(f"{label}: voice {k}: {exc}") from None
        if name.casefold() in names:
            raise ArchiveError(f"{label}: voices {names[name.casefold()]} and {k} are both named {name!r} "
                               "(names are unique ignoring case).")
        if entry["file"] in files:
            raise ArchiveError(f"{label}: voices {files[entry['file']]} and {k} name the same file "
                               f"{shown(entry['file'])}; each voice has its own.")
        if entry["file"] not in reader.infos:
            raise ArchiveError(f"{label}: voice {k} names no file inside the archive.")
        names[name.casefold()], files[entry["file"]] = k, k
        voices.append(ArchiveVoice(k, name, entry["text"], entry["file"]))
    return voices


class VoiceArchive:
    """An opened archive: ``manifest()`` (steps 1-3), then ``clips()`` decodes one voice at a time (step 4).
    The library stages and moves them (``VoiceLibrary.import_zip``, step 5)."""

    def __init__(self, data: bytes | str | os.PathLike, label: str = "the archive"):
        self.label = label
        self.zf = open_archive(data, label)
        self.reader = _Reader(self.zf, label)

    def __enter__(self) -> "VoiceArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.zf.close()

    def manifest(self, check_name: Callable[[object], str]) -> list[ArchiveVoice]:
        return read_manifest(self.reader, check_name)

    def clips(self, voices: list[ArchiveVoice], max_seconds: float) -> Iterator[tuple[ArchiveVoice, AudioClip]]:
        """Each voice's clip, its header checked against ``max_seconds`` before decoding; all together at most
        MAX_IMPORT_SECONDS. Only one voice's audio is held at a time."""
        seconds = 0.0
        for voice in voices:
            audio = self.reader.read(voice.file, MAX_ENTRY_BYTES)
            try:
                clip = AudioClip.from_file(audio, f"the audio of voice {voice.name!r}", max_seconds)
            except InvalidInputError as exc:
                raise ArchiveError(f"{self.label}: {exc}") from None
            del audio
            seconds += clip.duration
            if seconds > MAX_IMPORT_SECONDS:
                raise ArchiveError(f"{self.label}: the voices hold more than {MAX_IMPORT_SECONDS / 60:.0f} min of "
                                   "audio together; import them in parts.")
            yield voice, clip


def _depth(value: object) -> int:
    """Deepest nesting of lists and objects in parsed JSON (iterative: no recursion on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _mb(n: int) -> str:
    return f"{n >> 20} MB"


def _reason(exc: BaseException) -> str:
    """The library's reason without any path; entry names are cut to a readable length."""
    kind = "zlib.error" if isinstance(exc, zlib.error) else type(exc).__name__
    text = scrub_paths(str(exc)).strip()
    return f"{kind}: {text[:160]}" if text else kind


__all__ = ["ArchiveError", "ArchiveVoice", "VoiceArchive", "open_archive", "read_manifest", "FORMAT", "FORMAT_VERSION",
           "MAX_ARCHIVE_FILE_BYTES", "MAX_ARCHIVE_VOICES", "MAX_ARCHIVE_BYTES", "MAX_ENTRY_BYTES",
           "MAX_MANIFEST_BYTES", "MAX_MANIFEST_DEPTH", "MAX_IMPORT_SECONDS"]
