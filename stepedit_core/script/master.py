"""The master track of a script: each segment trimmed to its speech, brought to one loudness, joined with the
script's pauses; plus the subtitle cues (SRT / WebVTT) of where every segment sits in it.

Loudness: an RMS target over the *voiced* frames of a segment (frames within VOICED_RANGE_DB of its loudest
frame), TARGET_DBFS = -20 dBFS, the usual spoken-word level of podcast masters (about -16 LUFS for speech);
gain is capped at MAX_GAIN_DB so a near-silent take is not blown up, and the whole master is then scaled down
(never up) so its peak stays at or below PEAK_CEILING. Cues are exact sample positions: a cue starts at the
first kept sample of its segment and ends at its last.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .grammar import DEFAULT_GAP_S

TARGET_DBFS = -20.0              # voiced RMS of every segment in the master
VOICED_RANGE_DB = 30.0           # frames within 30 dB of a segment's loudest frame count as voiced
FRAME_S = 0.02
MAX_GAIN_DB = 30.0
PEAK_CEILING = 0.97              # ~ -0.3 dBFS, headroom for 16-bit export
TRIM_TOP_DB = 40.0               # a segment is trimmed to the samples within 40 dB of its peak
TRIM_MARGIN_S = 0.005            # kept around the speech (the 40 dB threshold already keeps soft onsets)


@dataclass(frozen=True)
class Cue:
    index: int                   # segment index, 0-based
    line: int                    # script line, 1-based
    speaker: str
    text: str
    start: float                 # seconds in the master
    end: float


def trim(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """The speech of a take: from the first to the last sample within TRIM_TOP_DB of its peak, with
    TRIM_MARGIN_S around it (silent takes are kept whole). Sample-exact, so cues sit on the speech."""
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak <= 0.0:
        return samples
    loud = np.flatnonzero(np.abs(samples) > peak * 10 ** (-TRIM_TOP_DB / 20))
    margin = int(TRIM_MARGIN_S * sample_rate)
    return samples[max(0, int(loud[0]) - margin):min(len(samples), int(loud[-1]) + 1 + margin)]


def voiced_rms(samples: np.ndarray, sample_rate: int) -> float:
    hop = max(1, int(FRAME_S * sample_rate))
    frames = len(samples) // hop
    if frames == 0:
        return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
    power = np.mean(np.square(samples[:frames * hop].reshape(frames, hop), dtype=np.float64), axis=1)
    peak = float(power.max())
    if peak <= 0.0:
        return 0.0
    voiced = power[power >= peak * 10 ** (-VOICED_RANGE_DB / 10)]
    return float(np.sqrt(voiced.mean()))


def normalise(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Scale a segment so its voiced RMS is TARGET_DBFS (gain at most MAX_GAIN_DB)."""
    rms = voiced_rms(samples, sample_rate)
    if rms <= 0.0:
        return samples.astype(np.float32, copy=True)
    gain_db = min(TARGET_DBFS - 20 * np.log10(rms), MAX_GAIN_DB)
    return (samples * np.float32(10 ** (gain_db / 20))).astype(np.float32)


def assemble(takes: Sequence[np.ndarray], segments: Sequence, texts: Sequence[str], trailing_pause: float,
             sample_rate: int, default_gap: float | None = None) -> tuple[np.ndarray, tuple[Cue, ...]]:
    """Master samples and one cue per segment. ``segments[i].pause_before`` (None = DEFAULT_GAP_S) is the
    silence before segment i (the first segment starts at 0 unless it has an explicit pause)."""
    gap_default = DEFAULT_GAP_S if default_gap is None else default_gap
    parts, cues, pos = [], [], 0
    for i, (samples, seg, text) in enumerate(zip(takes, segments, texts)):
        gap = seg.pause_before if seg.pause_before is not None else (0.0 if i == 0 else gap_default)
        silence = int(round(gap * sample_rate))
        if silence:
            parts.append(np.zeros(silence, np.float32))
            pos += silence
        speech = normalise(trim(np.asarray(samples, np.float32), sample_rate), sample_rate)
        parts.append(speech)
        cues.append((i, seg, text, pos, pos + len(speech)))
        pos += len(speech)
    tail = int(round(trailing_pause * sample_rate))
    if tail:
        parts.append(np.zeros(tail, np.float32))
    master = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    peak = float(np.max(np.abs(master))) if master.size else 0.0
    if peak > PEAK_CEILING:
        master = (master * np.float32(PEAK_CEILING / peak)).astype(np.float32)
    return master, tuple(Cue(index=i, line=seg.line, speaker=seg.speaker, text=text,
                             start=a / sample_rate, end=b / sample_rate) for i, seg, text, a, b in cues)


# ---------------------------------------------------------------------------- subtitles
def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _caption(cue: Cue) -> str:
    return " ".join(f"{cue.speaker}: {cue.text}".split())


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip: numbered blocks ``HH:MM:SS,mmm --> HH:MM:SS,mmm`` with ``Speaker: text``."""
    blocks = [f"{k}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{_caption(c)}\n"
              for k, c in enumerate(cues, 1)]
    return "\n".join(blocks)


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT with a voice span per cue (``<v Speaker>text``)."""
    blocks = ["WEBVTT\n"]
    for c in cues:
        text = " ".join(c.text.split()).replace("&", "&amp;").replace("<", "&lt;")
        speaker = c.speaker.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        blocks.append(f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n<v {speaker}>{text}\n")
    return "\n".join(blocks)


def parse_srt_times(srt: str) -> list[tuple[float, float]]:
    """(start, end) seconds of every SRT cue (for checks and re-import)."""
    out = []
    for line in srt.splitlines():
        if "-->" in line:
            a, b = (p.strip() for p in line.split("-->"))
            out.append(tuple(int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000
                             for h, m, s, ms in (x.replace(",", ":").replace(".", ":").split(":") for x in (a, b))))
    return out
