"""The CLI against hostile input (issue 26): reads bounded by the documented limits, and the README's exit codes
(2: bad usage or input) for a device as a text file, invalid UTF-8, ``--tries 0``, an over-long audio header and
``serve`` beyond loopback without a key."""
from __future__ import annotations

import time

import pytest

from stepedit_core import cli
from tests.fake_engine import FakeEngine
from tests.hostile_inputs import flac_bomb, good_wav

FAST_S = 5.0                      # a refusal on a loaded 2-core machine (an unbounded /dev/zero read never ends)


@pytest.fixture
def prompt(tmp_path):
    path = tmp_path / "prompt.wav"
    path.write_bytes(good_wav())
    return path


def run(capsys, *argv) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    code = cli.main(list(argv), engine=FakeEngine(max_input_seconds=60.0))
    return code, capsys.readouterr().err, time.perf_counter() - t0


def clone(prompt, tmp_path, *extra):
    return ("clone", "--prompt", str(prompt), "--prompt-text", "a prompt", "-o", str(tmp_path / "out.wav"), *extra)


def test_text_file_from_a_device_is_read_with_a_bound(capsys, prompt, tmp_path):
    code, err, seconds = run(capsys, *clone(prompt, tmp_path, "--text-file", "/dev/zero"))
    assert code == 2 and "larger than 16 kB" in err and seconds < FAST_S, err
    assert not (tmp_path / "out.wav").exists()


def test_invalid_utf8_text_file_exits_2_naming_it(capsys, prompt, tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\u00e9 au lait".encode("latin-1"))
    code, err, _ = run(capsys, *clone(prompt, tmp_path, "--text-file", str(bad)))
    assert code == 2 and "latin1.txt" in err and "not UTF-8" in err and "unexpected" not in err, err


@pytest.mark.parametrize("tries", ["0", "-3", "11"])
def test_tries_outside_the_http_range_is_refused(capsys, prompt, tmp_path, tries):
    code, err, _ = run(capsys, *clone(prompt, tmp_path, "--text", "hello there", "--tries", tries))
    assert code == 2 and "number of tries must be a whole number between 1 and" in err, err
    assert not (tmp_path / "out.wav").exists()


def test_the_engine_limit_is_read_from_the_header(capsys, tmp_path):
    bomb = tmp_path / "bomb.flac"
    bomb.write_bytes(flac_bomb(120.0))
    code, err, seconds = run(capsys, "edit", str(bomb), "-o", str(tmp_path / "o.wav"), "--type", "speed",
                             "--option", "faster", "--text", "words")
    assert code == 2 and "at most 60 s" in err and seconds < FAST_S, err


def test_serve_beyond_loopback_without_a_key_exits_2(capsys, monkeypatch):
    monkeypatch.delenv("STEPEDIT_API_KEY", raising=False)
    code, err, _ = run(capsys, "serve", "--host", "0.0.0.0", "--port", "1")
    assert code == 2 and "STEPEDIT_API_KEY" in err and "--no-auth" in err, err
