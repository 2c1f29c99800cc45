"""The command line: every subcommand on the fake engine (in process), --json records, exit codes, --help
examples, the command registry, and one real run of ``python -m stepedit_core clone`` on the lite engine."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from stepedit_core import cli
from tests.fake_engine import SR, FakeEngine

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tone(tmp_path) -> Path:
    path = tmp_path / "in.wav"
    t = np.arange(SR) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR)
    return path


def run(capsys, *argv, engine=None):
    code = cli.main(["--quiet" if a == "-Q" else a for a in argv], engine=engine or FakeEngine())
    out, err = capsys.readouterr()
    return code, out, err


def test_clone_with_a_prompt_writes_the_take_and_json(capsys, tmp_path, tone):
    out = tmp_path / "o.flac"
    code, stdout, _ = run(capsys, "clone", "--prompt", str(tone), "--prompt-text", "a tone", "--text", "Hi yo",
                          "--seed", "5", "-o", str(out), "--json", "-q")
    assert code == cli.EXIT_OK
    record = json.loads(stdout)
    assert record["output"] == str(out) and record["seed"] == 5 and record["text"] == "Hi yo"
    assert record["engine"] == "fake" and record["edit_type"] == "clone" and record["check"] is None
    y, sr = sf.read(out)
    assert sr == SR and record["seconds"] == pytest.approx(len(y) / SR, abs=1e-3)


@pytest.mark.parametrize("seed, deleted", [(5, 0), (6, 1)])
def test_check_scores_the_take(capsys, tmp_path, tone, seed, deleted):
    """--check transcribes the take (the fake engine's ASR drops the last word when seed % 3 == 0)."""
    code, stdout, _ = run(capsys, "clone", "--prompt", str(tone), "--prompt-text", "a tone", "--text",
                          "one two three four", "--seed", str(seed), "-o", str(tmp_path / "o.wav"), "--check",
                          "--json", "-q")
    check = json.loads(stdout)["check"]
    assert code == 0 and check["metric"] == "wer" and check["deleted"] == deleted
    assert check["error_rate"] == pytest.approx(deleted / 4)
    code, stdout, _ = run(capsys, "clone", "--prompt", str(tone), "--prompt-text", "a tone", "--text",
                          "one two three four", "--seed", str(seed), "-o", str(tmp_path / "o.wav"), "--check", "-q")
    assert f"WER {deleted / 4:.2f}" in stdout


def test_tries_reroll_until_the_check_passes(capsys, tmp_path, tone):
    """--tries: seeds 6, 7, ... until WER <= --threshold (seed 6 drops a word in the fake engine's ASR)."""
    code, stdout, _ = run(capsys, "clone", "--prompt", str(tone), "--prompt-text", "a tone", "--text",
                          "one two three four", "--seed", "6", "--tries", "3", "--threshold", "0",
                          "-o", str(tmp_path / "o.wav"), "--json", "-q")
    record = json.loads(stdout)
    assert code == 0 and record["seed"] == 7 and record["seeds_tried"] == [6, 7] and record["check"]["deleted"] == 0
    code, stdout, _ = run(capsys, "edit", str(tone), "--type", "emotion", "--option", "happy", "--text",
                          "one two three four", "--seed", "6", "--tries", "2", "-o", str(tmp_path / "e.wav"),
                          "--json", "-q")
    record = json.loads(stdout)
    assert code == 0 and record["seeds_tried"] == [6, 7] and record["seed"] in (6, 7) and record["check"]
    code, _, err = run(capsys, "clone", "--prompt", str(tone), "--prompt-text", "a tone", "--text", "hi",
                       "--tries", "20", "-o", str(tmp_path / "x.wav"), "-q")
    assert code == cli.EXIT_USAGE and "number of tries must be a whole number between 1 and 9" in err


def test_check_and_tries_on_an_edit_of_several_rounds(capsys, tmp_path, tone):
    """The last round is checked (its seed is the request's + 1); seeds_tried lists the request seeds: seed 5
    gives rounds 5, 6 (6 drops a word), so seed 6 (rounds 6, 7) is tried next."""
    code, stdout, err = run(capsys, "edit", str(tone), "--type", "speed", "--option", "slower", "--text",
                            "one two three four", "--iterations", "2", "--seed", "5", "--tries", "3",
                            "--threshold", "0", "-o", str(tmp_path / "e.wav"), "--json", "-q")
    record = json.loads(stdout)
    assert code == 0, err
    assert record["seeds_tried"] == [5, 6] and record["iteration"] == 2 and record["seed"] in (6, 7)
    # the last round is judged against the round before it: the fake's x1.25 vs the option's nominal 1/0.83
    assert record["check"]["duration_ratio"] == pytest.approx(1.25 * 0.83, abs=0.01)


def test_clone_from_a_library_voice_with_instructions(capsys, tmp_path, tone):
    voices = str(tmp_path / "lib")
    assert run(capsys, "voices", "add", "Ann", str(tone), "--text", "a tone", "--voices-dir", voices)[0] == 0
    engine = FakeEngine()
    code, stdout, _ = run(capsys, "clone", "--voice", "ann", "--text", "Hello", "--instructions", "sad",
                          "--speed", "0.8", "-o", str(tmp_path / "o.mp3"), "--voices-dir", voices, "--json", "-q",
                          engine=engine)
    assert code == 0 and engine.calls == ["clone", "emotion", "speed"]
    assert json.loads(stdout)["edits"] == ["emotion=sad", "speed=slower"]


def test_edit_rounds_and_transcription(capsys, tmp_path, tone):
    out = tmp_path / "e.wav"
    code, stdout, _ = run(capsys, "edit", str(tone), "--type", "speed", "--option", "faster", "--iterations", "2",
                          "--keep-rounds", "-o", str(out), "--json", "-q")
    record = json.loads(stdout)
    assert code == 0 and record["iteration"] == 2 and len(record["rounds"]) == 2
    assert record["text"] == "a fake transcript of 1.0 seconds"          # no --text: transcribed first
    assert len(sf.read(record["rounds"][0])[0]) == round(SR * 0.8) and len(sf.read(out)[0]) == round(SR * 0.64)
    code, stdout, _ = run(capsys, "transcribe", str(tone), str(tone), "--json", "-q")
    assert code == 0 and [json.loads(line)["text"] for line in stdout.splitlines()] == \
        ["a fake transcript of 1.0 seconds"] * 2


def test_voices_lifecycle(capsys, tmp_path, tone):
    d = ["--voices-dir", str(tmp_path / "lib")]
    run(capsys, "voices", "add", "Ann", str(tone), "--text", "a tone", *d)
    assert run(capsys, "voices", "rename", "Ann", "Bea", *d)[0] == 0
    assert run(capsys, "voices", "export", str(tmp_path / "v.zip"), *d)[0] == 0
    assert run(capsys, "voices", "delete", "Bea", *d)[0] == 0
    assert run(capsys, "voices", "import", str(tmp_path / "v.zip"), *d)[0] == 0
    code, stdout, _ = run(capsys, "voices", "list", "--json", *d)
    assert code == 0 and [v["name"] for v in json.loads(stdout)] == ["Bea"]


@pytest.mark.parametrize("argv,code,message", [
    (["edit", "{tone}", "--type", "emotion", "--option", "purple", "-o", "{tmp}/o.wav"], cli.EXIT_USAGE,
     "got 'purple'"),
    (["edit", "{tmp}/missing.wav", "--type", "vad", "-o", "{tmp}/o.wav"], cli.EXIT_IO, "no such audio file"),
    (["edit", "{tone}", "--type", "denoise", "-o", "{tmp}/o.aac"], cli.EXIT_USAGE, "Unsupported audio format"),
    (["edit", "{tone}", "--type", "vad", "-o", "{tmp}/o.wav"], cli.EXIT_UNSUPPORTED, "does not support the vad"),
    (["clone", "--voice", "nobody", "--text", "x", "-o", "{tmp}/o.wav"], cli.EXIT_USAGE, "No voice named"),
    (["clone", "--prompt", "{tone}", "--prompt-text", "t", "--text", "x", "-o", "{tmp}/o.wav"], cli.EXIT_MODEL,
     "Weights are gone"),
])
def test_exit_codes_and_messages(capsys, tmp_path, tone, argv, code, message):
    from stepedit_core.errors import ModelUnavailableError
    engine = FakeEngine(unsupported=("vad",), fail_with=ModelUnavailableError("weights are gone"))
    argv = [a.format(tone=tone, tmp=tmp_path) for a in argv] + ["--voices-dir", str(tmp_path / "lib"), "--json"]
    got, stdout, stderr = run(capsys, *argv, engine=engine)
    assert got == code and message in stderr and "Traceback" not in stderr
    assert json.loads(stdout)["error"]["exit_code"] == code


def test_usage_errors_exit_2_and_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["edit", "x.wav"])                       # --type and -o missing
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in ("clone", "edit", "transcribe", "voices", "serve"):
        assert f"python -m stepedit_core {name} " in out
    assert "Exit codes" in out


def test_a_new_command_is_one_registration(capsys, monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "hello", cli.Command(
        "hello", "say hello", "  python -m stepedit_core hello --name x\n",
        lambda p: p.add_argument("--name"), lambda args, ctx: print(f"hi {args.name}") or 0, engine=False))
    assert cli.main(["hello", "--name", "you"]) == 0 and capsys.readouterr().out == "hi you\n"


def test_module_entry_point_clones_on_the_lite_engine(tmp_path):
    out = tmp_path / "hello.wav"
    proc = subprocess.run([sys.executable, "-m", "stepedit_core", "clone", "--prompt", "examples/prompt_en.wav",
                           "--prompt-text", (ROOT / "examples/prompt_en.txt").read_text().strip(), "--text",
                           "Hello.", "--seed", "1", "-o", str(out), "--engine", "lite", "--json", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(proc.stdout)
    y, sr = sf.read(out)
    assert record["engine"] == "lite" and sr == 24000 and 0.2 < len(y) / sr < 3 and np.abs(y).max() > 0.05


def test_script_renders_master_subtitles_and_recipe(capsys, tmp_path, tone):
    voices = str(tmp_path / "lib")
    for name in ("Ann", "Bob"):
        assert run(capsys, "voices", "add", name, str(tone), "--text", "a tone", "--voices-dir", voices)[0] == 0
    script = tmp_path / "dialogue.txt"
    script.write_text("Ann: Hello there.\nBob: {happy} Hi Ann! [pause 0.5s]\nAnn: Bye.\n", encoding="utf-8")
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, "script", str(script), "-o", str(out), "--seed", "3", "--voices-dir", voices,
                          "--json", "-q")
    record = json.loads(stdout)
    assert code == cli.EXIT_OK and record["seed"] == 3 and record["lines"] == 3
    assert [c["speaker"] for c in record["cues"]] == ["Ann", "Bob", "Ann"]
    y, sr = sf.read(record["files"]["wav"])
    assert Path(record["files"]["wav"]) == out / "dialogue.wav" and record["seconds"] == pytest.approx(len(y) / sr,
                                                                                                      abs=1e-3)
    assert "Bob" in (out / "dialogue.srt").read_text() and (out / "dialogue.vtt").read_text().startswith("WEBVTT")
    assert json.loads((out / "dialogue.recipe.json").read_text())
    script.write_text("Ann: Hello.\nCarl: Who am I?\n", encoding="utf-8")
    code, _, err = run(capsys, "script", str(script), "-o", str(out), "--voices-dir", voices, "-q")
    assert code == cli.EXIT_USAGE and "line 2" in err.lower() and "Carl" in err
    code, _, err = run(capsys, "script", str(tmp_path / "none.txt"), "-o", str(out), "--voices-dir", voices, "-q")
    assert code == cli.EXIT_IO and "no such script file" in err
