"""App start-up time: from `python app.py` to the first HTTP 200 on /, with models already assembled.

Usage: python bench/bench_startup.py [--runs 3] [--port 7871]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_run(port: int, timeout: float = 120.0) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - t0 < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("the app did not answer")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--port", type=int, default=7871)
    args = ap.parse_args()
    one_run(args.port)                                   # first run: lite model assembly, bytecode caches
    times = [one_run(args.port) for _ in range(args.runs)]
    print(f"start-up to first HTTP 200 (lite engine, after the first run): median {statistics.median(times):.2f} s, "
          f"runs {', '.join(f'{t:.2f}' for t in times)}")


if __name__ == "__main__":
    main()
