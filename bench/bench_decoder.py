"""CosyVoice decoder speed (flow + HiFT) at the real config, random weights, fp32, CPU.

Decodes ``--seconds`` of speech (25 flow rows/s -> 50 mel frames/s -> 24 kHz) after a ``--prompt-seconds``
prompt, as ``token2wav_nonstream`` does (the flow runs over prompt + generated frames), for several Euler step
counts (official: 10). Also times the streaming path's first chunk (setup + 15 rows), i.e. the latency to the
first audio. RTF = compute time / speech duration (lower is faster). Threads default to 1 (the machine has 2
cores shared with other jobs).

Run:  python bench/bench_decoder.py        (a few minutes; writes bench/RESULTS_decoder.md)
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stepedit_core.cosyvoice import CosyVoiceDecoder  # noqa: E402
from stepedit_core.flow import CausalMaskedDiffWithXvec, FlowConfig, noise_buffer  # noqa: E402
from stepedit_core.hift import HiFTConfig, HiFTGenerator  # noqa: E402
from stepedit_core.streaming import CHUNK_SIZES, mixed_len  # noqa: E402

COMMAND = "python bench/bench_decoder.py"
ROWS_PER_S = 25
GROUP_S = 0.12                      # one 2+3 group = 3 rows = 120 ms


def random_tokens(seconds: float, gen: torch.Generator) -> list[int]:
    out = []
    for _ in range(int(round(seconds / GROUP_S))):
        out += torch.randint(0, 1024, (2,), generator=gen).tolist()
        out += (1024 + torch.randint(0, 4096, (3,), generator=gen)).tolist()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--prompt-seconds", type=float, default=5.0)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 6, 4])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).with_name("RESULTS_decoder.md")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    flow = CausalMaskedDiffWithXvec(FlowConfig()).requires_grad_(False).eval()
    hift = HiFTGenerator(HiFTConfig()).eval()
    decoder = CosyVoiceDecoder(flow, hift)
    n_flow = sum(p.numel() for p in flow.parameters())
    gen = torch.Generator().manual_seed(0)
    token, prompt = random_tokens(args.seconds, gen), random_tokens(args.prompt_seconds, gen)
    rows, prompt_rows = len(token) // 5 * 3, len(prompt) // 5 * 3
    feat = torch.randn(1, 2 * prompt_rows, 80, generator=gen) * 2 - 6      # log-mel-like scale
    emb = torch.randn(1, 192, generator=gen)
    speech_s = 2 * rows * hift.cfg.samples_per_frame / hift.cfg.sampling_rate
    noise = noise_buffer(0)

    results = []
    with torch.inference_mode():
        decoder.token2mel(token[:15], prompt[:15], feat[:, :18], emb, n_timesteps=1)        # warm-up
        for steps in args.steps:
            w0, c0 = time.perf_counter(), time.process_time()
            mel = decoder.token2mel(token, prompt, feat, emb, n_timesteps=steps, flow_noise=noise)
            w1, c1 = time.perf_counter(), time.process_time()
            wav, _ = hift.inference(mel, generator=torch.Generator().manual_seed(0))
            w2, c2 = time.perf_counter(), time.process_time()
            results.append((steps, c1 - c0, c2 - c1, c2 - c0, w2 - w0))
            print(f"steps {steps}: flow {c1 - c0:.2f}s hift {c2 - c1:.2f}s (CPU) wall {w2 - w0:.2f}s", flush=True)
        assert wav.shape[1] == 2 * rows * hift.cfg.samples_per_frame
        # streaming: time to the first audio (setup over the prompt + first chunk of 15 rows)
        stream = decoder.stream(prompt, feat, emb, noise=noise)
        first = mixed_len(CHUNK_SIZES[0]) + mixed_len(flow.pre_lookahead_len)
        c0 = time.process_time()
        piece = stream.push(token[:first])
        t_first = time.process_time() - c0
        assert piece.shape[1] > 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    lines = [
        "## CosyVoice decoder (flow + HiFT)", "",
        f"Command: `{COMMAND}` (torch {torch.__version__}, {args.threads} thread(s), fp32, "
        f"{platform.processor() or platform.machine()}, load average {load:.1f} at the end).", "",
        f"Real config (flow {n_flow / 1e6:.1f} M params: encoder 6+4 blocks, DiT depth 16 x 512; HiFT base 512), "
        f"random weights. {args.seconds:g} s of speech ({rows} flow rows, {2 * rows} mel frames) after a "
        f"{args.prompt_seconds:g} s prompt ({prompt_rows} rows): the flow runs over {2 * (rows + prompt_rows)} "
        "frames with CFG (batch 2) per Euler step, as `token2wav_nonstream`.", "",
        "Times are process CPU seconds (with one thread this is the compute time, and it is much less "
        "disturbed by other jobs on the machine than wall time, which is also given).", "",
        "| Euler steps | flow (s) | HiFT (s) | total (s) | RTF | wall total (s) |",
        "|---|---|---|---|---|---|",
    ]
    for steps, t_flow, t_hift, total, wall in results:
        lines.append(f"| {steps} | {t_flow:.2f} | {t_hift:.2f} | {total:.2f} | {total / speech_s:.2f} | {wall:.2f} |")
    lines += ["", f"Streaming, 10 steps: first audio after {t_first:.2f} CPU s (setup over the prompt frames + the "
              f"first chunk of {CHUNK_SIZES[0]} rows, {piece.shape[1] / hift.cfg.sampling_rate:.2f} s of speech "
              "released).", "",
              "Flow time is almost all DiT (16 blocks x 2 CFG rows x steps); it scales linearly with the step "
              "count, so 6 steps cost ~60 % and 4 steps ~40 % of the official 10. Fewer steps change the "
              "output (coarser ODE integration); their quality is not measured here (random weights).", ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
