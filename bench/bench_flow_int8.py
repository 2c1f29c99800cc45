"""Flow decoder at the real size on the CPU: fp32 against the int8 DiT estimator, 1 and 2 threads, one run.

The CosyVoice flow (real config, random weights) decodes ``--seconds`` of speech after a ``--prompt-seconds``
prompt with the official 10 Euler steps (CFG batch 2 over prompt + new frames, as ``token2wav_nonstream``),
then HiFT vocodes it. Configurations alternate inside one process (fp32, int8, fp32, int8 ...) and the best
of ``--rounds`` is kept, so a busy machine slows both alike and the ratio stays meaningful.

The limit: the flow is compute-bound (every linear sees 2 x frames rows). Its multiply-adds per Euler step
are counted from the module shapes; dividing by the best rate of one large GEMM of the same width measured in
the same process (fp32 ``torch.mm``; int8 a dynamically quantized linear) gives the time the step could take
at that rate. Measured / that floor = the overhead (attention, LayerNorms, convs, activations).

Numerics: the int8 mel against the fp32 mel from the same noise (relative L2), next to a different noise
draw's distance, on these random weights.

Run:  python bench/bench_flow_int8.py            (about 5 minutes idle; writes bench/RESULTS_flow_int8.md)
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_decoder import random_tokens  # noqa: E402
from stepedit_core.decoder.cosyvoice import CosyVoiceDecoder  # noqa: E402
from stepedit_core.decoder.flow import (CausalMaskedDiffWithXvec, FlowConfig, noise_buffer,  # noqa: E402
                                        quantize_estimator_int8)
from stepedit_core.decoder.hift import HiFTConfig, HiFTGenerator  # noqa: E402

COMMAND = "python bench/bench_flow_int8.py"
STEPS = 10


def estimator_macs_per_frame(flow: CausalMaskedDiffWithXvec) -> tuple[int, int]:
    """Multiply-adds per frame of one DiT call: (in linears, in the causal convs)."""
    est = flow.decoder.estimator
    lin = sum(m.in_features * m.out_features for name, m in est.named_modules()
              if isinstance(m, nn.Linear) and "adaLN" not in name and "t_embedder" not in name)
    conv = sum(m.in_channels * m.out_channels * m.kernel_size[0] for m in est.modules() if isinstance(m, nn.Conv1d))
    return lin, conv


def gemm_rate(rows: int, width: int, int8: bool, rounds: int = 5) -> float:
    """Best multiply-adds per second of (rows, width) @ (width, 4 width)."""
    x = torch.randn(rows, width)
    layer = nn.Linear(width, 4 * width).eval()
    if int8:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layer = torch.ao.quantization.quantize_dynamic(nn.Sequential(layer), {nn.Linear}, dtype=torch.qint8)
    best = float("inf")
    with torch.inference_mode():
        layer(x)
        for _ in range(rounds):
            t = time.perf_counter()
            layer(x)
            best = min(best, time.perf_counter() - t)
    return rows * width * 4 * width / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--prompt-seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).with_name("RESULTS_flow_int8.md")))
    args = ap.parse_args()
    torch.manual_seed(0)
    load0 = os.getloadavg()[0]
    flow = CausalMaskedDiffWithXvec(FlowConfig()).requires_grad_(False).eval()
    hift = HiFTGenerator(HiFTConfig()).eval()
    flow_q = copy.deepcopy(flow)
    n_q = quantize_estimator_int8(flow_q)
    decoders = {"fp32": CosyVoiceDecoder(flow, hift), "int8": CosyVoiceDecoder(flow_q, hift)}
    gen = torch.Generator().manual_seed(0)
    token, prompt = random_tokens(args.seconds, gen), random_tokens(args.prompt_seconds, gen)
    rows, prompt_rows = len(token) // 5 * 3, len(prompt) // 5 * 3
    feat = torch.randn(1, 2 * prompt_rows, 80, generator=gen) * 2 - 6
    emb = torch.randn(1, 192, generator=gen)
    speech_s = 2 * rows * hift.cfg.samples_per_frame / hift.cfg.sampling_rate
    frames = 2 * (rows + prompt_rows)
    lin_macs, conv_macs = estimator_macs_per_frame(flow)
    step_macs = 2 * frames * (lin_macs + conv_macs)               # CFG batch 2
    noise = noise_buffer(0)

    table, mels = [], {}
    with torch.inference_mode():
        for threads in args.threads:
            torch.set_num_threads(threads)
            rate = {"fp32": gemm_rate(2 * frames, 512, False), "int8": gemm_rate(2 * frames, 512, True)}
            best = {k: (float("inf"), 0.0) for k in decoders}
            for _ in range(args.rounds):
                for name, dec in decoders.items():
                    w0, c0 = time.perf_counter(), time.process_time()
                    mel = dec.token2mel(token, prompt, feat, emb, n_timesteps=STEPS, flow_noise=noise)
                    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                    mels[name] = mel
                    if wall < best[name][0]:
                        best[name] = (wall, cpu)
            w0 = time.perf_counter()
            hift.inference(mels["fp32"], generator=torch.Generator().manual_seed(0))
            hift_s = time.perf_counter() - w0
            for name, (wall, cpu) in best.items():
                floor = STEPS * step_macs / rate[name]         # int8 runs the convs as linears too
                table.append((threads, name, wall, cpu, wall / speech_s, (wall + hift_s) / speech_s, hift_s,
                              rate[name] / 1e9, floor, wall / floor))
                print(table[-1], flush=True)
        other = decoders["fp32"].token2mel(token, prompt, feat, emb, n_timesteps=STEPS, flow_noise=noise_buffer(5))

    def rel(a, b):
        return float((a - b).norm() / b.norm())
    drift, spread = rel(mels["int8"], mels["fp32"]), rel(other, mels["fp32"])
    load1 = os.getloadavg()[0]
    lines = [f"# Flow decoder at real size, fp32 vs int8 DiT (`{COMMAND}`)", "",
             f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
             f"{time.strftime('%Y-%m-%d %H:%M')}; 1-min load average {load0:.2f} before, {load1:.2f} after.", "",
             f"{args.seconds:g} s of speech after a {args.prompt_seconds:g} s prompt: {frames} mel frames x CFG 2 per "
             f"Euler step, {STEPS} steps; {step_macs / 1e9:.1f} G multiply-adds per step ({lin_macs / 1e6:.2f} M per "
             f"frame in linears, {conv_macs / 1e6:.2f} M in convs). int8: {n_q} DiT linears quantized. Best of "
             f"{args.rounds}, alternating.", "",
             "| threads | flow | flow wall (s) | flow CPU (s) | flow RTF | flow + HiFT RTF | HiFT (s) | "
             "GEMM rate (G MAC/s) | floor at that rate (s) | measured / floor |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for t, name, wall, cpu, rtf, rtf_all, hift_s, rate, floor, over in table:
        lines.append(f"| {t} | {name} | {wall:.2f} | {cpu:.2f} | {rtf:.2f} | {rtf_all:.2f} | {hift_s:.2f} | "
                     f"{rate:.0f} | {floor:.2f} | {over:.2f} |")
    for t in args.threads:
        fp, q = (next(r for r in table if r[0] == t and r[1] == n) for n in ("fp32", "int8"))
        lines.append(f"\n{t} thread(s): int8 flow is {fp[2] / q[2]:.2f}x the fp32 speed.")
    lines += ["", f"Numerics (random weights, same noise): int8 mel vs fp32 relative L2 {drift:.3f}; a different "
              f"noise draw: {spread:.3f}.", ""]
    Path(args.out).write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
