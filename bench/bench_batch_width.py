"""Batched candidates and the prefix KV cache at REAL width with a few layers (int8), for a loaded, shared machine.

The whole real-size checkpoint needs ~7 GB and the bigmem lock (bench/bench_batch.py). This variant builds the
Step1 LLM at real width (hidden 3072, 48 heads / 4 KV groups, MLP 8192, vocab 74752) with ``--layers`` decoder
layers (random weights; each layer fused and quantized to int8 exactly as model/loading.py does; embedding bf16,
lm_head fp32 as loaded), < 3 GB. Whole-model figures are extrapolated as bench/bench_int8_decode.py does:
step(32) = head(B) + 32 / layers x (step(B) - head(B)), with head(B) = final norm + lm_head on B rows, timed
alone; prefill(32) = 32 / layers x prefill (the prefill keeps the logits of one position only).

1. A 10 s edit's prompt (858 tokens, the real edit prompt's length), cold prefill, 1 / 4 / 3 rows,
   ``--new-tokens`` each: wall, step ratios; a 10 s output (417 tokens) = prefill + 417 steps, extrapolated.
   Agreement of batched rows with the same seeds alone (int8 activation scales see the whole batch).
2. A script of ``--lines`` lines from 2 voices: clone-prompt-shaped ids (a voice head of ``--voice-tokens``,
   a line tail of 12-40 tokens; the head's end is a block boundary as in the engine), prefill cold vs with the
   prefix cache, and whether the logits are identical.

Run:  python bench/bench_batch_width.py --layers 4 --threads 1     (writes bench/RESULTS_batch_width.md)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from stepedit_core.model.generate import SamplingOptions, generate_batch  # noqa: E402
from stepedit_core.model.llm import Step1Config, Step1ForCausalLM  # noqa: E402
from stepedit_core.model.prefix_cache import PrefixCache, prefill  # noqa: E402
from stepedit_core.tokens import AUDIO_TOKEN_OFFSET  # noqa: E402

COMMAND = "python bench/bench_batch_width.py"
REAL = dict(hidden_size=3072, intermediate_size=8192, num_attention_heads=48, num_attention_groups=4,
            vocab_size=74752, max_seq_len=32768)
N_REAL_LAYERS = 32
EDIT_PROMPT_TOKENS = 858        # the real 10 s edit prompt (bench/RESULTS_realsize.md)
TOKENS_10S = 417
SEEDS = [101, 102, 103, 104]


def build(layers: int) -> Step1ForCausalLM:
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)          # built narrow: never the whole fp32 copy at once
    try:
        model = Step1ForCausalLM(Step1Config(**REAL, num_hidden_layers=layers)).eval().requires_grad_(False)
    finally:
        torch.set_default_dtype(torch.float32)
    model.model.norm.float()
    model.lm_head.float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for layer in model.model.layers:
            layer.float()
            layer.self_attn.fuse()
            layer.mlp.fuse()
            quantize_dynamic(layer, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    return model


def ids_of(n: int, seed: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return (AUDIO_TOKEN_OFFSET + torch.randint(0, 5120, (n,), generator=g)).tolist()


def head_s(model, rows: int, reps: int = 5) -> float:
    x = torch.randn(rows, 1, REAL["hidden_size"])
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        model.lm_head(model.model.norm(x))
        best = min(best, time.perf_counter() - t)
    return best


def batches(model, new_tokens: int, layers: int) -> dict:
    ids = [1, 4] + ids_of(EDIT_PROMPT_TOKENS - 2, 0)
    opts = SamplingOptions(constrained=True, max_new_tokens=new_tokens)
    scale = N_REAL_LAYERS / layers
    out = {}
    for rows in (1, 4, 3):
        t = time.perf_counter()
        gens = generate_batch(model, ids, SEEDS[:rows], opts)
        wall = time.perf_counter() - t
        step = gens[0].decode_s / max(max(g.decode_steps for g in gens), 1)
        head = head_s(model, rows)
        step32 = head + scale * (step - head)
        prefill32 = scale * gens[0].prefill_s
        out[rows] = {"wall_s": wall, "prefill_s": gens[0].prefill_s, "step_s": step, "head_s": head,
                     "step32_s": step32, "prefill32_s": prefill32, "ten_s_32": prefill32 + TOKENS_10S * step32,
                     "ids": [list(g.ids) for g in gens]}
        print(f"rows {rows}: wall {wall:.1f} s prefill {gens[0].prefill_s:.1f} s step {step * 1e3:.0f} ms "
              f"head {head * 1e3:.0f} ms", file=sys.stderr, flush=True)
    return out


def script(model, lines: int, voice_tokens: int) -> list[dict]:
    heads = [[1, 4] + ids_of(voice_tokens - 2, 10 + v) for v in range(2)]
    cache, rows = PrefixCache(), []
    for i in range(lines):
        g = torch.Generator().manual_seed(100 + i)
        tail = ids_of(int(torch.randint(12, 41, (1,), generator=g)), 100 + i)
        ids = heads[i % 2] + tail
        t = time.perf_counter()
        bounds = (voice_tokens,)                  # the end of the voice's part, as the engine names it
        cold = prefill(model, ids, model.new_cache(len(ids)), None, bounds)
        cold_s = time.perf_counter() - t
        before = cache.reused_tokens
        t = time.perf_counter()
        warm = prefill(model, ids, model.new_cache(len(ids)), cache, bounds)
        warm_s = time.perf_counter() - t
        rows.append({"voice": i % 2, "prompt_len": len(ids), "cold_s": cold_s, "warm_s": warm_s,
                     "reused": cache.reused_tokens - before, "identical": bool(torch.equal(cold, warm))})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def agreement(a: list[int], b: list[int]) -> str:
    lead = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"first {lead} ids equal, {sum(x == y for x, y in zip(a, b))}/{min(len(a), len(b))} positions equal"


def report(r: dict, args) -> str:
    b, s = r["batches"], r["script"]
    later = [x["warm_s"] / x["cold_s"] for x in s[2:]]
    lines = ["# Batched candidates and the prefix KV cache, real width, int8 (CPU)", "",
             f"`{COMMAND} --layers {args.layers} --threads {args.threads} --new-tokens {args.new_tokens} "
             f"--lines {args.lines}`", "",
             f"Real width, {args.layers} of 32 layers (random weights, int8 as loaded), torch {torch.__version__}, "
             f"{args.threads} thread(s); load average {r['load_start'][0]:.2f} at start, {r['load_end'][0]:.2f} at "
             "end (machine shared by other agents: ratios within one run).", "",
             f"## A 10 s edit's prompt ({EDIT_PROMPT_TOKENS} tokens), {args.new_tokens} new tokens per row", "",
             f"| rows | wall (s) | prefill (s) | step (ms) | lm_head (ms) | step / 1 row | wall / 1 row | 32 layers: "
             f"prefill + {TOKENS_10S} steps (s) | ditto / 1 row |", "|---|---|---|---|---|---|---|---|---|"]
    for rows in (1, 3, 4):
        x = b[rows]
        lines.append(f"| {rows} | {x['wall_s']:.1f} | {x['prefill_s']:.1f} | {x['step_s'] * 1e3:.0f} | "
                     f"{x['head_s'] * 1e3:.0f} | {x['step_s'] / b[1]['step_s']:.2f}x | "
                     f"{x['wall_s'] / b[1]['wall_s']:.2f}x | {x['ten_s_32']:.0f} | "
                     f"{x['ten_s_32'] / b[1]['ten_s_32']:.2f}x |")
    lines += ["", f"32-layer decode step: batch 4 / batch 1 = {b[4]['step32_s'] / b[1]['step32_s']:.2f}x, "
              f"batch 3 / batch 1 = {b[3]['step32_s'] / b[1]['step32_s']:.2f}x.", "",
              "Agreement of ids at int8 (seed 101, row 1):", "",
              f"- batch of 4 vs alone: {r['agree4']}", f"- batch of 3 vs alone: {r['agree3']}",
              f"- seeds 102-103, batch of 3 vs batch of 4: {r['agree34']}", "",
              f"## Script: {len(s)} lines from 2 voices (voice head {args.voice_tokens} tokens + line tail)", "",
              "| line | voice | prompt tokens | cold prefill (s) | with prefix cache (s) | ratio | reused | "
              "logits identical |", "|---|---|---|---|---|---|---|---|"]
    for i, x in enumerate(s):
        lines.append(f"| {i + 1} | {x['voice']} | {x['prompt_len']} | {x['cold_s']:.2f} | {x['warm_s']:.2f} | "
                     f"{x['warm_s'] / x['cold_s']:.2f}x | {x['reused']} | {x['identical']} |")
    lines += ["", f"Lines after each voice's first: {min(later):.2f}x-{max(later):.2f}x of cold "
              f"(mean {sum(later) / len(later):.2f}x).", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--new-tokens", type=int, default=40)
    ap.add_argument("--lines", type=int, default=12)
    ap.add_argument("--voice-tokens", type=int, default=310, help="clone prompt of a 5 s voice, without the line")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS_batch_width.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    res = {"load_start": os.getloadavg()}
    model = build(args.layers)
    with torch.inference_mode():
        b = batches(model, args.new_tokens, args.layers)
        res["script"] = script(model, args.lines, args.voice_tokens)
    res["agree4"] = agreement(b[4]["ids"][0], b[1]["ids"][0])
    res["agree3"] = agreement(b[3]["ids"][0], b[1]["ids"][0])
    res["agree34"] = agreement(b[3]["ids"][1] + b[3]["ids"][2], b[4]["ids"][1] + b[4]["ids"][2])
    res["batches"] = {k: {kk: vv for kk, vv in v.items() if kk != "ids"} for k, v in b.items()}
    res["load_end"] = os.getloadavg()
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    text = report(res, args)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
