"""The HTTP API's door (issue 26): the key before any body byte on every route (docs and schema included), the
body cap while a body streams in, ``GET /v1/voices/export?names=``, the engine's own length limit read from the
audio header before decoding, and ``/v1/health`` answering while a heavy upload is decoded."""
from __future__ import annotations

import asyncio
import io
import json
import threading
import time

import httpx
import numpy as np
import pytest
import soundfile as sf
import uvicorn
from fastapi.testclient import TestClient

from stepedit_core.interface import AudioClip
from stepedit_core.server import create_server
from stepedit_core.server.shield import MAX_ARCHIVE_BODY_BYTES, MAX_BODY_BYTES
from stepedit_core.voices import MAX_STORED_RATE, VoiceLibrary
from tests.fake_engine import FakeEngine
from tests.hostile_inputs import flac_bomb, good_wav
from tests.servers import free_port

KEY = "s3cret"
AUTH = {"Authorization": f"Bearer {KEY}"}
DOC_ROUTES = ["/v1/docs", "/v1/redoc", "/v1/docs/oauth2-redirect", "/v1/openapi.json"]
HEALTH_LIMIT_S = 1.0            # a health answer while another request decodes (it takes ~1 ms when idle)


def make(tmp_path, **kw):
    lib = VoiceLibrary(tmp_path / "voices")
    lib.save("alice", AudioClip.from_file(good_wav()), "a short prompt")
    return create_server(FakeEngine(max_input_seconds=60.0), lib, **kw), lib


@pytest.fixture
def keyed(tmp_path):
    app, lib = make(tmp_path, api_key=KEY)
    return TestClient(app, raise_server_exceptions=False), lib


@pytest.mark.parametrize("route", DOC_ROUTES)
def test_docs_and_schema_want_the_key(keyed, route):
    client, _ = keyed
    resp = client.get(route)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_api_key"
    assert client.get(route, headers=AUTH).status_code == 200


def test_a_bad_body_without_the_key_is_a_401_not_a_parse_error(keyed):
    client, _ = keyed
    resp = client.post("/v1/audio/speech", content=b"{x", headers={"Content-Type": "application/json"})
    assert resp.status_code == 401 and "API key" in resp.json()["error"]["message"]


async def _asgi(app, method: str, path: str, headers: list, chunks: list[bytes]) -> tuple[int, int]:
    """Call ``app`` directly; returns (status, body chunks the app asked for)."""
    asked, status = [0], [0]

    async def receive():
        i = asked[0]
        asked[0] += 1
        if i < len(chunks):
            return {"type": "http.request", "body": chunks[i], "more_body": i + 1 < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "root_path": "", "scheme": "http", "query_string": b"",
             "headers": [(k.encode(), v.encode()) for k, v in headers], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80)}
    await app(scope, receive, send)
    return status[0], asked[0]


@pytest.mark.parametrize("path", ["/v1/audio/edits", "/v1/voices/import", "/v1/audio/speech", "/v1/docs"])
def test_no_body_byte_is_read_before_the_key(tmp_path, path):
    app, _ = make(tmp_path, api_key=KEY)
    chunk = b"x" * (1 << 20)
    status, asked = asyncio.run(_asgi(app, "POST", path, [("content-type", "multipart/form-data; boundary=b")],
                                      [chunk] * 2048))                     # a 2 GB body, streamed
    assert (status, asked) == (401, 0)


def test_every_route_answers_401_before_reading_its_body(tmp_path):
    app, _ = make(tmp_path, api_key=KEY)
    routes = [(method, "/v1" + route.path.replace("{name}", "alice")) for route in app.state.api.routes
              for method in sorted(getattr(route, "methods", None) or ())]
    assert len(routes) >= 18 and ("GET", "/v1/openapi.json") in routes and ("POST", "/v1/voices/import") in routes
    for method, path in routes:
        assert asyncio.run(_asgi(app, method, path, [], [b"{x"] * 4)) == (401, 0), (method, path)


def test_a_declared_oversized_body_gets_413_unread(tmp_path):
    app, _ = make(tmp_path)
    headers = [("content-type", "application/json"), ("content-length", str(MAX_BODY_BYTES + 1))]
    assert asyncio.run(_asgi(app, "POST", "/v1/audio/speech", headers, [b"{}"])) == (413, 0)
    headers[1] = ("content-length", str(MAX_ARCHIVE_BODY_BYTES + 1))
    assert asyncio.run(_asgi(app, "POST", "/v1/voices/import", headers, [b"{}"])) == (413, 0)


def test_a_chunked_body_is_cut_at_the_cap(tmp_path):
    app, lib = make(tmp_path)
    chunk = b"-" * (1 << 20)
    body = [b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.wav\"\r\n\r\n"] + [chunk] * 2048
    status, asked = asyncio.run(_asgi(app, "POST", "/v1/voices", [("content-type",
                                                                    "multipart/form-data; boundary=b")], body))
    assert status == 413 and asked <= MAX_BODY_BYTES // len(chunk) + 2
    assert lib.names() == ["alice"]


def test_export_honours_names_from_the_query(keyed):
    client, lib = keyed
    lib.save("bob", AudioClip.from_file(good_wav()), "another prompt")
    resp = client.get("/v1/voices/export", params={"names": "bob"}, headers=AUTH)
    import zipfile  # noqa: PLC0415
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(resp.content)).read("manifest.json"))
    assert resp.status_code == 200 and [v["name"] for v in manifest["voices"]] == ["bob"]
    resp = client.get("/v1/voices/export", params={"names": "unknown"}, headers=AUTH)
    assert resp.status_code == 404 and "unknown" in resp.json()["error"]["message"]
    assert len(json.loads(zipfile.ZipFile(io.BytesIO(client.get("/v1/voices/export", headers=AUTH).content))
                          .read("manifest.json"))["voices"]) == 2


@pytest.mark.parametrize("route,fields", [("/v1/audio/edits", {"edit_type": "speed", "option": "faster"}),
                                          ("/v1/audio/transcriptions", {}),
                                          ("/v1/voices", {"name": "bomb", "text": "a prompt"})])
def test_the_length_limit_is_read_from_the_header(keyed, route, fields):
    client, lib = keyed
    bomb = flac_bomb(120.0)                           # ~120 bytes declaring 2 min of 192 kHz x 8 channels
    resp = client.post(route, data=fields, files={"file": ("bomb.flac", bomb, "audio/flac")}, headers=AUTH)
    assert resp.status_code == 400 and "at most 60 s" in resp.json()["error"]["message"], resp.text
    assert lib.names() == ["alice"]


def test_a_check_takes_the_checks_own_limit_from_the_header(keyed):
    client, _ = keyed
    bomb = flac_bomb(130.0)                           # a take to check may be longer than the engine's inputs
    resp = client.post("/v1/audio/checks", data={"text": "hello"}, files={"file": ("bomb.flac", bomb)},
                       headers=AUTH)
    assert resp.status_code == 400 and "at most 120 s" in resp.json()["error"]["message"], resp.text


def _real_60s_8ch_flac() -> bytes:
    buf = io.BytesIO()
    rate = 192000
    t = np.arange(rate) / rate
    second = np.repeat((0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[:, None], 8, axis=1)
    with sf.SoundFile(buf, "w", rate, 8, format="FLAC") as f:
        for _ in range(60):
            f.write(second)
    return buf.getvalue()


def test_a_real_60s_192k_8ch_voice_is_stored_bounded_and_health_stays_responsive(tmp_path):
    app, lib = make(tmp_path)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}/v1"
    try:
        while not server.started:
            time.sleep(0.05)
        data, result = _real_60s_8ch_flac(), {}

        def upload():
            result["resp"] = httpx.post(f"{url}/voices", data={"name": "studio", "text": "a prompt"},
                                        files={"file": ("studio.flac", data, "audio/flac")}, timeout=120)

        worker = threading.Thread(target=upload)
        worker.start()
        waits = []
        while worker.is_alive():
            t0 = time.perf_counter()
            assert httpx.get(f"{url}/health", timeout=10).status_code == 200
            waits.append(time.perf_counter() - t0)
            time.sleep(0.02)
        worker.join()
    finally:
        server.should_exit = True
    assert result["resp"].status_code == 201, result["resp"].text
    assert len(waits) >= 3 and max(waits) < HEALTH_LIMIT_S, waits
    voice = lib.get("studio")
    assert voice.sample_rate == MAX_STORED_RATE and voice.audio_path.stat().st_size < 12 * 1024 * 1024
