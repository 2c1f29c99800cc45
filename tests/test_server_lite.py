"""The HTTP server on the lite engine over a real loopback socket (uvicorn): the official ``openai`` client
(streamed wav with instructions and speed, errors), two concurrent httpx clients, an edit, and a voice added
over HTTP then used. One engine and one server per module."""
from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
import uvicorn

from stepedit_core import catalog
from stepedit_core.lite import LiteEngine
from stepedit_core.server import TAKE_HEADER, create_server
from stepedit_core.voices import VoiceLibrary
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
PROMPT = ROOT / "examples" / "prompt_en.wav"
PROMPT_TEXT = (ROOT / "examples" / "prompt_en.txt").read_text(encoding="utf-8").strip()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    library = VoiceLibrary(tmp_path_factory.mktemp("voices"))
    server = uvicorn.Server(uvicorn.Config(create_server(LiteEngine(), library), host="127.0.0.1",
                                           port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    url = f"http://127.0.0.1:{server.config.port}/v1"
    r = httpx.post(f"{url}/voices", data={"name": "fox", "text": PROMPT_TEXT},
                   files={"file": ("prompt_en.wav", PROMPT.read_bytes(), "audio/wav")}, timeout=60)
    assert r.status_code == 201, r.text
    yield url
    server.should_exit = True
    thread.join(10)


def test_two_concurrent_clients_both_get_their_audio(base_url):
    results = {}

    def call(fmt, text):
        results[fmt] = httpx.post(f"{base_url}/audio/speech", timeout=180,
                                  json={"model": "tts-1", "input": text, "voice": "fox", "response_format": fmt})

    threads = [threading.Thread(target=call, args=a) for a in (("mp3", "Good day."), ("pcm", "See you."))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(200)
    assert results["mp3"].status_code == 200 and results["pcm"].status_code == 200
    mp3, sr = sf.read(io.BytesIO(results["mp3"].content))
    pcm = np.frombuffer(results["pcm"].content, "<i2")
    assert sr == 24000 and len(mp3) > 0.3 * sr and len(pcm) > 0.3 * 24000
    assert json.loads(results["mp3"].headers[TAKE_HEADER])["text"] == "Good day."


def test_speed_edit_of_uploaded_audio_on_the_lite_engine(base_url):
    r = httpx.post(f"{base_url}/audio/edits", timeout=120,
                   files={"file": ("p.wav", PROMPT.read_bytes(), "audio/wav")},
                   data={"edit_type": "speed", "option": "faster", "text": PROMPT_TEXT, "response_format": "flac"})
    assert r.status_code == 200, r.text
    y, sr = sf.read(io.BytesIO(r.content))
    ratio = sf.info(str(PROMPT)).duration / (len(y) / sr)
    assert ratio == pytest.approx(catalog.SPEED_RATIOS["faster"], rel=0.05)


def test_bad_request_on_the_live_server_is_json(base_url):
    r = httpx.post(f"{base_url}/audio/speech", json={"model": "tts-1", "input": "Hi", "voice": "alloy"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == "voice" and "'alloy'" in r.json()["error"]["message"]


# ---- the official OpenAI Python client --------------------------------------------------------------------
def test_openai_client_speech_with_instructions_and_speed(base_url, tmp_path):
    from openai import OpenAI
    client = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=180)
    out = tmp_path / "sad.wav"
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="fox", input="Thanks a lot.", response_format="wav", instructions="sad",
            speed=1.2, extra_body={"seed": 11}) as response:
        take = json.loads(response.headers[TAKE_HEADER])
        assert response.headers["content-type"] == "audio/wav"
        assert response.headers.get("transfer-encoding") == "chunked"      # streamed, not one body
        response.stream_to_file(out)
    y, sr = sf.read(out)
    assert sr == 24000 and len(y) > 0.3 * sr and np.abs(y).max() > 0.05
    assert take["seed"] == 11 and take["edits"] == ["emotion=sad", "speed=faster"] and take["text"] == "Thanks a lot."


def test_openai_client_sees_openai_shaped_errors(base_url):
    import openai
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=30)
    with pytest.raises(openai.BadRequestError) as exc:
        client.audio.speech.create(model="tts-1", voice="fox", input="Hi", response_format="aac")
    assert exc.value.status_code == 400 and exc.value.body["param"] == "response_format"
    assert "Unsupported audio format 'aac'" in exc.value.body["message"]
    with pytest.raises(openai.BadRequestError, match="No voice named 'alloy'"):
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi")


def test_check_and_a_checked_word_range_edit_on_the_lite_engine(base_url):
    """/audio/checks with the lite whisper and speaker embedder; then an edit of three words only, checked:
    every sample outside the window (and its cross-fades) is the uploaded file's."""
    files = {"file": ("p.wav", PROMPT.read_bytes(), "audio/wav"), "source": ("s.wav", PROMPT.read_bytes(), "audio/wav")}
    r = httpx.post(f"{base_url}/audio/checks", files=files, data={"text": PROMPT_TEXT}, timeout=120)
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["metric"] == "wer" and c["error_rate"] <= 0.10 and c["speaker_similarity"] == pytest.approx(1.0)
    starts = [w[1] for w in c["words"]]
    assert len(c["words"]) >= 8 and starts == sorted(starts) and c["words"][-1][2] <= sf.info(str(PROMPT)).duration
    r = httpx.post(f"{base_url}/audio/edits", timeout=180, files={"file": ("p.wav", PROMPT.read_bytes(), "audio/wav")},
                   data={"edit_type": "emotion", "option": "sad", "text": PROMPT_TEXT, "seed": "4",
                         "first_word": "2", "last_word": "4", "check": "true"})
    assert r.status_code == 200, r.text
    take = json.loads(r.headers[TAKE_HEADER])
    region = take["region"]
    assert region["selection"] == {"words": [2, 4]} and region["text"].split() == [w[0] for w in c["words"][2:5]]
    original, _ = sf.read(str(PROMPT), dtype="int16")
    out, _ = sf.read(io.BytesIO(r.content), dtype="int16")
    fade = round(region["fade_s"] * region["sample_rate"])
    a, b = region["window_samples"][0] - fade, region["window_samples"][1] + fade
    shift = len(out) - len(original)
    assert a > 0 and b < len(original) and np.array_equal(out[:a], original[:a])
    assert np.array_equal(out[b + shift:], original[b:]) and not np.array_equal(out[a:b + shift], original[a:b])
    assert take["seeds_tried"] == [4] and take["check"]["metric"] == "wer" and take["check"]["words"]
