"""Streaming playback: time to first audio and whether the stream keeps ahead of playback.

For each case the engine's own stream (``Engine.stream_clone`` / ``stream_edit``, what every door plays) is
consumed as fast as it comes, and each chunk's arrival time is recorded. Playback starts when the first
chunk arrives; chunk k must arrive before the audio before it has finished playing, i.e.
``arrival[k] <= arrival[0] + duration(chunks 0..k-1)``. The smallest margin of that inequality is reported
(negative = an underrun of that many seconds).

Cases: a 3-sentence English and a 3-sentence Mandarin clone (prompt: examples/prompt_*.wav) and an emotion
edit of a 10 s clip, on
- the lite engine (warm: its models are loaded by one untimed call first, as in the running app);
- the real engine on the tiny checkpoint of the tests (tests/tiny_checkpoint.py, random weights, constrained
  sampling, token cap = the text's estimated speaking time), with the decoder's timing split into "first
  group arrived", "groups the first chunk needs arrived" and "first decoder chunk". The synthetic full-size
  checkpoint (``--realsize PATH``, int8 LLM, 2 threads, each request capped at ``--realsize-seconds`` of
  speech because the CPU decodes ~5 tokens/s against the 41.7 tokens/s of real time).

Wall-clock figures depend on the machine's load (reported with the results), so the same figures are also
given on the process's CPU clock (``time.process_time``, all threads): on an otherwise idle machine the wall
clock is at most that (the lite TTS and the tiny models use 1-2 threads). Run:

    python bench/bench_streaming.py                 # writes bench/RESULTS_streaming.md
    python bench/bench_streaming.py --skip-lite --skip-real --realsize /work/cache/stepedit-realsize \
        --out bench/RESULTS_streaming_realsize.md
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stepedit_core import AudioClip, CloneRequest, EditRequest  # noqa: E402
from stepedit_core.audio import OUTPUT_SAMPLE_RATE  # noqa: E402
from stepedit_core.longform import speaking_seconds  # noqa: E402
from stepedit_core.tokens import GROUP_SIZE, TOKEN_RATE_HZ  # noqa: E402

COMMAND = "python bench/bench_streaming.py"
ROOT = Path(__file__).resolve().parents[1]
EN_TEXT = ("Editing speech is now as easy as editing text. You type what you want to hear, and the voice "
           "follows. Every take stays in the history, so nothing is ever lost.")
ZH_TEXT = "现在编辑语音就像编辑文字一样简单。你输入想听的内容，声音就会跟着变化。每一个版本都保存在历史里，什么都不会丢。"
EDIT_SECONDS = 10.0
LITE_TTFA_TARGET_S = 0.8


def measure(stream) -> dict:
    """Consume a stream; arrival times, durations, time to first audio and the smallest playback margin."""
    t0, c0 = time.perf_counter(), time.process_time()
    arrivals, cpu, durations = [], [], []
    for chunk in stream:
        if len(chunk) == 0:
            continue
        arrivals.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        durations.append(len(chunk) / OUTPUT_SAMPLE_RATE)
    total = time.perf_counter() - t0
    return {"ttfa": arrivals[0], "cpu_ttfa": cpu[0], "chunks": len(arrivals), "audio_s": float(sum(durations)),
            "total": total, "margin": _margin(arrivals, durations), "cpu_margin": _margin(cpu, durations),
            "arrivals": arrivals, "durations": durations}


def _margin(arrivals: list[float], durations: list[float]) -> float:
    """min over k of (when the audio before chunk k finishes playing) - (when chunk k arrives)."""
    played_until = arrivals[0] + np.cumsum(durations)
    margins = [played_until[k - 1] - arrivals[k] for k in range(1, len(arrivals))]
    return min(margins) if margins else float("inf")


def _prompt(lang: str) -> tuple[AudioClip, str]:
    clip = AudioClip.from_file(ROOT / "examples" / f"prompt_{lang}.wav")
    return clip, (ROOT / "examples" / f"prompt_{lang}.txt").read_text(encoding="utf-8").strip()


def _edit_clip(engine) -> tuple[AudioClip, str]:
    """10 s of speech: the lite TTS reading the English text (twice, cut to 10 s)."""
    from stepedit_core.lite.tts import KokoroTTS  # noqa: PLC0415
    wav = KokoroTTS().synthesize(EN_TEXT + " " + EN_TEXT)[: int(EDIT_SECONDS * OUTPUT_SAMPLE_RATE)]
    return AudioClip.from_array(wav, OUTPUT_SAMPLE_RATE), EN_TEXT


def lite_cases(edit_clip) -> list[tuple[str, dict]]:
    from stepedit_core.lite import LiteEngine  # noqa: PLC0415
    engine = LiteEngine()
    en, en_text = _prompt("en")
    zh, zh_text = _prompt("zh")
    list(engine.stream_clone(CloneRequest(en, en_text, "Hello.", seed=1)))          # load the models (untimed)
    list(engine.stream_clone(CloneRequest(zh, zh_text, "你好。", seed=1)))
    out = [("lite · clone en (3 sentences)", measure(engine.stream_clone(CloneRequest(en, en_text, EN_TEXT, 1)))),
           ("lite · clone zh (3 sentences)", measure(engine.stream_clone(CloneRequest(zh, zh_text, ZH_TEXT, 1))))]
    for info in ("happy", "whisper"):
        kind = "emotion" if info == "happy" else "style"
        req = EditRequest(edit_clip[0], edit_clip[1], kind, info, seed=1)
        out.append((f"lite · {kind} {info}, 10 s clip", measure(engine.stream_edit(req))))
    req = EditRequest(edit_clip[0], edit_clip[1], "speed", "slower", seed=1)
    out.append(("lite · speed slower, 10 s clip", measure(engine.stream_edit(req))))
    return out


def _timed_decoder(engine, log: list):
    """Wrap the streaming decoder so each push records (arrival, finished, produced samples)."""
    make = engine.decoder.stream

    def stream(*args, **kwargs):
        session = make(*args, **kwargs)
        push = session.push

        def timed(group, **kwargs):
            t_in = time.perf_counter()
            out = push(group, **kwargs)
            log.append((t_in, time.perf_counter(), int(out.numel())))
            return out
        session.push = timed
        return session
    engine.decoder.stream = stream


def real_cases(edit_clip, path: Path | None = None, seconds_cap: float | None = None) -> list[tuple[str, dict]]:
    """The real engine streamed: the tiny test checkpoint (1 thread), or with ``path`` the synthetic
    full-size checkpoint (int8 LLM, 2 threads; each request capped at ``seconds_cap`` s of speech)."""
    import logging  # noqa: PLC0415

    import torch  # noqa: PLC0415

    import stepedit_core as sc  # noqa: PLC0415
    logging.getLogger("stepedit_core.checkpoint").setLevel(logging.ERROR)
    if path is None:
        from tests.tiny_checkpoint import build_tiny_checkpoint  # noqa: PLC0415
        torch.set_num_threads(1)
        path = build_tiny_checkpoint(Path(tempfile.mkdtemp(prefix="bench-stream-")) / "tiny")
        base, label = sc.load_engine("stepaudio", model_path=path), "real (tiny checkpoint)"
    else:
        torch.set_num_threads(2)
        base = sc.load_engine("stepaudio", model_path=path, device="cpu", quantization="int8")
        label = "real (full size, int8, 2 threads)"
    out = []
    en, en_text = _prompt("en")
    zh, zh_text = _prompt("zh")
    cases = [("clone en (3 sentences)", lambda e: e.stream_clone(CloneRequest(en, en_text, EN_TEXT, 1)), EN_TEXT),
             ("clone zh (3 sentences)", lambda e: e.stream_clone(CloneRequest(zh, zh_text, ZH_TEXT, 1)), ZH_TEXT),
             ("emotion happy, 10 s clip", lambda e: e.stream_edit(EditRequest(edit_clip[0], edit_clip[1], "emotion",
                                                                               "happy", seed=1)), None)]
    for name, run, text in cases:
        seconds = speaking_seconds(text) if text else EDIT_SECONDS
        if seconds_cap is not None:
            seconds = min(seconds, seconds_cap)
        cap = int(seconds * TOKEN_RATE_HZ) // GROUP_SIZE * GROUP_SIZE
        engine = base.with_options(constrained=True, max_new_tokens=cap)
        list(run(engine))                                          # warm the prompt cache like a second click
        log: list = []
        _timed_decoder(engine, log)
        t0 = time.perf_counter()
        result = measure(run(engine))
        first_audio = next(i for i, (_, _, n) in enumerate(log) if n)
        result.update(first_group=log[0][0] - t0, groups_for_first_chunk=first_audio + 1,
                      needed_groups_at=log[first_audio][0] - t0, first_chunk_decode=log[first_audio][1] - log[first_audio][0])
        out.append((f"{label} · {name}", result))
        engine.decoder.stream = base.decoder.stream
    return out


def report(rows: list[tuple[str, dict]], load: tuple[float, float, float]) -> str:
    lines = [f"# Streaming playback (`{COMMAND}`)", "",
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
             f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}; 1-min load average before the run "
             f"{load[0]:.2f} (other jobs share the machine: wall-clock figures are upper bounds).", "",
             "| case | first audio, wall (s) | first audio, CPU (s) | chunks | audio (s) | generation, wall (s) | "
             "smallest margin wall / CPU (s) | underrun wall / CPU |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['ttfa']:.2f} | {r['cpu_ttfa']:.2f} | {r['chunks']} | {r['audio_s']:.2f} | "
                     f"{r['total']:.2f} | {r['margin']:+.2f} / {r['cpu_margin']:+.2f} | "
                     f"{'yes' if r['margin'] < 0 else 'no'} / {'yes' if r['cpu_margin'] < 0 else 'no'} |")
    real = [(n, r) for n, r in rows if "first_group" in r]
    if real:
        lines += ["", "Real engine, where its first audio comes from (seconds after the call):", "",
                  "| case | first token group | groups the first chunk needs | ... all arrived | first decoder chunk "
                  "(decode) | first audio |", "|---|---|---|---|---|---|"]
        for name, r in real:
            lines.append(f"| {name} | {r['first_group']:.2f} | {r['groups_for_first_chunk']} | "
                         f"{r['needed_groups_at']:.2f} | {r['first_chunk_decode']:.2f} | {r['ttfa']:.2f} |")
    lines += ["", "Chunk arrivals (s) and durations (s):", ""]
    for name, r in rows:
        pairs = ", ".join(f"{a:.2f}/{d:.2f}" for a, d in zip(r["arrivals"], r["durations"]))
        lines.append(f"- {name}: {pairs}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS_streaming.md"))
    ap.add_argument("--skip-real", action="store_true", help="lite engine only")
    ap.add_argument("--skip-lite", action="store_true", help="real engine only")
    ap.add_argument("--realsize", type=Path, default=None,
                    help="also stream the synthetic full-size checkpoint (bench/make_realsize_checkpoint.py), int8")
    ap.add_argument("--realsize-seconds", type=float, default=2.0,
                    help="speech per full-size request (the CPU decodes ~5 tok/s: 2 s = 83 tokens)")
    args = ap.parse_args()
    load = os.getloadavg()
    clip = _edit_clip(None)
    rows = [] if args.skip_lite else lite_cases(clip)
    if not args.skip_real:
        rows += real_cases(clip)
    if args.realsize is not None:
        rows += real_cases(clip, args.realsize, args.realsize_seconds)
    text = report(rows, load)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
