"""The app through gradio_client against a launched server (fake engine, loopback, free port)."""
from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError, ValidationError  # noqa: E402

from stepedit_core.errors import InvalidInputError  # noqa: E402
from tests.fake_engine import FakeEngine  # noqa: E402
from tests.servers import free_port  # noqa: E402

PUBLIC = {"/check", "/clone", "/clone_stream", "/edit", "/edit_stream", "/engine_info", "/edit_words", "/paralinguistic", "/plan", "/script", "/transcribe", "/voices"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gradio")
    old = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(tmp / "cache")
    old_data = os.environ.get("STEPEDIT_DATA_DIR")
    os.environ["STEPEDIT_DATA_DIR"] = str(tmp / "data")          # the voice library, never the user's
    import app  # noqa: PLC0415
    engine = FakeEngine(unsupported=("vad",))
    demo = app.build_demo(engine)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(),
                            quiet=True, **app.launch_options(mcp=True))
    sr = 16000
    t = np.arange(2 * sr) / sr
    prompt = tmp / "prompt.wav"
    sf.write(prompt, (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32), sr)
    yield {"url": url, "engine": engine, "tmp": tmp, "prompt": str(prompt)}
    demo.close()
    if old is None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
    else:
        os.environ["GRADIO_TEMP_DIR"] = old
    if old_data is None:
        os.environ.pop("STEPEDIT_DATA_DIR", None)
    else:
        os.environ["STEPEDIT_DATA_DIR"] = old_data


@pytest.fixture()
def client(served, tmp_path):
    c = Client(served["url"], download_files=str(tmp_path), verbose=False)
    yield c
    c.close()


def samples(path) -> np.ndarray:
    return sf.read(path, dtype="int16")[0]


def test_public_api_surface(client):
    api = client.view_api(return_format="dict", print_info=False)
    named = api["named_endpoints"]
    assert set(named) == PUBLIC
    params = {k: [p["parameter_name"] for p in v["parameters"]] for k, v in named.items()}
    assert params["/clone"] == ["prompt_audio", "prompt_text", "target_text", "seed", "max_tries", "threshold"]
    # today's parameters first and unchanged; the region and auto-retry options are appended with defaults
    assert params["/edit"] == ["audio", "audio_text", "edit_type", "edit_info", "n_iterations", "seed",
                               "first_word", "last_word", "region_start", "region_end", "max_tries", "threshold"]
    assert all(p["parameter_has_default"] for p in named["/edit"]["parameters"][4:])
    assert params["/check"] == ["audio", "text", "source_audio", "expected_seconds"]
    assert params["/paralinguistic"] == ["audio", "audio_text", "new_text", "seed", "max_tries", "threshold"]
    for name in ("/clone", "/paralinguistic"):
        assert all(p["parameter_has_default"] for p in named[name]["parameters"][3:])
    assert params["/transcribe"] == ["audio"]
    assert len(named["/clone"]["returns"]) == 3 and len(named["/edit"]["returns"]) == 3
    assert params["/clone_stream"] == params["/clone"][:4]
    assert params["/edit_stream"] == ["audio", "audio_text", "edit_type", "edit_info", "seed"]
    assert len(named["/clone_stream"]["returns"]) == 4 and len(named["/edit_stream"]["returns"]) == 4
    info = client.predict(api_name="/engine_info")
    assert info["engine"] == "fake" and "vad" not in info["edit_options"]
    assert "happy" in info["edit_options"]["emotion"]


def test_plan_endpoint_turns_words_into_steps(client):
    out = client.predict("更开心一点，语速慢一点，在'早上'后面笑一下", api_name="/plan")
    assert out["plan"] == ["emotion happy x1", "speed slower x1", "paralinguistic laugh after '早上'"]
    assert out["steps"][2]["tag"] == "laugh" and out["steps"][2]["anchor"] == "早上"
    with pytest.raises(Exception, match="purple"):
        client.predict("make it purple", api_name="/plan")


def test_edit_words_endpoint_keeps_the_rest(client, served):
    audio, text, _ = client.predict(handle_file(served["prompt"]), "a prompt", "see you on tuesday at noon", 11,
                                    api_name="/clone")
    out, new_text, seed = client.predict(handle_file(audio), text, "see you on thursday at noon", 4,
                                         api_name="/edit_words")
    assert (new_text, seed) == ("see you on thursday at noon", 4)
    x, y = samples(audio), samples(out)
    assert np.array_equal(x[:2000], y[:2000]) and np.array_equal(x[-2000:], y[-2000:])
    with pytest.raises(Exception, match="did not change"):
        client.predict(handle_file(audio), text, text, 4, api_name="/edit_words")


def test_stateless_clone_edit_edit_chain(client, served):
    audio, text, seed = client.predict(handle_file(served["prompt"]), "a prompt", "hello world", 11,
                                       api_name="/clone")
    assert (text, seed) == ("hello world", 11)
    a1, t1, s1 = client.predict(handle_file(audio), text, "emotion", "happy", 2, 5, api_name="/edit")
    a2, t2, s2 = client.predict(handle_file(a1), t1, "speed", "slower", 1, 6, api_name="/edit")
    assert (t1, s1, t2, s2) == ("hello world", 5, "hello world", 6)
    x0, x2 = samples(audio), samples(a2)
    assert len(x2) > len(x0)                       # "slower" lengthens
    again = client.predict(handle_file(served["prompt"]), "a prompt", "hello world", 11, api_name="/clone")
    assert np.array_equal(samples(again[0]), x0)   # same seed, same audio
    a3, t3, _ = client.predict(handle_file(audio), text, "hello [Laughter] world", 3, api_name="/paralinguistic")
    assert t3 == "hello [Laughter] world" and len(samples(a3)) > len(x0)
    assert client.predict(handle_file(served["prompt"]), api_name="/transcribe").startswith("a fake transcript")


def test_session_branching_undo_and_compare(client, served):
    h = client.predict(handle_file(served["prompt"]), "a prompt", "branch me", 40, 2, api_name="/session_clone")
    assert [(t["id"], t["seed"], t["parent"]) for t in h["takes"]] == [("T1", 40, None), ("T2", 41, None)]
    h = client.predict("T1", "emotion", "sad", 2, 7, api_name="/session_edit")
    h = client.predict("T4", "speed", "faster", 1, 9, api_name="/session_edit")
    h = client.predict("T1", "style", "whisper", 1, 3, api_name="/session_edit")    # branch from an early take
    parents = {t["id"]: t["parent"] for t in h["takes"]}
    assert parents == {"T1": None, "T2": None, "T3": "T1", "T4": "T3", "T5": "T4", "T6": "T1"}
    assert [t["seed"] for t in h["takes"][2:4]] == [7, 8]          # round k uses seed + k - 1
    h = client.predict("T2", "hi [Sigh] there", 1, api_name="/session_paralinguistic")
    assert h["takes"][-1]["text"] == "hi [Sigh] there" and h["takes"][-1]["parent"] == "T2"
    h = client.predict(api_name="/undo")
    assert [t["id"] for t in h["takes"]] == ["T1", "T2", "T3", "T4", "T5", "T6"]
    a, img_a, cap_a, b, img_b, cap_b = client.predict("T1", "T6", api_name="/compare")
    assert samples(a).shape != samples(b).shape or not np.array_equal(samples(a), samples(b))
    assert Path(img_a).suffix == ".png" and "T6" in cap_b and "T1 → T6" in cap_b


def test_recipe_replay_reproduces_takes(served, tmp_path):
    a = Client(served["url"], download_files=str(tmp_path / "a"), verbose=False)
    b = Client(served["url"], download_files=str(tmp_path / "b"), verbose=False)
    try:
        a.predict(handle_file(served["prompt"]), "a prompt", "replay me", -1, 2, api_name="/session_clone")
        a.predict("T2", "emotion", "angry", 2, -1, api_name="/session_edit")
        h_a = a.predict("T3", "hey [Breathing] you", 5, api_name="/session_paralinguistic")
        recipe_path = a.predict(api_name="/export_recipe")
        recipe = json.loads(Path(recipe_path).read_text())
        assert [x["kind"] for x in recipe["actions"]] == ["clone", "edit", "edit"] and recipe["sources"]
        h_b, report = b.predict(handle_file(recipe_path), api_name="/replay_recipe")
        assert "5/5 are bit-identical" in report
        key = ("id", "parent", "seed", "text", "sha256", "op", "option")
        assert [[t[k] for k in key] for t in h_b["takes"]] == [[t[k] for k in key] for t in h_a["takes"]]
        for take in ("T1", "T4", "T5"):
            assert np.array_equal(samples(a.predict(take, None, api_name="/compare")[0]),
                                  samples(b.predict(take, None, api_name="/compare")[0]))
    finally:
        a.close()
        b.close()


def test_bad_inputs_give_useful_messages(client, served, tmp_path):
    with pytest.raises(ValidationError, match="target text"):
        client.predict(handle_file(served["prompt"]), "a prompt", "   ", -1, api_name="/clone")
    with pytest.raises(ValidationError, match="happy"):
        client.predict(handle_file(served["prompt"]), "x", "emotion", "joyful", 1, -1, api_name="/edit")
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wav")
    with pytest.raises(ValidationError, match=r"\(broken\.wav\) is not an audio file") as err:   # before the queue
        client.predict(handle_file(str(bad)), "a prompt", "hello", -1, api_name="/clone")
    assert "/" not in str(err.value)                                    # no server path
    with pytest.raises(AppError, match="does not support the vad edit"):
        client.predict(handle_file(served["prompt"]), "x", "vad", "", 1, -1, api_name="/edit")
    long = tmp_path / "long.wav"
    sf.write(long, np.full(31 * 8000, 0.1, np.float32), 8000)
    with pytest.raises(ValidationError, match="31.0 s long"):
        client.predict(handle_file(str(long)), "x", "emotion", "happy", 1, -1, api_name="/edit")
    with pytest.raises(AppError, match="Pick a take"):
        client.predict("T99", "emotion", "happy", 1, -1, api_name="/session_edit")


def test_error_keeps_history(client, served):
    client.predict(handle_file(served["prompt"]), "a prompt", "keep me", 1, 1, api_name="/session_clone")
    served["engine"].fail_with = InvalidInputError("the fake engine refused")
    with pytest.raises(AppError, match="The fake engine refused"):
        client.predict("T1", "emotion", "happy", 1, -1, api_name="/session_edit")
    h = client.predict(api_name="/history")
    assert [t["id"] for t in h["takes"]] == ["T1"]
    h = client.predict("T1", "emotion", "happy", 1, -1, api_name="/session_edit")
    assert [t["id"] for t in h["takes"]] == ["T1", "T2"]


def test_two_clients_do_not_share_history(served, tmp_path):
    a = Client(served["url"], download_files=str(tmp_path / "a"), verbose=False)
    b = Client(served["url"], download_files=str(tmp_path / "b"), verbose=False)
    try:
        a.predict(handle_file(served["prompt"]), "a prompt", "mine", 1, 1, api_name="/session_clone")
        assert b.predict(api_name="/history")["takes"] == []
        with pytest.raises(AppError, match="Pick a take"):
            b.predict("T1", "emotion", "happy", 1, -1, api_name="/session_edit")
        assert [t["id"] for t in a.predict(api_name="/history")["takes"]] == ["T1"]
    finally:
        a.close()
        b.close()


def test_mcp_schema_lists_clone_and_edit(served):
    with urllib.request.urlopen(served["url"] + "gradio_api/mcp/schema", timeout=10) as r:
        tools = {t["name"]: t for t in json.loads(r.read())}
    assert {"clone", "edit", "paralinguistic", "transcribe"} <= set(tools)
    assert not any(name.startswith("session_") for name in tools)
    edit_props = tools["edit"]["inputSchema"]["properties"]
    assert "happy" in tools["edit"]["description"] and "edit_type" in edit_props


def test_takes_are_checked_retried_and_replayed_exactly(served, tmp_path):
    """Every take carries its check; auto-retry keeps re-rolling past a seed whose take drops a word (the fake
    engine "drops" the last word when seed % 3 == 0), records every seed tried, and the recipe replays it."""
    a = Client(served["url"], download_files=str(tmp_path / "a"), verbose=False)
    b = Client(served["url"], download_files=str(tmp_path / "b"), verbose=False)
    try:
        h = a.predict(handle_file(served["prompt"]), "a prompt", "retry me please", 30, 1, 3, 0.0,
                      api_name="/session_clone_checked")
        (take,) = h["takes"]
        assert take["seed"] == 31 and take["check"]["error_rate"] == 0.0
        assert take["check"]["levels"]["error_rate"] == "green"
        assert [w[0] for w in take["check"]["words"]] == ["retry", "me", "please"]
        assert h["actions"][0]["params"]["retry"]["tried"][0] == {"seed": 30, "error_rate": pytest.approx(1 / 3, abs=1e-3),
                                                                    "verdict": "red"}
        # without retries the dropped word is reported, not hidden
        h = a.predict(handle_file(served["prompt"]), "a prompt", "retry me please", 30, 1, 1, 0.1,
                      api_name="/session_clone_checked")
        assert h["takes"][-1]["check"]["levels"]["error_rate"] == "red"
        _, _, cap, *_ = a.predict("T2", None, api_name="/compare")
        assert "check-badge red" in cap and "heard: retry me" in cap
        # a region edit of the words "me please" of T1
        h = a.predict("T1", "emotion", "happy", 1, 7, 1, 2, None, None, 1, 0.1, api_name="/session_edit_checked")
        edit = h["takes"][-1]
        assert edit["parent"] == "T1" and h["actions"][-1]["params"]["region"]["words"] == [1, 2]
        x1 = samples(a.predict("T1", None, api_name="/compare")[0])
        x3 = samples(a.predict(edit["id"], None, api_name="/compare")[0])
        start = int(h["actions"][-1]["params"]["region"]["window_s"][0] * 24000) - 490
        assert start > 0 and np.array_equal(x3[:start], x1[:start]) and not np.array_equal(x3, x1)
        recipe = json.loads(Path(a.predict(api_name="/export_recipe")).read_text())
        assert recipe["expected"]["T1"]["check"]["error_rate"] == 0.0
        h_b, report = b.predict(handle_file(a.predict(api_name="/export_recipe")), api_name="/replay_recipe")
        assert "3/3 are bit-identical" in report
        assert [t["seed"] for t in h_b["takes"]] == [31, 30, 7]
    finally:
        a.close()
        b.close()


def test_clone_and_paralinguistic_endpoints_retry_like_edit(client, served):
    """/clone and /paralinguistic take /edit's optional max_tries and threshold: the fake engine drops the last
    word when seed % 3 == 0, so seed 30 is re-rolled to 31; without the options (old calls) seed 30 is kept."""
    prompt = handle_file(served["prompt"])
    assert client.predict(prompt, "a prompt", "retry me please", 30, api_name="/clone")[2] == 30
    audio, text, seed = client.predict(prompt, "a prompt", "retry me please", 30, 3, 0.0, api_name="/clone")
    assert (text, seed) == ("retry me please", 31)
    assert client.predict(prompt, "a prompt", "retry me please", 30, 1, 0.0, api_name="/clone")[2] == 30
    base = handle_file(audio)
    assert client.predict(base, text, "retry [Sigh] me please", 30, api_name="/paralinguistic")[2] == 30
    out, t2, s2 = client.predict(base, text, "retry [Sigh] me please", 30, 3, 0.0, api_name="/paralinguistic")
    assert (t2, s2) == ("retry [Sigh] me please", 31) and len(samples(out)) > len(samples(audio))
    # the same validation and messages as /edit
    for api, args in (("/clone", (prompt, "a prompt", "hi there", 1)), ("/paralinguistic", (base, text, "hi [Sigh]", 1)),
                      ("/edit", (base, text, "emotion", "happy", 1, 1, -1, -1, -1, -1))):
        with pytest.raises(AppError, match="number of tries"):
            client.predict(*args, 0, 0.1, api_name=api)
        with pytest.raises(AppError, match=r"threshold must be between 0 and 1 \(got 2"):
            client.predict(*args, 2, 2.0, api_name=api)


def test_region_and_check_endpoints(client, served):
    x = samples(served["prompt"])
    out, text, seed = client.predict(handle_file(served["prompt"]), "one two three", "emotion", "happy", 1, 4,
                                     -1, -1, 0.5, 1.2, 1, 0.1, api_name="/edit")
    y = samples(out)
    assert seed == 4 and text == "one two three" and sf.info(out).samplerate == 16000   # the input's own rate
    assert np.array_equal(y[:3000], x[:3000]) and not np.array_equal(y, x)      # 0.19 s: before the window
    with pytest.raises(AppError, match="outside the clip"):
        client.predict(handle_file(served["prompt"]), "x", "emotion", "happy", 1, 4, -1, -1, 1.5, 9.0, 1, 0.1,
                       api_name="/edit")
    with pytest.raises(AppError, match="first_word and last_word"):
        client.predict(handle_file(served["prompt"]), "x", "emotion", "happy", 1, 4, 2, -1, -1, -1, 1, 0.1,
                       api_name="/edit")
    report = client.predict(handle_file(served["prompt"]), "a fake transcript of 2.0 seconds", None, 2.0,
                            api_name="/check")
    assert report["error_rate"] == 0.0 and report["duration_ratio"] == pytest.approx(1.0)
    assert report["verdict"] == "green" and len(report["words"]) == 6 and report["summary"].startswith("green")
    with pytest.raises(ValidationError, match="text the audio should say"):
        client.predict(handle_file(served["prompt"]), " ", None, -1, api_name="/check")


def test_bad_selection_keeps_history(client, served):
    client.predict(handle_file(served["prompt"]), "a prompt", "keep my words", 1, 1, 1, 0.1,
                   api_name="/session_clone_checked")
    with pytest.raises(AppError, match="outside the transcript"):
        client.predict("T1", "emotion", "happy", 1, 1, 2, 7, None, None, 1, 0.1, api_name="/session_edit_checked")
    with pytest.raises(AppError, match="both the start time and the end time"):
        client.predict("T1", "emotion", "happy", 1, 1, -1, -1, 0.2, None, 1, 0.1, api_name="/session_edit_checked")
    with pytest.raises(AppError, match="outside the selected words"):
        client.predict("T1", "keep [Sigh] my words", 1, 2, 2, api_name="/session_paralinguistic_checked")
    h = client.predict("T1", "keep my [Sigh] words", 1, 1, 2, api_name="/session_paralinguistic_checked")
    assert h["takes"][-1]["text"] == "keep my [Sigh] words"
    client.predict(api_name="/undo")
    assert [t["id"] for t in client.predict(api_name="/history")["takes"]] == ["T1"]
def test_script_endpoint_with_a_voice_zip_and_the_library(client, served, tmp_path):
    from stepedit_core.interface import AudioClip  # noqa: PLC0415
    from stepedit_core.script.master import parse_srt_times  # noqa: PLC0415
    from stepedit_core.voices import VoiceLibrary  # noqa: PLC0415
    lib = VoiceLibrary(tmp_path / "lib")
    lib.save("Ann", AudioClip.from_file(served["prompt"]), "a prompt")
    lib.save("Ben", AudioClip.from_file(served["prompt"]), "another prompt")
    zip_path = tmp_path / "voices.zip"
    zip_path.write_bytes(lib.export_zip())
    script = "Ann: {happy} hello there\nBen: [pause 0.5s] hi [Laughter]\nand more words"
    wav, srt, vtt, recipe = client.predict(script, 4, "", handle_file(str(zip_path)), api_name="/script")
    times = parse_srt_times(Path(srt).read_text(encoding="utf-8"))
    assert len(times) == 3 and times[1][0] - times[0][1] == pytest.approx(0.5, abs=0.002)
    assert len(samples(wav)) / 24000 == pytest.approx(times[-1][1], abs=0.002)
    assert Path(vtt).read_text(encoding="utf-8").startswith("WEBVTT")
    data = json.loads(Path(recipe).read_text(encoding="utf-8"))
    assert data["seed"] == 4 and sorted(data["voices"]) == ["Ann", "Ben"] and len(data["lines"]) == 3
    again = client.predict(script, 4, "", handle_file(str(zip_path)), api_name="/script")
    assert np.array_equal(samples(again[0]), samples(wav))                      # one seed, one master
    with pytest.raises(AppError, match="Script line 2, column 1: unknown voice 'Cat'"):
        client.predict("Ann: hi\nCat: hello", 1, "", handle_file(str(zip_path)), api_name="/script")
    with pytest.raises(AppError, match="line 1, column 12: unknown directive"):
        client.predict("Ann: hello {shouty}", 1, "", handle_file(str(zip_path)), api_name="/script")
    # without a zip the server's library is used (empty here), so the voice is unknown
    assert client.predict(api_name="/voices") == []
    with pytest.raises(AppError, match="unknown voice 'Ann'"):
        client.predict("Ann: hi", 1, "", None, api_name="/script")
def _stream(client, *args, api_name):
    """Iterate a streaming endpoint: the live updates (HLS playlists), then the final outputs."""
    job = client.submit(*args, api_name=api_name)
    updates = list(job)
    return updates[:-1], job.result()


def test_streaming_endpoints_play_while_generating(client, served):
    live, (_, audio, text, seed) = _stream(client, handle_file(served["prompt"]), "a prompt",
                                           "hello streaming world, in pieces", 11, api_name="/clone_stream")
    assert len(live) >= 3 and all(str(u[0]).endswith(".m3u8") for u in live)      # one update per chunk
    assert (text, seed) == ("hello streaming world, in pieces", 11)
    whole, _, _ = client.predict(handle_file(served["prompt"]), "a prompt", "hello streaming world, in pieces", 11,
                                 api_name="/clone")
    assert np.array_equal(samples(audio), samples(whole))     # the fake engine streams its take in pieces
    live, (_, edited, text, seed) = _stream(client, handle_file(audio), text, "speed", "slower", 4,
                                            api_name="/edit_stream")
    assert len(live) >= 2 and seed == 4 and len(samples(edited)) > len(samples(audio))
    # errors: job.result() raises them (iterating a failed job does not end in gradio_client 2.7.2)
    with pytest.raises(ValidationError, match="happy"):
        client.submit(handle_file(audio), "x", "emotion", "joyful", -1, api_name="/edit_stream").result(timeout=30)
    with pytest.raises(AppError, match="does not support the vad edit"):
        client.submit(handle_file(audio), "x", "vad", "", -1, api_name="/edit_stream").result(timeout=30)


def test_session_paralinguistic_streams_into_the_take_tree(client, served):
    client.predict(handle_file(served["prompt"]), "a prompt", "keep my words", 1, 1, 1, 0.1,
                   api_name="/session_clone_checked")
    job = client.submit("T1", "keep [Sigh] my words", 3, True, -1, -1, api_name="/session_paralinguistic_stream")
    updates = list(job)
    h = job.result()[1]
    assert len(updates) >= 2                                    # live chunks, then the landed take
    assert h["takes"][-1]["parent"] == "T1" and h["takes"][-1]["text"] == "keep [Sigh] my words"
    assert h["actions"][-1]["params"]["stream"] is True
    # a word range gives a whole take (not streamed); a bad selection keeps the history
    h = client.predict("T1", "keep my [Sigh] words", 4, True, 1, 2, api_name="/session_paralinguistic_stream")[1]
    assert h["takes"][-1]["text"] == "keep my [Sigh] words" and "stream" not in h["actions"][-1]["params"]
    with pytest.raises(AppError, match="outside the selected words"):
        client.predict("T1", "keep [Sigh] my words", 1, True, 2, 2, api_name="/session_paralinguistic_stream")
    assert len(client.predict(api_name="/history")["takes"]) == 3


def test_session_stream_lands_in_the_take_tree(client, served):
    job = client.submit(handle_file(served["prompt"]), "a prompt", "streamed into the session", 21, 2, True, 1, 0.1,
                        api_name="/session_clone_stream")
    updates = list(job)
    h = job.result()[1]
    assert len(updates) >= 3 and [(t["id"], t["seed"]) for t in h["takes"]] == [("T1", 21), ("T2", 22)]
    assert h["actions"][0]["params"]["stream"] is True
    h = client.predict("T1", "emotion", "happy", 1, 7, True, -1, -1, None, None, 1, 0.1,
                       api_name="/session_edit_stream")[1]
    assert h["takes"][-1]["parent"] == "T1" and h["actions"][-1]["params"]["stream"] is True
    h = client.predict("T3", "emotion", "sad", 2, 8, True, -1, -1, None, None, 1, 0.1,
                       api_name="/session_edit_stream")[1]
    assert [t["parent"] for t in h["takes"][-2:]] == ["T3", "T4"]          # 2 rounds: not streamed, both kept
    assert "stream" not in h["actions"][-1]["params"]
    h = client.predict(handle_file(served["prompt"]), "a prompt", "not streamed", 1, 1, False, 1, 0.1,
                       api_name="/session_clone_stream")[1]
    assert h["takes"][-1]["id"] == "T6" and "stream" not in h["actions"][-1]["params"]
    # re-rolls need whole, checked takes: the stream toggle is then ignored (seed 30 drops a word, 31 passes)
    h = client.predict(handle_file(served["prompt"]), "a prompt", "retry me please", 30, 1, True, 3, 0.0,
                       api_name="/session_clone_stream")[1]
    assert h["takes"][-1]["seed"] == 31 and h["takes"][-1]["check"]["error_rate"] == 0.0
    assert "stream" not in h["actions"][-1]["params"] and h["actions"][-1]["params"]["retry"]["tried"][0]["seed"] == 30
