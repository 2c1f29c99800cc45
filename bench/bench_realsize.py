"""The whole Step-Audio-EditX engine at its REAL size on the CPU: load, clone and a 10 s edit, per LLM dtype.

Checkpoint: the synthetic full-size folder of bench/make_realsize_checkpoint.py (random weights, official
formats; written to /work/cache/stepedit-realsize on first use). Each configuration (``fp32``, ``bf16``,
``int8`` = torch dynamic quantization of the decoder-layer linears) runs in its own process, so its peak RSS
(VmHWM) is its own. In that process:

1. ``load_engine("stepaudio", model_path=..., device="cpu", dtype=..., quantization=...)`` with 2 threads:
   load time, RSS after load.
2. For 1 and 2 threads: a clone (5 s prompt) and an emotion edit of a 10 s clip, constrained decoding (random
   weights still give a decodable 2+3 audio-token stream), ``--max-new-tokens`` new tokens each (default 125 =
   3 s of speech for int8, 30 for fp32 / bf16; a 10 s output's LLM time is extrapolated from the measured
   tok/s, 417 tokens, in BENCHMARKS.md). Stages: tokenize (vq02 + vq06), prompt features (mel + CAM++), LLM prefill,
   LLM decode (tok/s), flow (10 Euler steps), HiFT, total.
3. Weight streaming: one mat-vec through every LLM linear (32 layers x 7 + lm_head) at the same thread count,
   in the same process; decode step time / streaming time = the overhead over the memory-bound floor.
4. Numerics: logits of 10 teacher-forced steps after a fixed 64-token prompt, and 10 greedy ids; the parent
   compares bf16 / int8 with fp32 (relative L2 drift, argmax agreement, greedy-id agreement).

fp32 needs ~15 GB; the parent waits (up to --wait-min) until /proc/meminfo MemAvailable >= 16 GB before it.

Run:  python bench/bench_realsize.py [--configs int8 bf16 fp32]       (writes bench/RESULTS_realsize.md)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from stepedit_core.loader import load_engine  # noqa: E402

COMMAND = "python bench/bench_realsize.py"
CACHE = Path("/work/cache/stepedit-realsize")
CONFIGS = {"fp32": dict(dtype="float32"), "bf16": dict(dtype="bfloat16"), "int8": dict(quantization="int8")}
TOKENS_10S = 417            # 10 s of speech = 10 / 0.12 groups x 5 tokens (2 vq02 + 3 vq06 per 120 ms)
INT8_TOKENS, OTHER_TOKENS = 125, 30     # generated per request (3.0 s / 0.7 s of speech): the machine is shared
FP32_NEED_GB = 16
SR = 16000


def speechlike(seconds: float, seed: int) -> np.ndarray:
    """Voiced syllables (gliding f0, 8 harmonics, 4 Hz envelope) with short pauses; peak 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t) + 10 * rng.standard_normal() * np.sin(2 * np.pi * 3.1 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    wav = sum(np.sin(k * phase) / k for k in range(1, 9))
    env = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5 * (np.sin(2 * np.pi * 0.45 * t) > -0.9)
    wav = wav * env + 0.01 * rng.standard_normal(t.size)
    return (0.5 * wav / np.abs(wav).max()).astype(np.float32)


def vm(field: str) -> float:
    """VmRSS / VmHWM of this process in GiB (kB / 1024^2)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024 ** 2
    return float("nan")


def streaming_s(llm) -> float:
    """Best of 3: one (1, in) mat-vec through every decoder-layer linear and the lm_head."""
    dt = llm.activation_dtype
    lins = [m for layer in llm.model.layers for m in layer.modules() if hasattr(m, "in_features")] + [llm.lm_head]
    xs = {}
    best = float("inf")
    with torch.inference_mode():
        for _ in range(3):
            t0 = time.perf_counter()
            for m in lins:
                n = m.in_features
                x = xs.setdefault(n, torch.randn(1, n, dtype=dt))
                m(x)
            best = min(best, time.perf_counter() - t0)
    return best


def numerics(llm, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(65536, 70656, (1, 64), generator=g)
    forced = torch.randint(65536, 70656, (10,), generator=g).tolist()
    with torch.inference_mode():
        cache = llm.new_cache(128)
        lg = llm.step(prompt, cache)[0, -1]
        out = []
        for i in forced:
            out.append(lg.float())
            lg = llm.step(torch.tensor([[i]]), cache)[0, -1]
        cache = llm.new_cache(128)
        lg = llm.step(prompt, cache)[0, -1]
        greedy = []
        for _ in range(10):
            greedy.append(int(lg.argmax()))
            lg = llm.step(torch.tensor([[greedy[-1]]]), cache)[0, -1]
    return {"forced_logits": torch.stack(out), "greedy": greedy}


def run_child(name: str, root: Path, max_new: int, threads: list[int], kinds: list[str]) -> dict:
    from stepedit_core.interface import AudioClip, CloneRequest, EditRequest

    torch.set_num_threads(max(threads))
    t0 = time.perf_counter()
    engine = load_engine("stepaudio", model_path=root, device="cpu", **CONFIGS[name])
    res = {"config": name, "load_s": time.perf_counter() - t0, "rss_after_load_gb": vm("VmRSS"),
           "max_new_tokens": max_new, "runs": []}
    engine.options = replace(engine.options, constrained=True, max_new_tokens=max_new, prompt_cache_size=0)
    engine._prompts.cache.size = 0
    dec, stage = engine.decoder, {}

    def timed(fn, key):
        def wrapper(*a, **k):
            t = time.perf_counter()
            out = fn(*a, **k)
            stage[key] = stage.get(key, 0.0) + time.perf_counter() - t
            return out
        return wrapper
    dec.token2mel = timed(dec.token2mel, "flow")
    dec.hift.inference = timed(dec.hift.inference, "hift")
    prompt = AudioClip.from_array(speechlike(5.0, 1), SR)
    clip = AudioClip.from_array(speechlike(10.0, 2), SR)
    for n in threads:
        torch.set_num_threads(n)
        requests = {"clone": lambda: engine.clone(CloneRequest(prompt, "hello world this is the prompt",
                                                               "the following text is spoken in a new voice", 7)),
                    "edit10s": lambda: engine.edit(EditRequest(clip, "hello world, this is a ten second clip",
                                                               "emotion", "happy", seed=7))[0]}
        for kind, call in [(k, requests[k]) for k in kinds]:
            stage.clear()
            r = call()
            tm, piece = r.timings, r.metadata["pieces"][0]
            res["runs"].append({"threads": n, "kind": kind, "tokenize_s": tm.get("tokenize", 0.0),
                                "prompt_features_s": tm.get("prompt_features", 0.0),
                                "prefill_tokens": piece["prompt_len"], "prefill_s": tm["llm_prefill"],
                                "generated": piece["generated"], "decode_s": tm["llm_decode"],
                                "decode_tok_s": piece["generated"] / tm["llm_decode"],
                                "flow_s": stage.get("flow", 0.0), "hift_s": stage.get("hift", 0.0),
                                "audio_s": r.audio.duration, "total_s": tm["total"]})
            print(json.dumps(res["runs"][-1]), file=sys.stderr, flush=True)
        res.setdefault("streaming_s", {})[str(n)] = streaming_s(engine.llm)
    torch.set_num_threads(max(threads))
    num = numerics(engine.llm)
    torch.save(num, CACHE / f"numerics_{name}.pt")
    res["peak_rss_gb"] = vm("VmHWM")
    res["loadavg"] = os.getloadavg()
    return res


def mem_available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024 ** 2
    return 0.0


def compare_numerics(names) -> dict:
    ref = torch.load(CACHE / "numerics_fp32.pt")
    out = {}
    for n in names:
        if n == "fp32" or not (CACHE / f"numerics_{n}.pt").is_file():
            continue
        got = torch.load(CACHE / f"numerics_{n}.pt")
        a, b = got["forced_logits"], ref["forced_logits"]
        out[n] = {"rel_l2": float((a - b).norm() / b.norm()), "max_abs": float((a - b).abs().max()),
                  "logit_scale": float(b.abs().max()),
                  "forced_argmax_agree": int((a.argmax(-1) == b.argmax(-1)).sum()),
                  "greedy_agree_prefix": next((i for i, (x, y) in enumerate(zip(got["greedy"], ref["greedy"]))
                                               if x != y), 10)}
    return out


def report(results: list[dict], num: dict, args) -> str:
    lines = [f"# Real-size engine on the CPU\n\n`{COMMAND}` (per configuration; see BENCHMARKS.md for the flags)\n",
             "Synthetic full-size checkpoint (bench/make_realsize_checkpoint.py, random weights), "
             f"torch {torch.__version__}, {os.cpu_count()} cores.\n",
             "| config | load (s) | RSS after load (GiB) | peak RSS (GiB) | load avg at end |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['config']} | {r['load_s']:.1f} | {r['rss_after_load_gb']:.2f} | {r['peak_rss_gb']:.2f} | "
                     f"{r['loadavg'][0]:.2f} |")
    lines += ["", "| config | threads | request | tokenize (s) | prompt feat. (s) | prefill tok / s | decode tok | "
              "decode tok/s | step / streaming | flow (s) | HiFT (s) | audio (s) | total (s) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for x in r["runs"]:
            ratio = (x["decode_s"] / x["generated"]) / r["streaming_s"][str(x["threads"])]
            lines.append(f"| {r['config']} | {x['threads']} | {x['kind']} | {x['tokenize_s']:.2f} | "
                         f"{x['prompt_features_s']:.2f} | {x['prefill_tokens']} / {x['prefill_s']:.1f} | "
                         f"{x['generated']} | {x['decode_tok_s']:.2f} | {ratio:.2f}x | {x['flow_s']:.1f} | "
                         f"{x['hift_s']:.1f} | {x['audio_s']:.1f} | {x['total_s']:.1f} |")
    lines += ["", "Weight streaming (one mat-vec through all 225 LLM linears, best of 3, same process):", ""]
    for r in results:
        lines.append(f"- {r['config']}: " + ", ".join(f"{k} thread(s) {v:.3f} s" for k, v in r["streaming_s"].items()))
    if num:
        lines += ["", "Numerics vs fp32 (64-token prompt of audio ids, 10 teacher-forced steps; 10 greedy ids):", "",
                  "| config | rel. L2 drift | max abs | max |logit| fp32 | forced argmax agree | greedy ids equal "
                  "before first difference |", "|---|---|---|---|---|---|"]
        for n, v in num.items():
            lines.append(f"| {n} | {v['rel_l2']:.4f} | {v['max_abs']:.3f} | {v['logit_scale']:.2f} | "
                         f"{v['forced_argmax_agree']}/10 | {v['greedy_agree_prefix']}/10 |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=["int8", "bf16", "fp32"], choices=list(CONFIGS))
    ap.add_argument("--root", type=Path, default=CACHE)
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: 125 for int8, 30 otherwise")
    ap.add_argument("--kinds", nargs="+", default=["clone", "edit10s"], choices=["clone", "edit10s"])
    ap.add_argument("--wait-min", type=float, default=20.0)
    ap.add_argument("--child", default=None)
    ap.add_argument("--report", nargs="+", default=None, help="render RESULTS_realsize.md from raw json files")
    args = ap.parse_args()
    if args.report:          # re-render from per-configuration raw files (runs made separately)
        results = [json.loads(Path(f).read_text()) for f in args.report]
        args.configs = [r["config"] for r in results]
        render(results, args)
        return
    if args.child:
        print(json.dumps(run_child(args.child, args.root, args.max_new_tokens, args.threads, args.kinds)))
        return
    if not (args.root / "Step-Audio-EditX" / "config.json").is_file():
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_realsize_checkpoint.py"), "--out", str(args.root)],
                       check=True)
    results = []
    for name in args.configs:
        if name == "fp32":
            deadline = time.time() + 60 * args.wait_min
            while mem_available_gb() < FP32_NEED_GB and time.time() < deadline:
                print(f"waiting for {FP32_NEED_GB} GB free (now {mem_available_gb():.1f})", file=sys.stderr)
                time.sleep(30)
            if mem_available_gb() < FP32_NEED_GB:
                print("fp32 skipped: not enough free memory", file=sys.stderr)
                continue
        n_new = args.max_new_tokens or (INT8_TOKENS if name == "int8" else OTHER_TOKENS)
        cmd = [sys.executable, __file__, "--child", name, "--root", str(args.root), "--max-new-tokens", str(n_new),
               "--threads", *map(str, args.threads), "--kinds", *args.kinds]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        (ROOT / "bench" / f"realsize_raw_{name}.json").write_text(json.dumps(results[-1], indent=1))
    render(results, args)


def render(results: list[dict], args) -> None:
    num = compare_numerics(args.configs) if (CACHE / "numerics_fp32.pt").is_file() else {}
    text = report(results, num, args)
    (ROOT / "bench" / "RESULTS_realsize.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
