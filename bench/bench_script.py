"""Script mode on the lite engine: wall time and real-time factor of a ~2-minute, 3-speaker script.

Usage: python bench/bench_script.py [--minutes 2] [--out bench/RESULTS_script.md]

The script alternates three voices made from examples/ (Alice = prompt_en, Bob = prompt_zh reading English,
Carol = prompt_en played 15 % faster), one or two sentences per line, with a directive every fourth line and a
pause every fifth, and is repeated until its estimated speaking time reaches the target. The engine is warmed
up first (models loaded, one clone), so the figure is steady-state rendering: clone + edits + master assembly.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SENTENCES = [
    "Welcome back to the show, everyone.", "Today we talk about trains and the people who love them.",
    "I took the night train to the coast last week.", "Was it comfortable, or did you sit up all night?",
    "The seats folded into small beds, which was a surprise.", "That sounds better than any plane I have taken.",
    "We stopped at every village, and the sunrise was beautiful.", "Did anyone else in the carriage talk to you?",
    "An old man told me stories about the line in the sixties.", "Those are the stories our listeners write in about.",
]
VOICES = ("Alice", "Bob", "Carol")
DIRECTIVES = ("{happy}", "{faster}", "{gentle}", "{slower}")


def make_script(minutes: float) -> str:
    from stepedit_core.longform import speaking_seconds  # noqa: PLC0415
    lines, total, k = [], 0.0, 0
    while total < minutes * 60:
        text = SENTENCES[k % len(SENTENCES)]
        if k % 3 == 2:
            text += " " + SENTENCES[(k + 3) % len(SENTENCES)]
        directive = DIRECTIVES[(k // 4) % len(DIRECTIVES)] + " " if k % 4 == 1 else ""
        pause = "[pause 0.6s] " if k % 5 == 4 else ""
        lines.append(f"{VOICES[k % 3]}: {pause}{directive}{text}")
        total += speaking_seconds(text)
        k += 1
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS_script.md"))
    args = ap.parse_args()
    from stepedit_core.interface import AudioClip, CloneRequest  # noqa: PLC0415
    from stepedit_core.lite import LiteEngine  # noqa: PLC0415
    from stepedit_core.script import parse_script, render_script  # noqa: PLC0415
    from stepedit_core.voices import VoiceLibrary  # noqa: PLC0415

    lib = VoiceLibrary(tempfile.mkdtemp(prefix="bench-voices-"))
    en = AudioClip.from_file(str(ROOT / "examples" / "prompt_en.wav"))
    zh = AudioClip.from_file(str(ROOT / "examples" / "prompt_zh.wav"))
    text = {k: (ROOT / "examples" / f"prompt_{k}.txt").read_text(encoding="utf-8").strip() for k in ("en", "zh")}
    lib.save("Alice", en, text["en"])
    lib.save("Bob", zh, text["zh"])
    lib.save("Carol", AudioClip.from_array(en.samples, int(en.sample_rate * 1.15)), text["en"])
    engine = LiteEngine()
    t0 = time.perf_counter()
    engine.clone(CloneRequest(en, text["en"], "Warming up.", seed=0))
    warm = time.perf_counter() - t0

    script = parse_script(make_script(args.minutes), voices=lib.names())
    t0 = time.perf_counter()
    render = render_script(engine, script, lib, seed=1)
    wall = time.perf_counter() - t0
    load = os.getloadavg()[0]
    n_edits = sum(len(s.directives) for s in script.segments)
    rows = [
        "# Script mode on the lite engine",
        "",
        f"Command: `python bench/bench_script.py --minutes {args.minutes:g}` ({platform.machine()}, "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}). Load average at the end: {load:.1f} "
        "(other jobs share the cores).",
        "",
        "| lines | speakers | edits | master audio (s) | wall (s) | RTF | per line (s) | warm-up (s) |",
        "|---|---|---|---|---|---|---|---|",
        f"| {len(script.segments)} | {len(script.speakers)} | {n_edits} | {render.duration:.1f} | {wall:.1f} | "
        f"{wall / render.duration:.2f} | {wall / len(script.segments):.2f} | {warm:.1f} |",
        "",
        "RTF = wall time / master duration, models loaded (warm-up = first clone incl. model load, excluded).",
    ]
    Path(args.out).write_text("\n".join(rows) + "\n", encoding="utf-8")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
