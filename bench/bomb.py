"""Hostile requests against a running HTTP server (issue 26): the server's RSS growth per request, its answer,
and how long /v1/health takes meanwhile.

Starts ``python -m stepedit_core serve --engine lite`` with ``STEPEDIT_API_KEY`` set and an empty voice library,
then sends, one at a time, every hostile voice zip of tests/hostile_inputs.py (the FLAC memory bomb named 8 times,
8 bomb files, the 1 MB zip whose manifest inflates to 1 GiB, damaged zips, ...), the FLAC bombs to the audio
routes, a real 60 s 192 kHz 8-channel FLAC to ``POST /v1/voices``, and a 2 GB streamed body without the key.
Peak RSS is read from ``VmHWM`` after resetting it (``/proc/<pid>/clear_refs``) before each request; a thread
polls /v1/health during each request.

Targets: 0 server errors, 0 hangs, growth <= 200 MB for any request whose body is <= 1 MB, the library holding
only what valid requests added.

Usage: python bench/bomb.py [--port 2xxxx]
"""
from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.hostile_inputs import flac_bomb, make_hostile_zips  # noqa: E402

KEY = "bench-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
TWO_GB = 2 << 30
HANG_S = 60.0


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")          # VmHWM := VmRSS


def real_flac(seconds: int = 60, rate: int = 192000, channels: int = 8) -> bytes:
    t = np.arange(rate) / rate
    second = np.repeat((0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[:, None], channels, axis=1)
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", rate, channels, format="FLAC") as f:
        for _ in range(seconds):
            f.write(second)
    return buf.getvalue()


def measure(pid: int, url: str, send) -> dict:
    """Run ``send()`` while polling health; returns status, seconds, RSS growth (MB), slowest health (s)."""
    health, done = [], threading.Event()

    def poll():
        while not done.is_set():
            t0 = time.perf_counter()
            try:
                httpx.get(f"{url}/health", headers=AUTH, timeout=HANG_S)
                health.append(time.perf_counter() - t0)
            except httpx.HTTPError:
                health.append(float("inf"))
            time.sleep(0.05)

    base = status_kb(pid, "VmRSS")
    reset_peak(pid)
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    t0 = time.perf_counter()
    try:
        status = send().status_code
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    seconds = time.perf_counter() - t0
    done.set()
    poller.join()
    return {"status": status, "seconds": seconds, "growth_mb": (status_kb(pid, "VmHWM") - base) / 1024,
            "health_max_s": max(health, default=0.0)}


def requests(url: str) -> list[tuple[str, int, callable]]:
    """(name, body bytes, send) for every hostile request."""
    out = []
    for name, (data, _) in sorted(make_hostile_zips().items()):
        out.append((f"import {name}", len(data), lambda d=data: httpx.post(
            f"{url}/voices/import", files={"file": ("h.zip", d)}, headers=AUTH, timeout=HANG_S)))
    for seconds in (60.0, 120.0):
        bomb = flac_bomb(seconds)
        for route, fields in (("voices", {"name": f"bomb{int(seconds)}", "text": "a prompt"}),
                              ("audio/edits", {"edit_type": "speed", "option": "faster"}),
                              ("audio/transcriptions", {})):
            out.append((f"{route} flac bomb {seconds:.0f} s", len(bomb), lambda r=route, f=fields, b=bomb: httpx.post(
                f"{url}/{r}", data=f, files={"file": ("b.flac", b)}, headers=AUTH, timeout=HANG_S)))
        out.append((f"audio/checks two flac bombs {seconds:.0f} s", 2 * len(bomb), lambda b=bomb: httpx.post(
            f"{url}/audio/checks", data={"text": "hello"}, files={"file": ("a.flac", b), "source": ("b.flac", b)},
            headers=AUTH, timeout=HANG_S)))
    real = real_flac()
    out.append(("voices real 60 s 192 kHz 8 ch", len(real), lambda: httpx.post(
        f"{url}/voices", data={"name": "studio", "text": "a prompt"}, files={"file": ("s.flac", real)},
        headers=AUTH, timeout=HANG_S)))

    def two_gb():
        chunk = b"x" * (1 << 20)
        return httpx.post(f"{url}/voices/import", content=(chunk for _ in range(TWO_GB // len(chunk))),
                          headers={"Content-Type": "multipart/form-data; boundary=b"}, timeout=HANG_S)
    out.append(("2 GB body without the key", TWO_GB, two_gb))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=28765)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bomb-"))
    env = {**os.environ, "STEPEDIT_API_KEY": KEY, "STEPEDIT_DATA_DIR": str(tmp)}
    proc = subprocess.Popen([sys.executable, "-m", "stepedit_core", "serve", "--engine", "lite", "--port",
                             str(args.port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{args.port}/v1"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", headers=AUTH, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        print(f"load average {os.getloadavg()[0]:.2f}; server RSS at start {status_kb(proc.pid, 'VmRSS') / 1024:.0f} MB")
        print("| request | body | status | s | RSS growth (MB) | slowest /health (s) |")
        print("|---|---:|---:|---:|---:|---:|")
        worst = 0.0
        for name, size, send in requests(url):
            r = measure(proc.pid, url, send)
            if size <= 1 << 20:
                worst = max(worst, r["growth_mb"])
            body = f"{size / 2**20:.2f} MB" if size >= 1 << 20 else f"{size / 1024:.1f} kB"
            print(f"| {name} | {body} | {r['status']} | {r['seconds']:.2f} | {r['growth_mb']:.0f} | "
                  f"{r['health_max_s']:.2f} |", flush=True)
        voices = httpx.get(f"{url}/voices", headers=AUTH).json()["data"]
        print(f"\nworst growth for a body <= 1 MB: {worst:.0f} MB; library after: {[v['name'] for v in voices]}; "
              f"server alive: {proc.poll() is None}; load average {os.getloadavg()[0]:.2f}")
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
