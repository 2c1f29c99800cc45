"""int8 on the CPU: which library? torch's dynamic quantization vs torchao, on the Step1 MLP shape.

Six (3072 -> 8192) linears, bias-free (the Step1 up/gate projections), one thread: a decode mat-vec (1 row)
and a 200-row prefill block, for fp32, bf16, torch ``quantize_dynamic`` (qint8 per-channel weights, fbgemm /
x86 kernels, VNNI) and, when importable, torchao ``Int8WeightOnlyConfig`` / ``Int8DynamicActivationInt8WeightConfig``
(eager, no torch.compile: the app does not compile). GB/s = weight bytes read per second.

Run:  python bench/bench_int8_backends.py [--torchao-path DIR]   (torchao is not a dependency; install it into
      DIR with ``pip install --no-deps --target DIR torchao`` to include it)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import torch
from torch import nn

SHAPE, N_LIN = (3072, 8192), 6


def make() -> list[nn.Linear]:
    return [nn.Linear(*SHAPE, bias=False).eval().requires_grad_(False) for _ in range(N_LIN)]


def timed(mods, x, n: int) -> float:
    with torch.inference_mode():
        for _ in range(2):
            for m in mods:
                m(x)
        t0 = time.perf_counter()
        for _ in range(n):
            for m in mods:
                m(x)
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--torchao-path", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    configs = {"fp32": (make(), torch.float32, 4), "bf16": ([m.to(torch.bfloat16) for m in make()], torch.bfloat16, 2)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        configs["torch dynamic int8"] = ([quantize_dynamic(nn.Sequential(m), {nn.Linear: per_channel_dynamic_qconfig},
                                                           dtype=torch.qint8) for m in make()], torch.float32, 1)
    if args.torchao_path:
        sys.path.insert(0, args.torchao_path)
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, quantize_
        for name, cfg in (("torchao int8 weight-only", Int8WeightOnlyConfig()),
                          ("torchao int8 dyn-act", Int8DynamicActivationInt8WeightConfig())):
            mods = make()
            for m in mods:
                quantize_(m, cfg)
            configs[name] = (mods, torch.float32, 1)
    weights = N_LIN * SHAPE[0] * SHAPE[1]
    print(f"torch {torch.__version__}, {args.threads} thread(s), load avg {os.getloadavg()[0]:.2f}")
    print("| config | mat-vec (ms, 6 linears) | GB/s | prefill 200 rows (ms) |\n|---|---|---|---|")
    for name, (mods, dt, nbytes) in configs.items():
        mv = timed(mods, torch.randn(1, SHAPE[0], dtype=dt), 10)
        pf = timed(mods, torch.randn(200, SHAPE[0], dtype=dt), 3)
        print(f"| {name} | {mv * 1e3:.1f} | {weights * nbytes / mv / 1e9:.1f} | {pf * 1e3:.0f} |")


if __name__ == "__main__":
    main()
