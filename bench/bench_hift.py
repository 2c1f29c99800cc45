"""HiFT vocoder speed at the real config (base 512 channels, 20.8 M params), random weights, fp32, CPU.

Measures, for ``--seconds`` of mel (50 frames per second):
- non-streaming ``HiFTGenerator.forward`` (the official ``token2wav_nonstream`` vocoder call);
- the stages: f0 predictor + NSF source, and the conv decoder + iSTFT;
- ``HiFTStreamer`` with the official chunk schedule in mel frames (2 x [15, 24, 48] flow steps = 30, 48, 96
  frames, then 96), which re-vocodes 8 cached frames per chunk.
RTF = compute time / audio duration (lower is faster). Threads default to 1 (the test machine has 2 cores
shared with other jobs); pass ``--threads`` to change it.

Run:  python bench/bench_hift.py            (about 1 minute; writes bench/RESULTS_hift.md)
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stepedit_core.decoder.hift import HiFTConfig, HiFTGenerator  # noqa: E402
from stepedit_core.decoder.hift_stream import HiFTStreamer  # noqa: E402

COMMAND = "python bench/bench_hift.py"
STREAM_CHUNKS_FRAMES = [30, 48, 96]      # official chunk_size_list [15, 24, 48] flow steps x 2 mel frames


def timed(fn, repeats: int) -> float:
    fn()                                  # warm-up (allocator, oneDNN primitive cache)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def stream(model: HiFTGenerator, mel: torch.Tensor) -> torch.Tensor:
    streamer = HiFTStreamer(model, zero_noise=True)
    pieces, pos, chunks, total = [], 0, list(STREAM_CHUNKS_FRAMES), mel.shape[2]
    while pos < total:
        n = min(chunks.pop(0) if len(chunks) > 1 else chunks[0], total - pos)
        pieces.append(streamer.step(mel[:, :, pos:pos + n], last=pos + n >= total))
        pos += n
    return torch.cat(pieces, dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).with_name("RESULTS_hift.md")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cfg = HiFTConfig()
    model = HiFTGenerator(cfg).eval()
    params = sum(p.numel() for p in model.parameters())
    frames = int(round(args.seconds * cfg.sampling_rate / cfg.samples_per_frame))
    mel = torch.randn(1, cfg.in_channels, frames) * 2 - 6          # log-mel-like scale
    audio_s = frames * cfg.samples_per_frame / cfg.sampling_rate
    gen = torch.Generator().manual_seed(0)

    with torch.inference_mode():
        f0 = model.f0_predictor(mel)
        source = model.source(f0, generator=gen)
        t_full = timed(lambda: model(mel, generator=gen), args.repeats)
        t_source = timed(lambda: model.source(model.f0_predictor(mel), generator=gen), args.repeats)
        t_decode = timed(lambda: model.decode(mel, source), args.repeats)
    t_stream = timed(lambda: stream(model, mel), args.repeats)

    rows = [("non-streaming forward", t_full), ("  f0 predictor + NSF source", t_source),
            ("  decoder + iSTFT", t_decode), ("streaming, chunks 30/48/96 frames + 8 cached", t_stream)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = ["# HiFT vocoder benchmark", "",
             f"Command: `{COMMAND}` (--seconds {args.seconds:g} --threads {args.threads}, median of "
             f"{args.repeats} after a warm-up).",
             f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
             f"{args.threads} thread(s), 1-min load average at the end {load:.1f} (other jobs share the 2 cores).",
             f"Model: real config, {params / 1e6:.2f} M parameters (folded), random weights, fp32.", "",
             f"| path | seconds for {audio_s:.1f} s of audio | RTF |", "|---|---|---|"]
    lines += [f"| {name} | {t:.2f} | {t / audio_s:.3f} |" for name, t in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
