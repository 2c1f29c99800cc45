"""One service, one message: the same bad input gets the same sentence through every door, the app's API /
MCP functions (app_ui/api.py), the HTTP server and the CLI; streamed takes obey the work cap like whole ones;
streamed session takes carry their check."""
from __future__ import annotations

import json
from dataclasses import replace

import gradio as gr
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from app_ui.api import make_api
from app_ui.history import TakeTree
from app_ui.runner import EngineRunner
from app_ui.studio import Studio, drain
from stepedit_core import cli
from stepedit_core.errors import InvalidInputError
from stepedit_core.interface import AudioClip
from stepedit_core.server import create_server
from stepedit_core.service import service_for
from stepedit_core.voices import VoiceLibrary
from tests.fake_engine import FakeEngine

CAP_S = 3.0                   # the capped engine's work cap; the fake estimates 1 + 0.1 x audio s + 0.01 x chars
OVER_CAP_TEXT = " ".join(["go"] * 100)       # 299 characters: 4.2 s of work with a 2 s prompt
PROMPT_TEXT = "a prompt"


class CappedFake(FakeEngine):
    """The fake engine refusing work it estimates above CAP_S seconds."""

    def capabilities(self):
        return replace(super().capabilities(), max_request_seconds=CAP_S)


@pytest.fixture()
def doors(tmp_path):
    engine = CappedFake()
    sr = 16000
    t = np.arange(2 * sr) / sr
    prompt = tmp_path / "prompt.wav"
    sf.write(prompt, (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32), sr)
    library = VoiceLibrary(tmp_path / "voices")
    library.save("fox", AudioClip.from_file(str(prompt)), PROMPT_TEXT)
    studio = Studio(EngineRunner(engine), tmp_path / "app")
    http = TestClient(create_server(engine, library))
    return {"engine": engine, "api": make_api(studio), "http": http, "prompt": str(prompt), "tmp": tmp_path,
            "studio": studio, "voices": str(tmp_path / "voices")}


def app_message(fn, *args, **kwargs) -> str:
    """The gr.Error an app API function raises (a streamed one is run to its end)."""
    with pytest.raises(gr.Error) as caught:
        out = fn(*args, **kwargs)
        if hasattr(out, "__next__"):
            list(out)
    return caught.value.message


def http_message(response) -> str:
    assert 400 <= response.status_code < 500, response.text[:300]
    return response.json()["error"]["message"]


def cli_message(capsys, doors, *argv) -> str:
    code = cli.main([*argv, "-q", "--voices-dir", doors["voices"]], engine=doors["engine"])
    err = capsys.readouterr().err
    assert code in (cli.EXIT_USAGE, cli.EXIT_UNSUPPORTED), err
    return err.strip().splitlines()[-1].removeprefix("error: ")


def speech(doors, text, **fields):
    return doors["http"].post("/v1/audio/speech", json={"model": "tts-1", "voice": "fox", "input": text, **fields})


def http_edit(doors, **fields):
    with open(doors["prompt"], "rb") as f:
        return doors["http"].post("/v1/audio/edits", files={"file": ("p.wav", f, "audio/wav")},
                                  data={"text": PROMPT_TEXT, **{k: str(v) for k, v in fields.items()}})


def test_unknown_edit_type(doors, capsys):
    app = app_message(doors["api"]["edit"], doors["prompt"], PROMPT_TEXT, "shout", "")
    http = http_message(http_edit(doors, edit_type="shout"))
    shell = cli_message(capsys, doors, "edit", doors["prompt"], "--type", "shout", "--text", PROMPT_TEXT,
                        "-o", str(doors["tmp"] / "o.wav"))
    assert app == http == shell
    assert app.startswith("Unknown edit type 'shout'; use one of emotion, style")


def test_unknown_option_one_message_in_the_doors_and_the_core(doors, capsys):
    """catalog.check_edit is the doors' option check: a plan line (CLI ``plan --plan``, the app's plan table), the
    model prompt, a training manifest row and a script line edit say what the app API, HTTP and the CLI say."""
    from stepedit_core import catalog, plans  # noqa: PLC0415
    from stepedit_core.model import prompts  # noqa: PLC0415
    from stepedit_core.service import user_message  # noqa: PLC0415
    from stepedit_core.train import data  # noqa: PLC0415

    def core_message(fn, *args) -> str:
        with pytest.raises(InvalidInputError) as caught:
            fn(*args)
        return user_message(caught.value)

    app = app_message(doors["api"]["edit"], doors["prompt"], PROMPT_TEXT, "emotion", "purple")
    http = http_message(http_edit(doors, edit_type="emotion", option="purple"))
    shell = cli_message(capsys, doors, "edit", doors["prompt"], "--type", "emotion", "--option", "purple", "--text",
                        PROMPT_TEXT, "-o", str(doors["tmp"] / "o.wav"))
    plan_line = cli_message(capsys, doors, "plan", "--plan", "emotion purple x1")
    core = {core_message(plans.parse_plan_text, "emotion purple x1"),
            core_message(prompts.edit_instruction, "emotion", "purple", PROMPT_TEXT),
            core_message(catalog.check_edit, "emotion", "purple")}                 # script line edits
    assert {app, http, shell, plan_line, *core} == {app}
    assert app == ("Unknown emotion option; use one of happy, angry, sad, humour, confusion, disgusted, empathy, "
                   "embarrass, fear, surprised, excited, depressed, coldness, admiration, remove (got 'purple').")
    missing = app_message(doors["api"]["edit"], doors["prompt"], PROMPT_TEXT, "speed", "")
    assert missing == core_message(plans.parse_plan_text, "speed") == \
        "The speed edit needs an option: one of faster, slower, more faster, more slower."
    row = {"source_audio": "src.wav", "edit_type": "emotion", "edit_info": "purple", "target_audio": "tgt.wav"}
    (doors["tmp"] / "m.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(InvalidInputError) as caught:
        data.read_manifest(doors["tmp"] / "m.jsonl")
    assert str(caught.value).endswith(str(app[0].lower() + app[1:]).removesuffix("."))


@pytest.mark.parametrize("text, expected", [
    ("", "The target text is empty."),
    ("a " * 600, "The target text is too long (1199 characters; at most 1000)."),
], ids=["empty", "too-long"])
def test_empty_and_too_long_text(doors, capsys, text, expected):
    app = app_message(doors["api"]["clone"], doors["prompt"], PROMPT_TEXT, text)
    http = http_message(speech(doors, text, response_format="flac"))
    shell = cli_message(capsys, doors, "clone", "--prompt", doors["prompt"], "--prompt-text", PROMPT_TEXT,
                        "--text", text, "-o", str(doors["tmp"] / "o.wav"))
    assert app == http == shell == expected


def test_over_the_work_cap_streamed_and_whole(doors, capsys):
    engine = doors["engine"]
    whole_app = app_message(doors["api"]["clone"], doors["prompt"], PROMPT_TEXT, OVER_CAP_TEXT)
    streamed_app = app_message(doors["api"]["clone_stream"], doors["prompt"], PROMPT_TEXT, OVER_CAP_TEXT)
    whole_http = http_message(speech(doors, OVER_CAP_TEXT, response_format="flac"))
    streamed_http = [http_message(speech(doors, OVER_CAP_TEXT, response_format=fmt, stream_format=how))
                     for fmt, how in (("wav", "audio"), ("pcm", "audio"), ("wav", "sse"), ("pcm", "sse"))]
    shell = cli_message(capsys, doors, "clone", "--voice", "fox", "--text", OVER_CAP_TEXT,
                        "-o", str(doors["tmp"] / "o.wav"))
    streamed_shell = [cli_message(capsys, doors, "clone", "--voice", "fox", "--text", OVER_CAP_TEXT, "--stream",
                                  "-o", out) for out in (str(doors["tmp"] / "s.wav"), "-")]
    assert not (doors["tmp"] / "s.wav").exists()                          # refused before the file is opened
    assert {whole_app, streamed_app, whole_http, shell, *streamed_http, *streamed_shell} == {whole_app}
    assert whole_app.startswith("This request would take about 4 s on the Fake engine (tests); one request may "
                                "take at most 3 s")
    assert "clone" not in engine.calls and engine.chunks_streamed == 0      # refused before any work
    # a streamed edit is capped like a whole one (399 characters: 5.2 s)
    long_text = "word " * 80
    edit_whole = app_message(doors["api"]["edit"], doors["prompt"], long_text, "emotion", "happy")
    edit_streamed = app_message(doors["api"]["edit_stream"], doors["prompt"], long_text, "emotion", "happy")
    edit_shell = [cli_message(capsys, doors, "edit", doors["prompt"], "--type", "emotion", "--option", "happy",
                              "--text", long_text, *stream, "-o", str(doors["tmp"] / "e.wav")) for stream in ([], ["--stream"])]
    assert {edit_whole, edit_streamed, *edit_shell} == {edit_whole}
    assert edit_whole.startswith("This request would take about")
    assert "emotion" not in engine.calls


def test_a_stream_within_the_cap_still_streams(doors):
    r = speech(doors, "Hi there", response_format="pcm")
    assert r.status_code == 200 and len(r.content) > 0 and doors["engine"].chunks_streamed >= 1


def test_bad_region(doors, capsys):
    app = app_message(doors["api"]["edit"], doors["prompt"], PROMPT_TEXT, "emotion", "happy",
                      region_start=5, region_end=6)
    http = http_message(http_edit(doors, edit_type="emotion", option="happy", start_s=5, end_s=6))
    shell = cli_message(capsys, doors, "edit", doors["prompt"], "--type", "emotion", "--option", "happy", "--text",
                        PROMPT_TEXT, "--start-s", "5", "--end-s", "6", "-o", str(doors["tmp"] / "o.wav"))
    assert app == http == shell == "5.00-6.00 s is outside the clip, which is 2.00 s long."
    half = app_message(doors["api"]["edit"], doors["prompt"], PROMPT_TEXT, "emotion", "happy", first_word=1)
    assert half == http_message(http_edit(doors, edit_type="emotion", option="happy", first_word=1))
    assert half == "Give both first_word and last_word (or neither)."


@pytest.mark.parametrize("tries", [0, 10])
def test_tries_out_of_range(doors, capsys, tries):
    app = app_message(doors["api"]["clone"], doors["prompt"], PROMPT_TEXT, "Hello", max_tries=tries)
    http = http_message(speech(doors, "Hello", max_tries=tries))
    shell = cli_message(capsys, doors, "clone", "--prompt", doors["prompt"], "--prompt-text", PROMPT_TEXT,
                        "--text", "Hello", "--tries", str(tries), "-o", str(doors["tmp"] / "o.wav"))
    assert app == http == shell == f"The number of tries must be a whole number between 1 and 9 (got {tries})."


def test_streamed_session_takes_carry_their_check(doors):
    studio = doors["studio"]
    tree = studio.ensure_workdir(TakeTree(), "s")
    tree, (cid,) = drain(studio.clone_stream(tree, doors["prompt"], PROMPT_TEXT, "one two three four", [5]))
    check = tree.get(cid).check
    assert check and check["metric"] == "wer" and check["error_rate"] == 0.0 and check["expected"]
    tree, (eid,) = drain(studio.edit_stream(tree, cid, "speed", "slower", None, 7))
    assert tree.get(eid).check and tree.get(eid).check["duration_ratio"] is not None


def test_every_door_shares_one_service_and_gate(doors):
    engine = doors["engine"]
    service = service_for(engine)
    assert doors["studio"].service is service
    assert doors["http"].app.state.api.state.service is service
    assert doors["http"].app.state.api.state.gate._fifo is service.gate
