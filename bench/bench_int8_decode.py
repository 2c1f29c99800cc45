"""Step1 decode and prefill, fp32 vs bf16 vs int8 (torch dynamic quantization), interleaved in one process.

Real width (hidden 3072, 48 heads / 4 KV groups, MLP 8192, vocab 74752) with ``--layers`` of the 32 decoder
layers (default 4, random weights); the three variants share the weights (bf16 / int8 are made from the fp32
copy exactly as model/loading.py does: every decoder-layer linear quantized per output channel, embedding and
lm_head kept in the activation dtype). The rounds alternate fp32 -> bf16 -> int8 so machine noise hits all
three alike; the figure of merit is the ratio. Whole-model figures are extrapolated: step(32 layers) =
step(head only) + 32 / layers x (step(layers) - step(head only)).

Run:  python bench/bench_int8_decode.py [--layers 4] [--threads 1 2] [--context 400]
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stepedit_core.model.llm import Step1Config, Step1ForCausalLM  # noqa: E402

REAL = dict(hidden_size=3072, intermediate_size=8192, num_attention_heads=48, num_attention_groups=4,
            vocab_size=74752, max_seq_len=32768)
N_REAL_LAYERS = 32


def build(layers: int) -> dict[str, Step1ForCausalLM]:
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    torch.manual_seed(0)
    fp32 = Step1ForCausalLM(Step1Config(**REAL, num_hidden_layers=layers)).eval().requires_grad_(False)
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    int8, unfused = copy.deepcopy(fp32), copy.deepcopy(fp32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for layer in int8.model.layers:            # as model/loading.py: q/k/v and gate/up stacked, then int8
            layer.self_attn.fuse()
            layer.mlp.fuse()
            quantize_dynamic(layer, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
        for layer in unfused.model.layers:         # 7 int8 calls per layer (before the stacking)
            quantize_dynamic(layer, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    return {"fp32": fp32, "bf16": bf16, "int8": int8, "int8 (7 calls/layer)": unfused}


def layer_linears(model) -> list:
    """Every linear of the decoder layers, float or dynamic int8 (anything with in_features)."""
    return [m for layer in model.model.layers for m in layer.modules() if hasattr(m, "in_features")]


@torch.inference_mode()
def step_times(model, context: int, steps: int) -> tuple[float, float]:
    """(prefill seconds for ``context`` tokens, mean seconds per decode step after it)."""
    cache = model.new_cache(context + steps + 1)
    ids = torch.randint(65536, 70656, (1, context))
    t0 = time.perf_counter()
    model.step(ids, cache)
    prefill = time.perf_counter() - t0
    tok = torch.tensor([[65600]])
    model.step(tok, cache)                                   # warm-up step
    t0 = time.perf_counter()
    for _ in range(steps):
        model.step(tok, cache)
    return prefill, (time.perf_counter() - t0) / steps


@torch.inference_mode()
def head_time(model, steps: int) -> float:
    x = torch.randn(1, 1, REAL["hidden_size"], dtype=model.lm_head.weight.dtype)
    model.lm_head(x)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.lm_head(model.model.norm(x))
    return (time.perf_counter() - t0) / steps


@torch.inference_mode()
def streaming_time(model) -> float:
    """One (1, in) mat-vec through every linear of the model (layers + lm_head): the weight-streaming floor."""
    dt = model.activation_dtype
    lins = layer_linears(model)
    xs = {n: torch.randn(1, n, dtype=dt) for n in (REAL["hidden_size"], REAL["intermediate_size"])}
    t0 = time.perf_counter()
    for m in lins:
        m(xs[m.in_features])
    return time.perf_counter() - t0


def layer_weight_bytes(model) -> int:
    """Bytes of the decoder layers' linear weights (int8 weights: 1 byte each)."""
    total = 0
    for m in layer_linears(model):
        w = m.weight() if callable(m.weight) else m.weight
        total += w.numel() * w.element_size()
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--context", type=int, default=400)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    models = build(args.layers)
    scale = N_REAL_LAYERS / args.layers
    print(f"torch {torch.__version__}, real width, {args.layers} layers, context {args.context}, "
          f"load avg at start {os.getloadavg()[0]:.2f}")
    for n in args.threads:
        torch.set_num_threads(n)
        best = {k: [float("inf")] * 4 for k in models}
        for _ in range(args.rounds):
            for name, m in models.items():
                pf, st = step_times(m, args.context, args.steps)
                hd = head_time(m, args.steps)
                sm = min(streaming_time(m) for _ in range(3))
                best[name] = [min(a, b) for a, b in zip(best[name], (pf, st, hd, sm))]
        print(f"\n{n} thread(s), load avg {os.getloadavg()[0]:.2f}\n"
              "| dtype | prefill (s, 32 layers est.) | decode step (s, 32 layers est.) | tok/s (est.) | "
              "vs fp32 | layer step / layer weight streaming | layer step / bandwidth floor |\n"
              "|---|---|---|---|---|---|---|")
        full = {k: v[2] + scale * (v[1] - v[2]) for k, v in best.items()}
        bandwidth = layer_weight_bytes(models["fp32"]) / best["fp32"][3]      # bytes/s fp32 mat-vecs reach
        for name, v in best.items():
            prefill = scale * v[0]
            floor = layer_weight_bytes(models[name]) / bandwidth
            print(f"| {name} | {prefill:.1f} | {full[name]:.3f} | {1 / full[name]:.2f} | "
                  f"{full['fp32'] / full[name]:.2f}x | {(v[1] - v[2]) / v[3]:.2f}x | {(v[1] - v[2]) / floor:.2f}x |")
        print(f"(bandwidth floor: layer weight bytes / {bandwidth / 1e9:.1f} GB/s, the rate of the fp32 mat-vecs)")


if __name__ == "__main__":
    main()
