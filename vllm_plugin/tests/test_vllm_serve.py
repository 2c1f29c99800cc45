"""End to end on a real vLLM server: ``python -m vllm.entrypoints.openai.api_server`` with the plugin serves the
tiny Step1; the app's HTTP server (main environment, ``--llm-server``) clones a voice through it, streamed and
whole; the vLLM-side failures are typed errors with one line."""
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from conftest import KV_CACHE_BYTES, ROOT, VLLM_TINY_LLM

SERVED_NAME = "step-audio-editx"
MAX_MODEL_LEN = 1024
START_TIMEOUT_S = 600          # vLLM start-up on a loaded 2-core machine
GROUP_SAMPLES = 2880           # 24 kHz samples per 2+3 group
TINY_GROUPS = 6
APP_PYTHON = os.environ.get("STEPEDIT_APP_PYTHON") or shutil.which("python3") or "python3"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise AssertionError(f"{url} did not come up in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The whole tiny checkpoint (tokenizers, decoder), built by the app's Python, with the head_dim-64 LLM."""
    root = tmp_path_factory.mktemp("tiny_e2e")
    code = ("import sys; from unittest import mock; sys.path.insert(0, sys.argv[1]); from tests import tiny_checkpoint as t;"
            f"mock.patch.dict(t.TINY_LLM, {VLLM_TINY_LLM!r}).start(); t.build_tiny_checkpoint(sys.argv[2])")
    subprocess.run([APP_PYTHON, "-c", code, str(ROOT), str(root)], check=True, timeout=600)
    return root


@pytest.fixture(scope="module")
def vllm_url(checkpoint, tmp_path_factory):
    port, log = _port(), tmp_path_factory.mktemp("logs") / "vllm.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(checkpoint / "Step-Audio-EditX"),
           "--served-model-name", SERVED_NAME, "--skip-tokenizer-init", "--dtype", "float32", "--enforce-eager",
           "--max-model-len", str(MAX_MODEL_LEN), "--kv-cache-memory-bytes", str(KV_CACHE_BYTES),
           "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(url + "/v1/models", proc, log)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.fixture(scope="module")
def app_url(checkpoint, vllm_url, tmp_path_factory):
    port, log = _port(), tmp_path_factory.mktemp("logs") / "app.log"
    cmd = [APP_PYTHON, str(Path(__file__).with_name("serve_app.py")), "--model-path", str(checkpoint),
           "--engine", "stepaudio", "--llm-server", vllm_url, "--port", str(port),
           "--voices", str(tmp_path_factory.mktemp("voices"))]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(url + "/v1/voices", proc, log)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _voice_wav() -> bytes:
    t = np.arange(32000) / 16000
    wav = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6)) * (0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t))
    buf = io.BytesIO()
    sf.write(buf, (0.2 * wav).astype(np.float32), 16000, format="WAV")
    return buf.getvalue()


def test_serve_with_llm_server_makes_a_take_streamed_and_whole(app_url):
    r = httpx.post(app_url + "/v1/voices", data={"name": "alice", "text": "hello world"},
                   files={"file": ("a.wav", _voice_wav(), "audio/wav")}, timeout=60)
    assert r.status_code == 201, r.text
    body = {"model": "tts-1", "input": "this is the audio text", "voice": "alice", "seed": 7}
    whole = httpx.post(app_url + "/v1/audio/speech", json={**body, "response_format": "flac"}, timeout=300)
    assert whole.status_code == 200, whole.text
    chunks = []
    with httpx.stream("POST", app_url + "/v1/audio/speech", json={**body, "response_format": "wav"}, timeout=300) as s:
        assert s.status_code == 200
        chunks = list(s.iter_raw())
    for data in (whole.content, b"".join(chunks)):
        audio, sr = sf.read(io.BytesIO(data), dtype="float32")
        assert sr == 24000 and audio.size == TINY_GROUPS * GROUP_SAMPLES and np.all(np.isfinite(audio))
        assert np.max(np.abs(audio)) > 0.01


def test_real_server_failures_are_typed(vllm_url):
    from stepedit_core.errors import InvalidInputError, LLMServerError
    from stepedit_core.model.generate import SamplingOptions
    from stepedit_core.model.remote import RemoteStep1, ServerInfo
    with pytest.raises(LLMServerError, match=f"serves {SERVED_NAME}, not other") as exc:
        RemoteStep1.connect(vllm_url, "other")
    assert exc.value.reason == "wrong_model"
    client = RemoteStep1.connect(vllm_url)
    assert client.info.max_model_len == MAX_MODEL_LEN
    with pytest.raises(InvalidInputError, match=f"takes at most {MAX_MODEL_LEN} tokens per request"):
        client.remote_generate([1] * (MAX_MODEL_LEN + 5), SamplingOptions(seed=1))
    client.info = ServerInfo(client.info.url, client.info.model, 4 * MAX_MODEL_LEN)   # vLLM's own refusal
    with pytest.raises(InvalidInputError, match="tokens per request: use a shorter text"):
        client.remote_generate([1] * (MAX_MODEL_LEN + 5), SamplingOptions(seed=1, max_new_tokens=5))
    got = RemoteStep1.connect(vllm_url).remote_generate([1, 4, 70000], SamplingOptions(seed=3, max_new_tokens=10,
                                                                                         constrained=True))
    assert len(got.ids) == 10 and got.stop_reason == "max_new_tokens" and got.seed == 3
