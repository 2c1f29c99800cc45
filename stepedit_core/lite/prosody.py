"""Emotion and speaking-style edits as WORLD (pyworld, MIT) prosody presets.

WORLD splits speech into F0 (pitch), a smooth spectral envelope (timbre, formants) and aperiodicity
(breathiness); each preset changes those and resynthesises. One row per official emotion / style, in
:data:`EMOTION_PRESETS` and :data:`STYLE_PRESETS`. ``remove`` is not a preset: :func:`neutralise` pulls
pitch range, contour, breathiness and level toward a plain reading.

An edit runs at a strength in (0, 1]; round k of an iterative edit applies ``ROUND_STRENGTH[k]`` to the
previous round's output, so the change grows with each round but stays bounded.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..catalog import EMOTIONS, REMOVE, STYLES
from ..listen.dsp import active_rms_db
from .variation import EDIT_RATE_SPAN, Performance

FRAME_MS = 5.0                 # WORLD frame period
F0_FLOOR, F0_CEIL = 60.0, 700.0
ROUND_STRENGTH = (1.0, 0.6, 0.45, 0.35, 0.3)   # round 1..5 (interface.MAX_ITERATIONS = 5)
TREMOR_HZ = 5.5                # pitch tremor rate of fearful / elderly voices
TILT_PIVOT_HZ = 1000.0         # spectral tilt is applied in dB per octave around this frequency
NEUTRAL_RANGE_ST = 4.0         # "remove": target F0 range (10th-90th percentile), semitones
NEUTRAL_LEVEL_DB = -20.0       # "remove": target speech level, dBFS (active frames)
SOFT_KNEE, PEAK_LIMIT = 0.6, 0.97


@dataclass(frozen=True)
class Preset:
    """Prosody changes at full strength; the defaults change nothing."""
    pitch_st: float = 0.0      # F0 level shift, semitones
    range: float = 1.0         # scale of F0 excursions around the mean log-F0 (intonation range)
    slope_st: float = 0.0      # F0 drift from start to end of the clip, semitones (+ rising, - falling)
    tremor_st: float = 0.0     # depth of a TREMOR_HZ pitch tremor, semitones
    rate: float = 1.0          # speaking rate (>1 faster; duration / rate)
    energy_db: float = 0.0     # speech level change, dB
    tilt_db: float = 0.0       # spectral tilt, dB per octave (+ brighter / pressed, - darker / soft)
    breath: float = 0.0        # breathiness in [-1, 1]: aperiodicity raised toward 1 (+) or lowered (-)
    formant: float = 1.0       # spectral-envelope frequency warp (>1 smaller vocal tract)
    whisper: bool = False      # unvoiced excitation (no F0)

    def scaled(self, s: float) -> "Preset":
        """This preset at strength ``s`` (0 = no change, 1 = full)."""
        return Preset(pitch_st=self.pitch_st * s, range=self.range ** s, slope_st=self.slope_st * s,
                      tremor_st=self.tremor_st * s, rate=self.rate ** s, energy_db=self.energy_db * s,
                      tilt_db=self.tilt_db * s, breath=self.breath * s, formant=self.formant ** s,
                      whisper=self.whisper)


P = Preset
# Directions follow the phonetics literature on vocal emotion (higher/wider F0, faster and louder for
# high-arousal emotions; lower/narrower, slower, softer and breathier for low arousal); sizes are ours.
EMOTION_PRESETS: dict[str, Preset] = {
    "happy":      P(pitch_st=2.0, range=1.35, rate=1.06, energy_db=2.0, tilt_db=1.0, formant=1.03),
    "angry":      P(pitch_st=1.0, range=1.25, slope_st=-1.0, rate=1.08, energy_db=4.0, tilt_db=2.5, breath=-0.2),
    "sad":        P(pitch_st=-2.0, range=0.6, slope_st=-1.5, rate=0.85, energy_db=-4.0, tilt_db=-2.0, breath=0.25,
                    formant=0.98),
    "humour":     P(pitch_st=1.5, range=1.4, rate=1.04, energy_db=1.5, tilt_db=0.5, breath=0.05, formant=1.02),
    "confusion":  P(pitch_st=0.5, range=1.2, slope_st=2.5, rate=0.92, energy_db=-1.0, breath=0.1),
    "disgusted":  P(pitch_st=-1.0, range=0.85, slope_st=-1.5, rate=0.9, energy_db=1.0, tilt_db=0.5, breath=0.15,
                    formant=0.97),
    "empathy":    P(pitch_st=-0.5, range=0.85, slope_st=-0.5, rate=0.9, energy_db=-2.0, tilt_db=-1.0, breath=0.15),
    "embarrass":  P(pitch_st=1.0, range=0.8, slope_st=-0.5, tremor_st=0.1, rate=0.95, energy_db=-3.0, tilt_db=-1.0,
                    breath=0.2, formant=1.02),
    "fear":       P(pitch_st=2.5, range=0.9, tremor_st=0.5, rate=1.1, energy_db=-2.0, breath=0.3, formant=1.03),
    "surprised":  P(pitch_st=3.0, range=1.5, slope_st=2.0, rate=1.05, energy_db=3.0, tilt_db=1.5, formant=1.03),
    "excited":    P(pitch_st=3.0, range=1.5, rate=1.12, energy_db=4.0, tilt_db=1.5, formant=1.03),
    "depressed":  P(pitch_st=-3.0, range=0.45, slope_st=-1.0, rate=0.8, energy_db=-5.0, tilt_db=-2.5, breath=0.3,
                    formant=0.97),
    "coldness":   P(pitch_st=-1.0, range=0.55, rate=0.97, energy_db=-1.0),
    "admiration": P(pitch_st=1.5, range=1.3, slope_st=0.5, rate=0.94, energy_db=1.0, tilt_db=0.5, breath=0.2,
                    formant=1.02),
}
STYLE_PRESETS: dict[str, Preset] = {
    "serious":     P(pitch_st=-1.0, range=0.75, slope_st=-0.5, rate=0.95, energy_db=1.0, tilt_db=0.5),
    "arrogant":    P(pitch_st=-0.5, range=1.3, slope_st=-1.5, rate=0.9, energy_db=2.0, tilt_db=1.0, breath=0.05,
                     formant=0.98),
    "child":       P(pitch_st=6.0, range=1.3, rate=1.05, tilt_db=1.5, breath=0.05, formant=1.18),
    "older":       P(pitch_st=-1.5, range=0.8, slope_st=-0.5, tremor_st=0.35, rate=0.85, energy_db=-2.0, tilt_db=-1.5,
                     breath=0.3, formant=0.95),
    "girl":        P(pitch_st=5.0, range=1.3, slope_st=0.5, rate=1.05, tilt_db=1.0, breath=0.1, formant=1.14),
    "pure":        P(pitch_st=2.0, range=1.1, energy_db=-1.0, tilt_db=0.5, breath=0.15, formant=1.06),
    "sister":      P(pitch_st=-1.0, range=1.1, slope_st=-0.5, rate=0.95, energy_db=1.0, breath=0.1, formant=0.98),
    "sweet":       P(pitch_st=3.0, range=1.3, slope_st=0.5, rate=0.97, energy_db=-1.0, tilt_db=0.5, breath=0.2,
                     formant=1.06),
    "ethereal":    P(pitch_st=2.0, range=0.8, rate=0.9, energy_db=-4.0, tilt_db=-1.0, breath=0.5, formant=1.04),
    "whisper":     P(rate=0.95, energy_db=-6.0, breath=1.0, whisper=True),
    "gentle":      P(range=0.8, slope_st=-0.5, rate=0.92, energy_db=-3.0, tilt_db=-1.5, breath=0.2),
    "recite":      P(range=1.3, slope_st=-1.0, rate=0.88, energy_db=2.0, tilt_db=0.5),
    "generous":    P(pitch_st=-0.5, range=1.15, rate=0.95, energy_db=2.0, tilt_db=0.5, formant=0.98),
    "act_coy":     P(pitch_st=4.0, range=1.5, slope_st=1.5, rate=0.9, energy_db=-1.0, tilt_db=0.5, breath=0.2,
                     formant=1.08),
    "warm":        P(pitch_st=-0.5, slope_st=-0.5, rate=0.93, tilt_db=-1.0, breath=0.1, formant=0.98),
    "shy":         P(pitch_st=1.5, range=0.7, slope_st=-0.5, tremor_st=0.15, rate=0.9, energy_db=-5.0, tilt_db=-1.5,
                     breath=0.3, formant=1.02),
    "comfort":     P(pitch_st=-1.0, range=0.85, slope_st=-1.0, rate=0.88, energy_db=-3.0, tilt_db=-1.5, breath=0.2,
                     formant=0.99),
    "authority":   P(pitch_st=-2.0, range=0.85, slope_st=-1.5, rate=0.92, energy_db=3.0, tilt_db=1.0, breath=-0.2,
                     formant=0.96),
    "chat":        P(pitch_st=0.5, range=1.15, rate=1.08, breath=0.05),
    "radio":       P(pitch_st=-1.5, range=1.1, energy_db=2.0, tilt_db=1.5, breath=-0.1, formant=0.97),
    "soulful":     P(pitch_st=-0.5, range=1.25, slope_st=-1.0, tremor_st=0.15, rate=0.85, energy_db=-1.0,
                     tilt_db=-0.5, breath=0.2, formant=0.99),
    "story":       P(range=1.35, rate=0.92, breath=0.05),
    "vivid":       P(pitch_st=1.5, range=1.5, rate=1.05, energy_db=2.0, tilt_db=1.0, formant=1.02),
    "program":     P(pitch_st=1.0, range=1.25, rate=1.05, energy_db=2.0, tilt_db=1.0),
    "news":        P(pitch_st=-0.5, range=0.9, slope_st=-0.5, rate=1.06, energy_db=1.0, tilt_db=1.0, breath=-0.1),
    "advertising": P(pitch_st=2.0, range=1.4, slope_st=0.5, rate=1.1, energy_db=3.0, tilt_db=1.5, formant=1.02),
    "roar":        P(pitch_st=3.0, range=1.2, slope_st=-1.0, energy_db=7.0, tilt_db=4.0, breath=0.1),
    "murmur":      P(pitch_st=-1.0, range=0.6, slope_st=-0.5, rate=0.95, energy_db=-7.0, tilt_db=-2.5, breath=0.4),
    "shout":       P(pitch_st=4.0, range=1.2, slope_st=-1.0, energy_db=6.0, tilt_db=3.0, formant=1.02),
    "deeply":      P(pitch_st=-3.0, range=0.8, slope_st=-0.5, rate=0.9, tilt_db=-1.5, breath=0.05, formant=0.93),
    "loudly":      P(pitch_st=1.5, range=1.1, energy_db=5.0, tilt_db=2.0),
    "exaggerated": P(pitch_st=2.0, range=1.8, rate=0.95, energy_db=3.0, tilt_db=1.0, formant=1.02),
}
del P
assert set(EMOTION_PRESETS) == set(EMOTIONS) - {REMOVE}
assert set(STYLE_PRESETS) == set(STYLES) - {REMOVE}
PRESET_FIELDS = tuple(f.name for f in fields(Preset))


@dataclass
class WorldParams:
    """WORLD analysis of one clip: F0 (T,) Hz, 0 when unvoiced; envelope and aperiodicity (T, fft/2+1)."""
    f0: np.ndarray
    sp: np.ndarray
    ap: np.ndarray
    sample_rate: int


def analyse(wav: np.ndarray, sample_rate: int) -> WorldParams:
    """WORLD analysis with dio + stonemask (fast F0; harvest is 10x slower for little gain here)."""
    import pyworld as pw  # noqa: PLC0415
    x = np.asarray(wav, np.float64)
    f0, t = pw.dio(x, sample_rate, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=FRAME_MS)
    f0 = pw.stonemask(x, f0, t, sample_rate)
    fft_size = pw.get_cheaptrick_fft_size(sample_rate, F0_FLOOR)
    sp = pw.cheaptrick(x, f0, t, sample_rate, f0_floor=F0_FLOOR, fft_size=fft_size)
    ap = pw.d4c(x, f0, t, sample_rate, fft_size=fft_size)
    return WorldParams(f0, sp, ap, sample_rate)


def synthesise(p: WorldParams) -> np.ndarray:
    import pyworld as pw  # noqa: PLC0415
    y = pw.synthesize(np.ascontiguousarray(p.f0), np.ascontiguousarray(p.sp), np.ascontiguousarray(p.ap),
                      p.sample_rate, FRAME_MS)
    return y.astype(np.float32)


def warp_envelope(sp: np.ndarray, factor: float) -> np.ndarray:
    """Move spectral-envelope features (formants) up by ``factor`` along the frequency axis."""
    if abs(factor - 1.0) < 1e-4:
        return sp
    bins = np.arange(sp.shape[1], dtype=np.float64)
    src = np.clip(bins / factor, 0, sp.shape[1] - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, sp.shape[1] - 1)
    w = src - lo
    return sp[:, lo] * (1 - w) + sp[:, hi] * w


def tilt_gain(n_bins: int, sample_rate: int, db_per_octave: float) -> np.ndarray:
    """Power gain per envelope bin for a tilt of ``db_per_octave`` around TILT_PIVOT_HZ."""
    freqs = np.linspace(0, sample_rate / 2, n_bins)
    octaves = np.log2(np.maximum(freqs, 100.0) / TILT_PIVOT_HZ)
    return 10 ** (db_per_octave * octaves / 10)


def retime(p: WorldParams, rate: float, perf: Performance | None = None) -> WorldParams:
    """Change duration by 1/rate by resampling the frame sequence (pitch unchanged); with ``perf`` the
    local tempo follows its curve (same total duration)."""
    n = p.f0.shape[0]
    m = max(2, int(round(n / rate)))
    if m == n and perf is None:
        return p
    pos = perf.positions(n, m, FRAME_MS * 1e-3) if perf is not None else np.linspace(0, n - 1, m)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo)[:, None]
    near = np.where(w[:, 0] < 0.5, lo, hi)
    voiced = (p.f0[lo] > 0) & (p.f0[hi] > 0)
    f0 = np.where(voiced, np.exp(np.log(np.maximum(p.f0[lo], 1)) * (1 - w[:, 0])
                                 + np.log(np.maximum(p.f0[hi], 1)) * w[:, 0]), p.f0[near])
    return WorldParams(f0, p.sp[lo] * (1 - w) + p.sp[hi] * w, p.ap[lo] * (1 - w) + p.ap[hi] * w, p.sample_rate)


def _shape_f0(f0: np.ndarray, preset: Preset, perf: Performance | None = None) -> np.ndarray:
    voiced = f0 > 0
    if voiced.sum() < 3:
        return f0
    semitone = np.log(2) / 12
    logf = np.log(np.where(voiced, f0, 1.0))
    if perf is not None:       # the seed's intonation, before the range scaling so a narrow preset stays narrow
        melody = perf.melody_st(len(f0), FRAME_MS * 1e-3)
        logf = logf + (melody - melody[voiced].mean()) * semitone
    mean = logf[voiced].mean()
    t = np.linspace(0.0, 1.0, len(f0))
    shaped = (mean + (logf - mean) * preset.range + preset.pitch_st * semitone
              + preset.slope_st * semitone * (t - 0.5)
              + preset.tremor_st * semitone * np.sin(2 * np.pi * TREMOR_HZ * np.arange(len(f0)) * FRAME_MS * 1e-3))
    return np.where(voiced, np.clip(np.exp(shaped), F0_FLOOR, F0_CEIL), 0.0)


def soft_limit(y: np.ndarray) -> np.ndarray:
    """Peaks above SOFT_KNEE are bent smoothly under PEAK_LIMIT (keeps loudness, avoids clipping)."""
    a = np.abs(y)
    over = a > SOFT_KNEE
    if not over.any():
        return y
    room = PEAK_LIMIT - SOFT_KNEE
    bent = SOFT_KNEE + room * np.tanh((a[over] - SOFT_KNEE) / room)
    y = y.copy()
    y[over] = np.sign(y[over]) * bent
    return y


def _finish(y: np.ndarray, sample_rate: int, target_db: float) -> np.ndarray:
    gain = 10 ** ((target_db - active_rms_db(y, sample_rate)) / 20)
    return soft_limit((y * gain).astype(np.float32))


def apply_preset(wav: np.ndarray, sample_rate: int, preset: Preset, strength: float = 1.0,
                 perf: Performance | None = None) -> np.ndarray:
    """``wav`` re-spoken with ``preset`` at ``strength``, in the seed's performance ``perf`` if given."""
    pr = preset.scaled(strength)
    level = active_rms_db(wav, sample_rate)
    p = analyse(wav, sample_rate)
    f0 = _shape_f0(p.f0, pr, perf)
    sp = warp_envelope(p.sp, pr.formant) * tilt_gain(p.sp.shape[1], sample_rate, pr.tilt_db)[None, :]
    ap = np.clip(p.ap, 1e-6, 1.0)
    if pr.breath > 0:
        ap = ap ** (1.0 - 0.85 * min(pr.breath, 1.0))      # toward 1 (noise) without erasing structure
    elif pr.breath < 0:
        ap = ap ** (1.0 - pr.breath)                        # toward 0 (cleaner voicing)
    if pr.whisper:
        f0 = np.zeros_like(f0)
        ap = np.ones_like(ap)
    rate = pr.rate * (perf.rate(EDIT_RATE_SPAN) if perf is not None else 1.0)
    q = retime(WorldParams(f0, sp, ap, sample_rate), rate, perf)
    return _finish(synthesise(q), sample_rate, level + pr.energy_db)


def neutralise(wav: np.ndarray, sample_rate: int, strength: float = 1.0, default_f0: float = 140.0,
               perf: Performance | None = None) -> np.ndarray:
    """``remove``: pull intonation range, contour, breathiness and level toward a plain reading; ``perf``
    varies only the timing (its melody would undo the flattening)."""
    p = analyse(wav, sample_rate)
    f0, ap = p.f0.copy(), np.clip(p.ap, 1e-6, 1.0)
    frame_energy = p.sp.sum(axis=1)
    loud = frame_energy > np.percentile(frame_energy, 40)
    voiced = f0 > 0
    if voiced.sum() < 0.25 * max(1, loud.sum()):
        # whispered input: give the louder frames a gently falling voice at ``default_f0``
        t = np.linspace(0, 1, len(f0))
        f0 = np.where(loud, default_f0 * 2 ** ((0.5 - t) * 2 / 12), 0.0)
        ap = np.where(loud[:, None], ap ** (1 + 2 * strength), ap)
    elif voiced.sum() >= 3:
        logf = np.log(np.where(voiced, f0, 1.0))
        idx = np.flatnonzero(voiced)
        slope, icpt = np.polyfit(idx, logf[idx], 1)
        trend = slope * np.arange(len(f0)) + icpt
        resid = logf - trend
        lo, hi = np.percentile(resid[idx], [10, 90])
        range_st = max(1e-3, 12 * (hi - lo) / np.log(2))
        scale = (NEUTRAL_RANGE_ST / range_st) ** strength
        flat = trend.mean() + (trend - trend.mean()) * (1 - strength) + resid * scale
        f0 = np.where(voiced, np.clip(np.exp(flat), F0_FLOOR, F0_CEIL), 0.0)
        mean_ap = float(np.mean(ap[voiced][:, : ap.shape[1] // 4]))
        if mean_ap > 0.2:                                   # breathy voice: firm up the voicing
            ap = np.where(voiced[:, None], ap ** (1 + strength), ap)
    level = active_rms_db(wav, sample_rate)
    target = level + (NEUTRAL_LEVEL_DB - level) * 0.5 * strength
    q = WorldParams(f0, p.sp, ap, sample_rate)
    if perf is not None:
        q = retime(q, perf.rate(EDIT_RATE_SPAN), perf)
    return _finish(synthesise(q), sample_rate, target)


def edit(wav: np.ndarray, sample_rate: int, option: str, iteration: int = 1, seed: int | None = None) -> np.ndarray:
    """One round of an emotion / style edit (``option`` from either list, or ``remove``); ``seed`` picks the
    performance (``variation``), None keeps the plain preset."""
    s = ROUND_STRENGTH[min(iteration, len(ROUND_STRENGTH)) - 1]
    perf = Performance.from_seed(seed) if seed is not None else None
    if option == REMOVE:
        return neutralise(wav, sample_rate, s, perf=perf)
    preset = EMOTION_PRESETS.get(option) or STYLE_PRESETS.get(option)
    if preset is None:
        raise KeyError(option)
    return apply_preset(wav, sample_rate, preset, s, perf)


def preset_table() -> list[dict[str, object]]:
    """Every preset as a row of named fields (for documentation and the bench)."""
    rows = []
    for kind, table in (("emotion", EMOTION_PRESETS), ("style", STYLE_PRESETS)):
        for name, pr in table.items():
            rows.append({"kind": kind, "option": name, **{f: getattr(pr, f) for f in PRESET_FIELDS}})
    return rows


__all__ = ["Preset", "EMOTION_PRESETS", "STYLE_PRESETS", "ROUND_STRENGTH", "apply_preset", "neutralise", "edit",
           "analyse", "synthesise", "warp_envelope", "retime", "preset_table", "WorldParams"]
