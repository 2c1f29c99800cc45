"""Batched candidates and the prefix KV cache at REAL size on the CPU (int8, 2 threads), ratios within one run.

Checkpoint: the synthetic full-size folder of bench/make_realsize_checkpoint.py (random weights; constrained
decoding so that random weights still give a 2+3 audio-token stream). One process, one engine
(``load_engine("stepaudio", quantization="int8")``), in this order:

1. LLM, a 10 s edit's prompt (the real edit prompt of a 10 s clip, ~860 tokens), cold prefill each time:
   1, 3 and 4 candidates (generate_batch), ``--new-tokens`` each (default 160; the machine is shared).
   Wall ratios 4 vs 1 (target <= 1.5) and 3 vs 1 (best-of-3 tries, target <= 1.4), measured and for a 10 s
   output (417 tokens: prefill + 417 x the measured step); decode step at batch 4 / 3 vs batch 1 (target
   <= 1.5); agreement of the batched rows' ids with the same seeds alone / in another batch.
2. A 12-line script from 2 voices (clone prompts of two 5 s clips, lines alternating): prefill per line cold
   vs with the prefix cache (target: every line after each voice's first <= 0.3x cold), and whether the
   warm logits are bit-identical to the cold ones.
3. The whole engine (tokenizers, LLM, flow, HiFT) on the 10 s edit with ``--engine-tokens`` new tokens:
   ``edit`` (1 take) vs ``edit_batch`` (3 and 4 seeds): wall ratios and peak RSS (VmHWM, target <= 8 GB).

Part 1 runs twice in the same process: with the fp32 lm_head as loaded, then with the lm_head quantized to int8
(``EngineOptions.int8_lm_head``, model.loading.quantize_lm_head); parts 2-3 run with the int8 head. The two
heads are compared on the same hidden states along the fp32 run's ids (teacher-forced): relative L2 drift of
the logits, argmax agreement, overlap of the top-50 sets; and the ids drawn with the same seed by each.

Run (needs ~7-8 GB):  flock /work/coord/bigmem.lock python bench/bench_batch.py      (writes bench/RESULTS_batch.md)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_realsize import CACHE, SR, TOKENS_10S, speechlike, vm  # noqa: E402
from stepedit_core.interface import AudioClip, EditRequest  # noqa: E402
from stepedit_core.loader import load_engine  # noqa: E402
from stepedit_core.model import prompts  # noqa: E402
from stepedit_core.model.generate import SamplingOptions, generate_batch  # noqa: E402
from stepedit_core.model.loading import quantize_lm_head  # noqa: E402
from stepedit_core.model.prefix_cache import PrefixCache, prefill  # noqa: E402

COMMAND = "flock /work/coord/bench.lock flock /work/coord/bigmem.lock python bench/bench_batch.py"
SEEDS = [101, 102, 103, 104]
TEXTS = ["the first voice reads a line", "and the second voice answers it", "a short reply follows here",
         "then a longer sentence with a few more words in it", "yes", "no, not at all, said the other one"]


def llm_batches(engine, ids: list[int], new_tokens: int) -> dict:
    """1, 3 and 4 rows from a cold prefill each; wall, prefill, decode per step, ids."""
    opts = SamplingOptions(constrained=True, max_new_tokens=new_tokens)
    out = {}
    for rows in (1, 4, 3):
        t = time.perf_counter()
        gens = generate_batch(engine.llm, ids, SEEDS[:rows], opts)
        wall = time.perf_counter() - t
        steps = max(g.decode_steps for g in gens)
        out[rows] = {"wall_s": wall, "prefill_s": gens[0].prefill_s, "decode_s": gens[0].decode_s,
                     "step_s": gens[0].decode_s / max(steps, 1), "ids": [list(g.ids) for g in gens],
                     "generated": [len(g.ids) for g in gens]}
        print(f"batch {rows}: wall {wall:.1f} s, prefill {gens[0].prefill_s:.1f} s, step "
              f"{out[rows]['step_s'] * 1000:.0f} ms", file=sys.stderr, flush=True)
    return out


@torch.inference_mode()
def head_agreement(llm, int8_head, ids: list[int], forced: list[int], top_k: int = 50) -> dict:
    """The fp32 head (``llm.lm_head``) vs ``int8_head`` on the same final hidden states, teacher-forced along
    ``forced`` after the prompt ``ids``: relative L2 drift, argmax agreement, mean top-k set overlap."""
    cache = llm.new_cache(len(ids) + len(forced) + 1)
    x, _ = llm.model(torch.tensor([ids]), cache, start=0)
    cache.advance(len(ids))
    states = [x[:, -1]]
    for t in forced[:-1]:
        x, _ = llm.model(torch.tensor([[t]]), cache, start=cache.length)
        cache.advance(1)
        states.append(x[:, -1])
    h = torch.cat(states)                                       # (N, C)
    ref, got = llm.lm_head(h).float(), int8_head(h).float()     # (N, V)
    top_ref, top_got = ref.topk(top_k).indices, got.topk(top_k).indices
    overlap = [len(set(a.tolist()) & set(b.tolist())) / top_k for a, b in zip(top_ref, top_got)]
    return {"steps": len(states), "rel_l2": float((got - ref).norm() / ref.norm()),
            "argmax_agree": int((ref.argmax(-1) == got.argmax(-1)).sum()),
            "top50_overlap": sum(overlap) / len(overlap)}


def agreement(a: list[int], b: list[int]) -> dict:
    """Leading ids equal, and equal positions over the shorter length."""
    lead = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    same = sum(x == y for x, y in zip(a, b))
    return {"leading_equal": lead, "equal": same, "of": min(len(a), len(b))}


def script_prefill(engine, lines: int) -> dict:
    """Prefill seconds per line, cold and with a prefix cache; warm logits == cold logits?"""
    llm, enc = engine.llm, engine.text_tokenizer.encode
    voices = []
    for v in range(2):
        wav = speechlike(5.0, 10 + v)
        prompt = engine.encode_prompt(wav, SR)
        voices.append((prompts.clone_speaker_name(f"voice {v}", wav.reshape(1, -1)), prompt))
    cache, rows = PrefixCache(), []
    for i in range(lines):
        speaker, prompt = voices[i % 2]
        ids = prompts.build_clone_prompt(enc, speaker, f"voice {i % 2} prompt text", prompt.token_str,
                                         TEXTS[i % len(TEXTS)] + f" {i}")
        row = {"voice": i % 2, "prompt_len": len(ids)}
        bounds = engine._clone_head(speaker, f"voice {i % 2} prompt text", prompt)
        with torch.inference_mode():
            t = time.perf_counter()
            cold = prefill(llm, ids, llm.new_cache(len(ids)), None, bounds)
            row["cold_s"] = time.perf_counter() - t
            before = cache.reused_tokens
            t = time.perf_counter()
            warm = prefill(llm, ids, llm.new_cache(len(ids)), cache, bounds)
            row["warm_s"] = time.perf_counter() - t
        row["reused"] = cache.reused_tokens - before
        row["identical"] = bool(torch.equal(cold, warm))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return {"lines": rows, "cache_mib": cache.bytes / 2 ** 20}


def whole_engine(engine, clip: AudioClip, tokens: int) -> dict:
    eng = engine.with_options(constrained=True, max_new_tokens=tokens, prompt_cache_size=0, prefix_cache_bytes=0)
    request = EditRequest(clip, "hello world, this is a ten second clip", "emotion", "happy")
    t = time.perf_counter()
    one = eng.edit(replace(request, seed=SEEDS[0]))[0]
    one_s = time.perf_counter() - t
    t = time.perf_counter()
    three = eng.edit_batch(request, SEEDS[:3])
    three_s = time.perf_counter() - t
    t = time.perf_counter()
    four = eng.edit_batch(request, SEEDS)
    four_s = time.perf_counter() - t
    return {"one_s": one_s, "three_s": three_s, "four_s": four_s, "new_tokens": tokens,
            "row0_equal_alone_3": three[0][0].tokens == one.tokens,
            "row0_equal_alone": four[0][0].tokens == one.tokens, "peak_rss_gib": vm("VmHWM")}


def llm_table(b: dict) -> list[str]:
    lines = ["| rows | wall (s) | prefill (s) | decode (s) | step (ms) | wall / 1 row | step / batch 1 | "
             f"10 s output: prefill + {TOKENS_10S} steps (s) | ditto / 1 row |",
             "|---|---|---|---|---|---|---|---|---|"]

    def ten_s(x):
        return x["prefill_s"] + TOKENS_10S * x["step_s"]
    for rows in (1, 3, 4):
        x = b[rows]
        lines.append(f"| {rows} | {x['wall_s']:.1f} | {x['prefill_s']:.1f} | {x['decode_s']:.1f} | "
                     f"{x['step_s'] * 1000:.0f} | {x['wall_s'] / b[1]['wall_s']:.2f}x | "
                     f"{x['step_s'] / b[1]['step_s']:.2f}x | {ten_s(x):.0f} | {ten_s(x) / ten_s(b[1]):.2f}x |")
    return lines


def report(r: dict) -> str:
    b = r["llm"]
    s = r["script"]["lines"]
    firsts = {0, 1}
    later = [x["warm_s"] / x["cold_s"] for i, x in enumerate(s) if i not in firsts]
    w = r["engine"]
    lines = [
        "# Batched candidates and the prefix KV cache (real size, int8, CPU)", "",
        f"`{COMMAND}`", "",
        f"Synthetic real-size checkpoint, torch {torch.__version__}, {r['threads']} threads, load average "
        f"{r['load_start'][0]:.2f} at start / {r['load_end'][0]:.2f} at end (machine shared; ratios within one run).",
        "", f"## LLM: a 10 s edit's prompt ({r['prompt_len']} tokens), {r['new_tokens']} new tokens per row, "
        "cold prefill, fp32 lm_head (as loaded)", ""]
    lines += llm_table(r["llm_fp32_head"])
    lines += ["", "With the lm_head in int8 (`EngineOptions.int8_lm_head`; parts below too):", ""]
    lines += llm_table(b)
    h, ids = r["head"], r["head_ids"]
    fp1, q1 = r["llm_fp32_head"][1]["step_s"], b[1]["step_s"]
    lines += ["", f"Step at batch 4 with the int8 head / step at batch 1 with the fp32 head: "
              f"{b[4]['step_s'] / fp1:.2f}x; batch 1 int8 head / fp32 head: {q1 / fp1:.2f}x.", "",
              f"int8 vs fp32 lm_head on the same hidden states ({h['steps']} teacher-forced steps of the fp32 "
              f"run, seed 101): relative L2 drift {h['rel_l2']:.4f}, argmax equal {h['argmax_agree']}/{h['steps']}, "
              f"top-50 sets overlap {h['top50_overlap']:.3f}; ids drawn with seed 101 (batch 1): first "
              f"{ids['leading_equal']} equal, {ids['equal']}/{ids['of']} positions equal."]
    lines += ["", "Agreement of ids at int8 (batching changes the activation scales of the dynamic quantization):", ""]
    for name, v in r["agreement"].items():
        lines.append(f"- {name}: first {v['leading_equal']} ids equal, {v['equal']}/{v['of']} positions equal")
    lines += ["", f"## Script: {len(s)} lines from 2 voices (clone prompts of 5 s clips)", "",
              "| line | voice | prompt tokens | cold prefill (s) | with prefix cache (s) | ratio | reused | "
              "logits identical |", "|---|---|---|---|---|---|---|---|"]
    for i, x in enumerate(s):
        lines.append(f"| {i + 1} | {x['voice']} | {x['prompt_len']} | {x['cold_s']:.2f} | {x['warm_s']:.2f} | "
                     f"{x['warm_s'] / x['cold_s']:.2f}x | {x['reused']} | {x['identical']} |")
    lines += ["", f"Lines after each voice's first: prefill {min(later):.2f}x-{max(later):.2f}x of cold "
              f"(mean {sum(later) / len(later):.2f}x); cache {r['script']['cache_mib']:.0f} MiB.", "",
              f"## Whole engine: the 10 s edit, {w['new_tokens']} new tokens per take", "",
              f"- 1 take: {w['one_s']:.1f} s; 3 tries (edit_batch): {w['three_s']:.1f} s = "
              f"{w['three_s'] / w['one_s']:.2f}x; 4 candidates: {w['four_s']:.1f} s = "
              f"{w['four_s'] / w['one_s']:.2f}x (flow + HiFT run per candidate)",
              f"- batch row 0 ids equal to the take made alone: {w['row0_equal_alone_3']} (3), "
              f"{w['row0_equal_alone']} (4)",
              f"- peak RSS of the process (VmHWM, everything above included): {w['peak_rss_gib']:.2f} GiB", ""]
    return "\n".join(lines)


def quantize_lm_head_copy(llm):
    """An int8 twin of ``llm.lm_head`` (model.loading.quantize_lm_head on a holder sharing the fp32 weight)."""
    class Holder(torch.nn.Module):
        def __init__(self, head):
            super().__init__()
            self.lm_head = head
    holder = Holder(torch.nn.Linear(llm.lm_head.in_features, llm.lm_head.out_features, bias=False,
                                    device="meta"))
    holder.lm_head.weight = llm.lm_head.weight
    quantize_lm_head(holder)
    return holder.lm_head


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=CACHE)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=160)
    ap.add_argument("--engine-tokens", type=int, default=40)
    ap.add_argument("--quantization", default="int8")
    ap.add_argument("--lines", type=int, default=12, help="script lines (2 voices, alternating)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS_batch.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    res = {"threads": args.threads, "load_start": os.getloadavg(), "new_tokens": args.new_tokens}
    engine = load_engine("stepaudio", model_path=args.root, device="cpu", quantization=args.quantization or None)
    clip = AudioClip.from_array(speechlike(10.0, 2), SR)
    prompt = engine.encode_prompt(clip.samples, SR)
    prefix = prompts.edit_instruction("emotion", "happy", "hello world, this is a ten second clip")
    ids = prompts.build_edit_prompt(engine.text_tokenizer.encode, prefix, prompt.token_str)
    res["prompt_len"] = len(ids)
    with torch.inference_mode():
        fp = llm_batches(engine, ids, args.new_tokens)
    int8_head = quantize_lm_head_copy(engine.llm)
    res["head"] = head_agreement(engine.llm, int8_head, ids, fp[1]["ids"][0])
    engine.llm.lm_head = int8_head                  # the fp32 head is freed: parts below run with the int8 one
    with torch.inference_mode():
        b = llm_batches(engine, ids, args.new_tokens)
    res["head_ids"] = agreement(b[1]["ids"][0], fp[1]["ids"][0])
    res["llm_fp32_head"] = {k: {kk: vv for kk, vv in v.items() if kk != "ids"} for k, v in fp.items()}
    res["agreement"] = {
        "batch of 4, row 1 (seed 101) vs alone": agreement(b[4]["ids"][0], b[1]["ids"][0]),
        "batch of 3, row 1 (seed 101) vs alone": agreement(b[3]["ids"][0], b[1]["ids"][0]),
        "batch of 3 vs batch of 4, rows 2-3 (seeds 102-103)": agreement(b[3]["ids"][1] + b[3]["ids"][2],
                                                                         b[4]["ids"][1] + b[4]["ids"][2])}
    res["llm"] = {k: {kk: vv for kk, vv in v.items() if kk != "ids"} for k, v in b.items()}
    res["script"] = script_prefill(engine, args.lines)
    res["engine"] = whole_engine(engine, clip, args.engine_tokens)
    res["load_end"] = os.getloadavg()
    (args.out.with_suffix(".json")).write_text(json.dumps(res, indent=1))
    text = report(res)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
