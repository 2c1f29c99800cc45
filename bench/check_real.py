"""The take check on real recordings (issue #30): false alarms, single-word cuts, spliced words, cost.

The set is ``bench/calibration_set.py`` (recordings read from pinned registry packages, see its provenance
file). For every utterance with a transcript: the intact clip is checked against its transcript (a false alarm
when the text level is not green), then every single-word cut at word boundaries, every mid-word cut and two
spliced substitutions (``calibration_set.manipulations``) must not be green. Cuts whose word the ASR still
writes are reported apart ("restored"). Cost: wall-clock and process CPU seconds per audio second of the
intact checks (ASR + speaker embedding; each intact clip is also compared with another utterance of its
speaker, as a clone is with its prompt).

    python bench/check_real.py [--out bench/RESULTS_check_real.md] [--only ID ...]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import calibration_set as cs  # noqa: E402
from check_bench import THREADS, reasons, restored_word  # noqa: E402
from stepedit_core import checks  # noqa: E402
from stepedit_core.listen import speaker_embedding  # noqa: E402

KINDS = ("cut", "midcut", "swap")


def cached(transcribe, store: dict, tag: str):
    """``transcribe`` remembering its answers in ``store`` (key: the clip's samples, rate, language, window),
    so the rules can be replayed on the same decodes (``--decodes``) without the ASR."""
    def run(clip, language=None):
        key = (hashlib.sha1(clip.samples.tobytes()).hexdigest(), clip.sample_rate, language, tag)
        if key not in store:
            store[key] = transcribe(clip, language)
        return store[key]
    return run


def checker(store: dict | None = None) -> checks.Checker:
    embed, model = speaker_embedding.default_embedder()
    first, second = checks.whisper_transcriber(), checks.whisper_transcriber(checks.SECOND_OPINION_WINDOW_S)
    if store is not None:
        first, second = cached(first, store, "fast"), cached(second, store, "second")
    return checks.Checker(first, embed, model, second_opinion=second)


def intact_rows(chk: checks.Checker, utts: list, emit) -> tuple[dict, dict]:
    """Check each intact utterance; returns ({id: TakeCheck}, cost figures)."""
    by_speaker: dict[str, list] = {}
    for u in utts:
        by_speaker.setdefault(u.speaker, []).append(u)
    emit("| id | condition | style | s | error | by sound | missing | misheard | too short | no audio under | "
         "decodes | text level | why | heard | RTF (wall) | CPU s / audio s |")
    emit("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    out, wall, cpu, audio, rtfs = {}, 0.0, 0.0, 0.0, []
    for u in utts:
        clip = cs.load(u)
        mates = [m for m in by_speaker[u.speaker] if m.id != u.id]
        source = cs.load(mates[0]) if mates else None
        t0, c0 = time.perf_counter(), time.process_time()
        c = chk.check(clip, u.transcript, source=source, language=u.language)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        wall, cpu, audio = wall + dt, cpu + dc, audio + clip.duration
        rtfs.append(dt / clip.duration)
        out[u.id] = c
        emit(f"| {u.id} | {u.condition} | {u.style} | {clip.duration:.1f} | {c.error_rate:.3f} | "
             f"{c.judged_error_rate:.3f} | {c.deleted} | {c.substituted} | {' '.join(c.rushed) or '-'} | "
             f"{' '.join(c.unsupported) or '-'} | {c.decodes} | {c.levels['error_rate']} | {reasons(c)} | "
             f"{c.heard} | {dt / clip.duration:.3f} | {dc / clip.duration:.3f} |")
    return out, {"wall": wall, "cpu": cpu, "audio": audio, "rtfs": rtfs}


def damaged_rows(chk: checks.Checker, utts: list, intact: dict, emit) -> dict:
    """Check every manipulation of every utterance whose intact check is green (on the others a flag proves
    nothing); returns counts per kind."""
    emit("| id | kind | word | error | missing | misheard | too short | no audio under | restored | "
         "text level | flagged |")
    emit("|---|---|---|---|---|---|---|---|---|---|---|")
    n = {k: [0, 0, 0, 0] for k in KINDS}      # flagged, total, flagged among restored, restored
    for u in utts:
        if intact[u.id].levels["error_rate"] != checks.GREEN:
            continue
        for d in cs.manipulations(cs.load(u), intact[u.id].words):
            c = chk.check(d.clip, u.transcript, language=u.language)
            flagged = c.levels["error_rate"] != checks.GREEN
            gone = d.word.split(">")[0].split("|")[0] if d.kind != "midcut" else ""
            restored = bool(gone) and restored_word(gone, c.heard, c.metric)
            s = n[d.kind]
            s[0], s[1], s[2], s[3] = s[0] + flagged, s[1] + 1, s[2] + (flagged and restored), s[3] + restored
            emit(f"| {u.id} | {d.kind} | {d.word} | {c.error_rate:.3f} | {c.deleted} | {c.substituted} | "
                 f"{' '.join(c.rushed) or '-'} | {' '.join(c.unsupported) or '-'} | {'yes' if restored else ''} | "
                 f"{c.levels['error_rate']} | {'yes' if flagged else '**no**'} |")
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS_check_real.md"))
    ap.add_argument("--only", nargs="*", help="utterance ids (default: all with a transcript)")
    ap.add_argument("--no-damage", action="store_true", help="intact clips only")
    ap.add_argument("--decodes", type=Path, help="a pickle of decodes: read if it exists, written at the end "
                    "(replays the rules without the ASR; its seconds are then not the ASR's)")
    args = ap.parse_args()
    utts = [u for u in cs.utterances() if u.check and (not args.only or u.id in args.only)]
    store = pickle.loads(args.decodes.read_bytes()) if args.decodes and args.decodes.is_file() else {}
    chk = checker(store if args.decodes else None)
    chk.check(cs.load(utts[0]), utts[0].transcript)          # load whisper before timing
    lines: list[str] = []
    emit = lines.append
    load0 = os.getloadavg()
    emit("## Intact real recordings: false alarms and cost\n")
    intact, cost = intact_rows(chk, utts, emit)
    bad = [i for i, c in intact.items() if c.levels["error_rate"] != checks.GREEN]
    emit(f"\nIntact clips whose text is not green: **{len(bad)}/{len(intact)}** ({', '.join(bad) or 'none'}).\n")
    emit(f"Cost over {cost['audio']:.1f} s of audio ({len(intact)} clips, ASR on {THREADS} threads, speaker "
         f"embedder {chk.speaker_model}; load average {load0[0]:.2f} / {load0[1]:.2f} at the start, "
         f"{os.getloadavg()[0]:.2f} / {os.getloadavg()[1]:.2f} at the end): wall-clock RTF total "
         f"**{cost['wall'] / cost['audio']:.3f}** (median per clip {statistics.median(cost['rtfs']):.3f}, max "
         f"{max(cost['rtfs']):.3f}); process CPU s per audio s **{cost['cpu'] / cost['audio']:.3f}** "
         f"(÷ {THREADS} = {cost['cpu'] / cost['audio'] / THREADS:.3f}).\n")
    if not args.no_damage:
        emit("## Manipulated copies: single-word cuts, mid-word cuts, spliced words\n")
        emit(f"Of the {len(intact) - len(bad)} utterances whose intact check is green.\n")
        n = damaged_rows(chk, utts, intact, emit)
        emit("")
        for k, (f, t, fr, r) in n.items():
            emit(f"- **{k}**: {f}/{t} flagged ({f / max(1, t):.1%}); the removed word written back by the ASR: "
                 f"{fr}/{r} flagged")
        cuts = [sum(n[k][i] for k in ("cut", "midcut")) for i in range(4)]
        emit(f"- **single-word cuts (both kinds)**: {cuts[0]}/{cuts[1]} ({cuts[0] / max(1, cuts[1]):.1%}); "
             f"restored {cuts[2]}/{cuts[3]}")
    emit(f"\nCommand: `python bench/check_real.py`; load average at the end {os.getloadavg()}.")
    if args.decodes:
        args.decodes.write_bytes(pickle.dumps(store))
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
