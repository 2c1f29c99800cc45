"""Supply chain: every lite-engine model file is checked against the sha256 recorded in the code."""
from __future__ import annotations

import pytest

from stepedit_core.errors import ModelUnavailableError
from stepedit_core.listen import models


def test_tampered_cached_model_is_refused_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    planted = tmp_path / "lite" / models.KOKORO_FILENAME
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"\x08\x07" + bytes(4096))            # a cached "model" someone swapped in
    with pytest.raises(ModelUnavailableError, match="does not match its recorded sha256") as err:
        models.kokoro_model_path()
    assert "pip install --force-reinstall" in str(err.value) and "tampered" in str(err.value)


def test_tampered_whisper_side_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    folder = tmp_path / "lite" / models.WHISPER_DIRNAME
    folder.mkdir(parents=True)
    for name in ("model.bin", *models.WHISPER_SIDE_FILES):
        (folder / name).write_text("{}")
    with pytest.raises(ModelUnavailableError, match="model.bin does not match"):
        models.whisper_model_dir()


def test_shipped_data_file_with_another_hash_is_refused(monkeypatch):
    monkeypatch.setitem(models.EXPECTED_SHA256, "vocab.json", "0" * 64)
    with pytest.raises(ModelUnavailableError, match="vocab.json does not match"):
        models.kokoro_data_file("vocab.json")


def test_the_real_files_match_and_are_hashed_once(monkeypatch):
    path = models.kokoro_model_path()                          # the shared cache: assembled once per machine
    assert models.file_sha256(path) == models.EXPECTED_SHA256[models.KOKORO_FILENAME]
    calls = []
    monkeypatch.setattr(models, "file_sha256", lambda p: calls.append(p) or "x")
    assert models.kokoro_model_path() == path and calls == []    # verified earlier in this process
