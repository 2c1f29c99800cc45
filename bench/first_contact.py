"""First contact, measured in a real browser (Playwright + Debian's Chromium) on the lite engine:

1. clicks from the first screen to a happier take of an example voice (goal <= 4): every click the script
   makes is counted, nothing is typed;
2. time from the Generate click to the first audible audio of the live player (a playing ``<audio>`` with
   ``currentTime > 0``) and to the finished take, at the app's defaults;
3. the same with 2 versions per click (the previous default), to choose the default by measurement.

Usage: python bench/first_contact.py [--runs 3] [--port 7881]   (prints a Markdown block for BENCHMARKS.md)
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("STEPEDIT_CHROMIUM", "/usr/bin/chromium")
SERVER = """
import sys
sys.path[:0] = [{root!r}]
import app
from stepedit_core.lite import LiteEngine
demo = app.build_demo(LiteEngine())
demo.launch(server_name="127.0.0.1", server_port={port}, quiet=True, **app.launch_options())
"""
FIRST_AUDIO_JS = """() => {
  const a = [...document.querySelectorAll('#live-clone audio')].find(x => x.currentTime > 0 && !x.paused);
  return a ? performance.now() : null;
}"""


def serve(port: int, tmp: Path) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp / "cache"), "STEPEDIT_DATA_DIR": str(tmp / "data"),
           "GRADIO_ANALYTICS_ENABLED": "False"}
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", SERVER.format(root=str(ROOT), port=port)], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise TimeoutError("the app did not start")


class Clicker:
    """Counts the clicks a user makes."""

    def __init__(self, page):
        self.page, self.clicks = page, 0

    def click(self, locator) -> None:
        locator.click()
        self.clicks += 1


def one_run(p, url: str, versions: int | None) -> dict:
    from playwright.sync_api import expect  # noqa: PLC0415
    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required",
                                                                "--no-sandbox", "--disable-gpu"])
    page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="en-US")
    try:
        page.goto(url)
        expect(page.locator("#engine-note")).to_contain_text("Lite engine", timeout=60000)
        user = Clicker(page)
        user.click(page.locator("#clone-examples button").first)                       # the English voice
        expect(page.locator("#target-text textarea")).not_to_have_value("", timeout=20000)
        if versions is not None:                    # not part of the click count: a setting under Advanced
            page.locator("#clone-advanced").get_by_text("Advanced").first.click()
            box = page.locator("#n-candidates input[type=number]")
            box.fill(str(versions))
            box.press("Enter")
        t0 = page.evaluate("() => performance.now()")
        user.click(page.locator("#clone-btn"))
        first = page.wait_for_function(FIRST_AUDIO_JS, timeout=120000, polling=20).json_value()
        expect(page.locator("#timeline")).to_contain_text("T1 ·", timeout=180000)
        if versions and versions > 1:
            expect(page.locator("#timeline")).to_contain_text(f"T{versions} ·", timeout=180000)
        done = page.evaluate("() => performance.now()")
        user.click(page.locator("#use-cand-1"))                                          # "Edit this take →"
        expect(page.locator("#edit-info input")).to_have_value("Happy", timeout=20000)
        user.click(page.locator("#edit-btn"))                                            # Apply edit (happy)
        expect(page.locator("#timeline")).to_contain_text("Emotion · Happy", timeout=180000)
        return {"clicks": user.clicks, "first_audio_s": (first - t0) / 1000, "take_s": (done - t0) / 1000}
    finally:
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--port", type=int, default=7881)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright  # noqa: PLC0415
    # Until B1 (app_ui/storage.py) is merged, the pruner drops Gradio's copies of examples whose file time is
    # older than 15 minutes; fresh file times keep the examples usable for this run.
    for example in (ROOT / "examples").glob("*.wav"):
        os.utime(example)
    with tempfile.TemporaryDirectory() as tmp:
        proc = serve(args.port, Path(tmp))
        try:
            rows = []
            with sync_playwright() as p:
                one_run(p, f"http://127.0.0.1:{args.port}/", None)          # warm-up: models load on first use
                for label, versions in (("default (1 version)", None), ("2 versions", 2)):
                    runs = [one_run(p, f"http://127.0.0.1:{args.port}/", versions) for _ in range(args.runs)]
                    rows.append((label, runs))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    load = os.getloadavg()
    print(f"`python bench/first_contact.py --runs {args.runs}` · {time.strftime('%H:%M UTC', time.gmtime())} · "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} · {os.cpu_count()} cores\n")
    print("| settings | clicks to a happier take | first audible audio (s, median) | take done (s, median) |")
    print("|---|---|---|---|")
    for label, runs in rows:
        med = lambda k: statistics.median(r[k] for r in runs)       # noqa: E731
        print(f"| {label} | {runs[0]['clicks']} | {med('first_audio_s'):.2f} | {med('take_s'):.2f} |")


if __name__ == "__main__":
    main()
