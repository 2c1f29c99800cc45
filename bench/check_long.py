"""The take check's transcription of long takes (> one whisper window): the check's pause-cut windows
(``WhisperASR.transcribe(fast=True)``) against faster-whisper's own 30 s windows, on the example prompts
repeated N times (known text), with word times.

    python bench/check_long.py [--repeats 5 10]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stepedit_core.interface import AudioClip  # noqa: E402
from stepedit_core.listen.asr import WhisperASR  # noqa: E402
from stepedit_core.listen.metrics import error_rate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", nargs="+", type=int, default=[5, 10])
    args = ap.parse_args()
    asr = WhisperASR()
    print(f"1-min load {os.getloadavg()[0]:.1f}")
    print("| language | audio (s) | check windows: RTF | error | faster-whisper windows: RTF | error |")
    print("|---|---|---|---|---|---|")
    for lang in ("en", "zh"):
        clip = AudioClip.from_file(ROOT / "examples" / f"prompt_{lang}.wav")
        text = (ROOT / "examples" / f"prompt_{lang}.txt").read_text(encoding="utf-8").strip()
        asr.transcribe(clip.samples, clip.sample_rate, lang, fast=True)         # load before timing
        sep = "" if lang == "zh" else " "
        for n in args.repeats:
            x = np.concatenate([clip.samples] * n)
            seconds = len(x) / clip.sample_rate
            row = []
            for fast in (True, False):
                t0 = time.perf_counter()
                heard = asr.transcribe(x, clip.sample_rate, lang, word_timestamps=True, fast=fast)
                row += [(time.perf_counter() - t0) / seconds, error_rate(sep.join([text] * n), heard.text)]
            print(f"| {lang} | {seconds:.0f} | {row[0]:.3f} | {row[1]:.3f} | {row[2]:.3f} | {row[3]:.3f} |")
    print(f"1-min load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
