"""Hostile voice-library zips (issue 26) through every door: the core importer, ``POST /v1/voices/import`` and
``voices import`` in the CLI (the app's ``/script`` ``voices_zip`` is in test_fuzz.py). Each archive is refused
with a typed error / 400 / exit 2 that names the problem, and the library is exactly as before: no voice
added or changed, no staging folder left behind."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from stepedit_core import cli
from stepedit_core.interface import AudioClip
from stepedit_core.server import create_server
from stepedit_core.voice_archive import MAX_ARCHIVE_VOICES, MAX_ENTRY_BYTES, MAX_MANIFEST_BYTES, ArchiveError
from stepedit_core.voices import MAX_STORED_RATE, VoiceLibrary
from tests.fake_engine import FakeEngine
from tests.hostile_inputs import VOICE_TEXT, good_wav, make_hostile_zips, voice_zip

INFLATED_MANIFEST = 64 << 20          # the bench (bench/bomb.py) inflates 1 GiB; 64 MB shows the bound here
ZIPS = make_hostile_zips(INFLATED_MANIFEST)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under the library with its content hash."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def library(tmp_path) -> VoiceLibrary:
    lib = VoiceLibrary(tmp_path / "voices")
    lib.save("keep", AudioClip.from_file(good_wav()), "the voice that must survive")
    return lib


# ------------------------------------------------------------------ the core
@pytest.mark.parametrize("case", sorted(ZIPS))
def test_every_hostile_zip_is_refused_and_the_library_is_intact(library, case):
    data, phrase = ZIPS[case]
    before = snapshot(library.root)
    with pytest.raises(ArchiveError) as err:
        library.import_zip(data, label="voices.zip")
    message = str(err.value)
    assert phrase in message and message.startswith("voices.zip"), message
    assert "Traceback" not in message and "/tmp" not in message and len(message) < 400, message
    assert snapshot(library.root) == before
    assert [p.name for p in library.root.iterdir() if p.name.startswith(".")] == []   # no staging left


def test_a_duplicate_after_a_valid_voice_saves_nothing(library):
    wav = good_wav()
    data = voice_zip([{"name": "first", "text": VOICE_TEXT, "file": "a.wav"},
                      {"name": "FIRST", "text": VOICE_TEXT, "file": "b.wav"}], {"a.wav": wav, "b.wav": wav})
    with pytest.raises(ArchiveError, match="both named"):
        library.import_zip(data)
    assert library.names() == ["keep"]


def test_a_bad_voice_late_in_the_archive_saves_none_of_the_earlier_ones(library):
    wav = good_wav()
    voices = [{"name": f"v{i}", "text": VOICE_TEXT, "file": f"{i}.wav"} for i in range(3)]
    data = voice_zip(voices, {"0.wav": wav, "1.wav": wav, "2.wav": b"RIFF not audio at all"})
    with pytest.raises(ArchiveError, match="v2"):
        library.import_zip(data)
    assert library.names() == ["keep"]


def test_a_clash_with_the_library_is_refused_before_decoding(library):
    data = voice_zip([{"name": "KEEP", "text": VOICE_TEXT, "file": "a.wav"}], {"a.wav": b"not audio"})
    with pytest.raises(ArchiveError, match="already has voices named 'KEEP'"):
        library.import_zip(data)


def test_valid_imports_and_overwrite_still_work(library, tmp_path):
    exported = library.export_zip()
    other = VoiceLibrary(tmp_path / "other")
    assert [v.name for v in other.import_zip(exported)] == ["keep"]
    before = snapshot(other.root)
    with pytest.raises(ArchiveError, match="already has"):
        other.import_zip(exported)
    assert snapshot(other.root) == before
    assert [v.name for v in other.import_zip(exported, overwrite=True)] == ["keep"]
    assert other.get("keep").text == "the voice that must survive"


def test_voices_are_stored_mono_at_a_bounded_rate(library):
    rate = 96000
    t = np.arange(2 * rate) / rate
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 200 * t), 0.2 * np.sin(2 * np.pi * 300 * t)], 1)
    buf = io.BytesIO()
    sf.write(buf, stereo.astype(np.float32), rate, format="FLAC")
    voice = library.import_zip(voice_zip([{"name": "hi-fi", "text": VOICE_TEXT, "file": "a.flac"}],
                                         {"a.flac": buf.getvalue()}))[0]
    info = sf.info(str(voice.audio_path))
    assert (voice.sample_rate, info.samplerate, info.channels) == (MAX_STORED_RATE, MAX_STORED_RATE, 1)
    assert abs(voice.seconds - 2.0) < 1e-3
    assert library.find_by_audio(voice.clip()) == voice                 # the stored clip is what is recognised


def test_the_bounds_are_counted_not_read_from_headers():
    assert MAX_MANIFEST_BYTES < INFLATED_MANIFEST and MAX_ENTRY_BYTES < 100 << 20
    data, _ = ZIPS["manifest_inflates_declares_4gb"]
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("manifest.json")
    assert info.file_size == 0xFFFFFFFE and len(data) < 2 << 20         # the header says 4 GB, the zip is tiny
    assert len(ZIPS["too_many_voices"][0]) < 1 << 20
    assert json.loads(zipfile.ZipFile(io.BytesIO(ZIPS["too_many_voices"][0])).read("manifest.json"))["voices"][
        MAX_ARCHIVE_VOICES]


def test_a_device_or_missing_path_is_refused_without_reading(tmp_path):
    lib = VoiceLibrary(tmp_path / "voices")
    with pytest.raises(ArchiveError, match="not a regular file"):
        lib.import_zip("/dev/zero", label="/dev/zero")
    with pytest.raises(ArchiveError, match="was not found"):
        lib.import_zip(tmp_path / "missing.zip", label="missing.zip")


# ------------------------------------------------------------------ HTTP
@pytest.fixture
def client(library):
    return TestClient(create_server(FakeEngine(), library), raise_server_exceptions=False)


@pytest.mark.parametrize("case", sorted(ZIPS))
def test_http_import_answers_400_naming_the_problem(client, library, case):
    data, phrase = ZIPS[case]
    before = snapshot(library.root)
    resp = client.post("/v1/voices/import", files={"file": ("hostile.zip", data, "application/zip")})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert phrase in error["message"] and "hostile.zip" in error["message"], error
    assert error["code"] == "invalid_value"
    assert snapshot(library.root) == before
    assert client.get("/v1/health").status_code == 200                   # the server carries on


# ------------------------------------------------------------------ CLI
@pytest.mark.parametrize("case", sorted(ZIPS))
def test_cli_import_exits_2_naming_the_problem(library, tmp_path, capsys, case):
    data, phrase = ZIPS[case]
    path = tmp_path / "hostile.zip"
    path.write_bytes(data)
    before = snapshot(library.root)
    code = cli.main(["voices", "import", str(path), "--voices-dir", str(library.root)], engine=FakeEngine())
    err = capsys.readouterr().err
    assert code == 2 and phrase in err and "unexpected" not in err, err
    assert snapshot(library.root) == before


def test_cli_import_of_a_device_exits_2_at_once(library, capsys):
    code = cli.main(["voices", "import", "/dev/zero", "--voices-dir", str(library.root)], engine=FakeEngine())
    assert code == 2 and "not a regular file" in capsys.readouterr().err
