"""Hostile and odd requests against the launched app (gradio_client and raw HTTP): every answer is a clear
message or a valid result, in bounded time, with no traceback, no server path and no bare HTTP status; the
server answers afterwards.

The engine is the deterministic fake with the lite engine's limits (60 s inputs, 60 s work cap and the lite
work estimate), so refusals are exercised exactly as users meet them while valid requests stay fast.
"""
from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError

from stepedit_core import validation
from stepedit_core.lite.engine import LiteEngine
from tests.fake_engine import FakeEngine
from tests.hostile_inputs import (EDIT_INFOS, EDIT_TYPES, ITERATIONS, SEEDS, TEXTS, flac_bomb, make_audio_files,
                                  make_hostile_zips)
from tests.servers import free_port

REFUSAL_S = 8.0           # a refusal or a fake-engine result, on a loaded 2-core machine
BARE = re.compile(r"^\s*(\d{3}\b|Bad Request|Internal Server Error|Unprocessable|Error\.?$)", re.I)
UPSTREAM = "upstream Gradio app has raised an exception"


class CappedFake(FakeEngine):
    """The fake engine with the lite engine's limits and work estimate."""

    def __init__(self):
        super().__init__(max_input_seconds=60.0)

    def capabilities(self):
        return replace(super().capabilities(), max_request_seconds=validation.MAX_REQUEST_SECONDS)

    def estimate_seconds(self, kind, audio_seconds, text_chars=0, n_iterations=1):
        return LiteEngine.estimate_seconds(self, kind, audio_seconds, text_chars, n_iterations)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    old = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(tmp / "cache")
    import app  # noqa: PLC0415
    demo = app.build_demo(CappedFake())
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(),
                            quiet=True, **app.launch_options())
    files = make_audio_files(tmp / "inputs")
    client = Client(url, download_files=str(tmp / "downloads"), verbose=False)
    yield {"url": url, "files": files, "client": client, "secret_dirs": [str(tmp / "cache"), str(tmp)],
           "demo": demo}
    client.close()
    demo.close()
    if old is None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
    else:
        os.environ["GRADIO_TEMP_DIR"] = old


def assert_clear(served, exc_or_result, seconds: float, what: str) -> str:
    """A readable message (or a result) in time; returns "ok" or "refused"."""
    assert seconds < REFUSAL_S, f"{what}: took {seconds:.1f} s"
    if isinstance(exc_or_result, BaseException):
        msg = str(exc_or_result)
        assert isinstance(exc_or_result, (ValidationError, AppError)), f"{what}: {type(exc_or_result)} {msg}"
        assert msg.strip() and not BARE.match(msg), f"{what}: bare message {msg!r}"
        assert UPSTREAM not in msg and "Traceback" not in msg and 'File "' not in msg, f"{what}: {msg}"
        for secret in served["secret_dirs"]:
            assert secret not in msg, f"{what}: leaks a server path: {msg}"
        assert not re.search(r"/tmp/|gradio_api/file=|/home/|/root/", msg), f"{what}: path in {msg}"
        assert len(msg) < 600, f"{what}: message too long ({len(msg)})"
        return "refused"
    return "ok"


def call(served, *args, api_name: str):
    t0 = time.perf_counter()
    try:
        out = served["client"].predict(*args, api_name=api_name)
    except (ValidationError, AppError) as exc:
        return exc, time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001  anything else is a defect the assertion will name
        return exc, time.perf_counter() - t0
    return out, time.perf_counter() - t0


def upload(served, name: str) -> dict:
    """Upload one input file over raw HTTP; returns the FileData the API takes."""
    path = served["files"][name]
    with open(path, "rb") as fh:
        resp = httpx.post(served["url"] + "gradio_api/upload", files={"files": (path.name, fh)}, timeout=REFUSAL_S)
    resp.raise_for_status()
    return {"path": resp.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


# /edit's optional selection and retry inputs (first_word, last_word, region_start, region_end, max_tries,
# threshold) at their documented defaults: gradio_client fills them in, raw HTTP callers send every input.
EDIT_DEFAULTS = [-1, -1, -1, -1, 1, 0.1]


def raw_call(served, api: str, data: list) -> tuple[int, str, float]:
    """POST /gradio_api/call/<api> with any JSON (NaN and Infinity included) and read its result stream."""
    if api == "edit" and len(data) == 6:
        data = [*data, *EDIT_DEFAULTS]
    t0 = time.perf_counter()
    url = served["url"] + f"gradio_api/call/{api}"
    resp = httpx.post(url, content=json.dumps({"data": data}).encode(), timeout=REFUSAL_S,
                      headers={"Content-Type": "application/json"})
    if resp.status_code != 200:
        return resp.status_code, resp.text, time.perf_counter() - t0
    stream = httpx.get(f"{url}/{resp.json()['event_id']}", timeout=REFUSAL_S).text
    return 200, stream, time.perf_counter() - t0


def assert_clear_raw(served, status: int, text: str, seconds: float, what: str) -> None:
    assert seconds < REFUSAL_S, f"{what}: took {seconds:.1f} s"
    assert status in (200, 400, 404, 405, 413, 422), f"{what}: HTTP {status}"
    assert "Traceback" not in text and UPSTREAM not in text, f"{what}: {text[:300]}"
    if "event: complete" in text:               # a result: its file's URL and cache path are the answer
        return
    for secret in served["secret_dirs"]:
        assert secret not in text, f"{what}: leaks a server path: {text[:300]}"
    if status == 200:
        assert "event: error" in text, f"{what}: {text[:300]}"
        assert "data: null" not in text, f"{what}: an error without a message: {text[:300]}"
    else:
        detail = json.loads(text)["detail"]                   # a JSON body that says why, not a bare status
        messages = [d["message"] for d in detail if not d["is_valid"]] if isinstance(detail, list) else [detail]
        assert messages and all(isinstance(m, str) and len(m) > 15 for m in messages), f"{what}: {text[:300]}"


def check_result(out, api_name: str) -> None:
    if api_name == "/transcribe":
        assert isinstance(out, str) and out.strip()
        return
    audio, text, seed = out
    assert Path(audio).is_file() and Path(audio).stat().st_size > 44 and isinstance(text, str)
    assert 0 <= seed <= validation.MAX_SEED


# ------------------------------------------------------------------ audio files x every endpoint
MUST_REFUSE = {"empty.wav", "random_bytes.wav", "text_renamed.wav", "png_renamed.flac", "zip_renamed.mp3",
               "json_renamed.ogg", "riff_only.wav", "truncated_header.wav", "html_renamed.wav",
               "zero_samples.wav", "one_sample.wav", "ten_ms.wav", "nan.wav", "inf.wav", "rate_4k.wav",
               "rate_384k.wav", "sixteen_channel.wav", "five_minutes.flac", "twenty_minutes.flac",
               "bomb_384k_stereo.flac", "seventy_seconds.wav"}
# silence is refused by every engine (core check); steady tones and noise by the lite engine (tests/test_validation)
SILENT_OR_STEADY = {"silent.wav", "near_silent.wav"}
_FILE_NAMES = ["empty.wav", "random_bytes.wav", "text_renamed.wav", "png_renamed.flac", "zip_renamed.mp3",
               "json_renamed.ogg", "riff_only.wav", "truncated_header.wav", "truncated_data.wav",
               "html_renamed.wav", "zero_samples.wav", "one_sample.wav", "ten_ms.wav", "nan.wav", "inf.wav",
               "clipped_float.wav", "clipped_pcm.wav", "silent.wav", "dc.wav", "square.wav", "white_noise.wav",
               "near_silent.wav", "pcm_u8.wav", "pcm_24.wav", "float32.wav", "float64.wav", "ok.flac", "ok.ogg",
               "rate_8k.wav", "rate_4k.wav", "rate_384k.wav", "stereo.wav", "six_channel.wav",
               "sixteen_channel.wav", "five_minutes.flac", "twenty_minutes.flac", "bomb_384k_stereo.flac",
               "seventy_seconds.wav", "..%2f..%2fetc%2fpasswd.wav", "name with spaces & 'quotes'.wav"]
ENDPOINTS = {
    "/clone": lambda f: (handle_file(f), "a prompt", "hello there", 1),
    "/edit": lambda f: (handle_file(f), "hello there", "emotion", "happy", 1, 1),
    "/paralinguistic": lambda f: (handle_file(f), "hello there", "hello [Laughter] there", 1),
    "/transcribe": lambda f: (handle_file(f),),
}


@pytest.mark.parametrize("api_name", sorted(ENDPOINTS))
@pytest.mark.parametrize("name", _FILE_NAMES)
def test_hostile_audio(served, name, api_name):
    out, seconds = call(served, *ENDPOINTS[api_name](str(served["files"][name])), api_name=api_name)
    verdict = assert_clear(served, out, seconds, f"{api_name} {name}")
    if name in MUST_REFUSE or (name in SILENT_OR_STEADY and api_name in ("/clone", "/transcribe")):
        assert verdict == "refused", f"{api_name} accepted {name}"
        if name not in ("empty.wav",):
            assert name.split(".")[0][:8] in str(out) or "audio" in str(out).lower(), str(out)
    if verdict == "ok":
        check_result(out, api_name)


def test_bomb_is_refused_from_the_header(served):
    out, seconds = call(served, handle_file(str(served["files"]["bomb_384k_stereo.flac"])), api_name="/transcribe")
    assert isinstance(out, ValidationError) and "384000 Hz" in str(out) and seconds < REFUSAL_S
    out, _ = call(served, handle_file(str(served["files"]["twenty_minutes.flac"])), api_name="/transcribe")
    assert isinstance(out, ValidationError) and "20.0 min long" in str(out) and "60 s" in str(out)


# ------------------------------------------------------------------ texts
@pytest.mark.parametrize("field", ["target_text", "new_text", "audio_text"])
@pytest.mark.parametrize("key", sorted(TEXTS))
def test_hostile_text(served, key, field):
    text, ok = TEXTS[key], str(served["files"]["float32.wav"])
    if field in ("target_text", "prompt_text"):
        args = (handle_file(ok), "a prompt", text, 2) if field == "target_text" else \
            (handle_file(ok), text, "hello there", 2)
        api = "/clone"
    elif field == "new_text":
        args, api = (handle_file(ok), "hello there", text, 2), "/paralinguistic"
    else:
        args, api = (handle_file(ok), text, "emotion", "sad", 1, 2), "/edit"
    out, seconds = call(served, *args, api_name=api)
    verdict = assert_clear(served, out, seconds, f"{api} {field}={key}")
    speech_field = field in ("target_text", "new_text")
    if key in ("empty", "spaces", "ten_thousand", "only_nul", "zero_width") or \
            (speech_field and key in ("emoji", "punctuation", "long_word", "only_tags", "lang_tag_only")):
        assert verdict == "refused", f"{api} accepted {field}={key!r}"
    if verdict == "ok":
        check_result(out, api)
        if field == "target_text":
            assert "\x00" not in out[1] and "\u200b" not in out[1]


# ------------------------------------------------------------------ edit types, options, numbers
@pytest.mark.parametrize("edit_type", EDIT_TYPES)
def test_unknown_edit_types_are_named(served, edit_type):
    out, seconds = call(served, handle_file(str(served["files"]["float32.wav"])), "hello there", edit_type, "happy",
                        1, 1, api_name="/edit")
    assert_clear(served, out, seconds, f"edit_type={edit_type[:20]!r}")
    assert isinstance(out, ValidationError)
    if edit_type != "paralinguistic":
        assert "Unknown edit type" in str(out) and "emotion, style, speed" in str(out)
    else:
        assert "use the paralinguistic endpoint" in str(out)


@pytest.mark.parametrize("edit_type,edit_info", EDIT_INFOS)
def test_edit_options(served, edit_type, edit_info):
    out, seconds = call(served, handle_file(str(served["files"]["float32.wav"])), "hello there", edit_type,
                        edit_info, 1, 1, api_name="/edit")
    verdict = assert_clear(served, out, seconds, f"{edit_type}/{edit_info[:20]}")
    assert verdict == ("ok" if edit_type in ("denoise", "vad") else "refused")


@pytest.mark.parametrize("seed", SEEDS, ids=str)
def test_seeds(served, seed):
    data = [upload(served, "float32.wav"), "hello there", "speed", "faster", 1, seed]
    status, text, seconds = raw_call(served, "edit", data)
    assert_clear_raw(served, status, text, seconds, f"seed={seed}")
    valid = math.isfinite(seed) and (seed < 0 or (float(seed).is_integer() and seed <= validation.MAX_SEED))
    assert (status == 200 and "event: complete" in text) == valid, (seed, text[:300])
    if not valid:
        assert status == 422 and "The seed must be a whole number" in text
    elif seed >= 0:
        assert json.loads(text.split("data: ")[-1])[2] == int(seed)


@pytest.mark.parametrize("n", ITERATIONS, ids=str)
def test_iterations(served, n):
    data = [upload(served, "float32.wav"), "hello there", "style", "whisper", n, 3]
    status, text, seconds = raw_call(served, "edit", data)
    assert_clear_raw(served, status, text, seconds, f"n_iterations={n}")
    assert (status == 200 and "event: complete" in text) == (n in (1, 5)), (n, text[:300])
    if n not in (1, 5):
        assert "The number of iterations must be a whole number between 1 and 5" in text


@pytest.mark.parametrize("value", ["abc", "", [1], {"a": 1}, True], ids=repr)
def test_non_numbers_for_numbers(served, value):
    status, text, seconds = raw_call(served, "edit", [upload(served, "float32.wav"), "hi", "speed", "faster", 1,
                                                      value])
    assert_clear_raw(served, status, text, seconds, f"seed={value!r}")
    assert status != 200 or "event: complete" not in text or value in ("",)


@pytest.mark.parametrize("args", [
    ("/clone", (None, "a prompt", "hello", 1)),
    ("/edit", (None, "x", "emotion", "happy", 1, 1)),
    ("/transcribe", (None,)),
], ids=lambda a: a[0])
def test_missing_audio(served, args):
    api, values = args
    out, seconds = call(served, *values, api_name=api)
    assert_clear(served, out, seconds, f"{api} without audio")
    assert isinstance(out, ValidationError) and "Please provide" in str(out)


@pytest.mark.parametrize("path", ["/etc/passwd", "../../app.py", "https://example.invalid/x.wav", "C:\\boot.ini",
                                  "", "\x00"])
def test_path_like_audio_is_not_read(served, path):
    data = [{"path": path, "meta": {"_type": "gradio.FileData"}}, "x", "emotion", "happy", 1, 1]
    status, text, seconds = raw_call(served, "edit", data)
    assert_clear_raw(served, status, text, seconds, f"audio path {path!r}")
    assert "event: complete" not in text and "root:" not in text


def test_work_cap_refuses_long_text_before_the_queue(served):
    text = "This sentence is long enough to take real work. " * 19            # ~930 characters
    out, seconds = call(served, handle_file(str(served["files"]["float32.wav"])), "a prompt", text, 1,
                        api_name="/clone")
    assert isinstance(out, ValidationError) and seconds < REFUSAL_S
    assert f"at most {validation.MAX_REQUEST_SECONDS:.0f} s" in str(out)


# ------------------------------------------------------------------ gradio_client: strings where files belong
PATH_LIKE = {"/etc/passwd": "passwd", "../../x.wav": "x.wav", "C:\\x.wav": "x.wav",
             "file:///etc/passwd": "passwd", "": "empty text"}
FILE_ENDPOINTS = {
    "/clone": lambda f: (f, "a prompt", "hello there", 1),
    "/edit": lambda f: (f, "hello there", "emotion", "happy", 1, 1),
    "/paralinguistic": lambda f: (f, "hello there", "hello [Laughter] there", 1),
    "/transcribe": lambda f: (f,),
    "/check": lambda f: (f, "hello there"),
    "/session_upload": lambda f: (f, "hello there"),
    "/session_clone": lambda f: (f, "a prompt", "hello there", 1, 1),
}


@pytest.mark.parametrize("api_name", sorted(FILE_ENDPOINTS))
@pytest.mark.parametrize("sent", sorted(PATH_LIKE))
def test_path_like_strings_through_gradio_client(served, sent, api_name):
    """gradio_client sends a plain string as-is: the answer names it (its last part) and says to upload."""
    out, seconds = call(served, *FILE_ENDPOINTS[api_name](sent), api_name=api_name)
    assert_clear(served, out, seconds, f"{api_name} {sent!r}")
    assert isinstance(out, ValidationError), f"{api_name} {sent!r}: {type(out).__name__} {out}"
    assert PATH_LIKE[sent] in str(out) and "handle_file" in str(out) and "/etc" not in str(out)
    assert os.getcwd() not in str(out)


@pytest.mark.parametrize("sent", sorted(PATH_LIKE))
def test_path_like_file_data_over_raw_http(served, sent):
    """A FileData whose path is not an upload: a 422 naming it, never Gradio's 400 quoting the server's
    working directory ("Cannot move /srv/app/C:\\x.wav to the gradio cache ...")."""
    data = [{"path": sent, "meta": {"_type": "gradio.FileData"}}, "x", "emotion", "happy", 1, 1]
    status, text, seconds = raw_call(served, "edit", data)
    assert_clear_raw(served, status, text, seconds, f"audio path {sent!r}")
    assert status == 422 and os.getcwd() not in text and "Cannot move" not in text, text[:300]
    message = next(d["message"] for d in json.loads(text)["detail"] if not d["is_valid"])
    expected = "has no path" if not sent else PATH_LIKE[sent]
    assert message.startswith("The audio to edit: ") and expected in message, message


# ------------------------------------------------------------------ session endpoints (the UI's actions)
@pytest.fixture(scope="module")
def session(served):
    """A client with its own session holding a short take (T1) and a 45 s recording to edit."""
    client = Client(served["url"], verbose=False)
    ok = handle_file(str(served["files"]["float32.wav"]))
    tree = client.predict(ok, "a prompt", "hello there", 1, 1, api_name="/session_clone")
    long = handle_file(str(served["files"]["forty_five_seconds.wav"]))
    tree = client.predict(long, "a long recording", api_name="/session_upload")
    takes = {t["op"]: t["id"] for t in tree["takes"]}
    yield {"client": client, "short": takes["clone"], "long": takes["upload"]}
    client.close()


def session_call(served, session, *args, api_name: str):
    t0 = time.perf_counter()
    try:
        out = session["client"].predict(*args, api_name=api_name)
    except Exception as exc:  # noqa: BLE001  assert_clear names anything but ValidationError / AppError
        return exc, time.perf_counter() - t0
    return out, time.perf_counter() - t0


SESSION_EDITS = {   # base take, edit type, option, rounds -> every input of each session edit endpoint
    "/session_edit": lambda b, t, i, n: (b, t, i, n, 1),
    "/session_edit_checked": lambda b, t, i, n: (b, t, i, n, 1, -1, -1, None, None, 1, 0.1),
    "/session_edit_stream": lambda b, t, i, n: (b, t, i, n, 1, False, -1, -1, None, None, 1, 0.1),
}


@pytest.mark.parametrize("api_name", sorted(SESSION_EDITS))
@pytest.mark.parametrize("edit_type", EDIT_TYPES)
def test_session_edit_types_are_named(served, session, edit_type, api_name):
    out, seconds = session_call(served, session, *SESSION_EDITS[api_name](session["short"], edit_type, "happy", 1),
                                api_name=api_name)
    assert_clear(served, out, seconds, f"{api_name} edit_type={edit_type[:20]!r}")
    if edit_type != "paralinguistic":
        assert isinstance(out, ValidationError), f"{api_name} {edit_type[:20]!r}: {out}"
        assert "Unknown edit type" in str(out) and "emotion, style, speed" in str(out), str(out)
    else:                        # a known type without its new text: refused by the action, with a message
        assert isinstance(out, (ValidationError, AppError)), out


@pytest.mark.parametrize("api_name", sorted(SESSION_EDITS))
def test_session_edits_apply_the_work_cap(served, session, api_name):
    """5 rounds on a 45 s take: the lite estimate (0.5 + 5 x 0.3 x 45 = 68 s) is over the cap, refused
    before the queue like /edit; 1 round (14 s) runs."""
    out, seconds = session_call(served, session, *SESSION_EDITS[api_name](session["long"], "speed", "faster", 5),
                                api_name=api_name)
    assert isinstance(out, ValidationError) and seconds < REFUSAL_S, out
    assert f"at most {validation.MAX_REQUEST_SECONDS:.0f} s" in str(out) and "about 68 s" in str(out), str(out)
    out, seconds = session_call(served, session, *SESSION_EDITS[api_name](session["long"], "speed", "faster", 1),
                                api_name=api_name)
    assert assert_clear(served, out, seconds, f"{api_name} one round") == "ok", out


SESSION_CLONES = {
    "/session_clone": lambda f, text: (f, "a prompt", text, 1, 1),
    "/session_clone_checked": lambda f, text: (f, "a prompt", text, 1, 1, 1, 0.1),
    "/session_clone_stream": lambda f, text: (f, "a prompt", text, 1, 1, False, 1, 0.1),
}


@pytest.mark.parametrize("api_name", sorted(SESSION_CLONES))
def test_session_clones_apply_the_work_cap(served, session, api_name):
    text = "This sentence is long enough to take real work. " * 19            # ~930 characters
    out, seconds = session_call(served, session, *SESSION_CLONES[api_name](
        handle_file(str(served["files"]["float32.wav"])), text), api_name=api_name)
    assert isinstance(out, ValidationError) and seconds < REFUSAL_S, out
    assert f"at most {validation.MAX_REQUEST_SECONDS:.0f} s" in str(out), str(out)


@pytest.mark.parametrize("api_name,args", [
    ("/session_paralinguistic", lambda b: (b, "\x00\u200b", 1)),
    ("/session_paralinguistic_checked", lambda b: (b, "word " * 2000, 1, -1, -1)),
    ("/session_paralinguistic_checked", lambda b: (b, "hello [Laughter] there", 1e308, -1, -1)),
], ids=["control-text", "ten-thousand", "huge-seed"])   # (gradio_client cannot send NaN: JSON has none)
def test_session_paralinguistic_refusals(served, session, api_name, args):
    out, seconds = session_call(served, session, *args(session["short"]), api_name=api_name)
    assert_clear(served, out, seconds, f"{api_name}")
    assert isinstance(out, ValidationError), out


# ------------------------------------------------------------------ raw HTTP
RAW_BODIES = [b"", b"not json", b"{}", b'{"data": 5}', b'{"data": []}', b'{"data": [null, null, null]}',
              b'{"data": ["x", "y", "emotion", "happy", 1, 1, 7, 8]}', b'[1, 2, 3]', b'{"data": "' + b"A" * 100000 + b'"}',
              json.dumps({"data": [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, "x", "emotion",
                                   "happy", 1, 1]}).encode()]


@pytest.mark.parametrize("body", RAW_BODIES, ids=lambda b: b[:20].decode(errors="replace"))
def test_raw_http_bodies(served, body):
    t0 = time.perf_counter()
    url = served["url"] + "gradio_api/call/edit"
    resp = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=REFUSAL_S)
    status, text = resp.status_code, resp.text
    if status == 200:                               # an event id: its stream must end in a clear error
        text = httpx.get(f"{url}/{resp.json()['event_id']}", timeout=REFUSAL_S).text
    assert status in (200, 400, 404, 405, 413, 422), status
    assert time.perf_counter() - t0 < REFUSAL_S
    assert "Traceback" not in text and "root:" not in text          # /etc/passwd is named, never read
    for secret in served["secret_dirs"]:
        assert secret not in text
    assert "event: complete" not in text


def test_uploads_are_registered_for_the_pruner(served):
    """The storage pruner removes only files Gradio registered for this app: an upload is among them."""
    from app_ui import storage  # noqa: PLC0415
    path = upload(served, "ok.flac")["path"]
    assert path in storage.registered_files(served["demo"])
    assert all(p.startswith(os.environ["GRADIO_TEMP_DIR"]) for p in storage.registered_files(served["demo"]))


def test_server_still_answers(served):
    info = served["client"].predict(api_name="/engine_info")
    assert info["engine"] == "fake" and info["max_input_seconds"] == 60.0
    out, seconds = call(served, handle_file(str(served["files"]["float32.wav"])), "a prompt", "still here", 5,
                        api_name="/clone")
    assert assert_clear(served, out, seconds, "final clone") == "ok" and out[1] == "still here"


# ------------------------------------------------------------------ issue 26: zips, short calls, Gradio's own 500s
HOSTILE_ZIPS = make_hostile_zips(64 << 20)         # bench/bomb.py inflates the full 1 GiB


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_script_voices_zip_refuses_every_hostile_archive(served, tmp_path, case):
    data, phrase = HOSTILE_ZIPS[case]
    path = tmp_path / "hostile.zip"
    path.write_bytes(data)
    out, seconds = call(served, "Alice: hello there", -1, "", handle_file(str(path)), api_name="/script")
    assert assert_clear(served, out, seconds, case) == "refused"
    assert phrase.lower() in str(out).lower() and "hostile.zip" in str(out).lower(), str(out)


def test_edit_reads_the_length_limit_from_the_header(served, tmp_path):
    bomb = tmp_path / "bomb.flac"
    bomb.write_bytes(flac_bomb(120.0))                # ~120 bytes declaring 2 min of 192 kHz x 8 channels
    out, seconds = call(served, handle_file(str(bomb)), "words", "speed", "faster", 1, 1, api_name="/edit")
    assert assert_clear(served, out, seconds, "bomb") == "refused" and "at most 60 s" in str(out), str(out)


def test_a_short_raw_call_names_the_missing_inputs(served):
    status, text, seconds = raw_call(served, "edit", [None, "x", "emotion", "happy", 1])   # 5 of 12 values
    assert_clear_raw(served, status, text, seconds, "short call")
    assert "5 of 12 input values were sent" in text and "'iterations'" not in text.split("missing:")[0]
    assert "'first_word'" in text and "'threshold'" in text and "object at 0x" not in text, text


def test_an_unknown_api_name_is_a_404_naming_the_endpoints(served):
    for method in ("post", "get"):
        suffix = "" if method == "post" else "/some-event"
        resp = getattr(httpx, method)(served["url"] + f"gradio_api/call/no_such_api{suffix}", timeout=REFUSAL_S,
                                      **({"json": {"data": []}} if method == "post" else {}))
        assert resp.status_code == 404 and "no_such_api" in resp.json()["detail"], resp.text
        assert "edit" in resp.json()["detail"] and "_ticked" not in resp.json()["detail"]


@pytest.mark.parametrize("session_hash", ["", "   ", None, 5])
def test_queue_join_without_a_session_hash_is_a_400(served, session_hash):
    body = {"data": [], "fn_index": 0, **({} if session_hash is None else {"session_hash": session_hash})}
    resp = httpx.post(served["url"] + "gradio_api/queue/join", json=body, timeout=REFUSAL_S)
    assert resp.status_code in (400, 422) and "session_hash" in resp.text, resp.text
    assert resp.status_code == 400 or session_hash == 5            # a number is Gradio's own 422
