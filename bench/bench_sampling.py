"""The per-step sampling of a batch (model.generate.next_tokens) at the real vocabulary: rows drawn one after
another vs on the draw pool (model.generate.draw_rows), interleaved, medians; and whether both give the same ids.

Real sizes: V = 74752 logits per row, the official warps (temperature 0.7, top-k 50), the 2+3 constraint and
the repetition guard, one seeded generator per row. Run:
    flock /work/coord/bench.lock python bench/bench_sampling.py     (writes bench/RESULTS_sampling.md)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from stepedit_core.model import generate as gen_mod  # noqa: E402
from stepedit_core.model.generate import SamplingOptions, next_tokens  # noqa: E402

VOCAB = 74752


def serial_draws(probs, generators):
    return [gen_mod._draw(probs[b], g) for b, g in enumerate(generators)]


def run(rows: int, steps: int, pooled: bool, seed0: int = 100) -> tuple[list[float], list[list[int]]]:
    """Per-step milliseconds and the ids drawn, ``steps`` steps of ``rows`` rows from fixed random logits."""
    opts = SamplingOptions(constrained=True)
    gens = [torch.Generator().manual_seed(seed0 + r) for r in range(rows)]
    logit_gen = torch.Generator().manual_seed(7)
    hist, ms = [[5, 6, 7] for _ in range(rows)], []
    patch = mock.patch.object(gen_mod, "draw_rows", serial_draws) if not pooled else mock.patch.object(
        gen_mod, "draw_rows", gen_mod.draw_rows)
    with patch, torch.inference_mode():
        for step in range(steps):
            logits = 3 * torch.randn(rows, VOCAB, generator=logit_gen)
            t = time.perf_counter()
            ids = next_tokens(logits, hist, [step] * rows, opts, gens)
            ms.append((time.perf_counter() - t) * 1000)
            for h, i in zip(hist, ids):
                h.append(i)
    return ms, [h[3:] for h in hist]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS_sampling.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    res: dict = {}
    same = True
    for _ in range(args.rounds):
        for rows in (1, 3, 4):
            for pooled in (False, True):
                ms, ids = run(rows, args.steps, pooled)
                res.setdefault((rows, pooled), []).append(statistics.median(ms))
                res.setdefault(("ids", rows, pooled), ids)
                same &= res[("ids", rows, pooled)] == ids
            same &= res[("ids", rows, False)] == res[("ids", rows, True)]
    load1 = os.getloadavg()
    med = {k: statistics.median(v) for k, v in res.items() if k[0] != "ids"}
    lines = ["# Sampling of a batch at the real vocabulary (model.generate.next_tokens)", "",
             f"`flock /work/coord/bench.lock python bench/bench_sampling.py --threads {args.threads} --steps "
             f"{args.steps} --rounds {args.rounds}`", "",
             f"torch {torch.__version__}, {args.threads} threads, load average {load0[0]:.2f} at start / "
             f"{load1[0]:.2f} at end; medians over rounds of per-round median step times.", "",
             "| rows | rows one after another (ms) | draw pool (ms) | pool / serial | serial / 1 row | pool / 1 row |",
             "|---|---|---|---|---|---|"]
    for rows in (1, 3, 4):
        s, p = med[(rows, False)], med[(rows, True)]
        lines.append(f"| {rows} | {s:.2f} | {p:.2f} | {p / s:.2f}x | {s / med[(1, False)]:.2f}x | "
                     f"{p / med[(1, True)]:.2f}x |")
    lines += ["", f"Ids drawn identical serial vs pool, every round and row count: **{same}**", ""]
    text = "\n".join(lines)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
