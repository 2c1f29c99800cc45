"""Speaker similarity on real recordings: does the take check's embedder separate voices? (issue #30)

Real speech from a package on the index, never committed here (the wheel states the package's licence, MIT, not
the recording's origin): ``pyannote/audio/sample/sample.wav`` of ``pyannote.audio==3.3.2`` (30 s of a two-person
telephone conversation, 16 kHz) with its speaker turns in ``sample.rttm``. Each single-speaker stretch of at least
MIN_TURN_S (overlaps removed) is one utterance. For each embedder available (the spectral fallback; GE2E when its
weights are found, see ``stepedit_core.listen.speaker_embedding``) it reports every same-speaker and
different-speaker cosine, the lowest same-speaker score, the highest different-speaker score and the margin.

    python bench/speaker_calibration.py [--wheel pyannote_audio-3.3.2-py2.py3-none-any.whl] [--fetch-ge2e]
    python bench/speaker_calibration.py --set real     # the calibration set of bench/calibration_set.py

``--set real``: every utterance of a known speaker in ``bench/calibration_set.py`` (Codec 2's radio amateurs and
Harvard readers, the Asterisk voices in English, Spanish and Russian, the call's two speakers): 11 speakers,
same-speaker pairs include one voice across two languages. Scores are also given per pair of speakers.
"""
from __future__ import annotations

import argparse
import io
import itertools
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stepedit_core.interface import AudioClip  # noqa: E402
from stepedit_core.listen import speaker_embedding  # noqa: E402
from calibration_set import single_speaker_stretches  # noqa: E402  (bench/ is this script's folder)

PACKAGE = "pyannote.audio==3.3.2"


def sample_from_wheel(wheel: Path | None) -> tuple[np.ndarray, int, list[tuple[str, float, float]]]:
    """(samples, rate, [(speaker, start s, end s)]) of the pyannote sample, from ``wheel`` or a pip download."""
    with tempfile.TemporaryDirectory() as d:
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PACKAGE, "-d", d],
                           check=True)
            wheel = next(Path(d).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z:
            x, sr = sf.read(io.BytesIO(z.read("pyannote/audio/sample/sample.wav")), dtype="float32")
            rttm = z.read("pyannote/audio/sample/sample.rttm").decode()
    turns = [(f[7], float(f[3]), float(f[3]) + float(f[4])) for f in (ln.split() for ln in rttm.splitlines()) if f]
    return x, sr, turns



def pair_scores(embed, clips: list[tuple[str, AudioClip]]) -> tuple[list[float], list[float]]:
    vecs = []
    for _, clip in clips:
        v = np.asarray(embed(clip), np.float64)
        vecs.append(v / (np.linalg.norm(v) + 1e-12))
    same, diff = [], []
    for (i, (si, _)), (j, (sj, _)) in itertools.combinations(enumerate(clips), 2):
        (same if si == sj else diff).append(float(np.dot(vecs[i], vecs[j])))
    return same, diff


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheel", type=Path, help="a downloaded pyannote.audio 3.3.2 wheel (else pip download)")
    ap.add_argument("--fetch-ge2e", action="store_true", help="put Resemblyzer's weights in the cache first")
    ap.add_argument("--set", choices=("call", "real"), default="call", help="call: the pyannote call only; "
                    "real: the calibration set (bench/calibration_set.py)")
    args = ap.parse_args()
    if args.set == "real":
        real_set(args.fetch_ge2e)
        return
    if args.fetch_ge2e:
        sys.path.insert(0, str(ROOT / "bench"))
        from check_bench import fetch_ge2e  # noqa: PLC0415
        fetch_ge2e()
    x, sr, turns = sample_from_wheel(args.wheel)
    clips = [(spk, AudioClip(x[int(a * sr):int(b * sr)], sr)) for spk, a, b in single_speaker_stretches(turns)]
    print(f"Real speech: {PACKAGE} sample.wav, {len(clips)} single-speaker utterances "
          f"({', '.join(f'{s} {c.duration:.1f} s' for s, c in clips)}); load average {os.getloadavg()[0]:.1f}\n")
    print("| embedder | same-speaker pairs | different-speaker pairs | lowest same | highest different | margin |")
    print("|---|---|---|---|---|---|")
    embedders = [("spectral", lambda c: speaker_embedding.spectral_embedding(c.samples, c.sample_rate))]
    path = speaker_embedding.ge2e_path()
    if path is not None:
        embedders.append(("ge2e", speaker_embedding._ge2e(path)))
    for name, embed in embedders:
        same, diff = pair_scores(embed, clips)
        print(f"| {name} | {len(same)}: {' '.join(f'{s:.3f}' for s in sorted(same))} | "
              f"{len(diff)}: {' '.join(f'{s:.3f}' for s in sorted(diff))} | {min(same):.3f} | {max(diff):.3f} | "
              f"{min(same) - max(diff):+.3f} |")


def embedders() -> list[tuple[str, object]]:
    out = [("spectral", lambda c: speaker_embedding.spectral_embedding(c.samples, c.sample_rate))]
    path = speaker_embedding.ge2e_path()
    if path is not None:
        out.append(("ge2e", speaker_embedding._ge2e(path)))
    return out


def real_set(fetch: bool) -> None:
    """Same- and different-speaker cosines on the calibration set, per embedder, with the worst pairs named."""
    if fetch:
        sys.path.insert(0, str(ROOT / "bench"))
        from check_bench import fetch_ge2e  # noqa: PLC0415
        fetch_ge2e()
    sys.path.insert(0, str(ROOT / "bench"))
    import calibration_set  # noqa: PLC0415
    items = calibration_set.speaker_clips()
    speakers = sorted({s for _, s, _ in items})
    print(f"Real speech: {len(items)} utterances of {len(speakers)} speakers ({', '.join(speakers)}); "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| embedder | same pairs | different pairs | lowest same (pair) | highest different (pair) | margin | "
          "different pairs above the lowest same |")
    print("|---|---|---|---|---|---|---|")
    for name, embed in embedders():
        vecs = []
        for _, _, clip in items:
            v = np.asarray(embed(clip), np.float64)
            vecs.append(v / (np.linalg.norm(v) + 1e-12))
        same, diff = [], []
        for (i, (ui, si, _)), (j, (uj, sj, _)) in itertools.combinations(enumerate(items), 2):
            (same if si == sj else diff).append((float(np.dot(vecs[i], vecs[j])), ui, uj))
        lo, hi = min(same), max(diff)
        print(f"| {name} | {len(same)} ({np.median([s for s, *_ in same]):.3f} median) | {len(diff)} "
              f"({np.median([s for s, *_ in diff]):.3f} median) | {lo[0]:.3f} ({lo[1]} / {lo[2]}) | {hi[0]:.3f} "
              f"({hi[1]} / {hi[2]}) | {lo[0] - hi[0]:+.3f} | {sum(d > lo[0] for d, *_ in diff)} |")
        for q in (0.01, 0.05):
            print(f"|   | same-speaker {q:.0%} quantile {np.quantile([s for s, *_ in same], q):.3f} | "
                  f"different-speaker {1 - q:.0%} quantile {np.quantile([s for s, *_ in diff], 1 - q):.3f} |||||")


if __name__ == "__main__":
    main()
