"""Peak RSS of each stage of a real-size request (issue #14): which stage holds the memory.

Loads the synthetic real-size checkpoint (bench/make_realsize_checkpoint.py) at one configuration, then runs a
clone and a 10 s edit; around each stage (prompt encoding, LLM prefill, decode steps, flow, HiFT) the kernel's
peak-RSS mark is reset (``/proc/self/clear_refs``, Linux) so that VmHWM afterwards is that stage's own peak.

    python bench/trace_rss.py [--config int8] [--max-new-tokens 60] [--threads 2]
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_realsize import CACHE, CONFIGS, SR, speechlike, vm  # noqa: E402
from stepedit_core import load_engine  # noqa: E402
from stepedit_core.interface import AudioClip, CloneRequest, EditRequest  # noqa: E402


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")          # VmHWM := VmRSS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="int8", choices=list(CONFIGS))
    ap.add_argument("--root", type=Path, default=CACHE)
    ap.add_argument("--max-new-tokens", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    engine = load_engine("stepaudio", model_path=args.root, device="cpu", **CONFIGS[args.config])
    print(f"{args.config}: load {time.perf_counter() - t0:.1f} s, RSS {vm('VmRSS'):.2f} GiB, "
          f"peak {vm('VmHWM'):.2f} GiB")
    engine.options = replace(engine.options, constrained=True, max_new_tokens=args.max_new_tokens,
                             prompt_cache_size=0)
    engine._prompts.cache.size = 0
    peaks: dict[str, tuple[float, float, float]] = {}      # stage -> (peak, peak - RSS at entry, RSS after)

    def traced(obj, attr: str, stage) -> None:
        fn = getattr(obj, attr)

        def wrapper(*a, **k):
            before = vm("VmRSS")
            reset_peak()
            out = fn(*a, **k)
            name = stage(a) if callable(stage) else stage
            old = peaks.get(name, (0.0, 0.0, 0.0))
            peaks[name] = (max(old[0], vm("VmHWM")), max(old[1], vm("VmHWM") - before), vm("VmRSS"))
            return out
        setattr(obj, attr, wrapper)

    traced(engine._prompts, "encode", "prompt encoding")
    traced(engine.llm, "step", lambda a: "prefill" if a[0].shape[1] > 1 else "decode")
    traced(engine.decoder, "token2mel", "flow")
    traced(engine.decoder.hift, "inference", "HiFT")
    prompt = AudioClip.from_array(speechlike(5.0, 1), SR)
    clip = AudioClip.from_array(speechlike(10.0, 2), SR)
    requests = {"clone": lambda: engine.clone(CloneRequest(prompt, "hello world this is the prompt",
                                                           "the following text is spoken in a new voice", 7)),
                "edit10s": lambda: engine.edit(EditRequest(clip, "hello world, this is a ten second clip",
                                                           "emotion", "happy", seed=7))}
    for kind, call in requests.items():
        peaks.clear()
        start = vm("VmRSS")
        call()
        print(f"{kind}: RSS {start:.2f} -> {vm('VmRSS'):.2f} GiB")
        for name, (peak, rise, after) in peaks.items():
            print(f"  {name:16s} peak {peak:.2f} GiB (+{rise:.2f} over its start), RSS after {after:.2f}")


if __name__ == "__main__":
    main()
