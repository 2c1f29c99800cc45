"""The decode step at batch 1, 3 and 4 at REAL width, split into its parts, with the fp32 and the int8 lm_head.

The real-size run (bench/bench_batch.py) needs ~7 GB, the bigmem lock and a quiet machine for ~15 min. This one
builds the Step1 LLM at real width with ``--layers`` decoder layers (bench/bench_batch_width.build: random
weights, fused and int8 as loaded; < 3 GB), prefills a 10 s edit's 858 tokens once, then times, in interleaved
rounds (batch 1, 3, 4, batch 1, ... so that machine noise hits every configuration alike), one decode step's
parts: the decoder layers (int8 linears incl. the dynamic activation quantization, attention), the lm_head in
fp32 (as loaded) and in int8 (model.loading.quantize_lm_head), and the sampling of every row
(model.generate.next_tokens: repetition guard, top-k, softmax, one draw per row). Medians per part; the whole
model's step is extrapolated as layers x 32 / ``--layers`` + head + sampling.

Run:  python bench/bench_batch_step.py --layers 4 --threads 2      (writes bench/RESULTS_batch_step.md)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_batch import quantize_lm_head_copy  # noqa: E402
from bench.bench_batch_width import EDIT_PROMPT_TOKENS, N_REAL_LAYERS, build, ids_of  # noqa: E402
from stepedit_core.model.generate import SamplingOptions, next_tokens  # noqa: E402
from stepedit_core.model.prefix_cache import prefill  # noqa: E402

COMMAND = "python bench/bench_batch_step.py"
BATCHES = (1, 3, 4)
PARTS = ("layers", "head_fp32", "head_int8", "sampling")


@torch.inference_mode()
def one_round(model, int8_head, caches: dict, base: int, steps: int, times: dict) -> None:
    opts = SamplingOptions()
    for b in BATCHES:
        cache = caches[b]
        cache.length = base                          # rewind: every round decodes the same positions
        gens = [torch.Generator().manual_seed(i) for i in range(b)]
        history = [ids_of(16, i) for i in range(b)]
        for _ in range(steps):
            tok = torch.full((b, 1), 70000)
            t0 = time.perf_counter()
            x, _ = model.model(tok, cache, start=cache.length)
            cache.advance(1)
            t1 = time.perf_counter()
            model.lm_head(x[:, -1])
            t2 = time.perf_counter()
            logits = int8_head(x[:, -1])
            t3 = time.perf_counter()
            next_tokens(logits, history, [0] * b, opts, gens)
            t4 = time.perf_counter()
            for part, dt in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                times[b][part].append(dt)


def report(args, med: dict, load: tuple) -> str:
    scale = N_REAL_LAYERS / args.layers

    def step(b: int, head: str) -> float:
        return med[b]["layers"] * scale + med[b][head] + med[b]["sampling"]
    lines = ["# Decode step at batch 1 vs 4, real width, parts (int8 layers; fp32 vs int8 lm_head)", "",
             f"`{COMMAND} --layers {args.layers} --threads {args.threads} --steps {args.steps} "
             f"--rounds {args.rounds}`", "",
             f"Real width, {args.layers} of 32 layers (random weights, int8 as loaded), a 10 s edit's "
             f"{EDIT_PROMPT_TOKENS}-token prompt prefilled; torch {torch.__version__}, {args.threads} threads; load "
             f"average {load[0]:.2f} at start, {load[1]:.2f} at end (machine shared: ratios within one run, "
             "configurations interleaved). Medians per step (ms):", "",
             f"| rows | {args.layers} layers | x {scale:.0f} = 32 layers | lm_head fp32 | lm_head int8 | sampling "
             "(all rows) | step, fp32 head | step, int8 head |", "|---|---|---|---|---|---|---|---|"]
    for b in BATCHES:
        m = med[b]
        lines.append(f"| {b} | {m['layers'] * 1e3:.1f} | {m['layers'] * scale * 1e3:.0f} | {m['head_fp32'] * 1e3:.1f} | "
                     f"{m['head_int8'] * 1e3:.1f} | {m['sampling'] * 1e3:.1f} | {step(b, 'head_fp32') * 1e3:.0f} | "
                     f"{step(b, 'head_int8') * 1e3:.0f} |")
    lines += ["", "Ratios (batch 4 / batch 1): "
              f"layers {med[4]['layers'] / med[1]['layers']:.2f}x, lm_head fp32 "
              f"{med[4]['head_fp32'] / med[1]['head_fp32']:.2f}x, lm_head int8 "
              f"{med[4]['head_int8'] / med[1]['head_int8']:.2f}x, sampling {med[4]['sampling'] / med[1]['sampling']:.2f}x; "
              f"32-layer step with the fp32 head **{step(4, 'head_fp32') / step(1, 'head_fp32'):.2f}x**, with the int8 "
              f"head **{step(4, 'head_int8') / step(1, 'head_int8'):.2f}x** (vs batch 1 with the fp32 head: "
              f"{step(4, 'head_int8') / step(1, 'head_fp32'):.2f}x).", "",
              f"3 rows: layers {med[3]['layers'] / med[1]['layers']:.2f}x, lm_head int8 "
              f"{med[3]['head_int8'] / med[1]['head_int8']:.2f}x, sampling {med[3]['sampling'] / med[1]['sampling']:.2f}x; "
              f"32-layer step with the int8 head **{step(3, 'head_int8') / step(1, 'head_int8'):.2f}x** (3 rows / 4 "
              f"rows: {step(3, 'head_int8') / step(4, 'head_int8'):.2f}x).", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6, help="decode steps per configuration and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS_batch_step.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    model = build(args.layers)
    int8_head = quantize_lm_head_copy(model)
    ids = ids_of(EDIT_PROMPT_TOKENS, 1)
    with torch.inference_mode():
        cache = model.new_cache(EDIT_PROMPT_TOKENS + args.steps + 1)
        prefill(model, ids, cache, None, ())
    caches = {b: cache if b == 1 else cache.expand(b) for b in BATCHES}
    times = {b: {p: [] for p in PARTS} for b in BATCHES}
    for r in range(args.rounds):
        one_round(model, int8_head, caches, EDIT_PROMPT_TOKENS, args.steps, times)
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
    med = {b: {p: statistics.median(v) for p, v in times[b].items()} for b in BATCHES}
    text = report(args, med, (load_start, os.getloadavg()[0]))
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
