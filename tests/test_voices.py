"""Voice library: save / list / rename / delete, prompt-token cache, zip export/import round trip, hostile zips."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from stepedit_core.errors import InvalidInputError
from stepedit_core.interface import AudioClip
from stepedit_core.voices import MAX_NAME_CHARS, VoiceLibrary, VoiceNotFoundError


def tone(seconds=1.0, sr=16000, f=220.0) -> AudioClip:
    t = np.arange(int(seconds * sr)) / sr
    return AudioClip.from_array((0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), sr)


def test_save_list_get_rename_delete(tmp_path):
    lib = VoiceLibrary(tmp_path)
    assert lib.list() == []
    a = lib.save("Alice", tone(f=220), "  Hello there.  ")
    lib.save("bob", tone(seconds=0.5, sr=24000, f=330), "你好。")
    assert lib.names() == ["Alice", "bob"]
    assert a.text == "Hello there." and a.sample_rate == 16000 and a.seconds == pytest.approx(1.0)
    np.testing.assert_array_equal(lib.get("Alice").clip().samples, tone(f=220).samples)   # float WAV: exact
    with pytest.raises(InvalidInputError, match="already exists"):
        lib.save("ALICE", tone(), "x")                                     # names are unique ignoring case
    lib.rename("Alice", "Alicia")
    assert lib.names() == ["Alicia", "bob"] and "Alice" not in lib and "alicia" in lib
    with pytest.raises(InvalidInputError, match="already exists"):
        lib.rename("bob", "Alicia")
    lib.delete("bob")
    assert lib.names() == ["Alicia"]
    with pytest.raises(VoiceNotFoundError, match="'bob'.*Alicia"):
        lib.get("bob")


@pytest.mark.parametrize("name", ["", "   ", "a/b", "..\\x", "tab\there", "x" * (MAX_NAME_CHARS + 1), None, 3])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(InvalidInputError):
        VoiceLibrary(tmp_path).save(name, tone(), "text")


def test_bad_voice_content_is_refused(tmp_path):
    lib = VoiceLibrary(tmp_path)
    with pytest.raises(InvalidInputError, match="transcript"):
        lib.save("a", tone(), "   ")
    with pytest.raises(InvalidInputError, match="lasts 61.0 s"):
        lib.save("a", tone(seconds=61, sr=8000), "text")
    assert lib.list() == [] and not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())


def test_prompt_tokens_are_cached_per_tokenizer(tmp_path):
    lib = VoiceLibrary(tmp_path)
    lib.save("a", tone(), "text")
    lib.cache_prompt_tokens("a", "stepaudio@rev1", np.arange(10))
    assert lib.get("a").prompt_tokens == {"stepaudio@rev1": list(range(10))}
    lib.save("a", tone(f=500), "other", overwrite=True)                 # new audio: the cache goes with it
    assert lib.get("a").prompt_tokens == {}


def test_export_import_round_trip(tmp_path):
    src = VoiceLibrary(tmp_path / "src")
    src.save("Alice", tone(f=220), "Hello.")
    src.save("Zoë", tone(seconds=0.7, sr=24000, f=440), "Ça va ?")
    data = src.export_zip()
    dst = VoiceLibrary(tmp_path / "dst")
    got = dst.import_zip(data)
    assert [v.name for v in got] == ["Alice", "Zoë"] and dst.names() == ["Alice", "Zoë"]
    for name in ("Alice", "Zoë"):
        a, b = src.get(name), dst.get(name)
        assert (a.text, a.sample_rate) == (b.text, b.sample_rate)
        np.testing.assert_array_equal(a.clip().samples, b.clip().samples)
    with pytest.raises(InvalidInputError, match="already has voices named 'Alice', 'Zoë'"):
        dst.import_zip(data)
    dst.import_zip(data, overwrite=True)
    assert dst.names() == ["Alice", "Zoë"]
    only = VoiceLibrary(tmp_path / "one")
    only.import_zip(src.export_zip(["Zoë"]))
    assert only.names() == ["Zoë"]


def _zip(files: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_hostile_archives_get_clear_messages_and_write_nothing(tmp_path):
    lib = VoiceLibrary(tmp_path / "lib")
    good = VoiceLibrary(tmp_path / "src")
    good.save("ok", tone(), "text")
    wav = good.export_zip()
    with zipfile.ZipFile(io.BytesIO(wav)) as zf:
        wav_bytes = zf.read("voices/000.wav")
    manifest = {"format": "stepedit-voices", "version": 1}
    cases = {
        "not a zip": b"hello",
        "no manifest": _zip({"voices/000.wav": wav_bytes}),
        "manifest not json": _zip({"manifest.json": "{", "voices/000.wav": wav_bytes}),
        "wrong format": _zip({"manifest.json": json.dumps({"format": "x", "voices": []})}),
        "traversal": _zip({"manifest.json": json.dumps({**manifest, "voices": [
            {"name": "a", "text": "t", "file": "../../etc/passwd"}]})}),
        "bad audio": _zip({"manifest.json": json.dumps({**manifest, "voices": [
            {"name": "a", "text": "t", "file": "v.wav"}]}), "v.wav": b"RIFF0000WAVEjunk"}),
        "second voice bad": _zip({"manifest.json": json.dumps({**manifest, "voices": [
            {"name": "a", "text": "t", "file": "v.wav"}, {"name": "b/c", "text": "t", "file": "v.wav"}]}),
            "v.wav": wav_bytes}),
        "no text": _zip({"manifest.json": json.dumps({**manifest, "voices": [
            {"name": "a", "file": "v.wav"}]}), "v.wav": wav_bytes}),
    }
    for what, data in cases.items():
        with pytest.raises(InvalidInputError) as err:
            lib.import_zip(data, label="voices.zip")
        assert str(err.value).startswith("voices.zip"), (what, str(err.value))
        assert str(tmp_path) not in str(err.value)
    assert lib.list() == []
