"""The whole Step1 LLM at its real size (32 layers, synthetic weights) on the CPU: load, prefill, decode, peak RSS.

Needs the synthetic checkpoint of ``bench/make_realsize_checkpoint.py``. Each configuration runs in its own
process (so peak RSS is its own), one after the other; decode is ``stepedit_core.model.generate.generate`` with
constrained sampling (random weights still give audio ids), a 300-token random prompt and 16 new tokens.

Run:  python bench/bench_llm_realsize.py [--root DIR] [--threads 2] [--configs fp32 int8]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = Path("/work/cache/stepedit-realsize")
PROMPT_TOKENS = 300
NEW_TOKENS = 16


def child(root: Path, config: str, threads: int) -> dict:
    import torch
    sys.path.insert(0, str(ROOT))
    from stepedit_core.model.generate import SamplingOptions, generate
    from stepedit_core.model.loading import load_step1
    torch.set_num_threads(threads)
    t = time.perf_counter()
    model = load_step1(root / "Step-Audio-EditX", dtype=torch.float32 if config != "bf16" else torch.bfloat16,
                       quantization="int8" if config == "int8" else None)
    load = time.perf_counter() - t
    ids = torch.randint(0, 60000, (PROMPT_TOKENS,), generator=torch.Generator().manual_seed(0)).tolist()
    r = generate(model, ids, SamplingOptions(constrained=True, max_new_tokens=NEW_TOKENS, seed=1))
    return {"config": config, "threads": threads, "load_s": round(load, 1), "prefill_s": round(r.prefill_s, 2),
            "decode_tok_s": round(r.decode_tok_s, 2),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=DEFAULT_CHECKPOINT)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--configs", nargs="+", default=["fp32", "int8"], choices=["fp32", "bf16", "int8"])
    ap.add_argument("--child", choices=["fp32", "bf16", "int8"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.root, args.child, args.threads)))
        return
    rows = []
    for config in args.configs:
        out = subprocess.run([sys.executable, __file__, "--child", config, "--root", str(args.root), "--threads",
                              str(args.threads)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    base = next((r for r in rows if r["config"] == "fp32"), None)
    for r in rows:
        if base:
            r["vs_fp32"] = round(r["decode_tok_s"] / base["decode_tok_s"], 2)
    print("| config | threads | load (s) | prefill 300 tok (s) | decode tok/s | vs fp32 | peak RSS (GiB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['threads']} | {r['load_s']} | {r['prefill_s']} | {r['decode_tok_s']} | "
              f"{r.get('vs_fp32', '')} | {r['peak_rss_gib']} |")


if __name__ == "__main__":
    main()
