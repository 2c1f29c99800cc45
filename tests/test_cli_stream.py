"""``--stream`` on the CLI's clone and edit (stepedit_core/cli_stream.py): the audio is written chunk by chunk
through the service's stream entry, to a .wav / .pcm file or as a WAV stream on stdout; the same refusals as a
whole take, and the options that need whole takes refused by name."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf

from stepedit_core import audio_formats, cli
from tests.fake_engine import SR, FakeEngine
from tests.test_cli import tone  # noqa: F401  (fixture)

TEXT = "Streaming from the shell works."


def run(capsysbinary, *argv, engine=None):
    engine = engine or FakeEngine()
    code = cli.main([*argv, "-q"], engine=engine)
    out, err = capsysbinary.readouterr()
    return code, out, err.decode(), engine


def test_clone_streams_into_a_wav_file_that_holds_the_take(capsysbinary, tmp_path, tone):  # noqa: F811
    out = tmp_path / "s.wav"
    code, stdout, err, engine = run(capsysbinary, "clone", "--prompt", str(tone), "--prompt-text", "a tone",
                                    "--text", TEXT, "--seed", "3", "--stream", "--check", "-o", str(out), "--json")
    assert code == cli.EXIT_OK, err
    record = json.loads(stdout)
    assert record["streamed"] is True and record["seed"] == 3 and record["check"]["metric"] == "wer"
    assert engine.chunks_streamed == -(-len(TEXT) // 8) >= 3            # one chunk per 8 characters
    y, sr = sf.read(out, dtype="int16")
    whole = FakeEngine().clone(_clone_request(tone, seed=3)).audio.samples
    assert sr == SR and len(y) == len(whole) and record["seconds"] == pytest.approx(len(y) / SR, abs=1e-3)
    assert np.array_equal(y, np.frombuffer(audio_formats.pcm16(whole), np.int16))   # the same take, streamed


def _clone_request(tone_path, seed):
    from stepedit_core.interface import AudioClip, CloneRequest  # noqa: PLC0415
    return CloneRequest(prompt_audio=AudioClip.from_file(str(tone_path)), prompt_text="a tone", target_text=TEXT,
                        seed=seed)


def test_clone_streams_a_wav_to_stdout_and_the_record_to_stderr(capsysbinary, tone):  # noqa: F811
    code, stdout, err, _ = run(capsysbinary, "clone", "--prompt", str(tone), "--prompt-text", "a tone",
                               "--text", TEXT, "--stream", "-o", "-", "--json")
    assert code == cli.EXIT_OK, err
    assert stdout[:4] == b"RIFF" and stdout[8:12] == b"WAVE"
    assert int.from_bytes(stdout[4:8], "little") == audio_formats.UNKNOWN_SIZE
    samples = np.frombuffer(stdout[audio_formats.WAV_HEADER_BYTES:], np.int16)
    record = json.loads(err.strip().splitlines()[-1])
    assert record["output"] == "-" and record["seconds"] == pytest.approx(len(samples) / SR, abs=1e-3)
    y, sr = sf.read(io.BytesIO(stdout), dtype="int16")          # soundfile reads the unknown-size header
    assert sr == SR and np.array_equal(y, samples)


def test_edit_streams_raw_pcm(capsysbinary, tmp_path, tone):  # noqa: F811
    out = tmp_path / "e.pcm"
    code, stdout, err, engine = run(capsysbinary, "edit", str(tone), "--type", "emotion", "--option", "happy",
                                    "--text", "a tone for the edit", "--seed", "4", "--stream", "-o", str(out),
                                    "--json")
    assert code == cli.EXIT_OK, err
    record = json.loads(stdout)
    assert record["edit_type"] == "emotion" and record["edit_info"] == "happy" and record["streamed"] is True
    assert engine.chunks_streamed >= 1
    assert out.stat().st_size % 2 == 0 and out.stat().st_size / 2 / SR == pytest.approx(record["seconds"], abs=1e-3)


@pytest.mark.parametrize("argv, expected", [
    (["clone", "--tries", "3", "-o", "{tmp}/x.wav"], "--stream makes one take as it plays; --tries needs whole "
                                                     "takes (drop --stream)."),
    (["clone", "--instructions", "happier", "--speed", "1.5", "-o", "{tmp}/x.wav"],
     "--stream makes one take as it plays; --instructions, --speed need whole takes (drop --stream)."),
    (["clone", "-o", "{tmp}/x.flac"], "--stream writes wav or pcm, not flac (got -o x.flac)."),
    (["edit", "--iterations", "2", "-o", "{tmp}/x.wav"], "--stream makes one take as it plays; --iterations needs "
                                                          "whole takes (drop --stream)."),
    (["edit", "--first-word", "0", "--last-word", "1", "-o", "{tmp}/x.wav"],
     "--stream makes one take as it plays; a region needs whole takes (drop --stream)."),
], ids=["tries", "instructions+speed", "flac", "iterations", "region"])
def test_options_that_need_whole_takes_are_refused_by_name(capsysbinary, tmp_path, tone, argv, expected):  # noqa: F811
    command, *rest = argv
    head = (["clone", "--prompt", str(tone), "--prompt-text", "a tone", "--text", TEXT] if command == "clone"
            else ["edit", str(tone), "--type", "emotion", "--option", "happy", "--text", "a tone"])
    code, stdout, err, engine = run(capsysbinary, *head, "--stream", *[a.format(tmp=tmp_path) for a in rest])
    assert code == cli.EXIT_USAGE and stdout == b""
    assert err.strip().splitlines()[-1] == f"error: {expected}"
    assert engine.chunks_streamed == 0 and not list(tmp_path.glob("x.*"))


def test_stdout_needs_stream(capsysbinary, tone):  # noqa: F811
    code, stdout, err, _ = run(capsysbinary, "clone", "--prompt", str(tone), "--prompt-text", "a tone",
                               "--text", TEXT, "-o", "-")
    assert code == cli.EXIT_USAGE and stdout == b""
    assert err.strip().endswith("Writing to standard output (-o -) needs --stream.")
