"""The take check and region edits, measured on speech of known text (issue #15).

Clips: examples/prompt_en.wav and prompt_zh.wav, plus lite-engine clones of known sentences in both voices.

1. false alarms: unedited clips whose text check is not green (the ASR mis-hears correct speech);
2. detection: each clip with one word's audio span cut out (word times from the ASR of the clean clip) must
   not be green;
3. region edits (emotion, style, speed, paralinguistic on the lite engine): samples outside the window
   (minus the cross-fade) that differ from the take (must be 0);
4. the check's cost: seconds of checking per second of audio (RTF), ASR and speaker embedding included.

    python bench/check_bench.py [--words-per-clip 4] [--out bench/RESULTS_check.md] [--fetch-ge2e]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stepedit_core import catalog, checks, regions  # noqa: E402
from stepedit_core.interface import AudioClip, CloneRequest, EditRequest  # noqa: E402
from stepedit_core.lite import LiteEngine  # noqa: E402
from stepedit_core.listen import models  # noqa: E402
from stepedit_core.listen.speaker_embedding import GE2E_FILENAME  # noqa: E402

THREADS = 2             # WhisperASR's default cpu_threads on this 2-core machine
EN = ["The weather was cold, so we stayed inside and read books all afternoon.",
      "Please send me the report before the meeting starts on Monday morning.",
      "My brother bought a small red bicycle for his daughter's birthday.",
      "The museum opens at nine and closes early on public holidays."]
ZH = ["今天天气很冷，我们整个下午都待在家里看书。",
      "请在星期一早上开会之前把报告发给我。",
      "我哥哥给他女儿买了一辆红色的小自行车。",
      "博物馆九点开门，节假日会提前关门。"]
# more unedited clips for the false-alarm rate only (seeds 100+)
EN_MORE = ["I think we should leave a little earlier tomorrow to avoid the traffic.",
           "She opened the window and a cool breeze filled the room.",
           "Can you tell me where the nearest train station is?",
           "It was a long day, but the results were worth it.",
           "He forgot his umbrella at the office again.",
           "We will meet at the cafe on the corner at a quarter past three.",
           "The children laughed as the dog chased its tail.",
           "If it rains, the picnic will be moved indoors."]
ZH_MORE = ["我觉得我们明天应该早一点出发，避开堵车。", "她打开窗户，一阵凉风吹进了房间。",
           "你能告诉我最近的火车站在哪里吗？", "今天很累，但是结果很值得。",
           "他又把雨伞忘在办公室了。", "孩子们看着小狗追自己的尾巴，笑个不停。",
           "如果下雨，野餐就改到室内。", "我们三点一刻在街角的咖啡店见面。"]
SPEECH_DB = 30          # a 10 ms frame within 30 dB of the clip's 90th-percentile level counts as speech


def speech_fraction(x: np.ndarray, sr: int, start: float, end: float) -> float:
    """Fraction of the 10 ms frames of [start, end) that hold speech (not pause): whisper's word spans often
    include a neighbouring pause or miss part of the word, so a cut "word" may remove little of it."""
    hop = sr // 100
    n = len(x) // hop
    db = 10 * np.log10(np.mean(x[:n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12)
    seg = db[int(start * 100):max(int(start * 100) + 1, int(end * 100))]
    return float(np.mean(seg > np.percentile(db, 90) - SPEECH_DB)) if seg.size else 0.0


def restored_word(word: str, heard: str, metric: str) -> bool:
    """The cut word (its sound tokens) is still in what the ASR heard."""
    toks, said = checks.sound_tokens(word, metric), checks.sound_tokens(heard, metric)
    return bool(toks) and any(said[i:i + len(toks)] == toks for i in range(len(said)))


def reasons(c: checks.TakeCheck) -> str:
    """Which rules made the text level not green (error by sound, deleted, misheard, too short, no audio under)."""
    out = [f"error {c.judged_error_rate:.2f}"] if c.judged_error_rate > checks.ERROR_GREEN else []
    out += ["deleted"] * bool(c.deleted) + ["misheard"] * bool(c.substituted) + ["too short"] * bool(c.rushed)
    return ", ".join(out + ["no audio under"] * bool(c.unsupported)) or "-"


def fetch_ge2e() -> None:
    """Resemblyzer's GE2E weights into the lite cache (pip download of the wheel; Apache-2.0)."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "resemblyzer==0.1.4",
                        "-d", d], check=True)
        with zipfile.ZipFile(next(Path(d).glob("*.whl"))) as z:
            (models.cache_dir() / GE2E_FILENAME).write_bytes(z.read("resemblyzer/pretrained.pt"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--words-per-clip", type=int, default=4,
                    help="words deleted one at a time per clip (random, seed 0); 0 = every word")
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS_check.md"))
    ap.add_argument("--fetch-ge2e", action="store_true", help="use the GE2E speaker embedder (pip download)")
    args = ap.parse_args()
    if args.fetch_ge2e:
        fetch_ge2e()
    engine = LiteEngine()
    checker = checks.checker_for(engine)
    lines: list[str] = []
    emit = lines.append

    clips = []      # (name, clip, text, source voice)
    for lang, texts in (("en", EN), ("zh", ZH)):
        prompt = AudioClip.from_file(ROOT / "examples" / f"prompt_{lang}.wav")
        ptext = (ROOT / "examples" / f"prompt_{lang}.txt").read_text(encoding="utf-8").strip()
        clips.append((f"prompt_{lang}", prompt, ptext, prompt))
        for i, text in enumerate(texts):
            r = engine.clone(CloneRequest(prompt, ptext, text, seed=i))
            clips.append((f"clone_{lang}{i + 1}", r.audio, text, prompt))
    more = []
    for lang, texts in (("en", EN_MORE), ("zh", ZH_MORE)):
        prompt = AudioClip.from_file(ROOT / "examples" / f"prompt_{lang}.wav")
        ptext = (ROOT / "examples" / f"prompt_{lang}.txt").read_text(encoding="utf-8").strip()
        for i, text in enumerate(texts):
            r = engine.clone(CloneRequest(prompt, ptext, text, seed=100 + i))
            more.append((f"more_{lang}{i + 1}", r.audio, text, prompt))
    load_start = os.getloadavg()[0]
    checker.check(clips[0][1], clips[0][2])       # load whisper before timing

    emit("## Unedited speech: false alarms and cost\n")
    emit("All clips are lite-engine output (the two example prompts and lite TTS clones), not real recordings. "
         "*by sound*: the error rate the text level judges (textnorm.sound_error_rate); *why*: the rules that made "
         "the text not green.\n")
    emit("| clip | s | metric | error | by sound | missing | misheard | too short | no audio under | decodes | "
         "text level | why | speaker sim | verdict | heard | check s (wall) | RTF (wall) | CPU s / audio s |")
    emit("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    false_alarms, rtfs, cpu_rtfs, clean, wall, cpu_total, audio_total = {}, [], [], {}, 0.0, 0.0, 0.0
    for name, clip, text, source in clips + more:
        t0, c0 = time.perf_counter(), time.process_time()
        c = checker.check(clip, text, source=source if not name.startswith("prompt") else None,
                          expected_seconds=checks.expected_clone_seconds(text) if not name.startswith("prompt")
                          else None)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        clean[name] = c
        wall, cpu_total, audio_total = wall + dt, cpu_total + cpu, audio_total + clip.duration
        rtfs.append(dt / clip.duration)
        cpu_rtfs.append(cpu / clip.duration)
        false_alarms[name] = c.levels["error_rate"] != checks.GREEN
        sim = f"{c.speaker_similarity:.3f}" if c.speaker_similarity is not None else "-"
        emit(f"| {name} | {clip.duration:.1f} | {c.metric} | {c.error_rate:.3f} | {c.judged_error_rate:.3f} | "
             f"{c.deleted} | {c.substituted} | {' '.join(c.rushed) or '-'} | {' '.join(c.unsupported) or '-'} | "
             f"{c.decodes} | {c.levels['error_rate']} | {reasons(c)} | {sim} | {c.verdict} | {c.heard} | {dt:.2f} | "
             f"{dt / clip.duration:.3f} | {cpu_rtfs[-1]:.3f} |")
    first = [false_alarms[name] for name, *_ in clips]
    emit(f"\nFalse alarms (text not green on correct speech): **{sum(first)}/{len(first)}** on the 10 clips of the "
         f"detection test, **{sum(false_alarms.values())}/{len(false_alarms)}** with the {len(more)} extra clips.\n")
    emit(f"Check cost over {audio_total:.1f} s of audio ({len(false_alarms)} clips; ASR + speaker embedding; "
         f"{os.cpu_count()} cores, ASR on {THREADS} threads; 1-min load average {load_start:.1f} at the start, "
         f"{os.getloadavg()[0]:.1f} at the end): wall-clock RTF total **{wall / audio_total:.3f}** (median per clip "
         f"{statistics.median(rtfs):.3f}, max {max(rtfs):.3f}); process CPU seconds per audio second total "
         f"**{cpu_total / audio_total:.3f}** (median {statistics.median(cpu_rtfs):.3f}, max {max(cpu_rtfs):.3f}; "
         f"÷ {THREADS} threads = {cpu_total / audio_total / THREADS:.3f}). On an idle machine the wall-clock RTF "
         f"approaches CPU s / audio s ÷ {THREADS}. Speaker embedder: {checker.speaker_model}.\n")

    emit("## One word's audio deleted: detection\n")
    emit("Each cut removes one word's span as whisper timed it on the clean clip; *speech in span* is the share of "
         "its 10 ms frames within 30 dB of the clip's loud frames (a low share: the span was mostly pause). "
         "*sample* marks the 4 random words per clip (seed 0) of the earlier runs.\n")
    emit("*restored*: the ASR still writes the cut word (its language model put it back); *no audio under*: "
         "expected words heard but without speech under their span or too short for their syllables at the "
         "take's pace (stepedit_core/check_evidence.py).\n")
    emit("| clip | word deleted | speech in span | error | missing | misheard | too short | no audio under | "
         "restored | decodes | text level | flagged | sample |")
    emit("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    hits = total = s_hits = s_total = r_hits = r_total = e_only = 0
    for name, clip, text, _ in clips:
        words = [w for w in clean[name].words if w.end - w.start > 0.05]
        picks = set(rng.choice(len(words), size=min(4, len(words)), replace=False).tolist())
        chosen = range(len(words)) if args.words_per_clip <= 0 else sorted(
            picks if args.words_per_clip == 4 else np.random.default_rng(0).choice(
                len(words), size=min(args.words_per_clip, len(words)), replace=False).tolist())
        sr = clip.sample_rate
        for k in chosen:
            w = words[k]
            x = np.concatenate([clip.samples[:int(w.start * sr)], clip.samples[int(w.end * sr):]])
            c = checker.check(AudioClip(x, sr), text)
            flagged = c.levels["error_rate"] != checks.GREEN
            hits, total = hits + flagged, total + 1
            restored = restored_word(w.text, c.heard, c.metric)
            r_hits, r_total = r_hits + (flagged and restored), r_total + restored
            e_only += bool(c.unsupported) and not (c.deleted or c.substituted or c.rushed
                                                    or c.error_rate > checks.ERROR_GREEN)
            if k in picks:
                s_hits, s_total = s_hits + flagged, s_total + 1
            emit(f"| {name} | {w.text} | {speech_fraction(clip.samples, sr, w.start, w.end):.0%} | "
                 f"{c.error_rate:.3f} | {c.deleted} | {c.substituted} | {' '.join(c.rushed) or '-'} | "
                 f"{' '.join(c.unsupported) or '-'} | {'yes' if restored else ''} | {c.decodes} | "
                 f"{c.levels['error_rate']} | {'yes' if flagged else '**no**'} | {'x' if k in picks else ''} |")
    emit(f"\nDetection: **{hits}/{total}** deletions flagged ({hits / max(1, total):.0%}); of the 4 random words "
         f"per clip: **{s_hits}/{s_total}**; of the cuts whose word the ASR wrote back: **{r_hits}/{r_total}**; "
         f"flagged by the acoustic word evidence alone: {e_only}.\n")

    emit("## Region edits (lite engine): samples outside the window\n")
    emit("| clip | edit | selection | window s | samples changed outside | length change s | check of result |")
    emit("|---|---|---|---|---|---|---|")
    changed_total = 0
    for name, clip, text, _ in clips[:1] + clips[5:6]:
        words = clean[name].words
        mid = len(words) // 2
        sel = regions.Selection(first_word=mid - 1, last_word=mid)
        window_words = [w.text for w in words[mid - 1:mid + 1]]
        tagged = None
        for edit_type, info in ((catalog.EMOTION, "happy"), (catalog.STYLE, "whisper"), (catalog.SPEED, "slower"),
                                (catalog.PARALINGUISTIC, None)):
            new_text = None
            if edit_type == catalog.PARALINGUISTIC:
                sep = "" if name.endswith("zh") or "_zh" in name else " "
                tagged = sep.join(window_words) + sep + "[Laughter]"
                new_text = tagged
            r = regions.region_edit(engine, EditRequest(clip, text, edit_type, info, new_text=new_text, seed=3),
                                    words, sel)[0]
            a, b = r.metadata["region"]["window_samples"]
            fade = int(regions.FADE_S * clip.sample_rate)
            x, y = clip.samples, r.audio.samples
            head, tail = max(0, a - fade), max(0, len(x) - (b + fade))
            changed = int(np.sum(x[:head] != y[:head]) + np.sum(x[len(x) - tail:] != y[len(y) - tail:]))
            changed_total += changed
            c = checker.check(r.audio, r.text, source=clip)
            emit(f"| {name} | {edit_type} {info or new_text} | words {mid - 1}-{mid} | "
                 f"{r.metadata['region']['window_s'][0]:.2f}-{r.metadata['region']['window_s'][1]:.2f} | {changed} | "
                 f"{(len(y) - len(x)) / clip.sample_rate:+.2f} | {c.verdict}: {c.metric} {c.error_rate:.2f} |")
    emit(f"\nSamples changed outside the windows: **{changed_total}**.\n")

    emit("Command: `python bench/check_bench.py` on the shared 2-core CPU (other jobs running); "
         "ASR = shipped whisper base int8 (greedy, word timestamps).")
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
