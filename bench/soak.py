"""Concurrency and soak against a running app on the lite engine (`python app.py` in a subprocess).

1. ``--sessions`` gradio clients at once, each a chain clone -> edit -> edit with its own text and seeds; every
   answer must carry its own client's text and seed (no cross-talk), and no two sessions get the same audio.
2. ``--edits`` sequential /edit calls; the server's RSS (``/proc/<pid>/status``) and the size and file count of
   its upload folder (``GRADIO_TEMP_DIR``) are sampled along the way.

Targets (issue #13): RSS growth <= 50 MB after warm-up; the upload folder stays under the storage cap
(``STEPEDIT_STORAGE_CAP_MB``, set small here so the cap is exercised in a short run).

Usage: python bench/soak.py [--sessions 8] [--edits 200] [--cap-mb 20] [--port 2xxxx]
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPT = ROOT / "examples" / "prompt_en.wav"
WARMUP_EDITS = 20


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def folder(path: Path) -> tuple[float, int]:
    files = [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20, len(files)


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError("the app exited")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("the app did not answer")


def chain(url: str, k: int, tmp: Path) -> dict:
    from gradio_client import Client, handle_file  # noqa: PLC0415
    c = Client(url, download_files=str(tmp / f"c{k}"), verbose=False)
    text = f"Session number {k} says hello to the world."
    prompt_text = (ROOT / "examples" / "prompt_en.txt").read_text().strip()
    audio, t0, s0 = c.predict(handle_file(str(PROMPT)), prompt_text, text, 100 + k, api_name="/clone")
    a1, t1, s1 = c.predict(handle_file(audio), t0, "emotion", "happy", 1, 200 + k, api_name="/edit")
    a2, t2, s2 = c.predict(handle_file(a1), t1, "speed", "faster", 1, 300 + k, api_name="/edit")
    c.close()
    ok = (t0, t1, t2) == (text, text, text) and (s0, s1, s2) == (100 + k, 200 + k, 300 + k)
    return {"ok": ok, "sha": hashlib.sha256(Path(a2).read_bytes()).hexdigest()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--edits", type=int, default=200)
    ap.add_argument("--cap-mb", type=float, default=20.0)
    ap.add_argument("--port", type=int, default=random.randint(20000, 40000))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="stepedit-soak-"))
    cache = tmp / "gradio"
    env = {**os.environ, "GRADIO_TEMP_DIR": str(cache), "STEPEDIT_STORAGE_CAP_MB": str(args.cap_mb),
           "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "app.py", "--engine", "lite", "--port", str(args.port)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{args.port}/"
    try:
        wait_up(url, proc)
        from gradio_client import Client, handle_file  # noqa: PLC0415
        t0 = time.time()
        with cf.ThreadPoolExecutor(args.sessions) as pool:
            results = list(pool.map(lambda k: chain(url, k, tmp), range(args.sessions)))
        ok = sum(r["ok"] for r in results)
        distinct = len({r["sha"] for r in results})
        print(f"concurrency: {ok}/{args.sessions} chains correct, {distinct} distinct outputs, "
              f"{time.time() - t0:.0f} s")

        c = Client(url, download_files=str(tmp / "soak"), verbose=False)
        prompt_text = (ROOT / "examples" / "prompt_en.txt").read_text().strip()
        base, text, _ = c.predict(handle_file(str(PROMPT)), prompt_text, "A soak test of many edits in a row.", 1,
                                  api_name="/clone")
        emotions = ["happy", "sad", "angry", "surprised"]
        samples, max_mb = [], 0.0
        t0 = time.time()
        for i in range(1, args.edits + 1):
            out, _, _ = c.predict(handle_file(base), text, "emotion", emotions[i % 4], 1, i, api_name="/edit")
            Path(out).unlink(missing_ok=True)             # the client's copy; the server's are what we measure
            mb, n = folder(cache)
            max_mb = max(max_mb, mb)
            if i in (1, WARMUP_EDITS) or i % 25 == 0 or i == args.edits:
                samples.append((i, rss_mb(proc.pid), mb, n))
                print(f"edit {i:4d}: RSS {samples[-1][1]:7.1f} MB, upload folder {mb:6.1f} MB in {n} files")
        c.close()
        warm = next(s for s in samples if s[0] == WARMUP_EDITS)
        print(f"soak: {args.edits} edits in {time.time() - t0:.0f} s; RSS after warm-up {warm[1]:.1f} MB -> "
              f"{samples[-1][1]:.1f} MB (growth {samples[-1][1] - warm[1]:+.1f} MB); upload folder max "
              f"{max_mb:.2f} MB, end {samples[-1][2]:.2f} MB (cap {args.cap_mb:g} MB: "
              f"{'within' if max_mb <= args.cap_mb else 'OVER'})")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
