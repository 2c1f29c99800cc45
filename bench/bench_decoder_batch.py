"""Where a whole take's time goes, 1 take vs 4 candidates, and whether flow / HiFT gain from a batch on the CPU.

Checkpoint: the synthetic real-size folder (bench/make_realsize_checkpoint.py; ``--root`` the 4-layer copy by
default: its decoder, audio tokenizer and LLM width are the real ones, only 4 of the 32 LLM layers). One
process, ``load_engine("stepaudio", quantization="int8")`` with the int8 lm_head, 2 threads. In this order:

1. **Parts of a whole take** (a 10 s clip's emotion edit, ``--engine-tokens`` new tokens each): ``edit`` (1
   take) vs ``edit_batch`` (4 seeds), the engine's own stage timings (tokenize, prompt features, LLM prefill,
   LLM decode, decode) with the decode split into flow (token encoder + Euler solver) and HiFT by timing the
   decoder's two calls.
2. **Decoder micro-benchmark** on the shapes of a 10 s edit's candidates (prompt: the 10 s clip's tokens and
   mel; outputs of ``--out-tokens`` LLM tokens, rows stopping 5 groups apart): the flow's Euler solver (the
   DiT estimator, int8 as the engine loads it, 10 steps, CFG) and HiFT, 4 rows one by one vs the same 4 rows
   as one batch (padded to the longest, key-padding mask in the DiT), interleaved over ``--rounds``.

Run: flock /work/coord/bench.lock python bench/bench_decoder_batch.py   (writes bench/RESULTS_decoder_batch.md)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_realsize import SR, speechlike, vm  # noqa: E402
from stepedit_core.decoder.flow import MEL_BINS  # noqa: E402
from stepedit_core.interface import AudioClip, EditRequest  # noqa: E402
from stepedit_core.engine import load_stepaudio_engine  # noqa: E402
from stepedit_core.runtime import EngineOptions  # noqa: E402

L4 = Path("/work/cache/stepedit-realsize-L4")
SEEDS = [101, 102, 103, 104]
ROW_STEP_TOKENS = 5 * 5          # rows of the micro-benchmark stop 5 groups (2+3 tokens) apart


def timed_decoder(decoder, sink: dict) -> None:
    """Wrap the decoder's flow and HiFT calls so their seconds add up in ``sink``."""
    for name, obj in (("flow", decoder.flow), ("hift", decoder.hift)):
        inner = obj.inference

        def wrapped(*a, _inner=inner, _name=name, **k):
            t = time.perf_counter()
            out = _inner(*a, **k)
            sink[_name] = sink.get(_name, 0.0) + time.perf_counter() - t
            return out
        obj.inference = wrapped


def parts(engine, clip: AudioClip, tokens: int, sink: dict) -> dict:
    eng = engine.with_options(constrained=True, max_new_tokens=tokens, prompt_cache_size=0, prefix_cache_bytes=0)
    timed_decoder(eng.decoder, sink)
    request = EditRequest(clip, "hello world, this is a ten second clip", "emotion", "happy")
    out = {}
    for label, run in (("1 take", lambda: [eng.edit(replace(request, seed=SEEDS[0]))]),
                       ("4 candidates", lambda: eng.edit_batch(request, SEEDS))):
        sink.clear()
        t = time.perf_counter()
        takes = run()
        wall = time.perf_counter() - t
        timings = dict(takes[0][0].timings)
        row = {k: timings.get(k, 0.0) for k in ("tokenize", "prompt_features", "llm_prefill", "llm_decode",
                                                "decode")}
        row.update(flow=sink.get("flow", 0.0), hift=sink.get("hift", 0.0), wall=wall,
                   generated=[len(t[0].tokens) for t in takes])
        out[label] = row
        print(label, json.dumps(row), file=sys.stderr, flush=True)
    return out


def row_inputs(decoder, prompt, out_tokens: int, rows: int):
    """Per row: (mu (1, 80, n), cond, spk, z) of the flow's solver as ``flow.inference`` builds them."""
    flow = decoder.flow
    tokens = list(prompt.tokens)
    made = []
    for r in range(rows):
        n = out_tokens - r * ROW_STEP_TOKENS
        gen = (tokens * (1 + n // max(len(tokens), 1)))[:n]
        token, ptok, feat, emb = decoder.prepare(torch.tensor([gen]), torch.tensor([list(prompt.tokens)]),
                                                 prompt.speech_feat, prompt.embedding)
        with torch.inference_mode():
            spk = flow.project_speaker(emb)
            h = flow.encoder(flow.embed_tokens(torch.cat([ptok, token], dim=1)))
            mu = flow.encoder_proj(h).transpose(1, 2).contiguous()
            cond = torch.zeros_like(mu)
            cond[:, :, :feat.shape[1]] = feat.transpose(1, 2)
            z = flow.noise_for(mu.shape[2], None, r, mu)
        made.append((mu, cond, spk, z, feat.shape[1]))
    return made


def pad_rows(made):
    n = max(m[0].shape[2] for m in made)

    def pad(x):
        return torch.nn.functional.pad(x, (0, n - x.shape[2]))
    mu = torch.cat([pad(m[0]) for m in made])
    cond = torch.cat([pad(m[1]) for m in made])
    z = torch.cat([pad(m[3]) for m in made])
    spk = torch.cat([m[2] for m in made])
    mask = torch.zeros(len(made), 1, n)
    for i, m in enumerate(made):
        mask[i, :, :m[0].shape[2]] = 1
    return z, mu, mask, spk, cond


@torch.inference_mode()
def micro(engine, clip: AudioClip, out_tokens: int, rounds: int) -> dict:
    decoder = engine.decoder
    prompt = engine.encode_prompt(clip.samples, SR)
    made = row_inputs(decoder, prompt, out_tokens, len(SEEDS))
    z, mu, mask, spk, cond = pad_rows(made)
    steps = decoder.n_timesteps
    solver, hift = decoder.flow.decoder, decoder.hift
    mels = [solver(m[3], m[0], None, m[2], m[1], steps) for m in made]
    gen_mels = [mel[:, :, m[4]:] for mel, m in zip(mels, made)]
    t_max = max(m.shape[2] for m in gen_mels)
    mel4 = torch.cat([torch.nn.functional.pad(m, (0, t_max - m.shape[2])) for m in gen_mels])
    res = {"flow_1x4": [], "flow_b4": [], "hift_1x4": [], "hift_b4": [], "frames": [m[0].shape[2] for m in made],
           "mel_frames": [m.shape[2] for m in gen_mels]}
    for _ in range(rounds):
        t = time.perf_counter()
        for m in made:
            solver(m[3], m[0], None, m[2], m[1], steps)
        res["flow_1x4"].append(time.perf_counter() - t)
        t = time.perf_counter()
        solver(z, mu, mask, spk, cond, steps)
        res["flow_b4"].append(time.perf_counter() - t)
        t = time.perf_counter()
        for i, m in enumerate(gen_mels):
            hift.inference(m, generator=torch.Generator().manual_seed(i))
        res["hift_1x4"].append(time.perf_counter() - t)
        t = time.perf_counter()
        hift.inference(mel4, generator=torch.Generator().manual_seed(0))
        res["hift_b4"].append(time.perf_counter() - t)
        print({k: round(v[-1], 2) for k, v in res.items() if k.endswith(("4",))}, file=sys.stderr, flush=True)
    return res


def report(r: dict, args) -> str:
    lines = ["# Whole take parts and the decoder at batch 4 (CPU, int8, int8 lm_head)", "",
             f"`flock /work/coord/bench.lock python bench/bench_decoder_batch.py --root {args.root} "
             f"--engine-tokens {args.engine_tokens} --out-tokens {args.out_tokens} --rounds {args.rounds}`", "",
             f"torch {torch.__version__}, {args.threads} threads, load average {r['load_start'][0]:.2f} at start / "
             f"{r['load_end'][0]:.2f} at end; peak RSS {r['peak_rss_gib']:.2f} GiB.", ""]
    if "parts" in r:
        lines += [f"## Parts of a 10 s edit's take, {args.engine_tokens} new tokens (seconds)", "",
                  "| run | tokenize | prompt features | LLM prefill | LLM decode | flow | HiFT | wall | wall / 1 take |",
                  "|---|---|---|---|---|---|---|---|---|"]
        one = r["parts"]["1 take"]["wall"]
        for label, x in r["parts"].items():
            lines.append(f"| {label} | {x['tokenize']:.2f} | {x['prompt_features']:.2f} | {x['llm_prefill']:.2f} | "
                         f"{x['llm_decode']:.2f} | {x['flow']:.2f} | {x['hift']:.2f} | {x['wall']:.2f} | "
                         f"{x['wall'] / one:.2f}x |")
        lines.append("")
    if "micro" in r:
        m = r["micro"]
        med = {k: statistics.median(v) for k, v in m.items() if k.startswith(("flow", "hift"))}
        lines += [f"## Decoder, 4 rows of a 10 s edit (flow frames {m['frames']}, HiFT mel frames "
                  f"{m['mel_frames']}), medians of {args.rounds} rounds", "",
                  "| part | 4 rows one by one (s) | one batch of 4 (s) | batch / one by one |", "|---|---|---|---|",
                  f"| flow solver (DiT int8, {MEL_BINS} mel, 10 steps, CFG) | {med['flow_1x4']:.2f} | "
                  f"{med['flow_b4']:.2f} | {med['flow_b4'] / med['flow_1x4']:.2f}x |",
                  f"| HiFT | {med['hift_1x4']:.2f} | {med['hift_b4']:.2f} | {med['hift_b4'] / med['hift_1x4']:.2f}x |",
                  ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=L4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--engine-tokens", type=int, default=40)
    ap.add_argument("--out-tokens", type=int, default=417, help="LLM tokens of the longest row (10 s: 417)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip", choices=["parts", "micro"], default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS_decoder_batch.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    res = {"load_start": os.getloadavg()}
    engine = load_stepaudio_engine(args.root, device="cpu", quantization="int8",
                         options=EngineOptions(int8_lm_head=True))
    clip = AudioClip.from_array(speechlike(10.0, 2), SR)
    if args.skip != "micro":
        res["micro"] = micro(engine, clip, args.out_tokens, args.rounds)
    if args.skip != "parts":
        res["parts"] = parts(engine, clip, args.engine_tokens, {})
    res["load_end"] = os.getloadavg()
    res["peak_rss_gib"] = vm("VmHWM")
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    text = report(res, args)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
