"""Full takes through ``serve --llm-server`` (vLLM) against the native engine's sequential queue, at real width.

Checkpoint: the synthetic real-size folder (bench/make_realsize_checkpoint.py, random weights) with its Step1 cut
to the first ``--layers`` decoder layers (hidden 3072, 48/4 heads, MLP 8192, vocab 74752 unchanged; written once
as ``<source>-L<layers>``, the real-size CosyVoice decoder and audio tokenizer linked in). Each configuration
runs this project's HTTP server (``stepedit_core.server.serve``, what ``python -m stepedit_core serve`` runs) in its
own process, so its peak RSS is its own:

- ``native-fp32`` / ``native-int8``: ``serve`` without ``--llm-server`` (``--dtype float32`` /
  ``--quantization int8``, which also quantizes the flow's DiT); concurrent requests wait in the server's queue
  and run one after another;
- ``vllm``: a vLLM server (``python -m vllm.entrypoints.openai.api_server`` + the plugin, the vLLM venv, fp32:
  vLLM's CPU path serves fp32 only with the plugin's sqrt-ALiBi) and ``serve --llm-server`` in front of it; the
  audio tokenizer and the decoder (flow + HiFT) stay in the ``serve`` process; ``vllm-int8flow``: the same with
  ``serve --llm-server --quantization int8``, which quantizes the flow's DiT there (as ``native-int8`` does).

``--vllm-quant int8``: the vLLM server serves a compressed-tensors W8A8 copy of the Step1 folder (int8 weights per
output channel, int8 activations per token, oneDNN; written once as ``<root>-vllm-int8`` by
``python -m stepedit_vllm.quantize`` in the vLLM venv, the embedding / ``lm_head`` / KV cache fp32); its report keys
get ``-w8a8``. ``--layers`` equal to the source's layer count uses the source itself. Threads: ``--vllm-threads``
for the vLLM server (``OMP_NUM_THREADS``, no core binding), ``--serve-threads`` for the ``serve`` in front of it,
``--native-threads`` for the native engine.

Per configuration: a library voice is saved (``POST /v1/voices``, 3 s of speech-like audio) and warmed by one take;
then 1, 4 and 8 clients ``POST /v1/audio/speech`` at once (different texts and seeds, ``flac``: the whole-take
path), each take ``--new-tokens`` audio tokens. Random weights never stop by themselves, so the engine runs with
the 2+3 constraint and this cap, and the take header carries the take's stage seconds: the only differences from
the ``serve`` command. Figures: aggregate audio tok/s and takes/s, p50 / p95 latency per request (from its send),
peak RSS of the ``serve`` process and of the vLLM server's process tree (sampled every 0.2 s), and the stage
seconds of the takes. Then script mode's repeated voices: 3 fresh voices (``--prefix-voice-seconds`` long) x 4
lines one after another; LLM prefill (``timings.llm_prefill``: time to the first token) of lines 2-4 vs each
voice's cold first line. Server logs and voice libraries go to ``--work-dir``.

    flock /work/coord/bench.lock flock /work/coord/bigmem.lock \\
        python bench/bench_vllm.py --venv "$(bash vllm_plugin/make_venv.sh | tail -1)"
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_realsize import speechlike  # noqa: E402

CONCURRENCY = (1, 4, 8)
CONFIGS = ("native-fp32", "native-int8", "vllm", "vllm-int8flow")
SECONDS_PER_GROUP = 0.12         # one 2+3 group (5 audio tokens) = 2880 samples at 24 kHz
GROUP_SIZE = 5
VOICE_SECONDS = 3.0
PREFIX_VOICES, PREFIX_LINES = 3, 4
KV_CACHE_BYTES = 1 << 30
START_TIMEOUT_S = 1500
REQUEST_TIMEOUT_S = 3600
TEXTS = ("The quick brown fox jumps over the lazy dog.", "Please call Stella and ask her to bring these things.",
         "She sells sea shells by the sea shore today.", "A stitch in time saves nine, they always said.",
         "Every morning the market opens at seven o'clock.", "How much wood would a woodchuck chuck today?",
         "The rain in Spain stays mainly in the plain.", "Bring six spoons of fresh snow peas, please.")


def cut_checkpoint(source: Path, layers: int) -> Path:
    """``<source>-L<layers>``: Step-Audio-EditX with only its first ``layers`` decoder layers (one bf16 file and
    its index), the source's CosyVoice decoder and audio tokenizer linked in."""
    from safetensors import safe_open
    from safetensors.torch import save_file
    if json.loads((source / "Step-Audio-EditX" / "config.json").read_text())["num_hidden_layers"] == layers:
        return source
    root = source.parent / f"{source.name}-L{layers}"
    out, src = root / "Step-Audio-EditX", source / "Step-Audio-EditX"
    if not (out / "model.safetensors").exists():
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
    index = out / "model.safetensors.index.json"
    if not index.exists():
        from safetensors import safe_open
        with safe_open(str(out / "model.safetensors"), "pt") as f:
            index.write_text(json.dumps({"metadata": {}, "weight_map": {k: "model.safetensors" for k in f.keys()}}))
    for link, target in ((out / "CosyVoice-300M-25Hz", src / "CosyVoice-300M-25Hz"),
                         (root / "Step-Audio-Tokenizer", source / "Step-Audio-Tokenizer")):
        if not link.exists():
            link.symlink_to(target)
    return root


# ---- the serve process ----------------------------------------------------------------------------------------
def serve_child(args: argparse.Namespace) -> None:
    """This project's HTTP server on one engine (what ``python -m stepedit_core serve`` runs), with the cap."""
    import torch
    torch.set_num_threads(args.threads)
    from stepedit_core.loader import load_engine
    from stepedit_core.server import serve
    from stepedit_core.voices import VoiceLibrary
    engine = load_engine("stepaudio", model_path=args.model_path, device="cpu", dtype=args.dtype,
                         quantization=args.quantization, llm_server=args.llm_server)
    engine = engine.with_options(constrained=True, max_new_tokens=args.new_tokens)
    from stepedit_core.server import app as server_app
    plain = server_app._take_header

    def with_timings(take, edits=(), extra=None) -> dict:        # the take's stage seconds, for this benchmark
        return plain(take, edits, {**(extra or {}), "timings": {k: round(v, 3) for k, v in take.timings.items()}})

    server_app._take_header = with_timings
    serve(engine, port=args.port, library=VoiceLibrary(Path(args.library)), log_level="warning")


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


def wait_up(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url} exited; see {log}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(3)
    proc.kill()
    raise SystemExit(f"{url} did not start in {START_TIMEOUT_S} s; see {log}")


def start(cmd: list[str], env: dict, health: str, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env={**os.environ, **env})
    wait_up(proc, health, log)
    return proc


def vllm_int8_folder(venv: Path, root: Path) -> Path:
    """``<root>-vllm-int8/Step-Audio-EditX``: the W8A8 copy of the Step1 folder (written once, in the venv)."""
    dest = root.parent / f"{root.name}-vllm-int8" / "Step-Audio-EditX"
    if not (dest / "config.json").exists():
        subprocess.run([str(venv / "bin" / "python"), "-m", "stepedit_vllm.quantize",
                        str(root / "Step-Audio-EditX"), str(dest)], check=True)
    return dest


def start_vllm(venv: Path, model_dir: Path, port: int, log: Path, threads: int) -> subprocess.Popen:
    cmd = [str(venv / "bin" / "python"), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
           "--served-model-name", "step-audio-editx", "--skip-tokenizer-init", "--dtype", "float32",
           "--max-model-len", "4096", "--kv-cache-memory-bytes", str(KV_CACHE_BYTES), "--enable-prefix-caching",
           "--port", str(port)]
    env = {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": str(threads)}
    return start(cmd, env, f"http://127.0.0.1:{port}/v1/models", log)


def start_serve(args, config: str, root: Path, port: int, library: Path, log: Path,
                llm_server: str | None) -> subprocess.Popen:
    threads = args.serve_threads if llm_server else args.native_threads
    cmd = [sys.executable, __file__, "--serve-child", "--model-path", str(root), "--port", str(port),
           "--library", str(library), "--new-tokens", str(args.new_tokens), "--threads", str(threads)]
    cmd += ["--quantization", "int8"] if config.endswith("int8") or config.endswith("int8flow") \
        else ["--dtype", "float32"]
    cmd += ["--llm-server", llm_server] if llm_server else []
    env = {"OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    return start(cmd, env, f"http://127.0.0.1:{port}/v1/health", log)


# ---- the clients ----------------------------------------------------------------------------------------------
def save_voice(client: httpx.Client, name: str, seed: int, seconds: float = VOICE_SECONDS) -> None:
    buf = io.BytesIO()
    sf.write(buf, speechlike(seconds, seed), 16000, format="WAV")
    r = client.post("/v1/voices", data={"name": name, "text": "this is a short sample of my voice",
                                        "overwrite": "true"}, files={"file": ("v.wav", buf.getvalue(), "audio/wav")})
    r.raise_for_status()


def take(client: httpx.Client, voice: str, text: str, seed: int) -> dict:
    """One whole take; its latency (s), audio tokens and the header's stage timings."""
    t0 = time.perf_counter()
    r = client.post("/v1/audio/speech", json={"model": "step-audio-editx", "input": text, "voice": voice,
                                              "seed": seed, "response_format": "flac"})
    latency = time.perf_counter() - t0
    if r.status_code != 200:
        raise SystemExit(f"take failed ({r.status_code}): {r.text[:300]}")
    info = json.loads(r.headers["X-StepEdit-Take"])
    groups = round(info["seconds"] / SECONDS_PER_GROUP)
    return {"latency_s": latency, "tokens": groups * GROUP_SIZE, "timings": info.get("timings", {})}


def summary(done: list[dict], wall: float) -> dict:
    lat = sorted(d["latency_s"] for d in done)
    p95 = statistics.quantiles(lat, n=20, method="inclusive")[18] if len(lat) > 1 else lat[0]
    tokens = sum(d["tokens"] for d in done)
    stages = {}
    for d in done:
        for k, v in d["timings"].items():
            stages[k] = stages.get(k, 0.0) + v
    return {"aggregate_tok_s": round(tokens / wall, 3), "takes_per_s": round(len(done) / wall, 4),
            "p50_s": round(statistics.median(lat), 2), "p95_s": round(p95, 2), "tokens": tokens,
            "wall_s": round(wall, 2), "stage_s_sum": {k: round(v, 2) for k, v in stages.items()}}


def run_concurrency(client: httpx.Client, levels: list[int]) -> dict:
    take(client, "v0", "Warm up the voice and the caches.", 999)
    results = {}
    for n in levels:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            done = list(pool.map(lambda i: take(client, "v0", TEXTS[i], 100 * n + i), range(n)))
        results[str(n)] = summary(done, time.perf_counter() - t0)
        print(config_label, n, json.dumps(results[str(n)]), flush=True)
    return results


def run_prefix(client: httpx.Client, voice_seconds: float) -> dict:
    cold, warm = [], []
    for v in range(PREFIX_VOICES):
        save_voice(client, f"p{v}", 50 + v, voice_seconds)
        for line in range(PREFIX_LINES):
            got = take(client, f"p{v}", TEXTS[(v + line) % len(TEXTS)], line)
            (cold if line == 0 else warm).append(got["timings"]["llm_prefill"])
    c, w = statistics.median(cold), statistics.median(warm)
    return {"voice_seconds": voice_seconds, "cold_prefill_s": [round(x, 3) for x in cold], "warm_prefill_s": [round(x, 3) for x in warm],
            "cold_median_s": round(c, 3), "warm_median_s": round(w, 3), "ratio": round(w / c, 3)}


config_label = ""


def run_config(args, config: str, root: Path, out_dir: Path, label: str) -> dict:
    global config_label
    config_label = label
    vllm = serve = None
    vllm_rss = None
    try:
        llm_server = None
        if config.startswith("vllm"):
            model_dir = vllm_int8_folder(args.venv, root) if args.vllm_quant == "int8" else root / "Step-Audio-EditX"
            vllm = start_vllm(args.venv, model_dir, args.port + 1, out_dir / f"{label}.server.log", args.vllm_threads)
            vllm_rss = TreeRSS(vllm.pid)
            llm_server = f"http://127.0.0.1:{args.port + 1}"
        library = out_dir / f"voices-{label}"
        t0 = time.perf_counter()
        serve = start_serve(args, config, root, args.port, library, out_dir / f"{label}.serve.log", llm_server)
        serve_rss = TreeRSS(serve.pid)
        report = {"serve_start_s": round(time.perf_counter() - t0, 1), "load_before": os.getloadavg()}
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=REQUEST_TIMEOUT_S) as client:
            if "concurrency" in args.phases:
                save_voice(client, "v0", 1)
                report["concurrency"] = run_concurrency(client, args.concurrency)
            if "prefix" in args.phases:
                report["prefix_cache"] = run_prefix(client, args.prefix_voice_seconds)
        report["load_after"] = os.getloadavg()
        report["serve_peak_rss_gb"] = serve_rss.stop()
        if vllm_rss is not None:
            report["vllm_peak_rss_gb"] = vllm_rss.stop()
        return report
    finally:
        for proc in (serve, vllm):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", type=Path, help="the vLLM venv (vllm_plugin/make_venv.sh)")
    ap.add_argument("--source", type=Path, default=Path("/work/cache/stepedit-realsize"))
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=50)
    ap.add_argument("--native-threads", type=int, default=2)
    ap.add_argument("--concurrency", type=int, nargs="+", choices=CONCURRENCY, default=list(CONCURRENCY))
    ap.add_argument("--vllm-threads", type=int, default=1)
    ap.add_argument("--serve-threads", type=int, default=1, help="threads of serve --llm-server")
    ap.add_argument("--vllm-quant", choices=("none", "int8"), default="none",
                    help="int8: vLLM serves a compressed-tensors W8A8 copy (CPU: oneDNN int8)")
    ap.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    ap.add_argument("--phases", nargs="+", choices=("concurrency", "prefix"), default=["concurrency", "prefix"])
    ap.add_argument("--prefix-voice-seconds", type=float, default=VOICE_SECONDS,
                    help="length of the repeated voices (3 s: ~125 voice tokens; 10 s: ~417)")
    ap.add_argument("--port", type=int, default=8397)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS_vllm.json")
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/stepedit-bench-vllm"))
    ap.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model-path"), ap.add_argument("--library"), ap.add_argument("--threads", type=int)
    ap.add_argument("--dtype"), ap.add_argument("--quantization"), ap.add_argument("--llm-server")
    args = ap.parse_args()
    if args.serve_child:
        return serve_child(args)
    if "vllm" in args.configs and args.venv is None:
        ap.error("--venv is required for the vllm configuration")
    root = cut_checkpoint(args.source, args.layers)
    out_dir = args.work_dir                          # server logs and voice libraries, outside the repository
    out_dir.mkdir(parents=True, exist_ok=True)
    report = json.loads(args.out.read_text()) if args.out.exists() else {}
    if report.get("layers") != args.layers or report.get("new_tokens") != args.new_tokens:
        report = {}
    report.update(layers=args.layers, new_tokens=args.new_tokens, native_threads=args.native_threads,
                  vllm_threads=args.vllm_threads, serve_threads=args.serve_threads, voice_seconds=VOICE_SECONDS)
    for config in args.configs:
        label = f"{config}-w8a8" if config.startswith("vllm") and args.vllm_quant == "int8" else config
        report[label] = run_config(args, config, root, out_dir, label)
        args.out.write_text(json.dumps(report, indent=2))
    for native in ("native-fp32", "native-int8"):
        for vllm in [k for k, v in report.items() if k.startswith("vllm") and isinstance(v, dict)]:
            if "concurrency" in report.get(native, {}) and "concurrency" in report.get(vllm, {}):
                report[f"speedup_8_{vllm}_vs_{native}"] = round(
                    report[vllm]["concurrency"]["8"]["aggregate_tok_s"] /
                    report[native]["concurrency"]["8"]["aggregate_tok_s"], 2)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
