"""The HTTP server on the deterministic fake engine: every format, streaming, instructions and speed, edits,
transcription, voice CRUD + zip round trip, OpenAI-shaped errors, bearer auth, and queueing of concurrent
requests behind the one engine. The lite engine over a real socket is tested in test_server_lite.py."""
from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from stepedit_core import audio_formats
from stepedit_core.errors import InvalidInputError
from stepedit_core.server import TAKE_HEADER, create_server
from stepedit_core.server.gate import EngineGate
from stepedit_core.voices import VoiceLibrary
from tests.fake_engine import SR, FakeEngine

TEXT = "Hi there"
PROMPT_TEXT = "A short prompt."


def tone_wav(seconds=1.0, sr=16000, f=220.0) -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


class StreamingFake(FakeEngine):
    """The fake engine whose streaming hook yields its clone in 0.1 s chunks."""

    refuse_streaming = False

    def _stream_clone(self, request, should_stop):
        self.calls.append("stream_clone")
        if self.refuse_streaming:
            raise InvalidInputError("streaming takes a prompt of at most 30 s")
        samples = self.clone(request).audio.samples
        for start in range(0, len(samples), SR // 10):
            yield samples[start:start + SR // 10]


class CountingFake(FakeEngine):
    """Records how many clones run at the same time."""

    def __init__(self):
        super().__init__()
        self.active = self.peak = 0
        self._count = threading.Lock()

    def _clone(self, request, progress):
        with self._count:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.3)
        try:
            return super()._clone(request, progress)
        finally:
            with self._count:
                self.active -= 1


def make_client(tmp_path, engine=None, **kw) -> TestClient:
    lib = VoiceLibrary(tmp_path / "voices")
    lib.save("alice", audio_formats_clip(), PROMPT_TEXT)
    app = create_server(engine or FakeEngine(), lib, **kw)
    return TestClient(app, raise_server_exceptions=False)


def audio_formats_clip():
    from stepedit_core.interface import AudioClip
    return AudioClip.from_file(tone_wav())


@pytest.fixture
def client(tmp_path):
    with make_client(tmp_path) as c:
        yield c


def speech(client, **overrides):
    body = {"model": "tts-1", "input": TEXT, "voice": "alice", "response_format": "wav", "seed": 7}
    body.update(overrides)
    return client.post("/v1/audio/speech", json=body)


def expected_clone(seed=7) -> np.ndarray:
    from stepedit_core.interface import CloneRequest
    return FakeEngine().clone(CloneRequest(audio_formats_clip(), PROMPT_TEXT, TEXT, seed=seed)).audio.samples


def assert_error(response, status, param=None, match=""):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert match.lower() in error["message"].lower(), error["message"]
    assert "Traceback" not in response.text and "/work" not in response.text and ".py" not in response.text
    return error


# ---- speech -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "opus"])
def test_speech_in_every_file_format_decodes_to_the_engines_take(client, fmt):
    r = speech(client, response_format=fmt)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == audio_formats.media_type(fmt)
    y, sr = sf.read(io.BytesIO(r.content), dtype="float32")
    ref = expected_clone()
    assert sr == SR and abs(len(y) - len(ref)) <= (2400 if fmt in ("mp3", "opus") else 0)
    if fmt in ("wav", "flac"):                       # lossless 16-bit
        assert np.max(np.abs(y - ref)) < 1e-4
    take = json.loads(r.headers[TAKE_HEADER])
    assert take["text"] == TEXT and take["seed"] == 7 and take["edits"] == []


def test_pcm_is_raw_16bit_24khz(client):
    r = speech(client, response_format="pcm")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/pcm"
    y = np.frombuffer(r.content, "<i2").astype(np.float32) / 32767
    ref = expected_clone()
    assert len(y) == len(ref) and np.max(np.abs(y - ref)) < 1e-4


def test_wav_streams_in_chunks_with_an_open_ended_header(client):
    with client.stream("POST", "/v1/audio/speech", json={"model": "tts-1", "input": TEXT, "voice": "alice",
                                                          "response_format": "wav", "seed": 7}) as r:
        assert r.status_code == 200
        pieces = list(r.iter_raw())
    data = b"".join(pieces)
    assert data[:4] == b"RIFF" and data[4:8] == b"\xff\xff\xff\xff"
    y, sr = sf.read(io.BytesIO(data), dtype="float32")
    assert sr == SR and np.max(np.abs(y - expected_clone())) < 1e-4


def test_stream_clone_is_used_when_the_engine_has_it(tmp_path):
    engine = StreamingFake()
    with make_client(tmp_path, engine) as c:
        r = speech(c, response_format="pcm")
        assert r.status_code == 200 and engine.calls[0] == "stream_clone"
        y = np.frombuffer(r.content, "<i2").astype(np.float32) / 32767
        assert len(y) == len(expected_clone()) and np.max(np.abs(y - expected_clone())) < 1e-4
        r = speech(c, response_format="mp3")                # not streamable: the whole-take path
        assert r.status_code == 200 and engine.calls[-1] == "clone" and "stream_clone" not in engine.calls[2:]
        r = speech(c, response_format="pcm", input="  ")    # validation errors still come before any audio
        assert_error(r, 400, match="target text is empty")
        engine.refuse_streaming = True                      # an engine-specific streaming limit: whole take
        r = speech(c, response_format="pcm")
        assert r.status_code == 200 and engine.calls[-2:] == ["stream_clone", "clone"]
        assert len(r.content) == 2 * len(expected_clone())


def test_sse_stream_carries_base64_pcm_deltas(client):
    r = speech(client, response_format="pcm", stream_format="sse")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "speech.audio.done"
    import base64
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert len(pcm) == 2 * len(expected_clone())


def test_instructions_and_speed_become_edits_on_the_clone(tmp_path):
    engine = FakeEngine()
    with make_client(tmp_path, engine) as c:
        r = speech(c, instructions="Sound happy, in a whisper", speed=1.5)
        assert r.status_code == 200, r.text
        assert engine.calls == ["clone", "emotion", "style", "speed"]
        take = json.loads(r.headers[TAKE_HEADER])
        assert take["edits"] == ["emotion=happy", "style=whisper", "speed=more faster"]
        y, _ = sf.read(io.BytesIO(r.content))
        # fake engine: emotion/style stretch by <= 10 % each, "more faster" divides the length by 1/0.65
        assert len(y) < len(expected_clone()) * 0.65 * 1.1 * 1.1 + 1


def test_speech_clones_with_the_voices_token_store(tmp_path):
    """The real engine reads / fills a library voice's prompt-token cache through CloneRequest.prompt_store
    (tests/test_voice_tokens.py); the speech route hands it the named voice's store, also when streaming."""
    stores = []

    class Recording(StreamingFake):
        def _clone(self, request, progress):
            stores.append(request.prompt_store)
            return super()._clone(request, progress)

    with make_client(tmp_path, Recording()) as c:
        assert speech(c, voice="ALICE").status_code == 200
        assert speech(c, stream_format="sse").status_code == 200
    assert len(stores) == 2 and all(s is not None and s.name == "alice" for s in stores)
    stores[0].store("tok/abc", [1, 2, 3])
    assert VoiceLibrary(tmp_path / "voices").get("alice").prompt_tokens == {"tok/abc": [1, 2, 3]}
    assert stores[1].load("tok/abc") == [1, 2, 3] and stores[1].load("other") is None


# ---- edit and transcription ---------------------------------------------------------------------------
def test_edit_endpoint_applies_an_edit_to_uploaded_audio(client):
    files = {"file": ("in.wav", tone_wav(1.0, 24000), "audio/wav")}
    r = client.post("/v1/audio/edits", files=files, data={"edit_type": "speed", "option": "slower",
                                                          "text": "some words", "seed": "3", "iterations": "2"})
    assert r.status_code == 200, r.text
    y, sr = sf.read(io.BytesIO(r.content))
    assert sr == SR and len(y) == pytest.approx(24000 * 1.25 * 1.25, abs=2)       # two rounds of 1.25x
    take = json.loads(r.headers[TAKE_HEADER])
    assert take["edit_type"] == "speed" and take["iteration"] == 2 and take["text"] == "some words"


def test_edit_without_text_transcribes_first(client):
    r = client.post("/v1/audio/edits", files={"file": ("in.wav", tone_wav(), "audio/wav")},
                    data={"edit_type": "emotion", "option": "sad", "response_format": "flac"})
    assert r.status_code == 200, r.text
    assert json.loads(r.headers[TAKE_HEADER])["text"] == "a fake transcript of 1.0 seconds"


def test_transcriptions_openai_shape(client):
    r = client.post("/v1/audio/transcriptions", files={"file": ("a.wav", tone_wav(2.0), "audio/wav")},
                    data={"model": "whisper-1"})
    assert r.status_code == 200 and r.json() == {"text": "a fake transcript of 2.0 seconds"}


# ---- voices -------------------------------------------------------------------------------------------
def test_voice_crud_and_zip_round_trip(client, tmp_path):
    assert [v["name"] for v in client.get("/v1/voices").json()["data"]] == ["alice"]
    r = client.post("/v1/voices", data={"name": "Bob Smith", "text": "Hello."},
                    files={"file": ("b.wav", tone_wav(0.5, 24000, 330), "audio/wav")})
    assert r.status_code == 201 and r.json()["name"] == "Bob Smith" and r.json()["seconds"] == 0.5
    assert_error(client.post("/v1/voices", data={"name": "bob smith", "text": "x"},
                             files={"file": ("b.wav", tone_wav(), "audio/wav")}), 400, match="already exists")
    assert client.get("/v1/voices/Bob Smith").json()["text"] == "Hello."
    y, sr = sf.read(io.BytesIO(client.get("/v1/voices/Bob Smith/audio").content))
    assert sr == 24000 and len(y) == 12000
    r = client.patch("/v1/voices/Bob Smith", json={"name": "Robert"})
    assert r.status_code == 200 and r.json()["name"] == "Robert"
    assert speech(client, voice="Robert").status_code == 200
    archive = client.get("/v1/voices/export")
    assert archive.headers["content-type"] == "application/zip"
    assert client.delete("/v1/voices/Robert").json()["deleted"] is True
    assert_error(client.get("/v1/voices/Robert"), 404, param="voice", match="No voice named 'Robert'")
    r = client.post("/v1/voices/import", files={"file": ("v.zip", archive.content, "application/zip")},
                    data={"overwrite": "true"})
    assert r.status_code == 201 and sorted(v["name"] for v in r.json()["data"]) == ["Robert", "alice"]
    assert [v["name"] for v in client.get("/v1/voices").json()["data"]] == ["alice", "Robert"]


def test_voice_without_text_is_transcribed(client):
    r = client.post("/v1/voices", data={"name": "carol"}, files={"file": ("c.wav", tone_wav(), "audio/wav")})
    assert r.status_code == 201 and r.json()["text"] == "a fake transcript of 1.0 seconds"


# ---- bad requests -------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides,param,match", [
    ({"voice": "nobody"}, "voice", "No voice named 'nobody'"),
    ({"response_format": "aac"}, "response_format", "unsupported audio format 'aac'"),
    ({"model": "whisper-1"}, "model", "Unknown model 'whisper-1'"),
    ({"input": ""}, None, "target text is empty"),
    ({"input": "x" * 1001}, None, "too long (1001 characters"),
    ({"instructions": "make it purple"}, "instructions", "did not understand 'purple'"),
    ({"speed": 9}, "speed", "between 0.25 and 4.0"),
    ({"seed": 2**40}, "seed", "seed must be a whole number between 0 and"),
    ({"stream_format": "sse", "response_format": "mp3"}, "stream_format", "sse"),
    ({"speed": "fast"}, "speed", "speed"),
])
def test_bad_speech_requests_get_openai_shaped_400s(client, overrides, param, match):
    assert_error(speech(client, **overrides), 400, param, match)


def test_malformed_bodies_and_uploads(client):
    assert_error(client.post("/v1/audio/speech", content=b"{nope", headers={"content-type": "application/json"}),
                 400, None, "not valid JSON")
    assert_error(client.post("/v1/audio/speech", json={"model": "tts-1", "voice": "alice"}), 400, "input",
                 "field required")
    r = client.post("/v1/audio/edits", files={"file": ("x.wav", b"not audio at all", "audio/wav")},
                    data={"edit_type": "speed", "option": "faster", "text": "t"})
    assert_error(r, 400, "file", "not an audio file this app can read")
    r = client.post("/v1/audio/edits", files={"file": ("x.wav", tone_wav(), "audio/wav")},
                    data={"edit_type": "shout", "text": "t"})
    assert_error(r, 400, "edit_type", "unknown edit type 'shout'")
    r = client.post("/v1/audio/edits", files={"file": ("x.wav", tone_wav(), "audio/wav")},
                    data={"edit_type": "emotion", "option": "purple", "text": "t"})
    assert_error(r, 400, "option", "got 'purple'")
    assert_error(client.post("/v1/voices/import", files={"file": ("v.zip", b"PK no zip", "application/zip")}),
                 400, None, "not a voice-library zip")
    assert_error(client.get("/v1/nothing-here"), 404, None, "not found")


def test_unsupported_edit_and_engine_failures(tmp_path):
    engine = FakeEngine(unsupported=("denoise",), fail_with=RuntimeError("boom at /secret/path.py"))
    with make_client(tmp_path, engine) as c:
        error = assert_error(speech(c), 500, None, "internal error (RuntimeError)")
        assert "boom" not in error["message"] and error["type"] == "server_error"
        r = c.post("/v1/audio/edits", files={"file": ("x.wav", tone_wav(), "audio/wav")},
                   data={"edit_type": "denoise"})
        assert assert_error(r, 400, None, "does not support the denoise edit")["code"] == "unsupported"
        assert speech(c).status_code == 200          # the server is fine afterwards


def test_bearer_token_protects_every_route(tmp_path):
    with make_client(tmp_path, api_key="s3cret") as c:
        assert_error(c.get("/v1/voices"), 401, None, "API key")
        assert_error(speech(c), 401, None, "API key")
        assert_error(c.get("/v1/voices", headers={"Authorization": "Bearer wrong"}), 401, None, "API key")
        assert c.get("/v1/voices", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_binding_beyond_loopback_needs_a_key():
    from stepedit_core.server import check_exposure
    check_exposure("127.0.0.1", None)
    check_exposure("0.0.0.0", "key")
    with pytest.raises(InvalidInputError, match="STEPEDIT_API_KEY"):     # the CLI's exit code 2
        check_exposure("0.0.0.0", None)
    check_exposure("0.0.0.0", None, allow_open=True)


# ---- queueing -----------------------------------------------------------------------------------------
def test_concurrent_requests_queue_behind_one_engine(tmp_path):
    engine = CountingFake()
    with make_client(tmp_path, engine) as c:
        results = [None] * 4

        def call(i):
            results[i] = speech(c, seed=i, response_format="flac" if i % 2 else "wav")

        threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert all(r is not None and r.status_code == 200 for r in results), [r and r.text for r in results]
    assert engine.peak == 1 and engine.calls.count("clone") == 4
    for i, r in enumerate(results):
        assert json.loads(r.headers[TAKE_HEADER])["seed"] == i


def test_a_full_queue_answers_503_busy(tmp_path):
    engine = CountingFake()
    lib = VoiceLibrary(tmp_path / "voices")
    lib.save("alice", audio_formats_clip(), PROMPT_TEXT)
    with TestClient(create_server(engine, lib, gate=EngineGate(max_waiting=0)),
                    raise_server_exceptions=False) as c:
        results = []
        threads = [threading.Thread(target=lambda: results.append(speech(c))) for _ in range(3)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join(30)
    codes = sorted(r.status_code for r in results)
    assert codes[0] == 200 and 503 in codes
    busy = next(r for r in results if r.status_code == 503)
    assert busy.json()["error"]["code"] == "server_busy" and busy.headers["retry-after"] == "5"
