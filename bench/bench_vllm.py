"""The LLM stage on vLLM (``--llm-server``) against the native engine's sequential queue, at real width.

Checkpoint: the synthetic real-size Step1 (bench/make_realsize_checkpoint.py, random weights) cut to its first
``--layers`` decoder layers (hidden 3072, 48/4 heads, MLP 8192, vocab 74752 unchanged), written once as
``<source>-L<layers>``. Both sides run it in fp32 with one compute thread.

1. native: N requests through this project's ``generate`` one after another, as the engine's lock serves them
   (request i waits for the i - 1 before it): aggregate tok/s, p50 / p95 latency, peak RSS of this process.
2. vLLM: a ``python -m vllm.entrypoints.openai.api_server`` with the plugin (the vLLM venv), N requests at once
   through :class:`stepedit_core.model.remote.RemoteStep1` (the client ``serve --llm-server`` uses for the LLM
   stage; the audio tokenizer and decoder are outside this benchmark): the same figures, peak RSS of the server's
   process tree.
3. repeated voice: 3 voices x 4 lines sharing a 400-token voice prefix, one new token each, prefix caching on:
   prefill (time to first token) of lines 2-4 vs the voice's first, cold line.

Requests: official sampling (temperature 0.7, top-k 50, repetition guard) with the 2+3 constraint, seeded; a
~300-token prompt, ``--new-tokens`` new tokens. Run under the memory lock:

    flock /work/coord/bigmem.lock python bench/bench_vllm.py --venv "$(bash vllm_plugin/make_venv.sh | tail -1)"
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from stepedit_core.model.generate import SamplingOptions, generate  # noqa: E402
from stepedit_core.model.remote import RemoteStep1  # noqa: E402

PROMPT_TOKENS = 300
VOICE_PREFIX = 400
LINE_TOKENS = 20
CONCURRENCY = (1, 4, 8)
KV_CACHE_BYTES = 1 << 30
START_TIMEOUT_S = 1200


def cut_checkpoint(source: Path, layers: int) -> Path:
    """``source``/Step-Audio-EditX with only its first ``layers`` decoder layers (bf16, one file)."""
    from safetensors import safe_open
    from safetensors.torch import save_file
    out = source.parent / f"{source.name}-L{layers}" / "Step-Audio-EditX"
    if (out / "model.safetensors").exists():
        return out
    src = source / "Step-Audio-EditX"
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((src / "config.json").read_text())
    config["num_hidden_layers"] = layers
    (out / "config.json").write_text(json.dumps(config, indent=2))
    index = json.loads((src / "model.safetensors.index.json").read_text())["weight_map"]
    keep = {k: f for k, f in index.items()
            if not k.startswith("model.layers.") or int(k.split(".")[2]) < layers}
    tensors = {}
    for shard in sorted(set(keep.values())):
        with safe_open(str(src / shard), "pt") as f:
            tensors.update({k: f.get_tensor(k) for k in keep if keep[k] == shard})
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    for name in ("tokenizer.model", "tokenizer_config.json"):
        (out / name).write_bytes((src / name).read_bytes())
    return out


def prompts(n: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [[1, 4] + torch.randint(5, 60000, (40,), generator=g).tolist()
            + (65536 + torch.randint(0, 5120, (PROMPT_TOKENS - 42,), generator=g)).tolist() for _ in range(n)]


def options(seed: int, new_tokens: int) -> SamplingOptions:
    return SamplingOptions(seed=seed, max_new_tokens=new_tokens, constrained=True)


def summary(latencies: list[float], tokens: int, wall: float) -> dict:
    q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    return {"aggregate_tok_s": round(tokens / wall, 2), "p50_s": round(statistics.median(latencies), 2),
            "p95_s": round(q[18], 2), "tokens": tokens, "wall_s": round(wall, 2)}


def run_native(model_dir: Path, new_tokens: int) -> dict:
    from stepedit_core.model.loading import load_step1
    torch.set_num_threads(1)
    model = load_step1(model_dir, device=torch.device("cpu"), dtype=torch.float32)
    generate(model, prompts(1, 99)[0], options(0, 4))                        # warm-up
    results = {}
    for n in CONCURRENCY:
        t0, latencies, tokens = time.perf_counter(), [], 0
        for i, p in enumerate(prompts(n)):
            tokens += len(generate(model, p, options(i, new_tokens)).ids)
            latencies.append(time.perf_counter() - t0)                      # queued behind the ones before
        results[n] = summary(latencies, tokens, time.perf_counter() - t0)
    del model
    results["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2)
    return results


class TreeRSS:
    """Peak resident memory of a process and its children, sampled every 0.2 s."""

    def __init__(self, pid: int):
        self.proc, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass

    def stop(self) -> float:
        self._stop.set()
        return round(self.peak / 2 ** 30, 2)


def start_vllm(venv: Path, model_dir: Path, port: int, log: Path) -> subprocess.Popen:
    cmd = [str(venv / "bin" / "python"), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
           "--served-model-name", "step-audio-editx", "--skip-tokenizer-init", "--dtype", "float32",
           "--max-model-len", "4096", "--kv-cache-memory-bytes", str(KV_CACHE_BYTES), "--enable-prefix-caching",
           "--port", str(port)]
    env = {**os.environ, "VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"vLLM exited; see {log}")
        try:
            RemoteStep1.connect(f"http://127.0.0.1:{port}")
            return proc
        except Exception:  # noqa: BLE001 (not up yet)
            time.sleep(3)
    proc.kill()
    raise SystemExit(f"vLLM did not start in {START_TIMEOUT_S} s; see {log}")


def run_vllm(client: RemoteStep1, new_tokens: int) -> dict:
    client.remote_generate(prompts(1, 99)[0], options(0, 4))                # warm-up
    results = {}
    for n in CONCURRENCY:
        def one(i_p):
            i, p = i_p
            t = time.perf_counter()
            got = client.remote_generate(p, options(i, new_tokens))
            return time.perf_counter() - t, len(got.ids)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            done = list(pool.map(one, enumerate(prompts(n))))
        results[n] = summary([d[0] for d in done], sum(d[1] for d in done), time.perf_counter() - t0)
    return results


def run_prefix(client: RemoteStep1) -> dict:
    g = torch.Generator().manual_seed(5)
    cold, warm = [], []
    for voice in range(3):
        prefix = [1, 4] + (65536 + torch.randint(0, 5120, (VOICE_PREFIX - 2,), generator=g)).tolist()
        for line in range(4):
            ids = prefix + torch.randint(5, 60000, (LINE_TOKENS,), generator=g).tolist()
            got = client.remote_generate(ids, SamplingOptions(seed=line, max_new_tokens=1))
            (cold if line == 0 else warm).append(got.prefill_s)
    return {"cold_prefill_s": round(statistics.median(cold), 3), "warm_prefill_s": round(statistics.median(warm), 3),
            "ratio": round(statistics.median(warm) / statistics.median(cold), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, required=True, help="the vLLM venv (vllm_plugin/make_venv.sh)")
    ap.add_argument("--source", type=Path, default=Path("/work/cache/stepedit-realsize"))
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--port", type=int, default=8397)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS_vllm.json")
    args = ap.parse_args()
    model_dir = cut_checkpoint(args.source, args.layers)
    report = {"layers": args.layers, "new_tokens": args.new_tokens, "prompt_tokens": PROMPT_TOKENS,
              "load_before": os.getloadavg()}
    report["native"] = run_native(model_dir, args.new_tokens)
    print(json.dumps(report["native"]), flush=True)
    log = args.out.with_suffix(".server.log")
    proc = start_vllm(args.venv, model_dir, args.port, log)
    rss = TreeRSS(proc.pid)
    try:
        client = RemoteStep1.connect(f"http://127.0.0.1:{args.port}", token_timeout=600)
        report["vllm"] = run_vllm(client, args.new_tokens)
        report["prefix_cache"] = run_prefix(client)
    finally:
        report.setdefault("vllm", {})["peak_rss_gb"] = rss.stop()
        proc.terminate()
        proc.wait(timeout=120)
    report["speedup_8"] = round(report["vllm"][8]["aggregate_tok_s"] / report["native"][8]["aggregate_tok_s"], 2)
    report["load_after"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
