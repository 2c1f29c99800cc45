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

PUBLIC = {"/clone", "/edit", "/paralinguistic", "/transcribe", "/engine_info", "/clone_stream", "/edit_stream"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gradio")
    old = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(tmp / "cache")
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
    assert params["/clone"] == ["prompt_audio", "prompt_text", "target_text", "seed"]
    assert params["/edit"] == ["audio", "audio_text", "edit_type", "edit_info", "n_iterations", "seed"]
    assert params["/paralinguistic"] == ["audio", "audio_text", "new_text", "seed"]
    assert params["/transcribe"] == ["audio"]
    assert len(named["/clone"]["returns"]) == 3 and len(named["/edit"]["returns"]) == 3
    assert params["/clone_stream"] == params["/clone"]
    assert params["/edit_stream"] == ["audio", "audio_text", "edit_type", "edit_info", "seed"]
    assert len(named["/clone_stream"]["returns"]) == 4 and len(named["/edit_stream"]["returns"]) == 4
    info = client.predict(api_name="/engine_info")
    assert info["engine"] == "fake" and "vad" not in info["edit_options"]
    assert "happy" in info["edit_options"]["emotion"]


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
    with pytest.raises(AppError, match="(?i)could not decode"):
        client.predict(handle_file(str(bad)), "a prompt", "hello", -1, api_name="/clone")
    with pytest.raises(AppError, match="does not support the vad edit"):
        client.predict(handle_file(served["prompt"]), "x", "vad", "", 1, -1, api_name="/edit")
    long = tmp_path / "long.wav"
    sf.write(long, np.full(31 * 8000, 0.1, np.float32), 8000)
    with pytest.raises(AppError, match="31.0 s long"):
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


def test_session_stream_lands_in_the_take_tree(client, served):
    job = client.submit(handle_file(served["prompt"]), "a prompt", "streamed into the session", 21, 2, True,
                        api_name="/session_clone_stream")
    updates = list(job)
    h = job.result()[1]
    assert len(updates) >= 3 and [(t["id"], t["seed"]) for t in h["takes"]] == [("T1", 21), ("T2", 22)]
    assert h["actions"][0]["params"]["stream"] is True
    h = client.predict("T1", "emotion", "happy", 1, 7, True, api_name="/session_edit_stream")[1]
    assert h["takes"][-1]["parent"] == "T1" and h["actions"][-1]["params"]["stream"] is True
    h = client.predict("T3", "emotion", "sad", 2, 8, True, api_name="/session_edit_stream")[1]
    assert [t["parent"] for t in h["takes"][-2:]] == ["T3", "T4"]          # 2 rounds: not streamed, both kept
    assert "stream" not in h["actions"][-1]["params"]
    h = client.predict(handle_file(served["prompt"]), "a prompt", "not streamed", 1, 1, False,
                       api_name="/session_clone_stream")[1]
    assert h["takes"][-1]["id"] == "T6" and "stream" not in h["actions"][-1]["params"]
