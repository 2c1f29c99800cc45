"""``python app.py --api``: the Gradio app and the HTTP API on one port, the API ahead of Gradio's routes and
protected by STEPEDIT_API_KEY (a real process on a free loopback port, lite engine, nothing synthesised)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_app_serves_the_api_beside_gradio(tmp_path):
    port = free_port()
    env = dict(os.environ, STEPEDIT_API_KEY="k3y", STEPEDIT_DATA_DIR=str(tmp_path), GRADIO_TEMP_DIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "app.py", "--api", "--engine", "lite", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "the app did not start"
            try:
                if httpx.get(f"{base}/v1/health", headers={"Authorization": "Bearer k3y"}, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert httpx.get(f"{base}/", timeout=10).status_code == 200                     # the Gradio page
        health = httpx.get(f"{base}/v1/health", headers={"Authorization": "Bearer k3y"}, timeout=10).json()
        assert health["engine"] == "lite" and "mp3" in health["formats"]
        denied = httpx.get(f"{base}/v1/voices", timeout=10)
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
        r = httpx.post(f"{base}/v1/audio/speech", headers={"Authorization": "Bearer k3y"}, timeout=10,
                       json={"model": "tts-1", "input": "Hi", "voice": "nobody"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "voice"
    finally:
        proc.terminate()
        proc.wait(30)
