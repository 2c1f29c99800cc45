"""Non-verbal sounds (the 22 tags of 2026: breath, laugh, cough, ... Question-oh) synthesised in a speaker's voice.

A sound is a short list of segments, each with a duration, an F0 contour relative to the speaker's median
F0 (0 = unvoiced), an articulation (vowel formants, a nasal, or breath noise), an aperiodicity level and
a gain. Frames get the speaker's own average spectral envelope, flattened and re-shaped by the segment's
formants, and WORLD renders them, so the sounds share the speaker's pitch and timbre.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog import PARALINGUISTIC_TAGS_2026
from ..tags import canonical
from ..listen.dsp import active_rms_db, fade_edges
from .prosody import F0_CEIL, F0_FLOOR, FRAME_MS, WorldParams, synthesise
from .variation import Performance

# Formant frequencies (F1, F2, F3) in Hz of an adult male voice; scaled up for higher voices.
VOWELS: dict[str, tuple[float, float, float]] = {
    "a": (730, 1090, 2440), "o": (570, 840, 2410), "e": (530, 1840, 2480), "i": (300, 2250, 3000),
    "u": (320, 870, 2240), "schwa": (500, 1500, 2500), "m": (250, 1200, 2300), "n": (250, 1500, 2500),
    "h": (600, 1500, 2500), "breath": (900, 1800, 3000),
}
NASALS = ("m", "n")
FEMALE_F0 = 165.0              # median F0 above this counts as a higher (shorter vocal tract) voice
FEMALE_FORMANT_SCALE = 1.15
ENVELOPE_SMOOTH_HZ = 600.0     # smoothing width that removes the speaker's average formant pattern
TIME_SMOOTH_FRAMES = 5         # 25 ms articulatory transitions


@dataclass(frozen=True)
class Segment:
    dur: float                          # seconds
    f0: tuple[float, ...]               # contour points, x median F0 (0 -> unvoiced)
    art: str                            # key of VOWELS
    ap: float = 0.05                    # aperiodicity of voiced frames (1 = noise)
    gain_db: float = 0.0                # relative to the speaker's speech level


S = Segment
# Keyed by the 2026 spellings (tags.canonical maps the older ones: [Laughter] is [laugh]).
RECIPES: dict[str, tuple[Segment, ...]] = {
    "breath": (S(0.45, (0,), "breath", 1.0, -17.0),),
    "sigh": (S(0.25, (0,), "breath", 1.0, -20.0), S(0.6, (1.05, 0.75), "a", 0.6, -9.0)),
    "laugh": tuple(seg for k in range(4) for seg in (
        S(0.07, (0,), "h", 1.0, -10.0), S(0.11, (1.4 - 0.05 * k, 1.3 - 0.05 * k), "a", 0.45, -3.0 - k),
        S(0.07, (0,), "h", 1.0, -30.0))),
    "uhm": (S(0.25, (1.0, 0.97), "schwa", 0.1, -4.0), S(0.3, (0.97, 0.9), "m", 0.1, -8.0)),
    "Surprise-oh": (S(0.4, (1.1, 1.5, 1.2), "o", 0.1, -1.0),),
    "Surprise-ah": (S(0.3, (1.3, 1.6, 1.4), "a", 0.1, 0.0),),
    "Surprise-wa": (S(0.12, (1.2, 1.4), "u", 0.1, -4.0), S(0.32, (1.5, 1.2), "a", 0.1, 0.0)),
    "Confirmation-en": (S(0.06, (1.0,), "schwa", 0.1, -5.0), S(0.25, (1.05, 0.9), "n", 0.1, -7.0)),
    "Question-ei": (S(0.15, (1.0, 1.1), "e", 0.1, -2.0), S(0.2, (1.1, 1.5), "i", 0.1, -3.0)),
    "Dissatisfaction-hnn": (S(0.08, (0,), "h", 1.0, -14.0), S(0.35, (0.95, 0.8), "n", 0.3, -7.0)),
    # 2026 additions: breath sounds differ in brightness and shape, laughs in pitch, vowel and pulse count,
    # questions rise where the surprise of the same vowel rises and falls
    "inhale": (S(0.12, (0,), "breath", 1.0, -26.0), S(0.3, (0,), "i", 1.0, -13.0)),
    "exhale": (S(0.15, (0,), "h", 1.0, -11.0), S(0.4, (0,), "u", 1.0, -21.0)),
    "chuckle": tuple(seg for k in range(3) for seg in (
        S(0.05, (0,), "h", 1.0, -16.0), S(0.09, (1.05 - 0.05 * k, 0.95 - 0.05 * k), "m", 0.5, -8.0 - k))),
    "giggle": tuple(seg for k in range(6) for seg in (
        S(0.035, (0,), "h", 1.0, -18.0), S(0.06, (1.9 - 0.04 * k, 1.8 - 0.04 * k), "i", 0.35, -5.0 - k))),
    "snort": (S(0.06, (0,), "n", 1.0, -24.0), S(0.18, (0,), "n", 1.0, -6.0)),
    "cough": tuple(seg for k in range(2) for seg in (
        S(0.03, (0,), "h", 1.0, -25.0), S(0.11, (0.9, 0.8), "a", 0.9, -1.0 - 3 * k),
        S(0.12, (0,), "h", 1.0, -15.0))),
    "clears throat": (S(0.08, (0,), "h", 1.0, -18.0), S(0.3, (0.62, 0.66, 0.6), "schwa", 0.85, -6.0),
                      S(0.12, (0.7, 0.62), "e", 0.75, -9.0)),
    "Surprise-yo": (S(0.12, (1.25,), "i", 0.1, -3.0), S(0.3, (1.35, 1.8, 1.45), "o", 0.1, 0.0)),
    "Question-ah": (S(0.38, (0.95, 1.05, 1.6), "a", 0.1, -1.0),),
    "Question-en": (S(0.06, (0.95,), "schwa", 0.1, -5.0), S(0.3, (0.95, 1.5), "n", 0.1, -6.0)),
    "Question-yi": (S(0.34, (0.95, 1.1, 1.65), "i", 0.1, -2.0),),
    "Question-oh": (S(0.38, (0.9, 1.05, 1.55), "o", 0.1, -2.0),),
}
del S
assert set(RECIPES) == set(PARALINGUISTIC_TAGS_2026)


@dataclass(frozen=True)
class SpeakerVoice:
    """What the synthesiser needs of a speaker: median F0 (Hz), a smooth envelope (power, bins), level."""
    f0: float
    envelope: np.ndarray
    level_db: float
    sample_rate: int

    @classmethod
    def from_speech(cls, wav: np.ndarray, sample_rate: int, max_seconds: float = 4.0) -> "SpeakerVoice":
        """Estimate from (up to ``max_seconds`` of the loudest part of) ``wav``: F0 and envelope, no aperiodicity."""
        import pyworld as pw  # noqa: PLC0415
        n = int(max_seconds * sample_rate)
        x = np.asarray(wav, np.float64)
        if len(x) > n:                      # the window with the most energy
            hop = sample_rate // 4
            starts = np.arange(0, len(x) - n + 1, hop)
            energy = [float(np.sum(x[s:s + n] ** 2)) for s in starts]
            x = x[starts[int(np.argmax(energy))]:][:n]
        f0, t = pw.dio(x, sample_rate, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=FRAME_MS)
        f0 = pw.stonemask(x, f0, t, sample_rate)
        fft_size = pw.get_cheaptrick_fft_size(sample_rate, F0_FLOOR)
        sp = pw.cheaptrick(x, f0, t, sample_rate, f0_floor=F0_FLOOR, fft_size=fft_size)
        return cls.from_world(WorldParams(f0, sp, np.ones_like(sp), sample_rate), np.asarray(wav, np.float32))

    @classmethod
    def from_world(cls, p: WorldParams, wav: np.ndarray) -> "SpeakerVoice":
        voiced = p.f0 > 0
        f0 = float(np.median(p.f0[voiced])) if voiced.sum() >= 5 else 140.0
        frames = p.sp[voiced] if voiced.sum() >= 5 else p.sp
        log_env = np.log(frames + 1e-12).mean(axis=0)
        return cls(f0=f0, envelope=_smooth_log(log_env, p.sample_rate), level_db=active_rms_db(wav, p.sample_rate),
                   sample_rate=p.sample_rate)


def _smooth_log(log_env: np.ndarray, sample_rate: int) -> np.ndarray:
    """exp of ``log_env`` smoothed over ENVELOPE_SMOOTH_HZ (keeps tilt and level, drops formant peaks)."""
    hz_per_bin = sample_rate / 2 / (len(log_env) - 1)
    w = max(1, int(ENVELOPE_SMOOTH_HZ / hz_per_bin))
    kernel = np.hanning(2 * w + 1)
    kernel /= kernel.sum()
    padded = np.pad(log_env, w, mode="edge")
    return np.exp(np.convolve(padded, kernel, mode="valid"))


def _articulation(art: str, n_bins: int, sample_rate: int, scale: float) -> np.ndarray:
    """Power shaping of one articulation: formant resonances (Lorentzian) over a flat base."""
    freqs = np.linspace(0, sample_rate / 2, n_bins)
    shape = np.full(n_bins, 0.15)
    for k, (f, gain) in enumerate(zip(VOWELS[art], (1.0, 0.6, 0.3))):
        bw = 90.0 + 40.0 * k
        shape += gain / (1 + ((freqs - f * scale) / bw) ** 2)
    if art in NASALS:
        shape *= 1 / (1 + (freqs / 500.0) ** 4)           # nasal murmur: energy below ~500 Hz
    if art in ("h", "breath"):
        shape *= (freqs / 1500.0) ** 0.5                   # breath noise: flatter, brighter spectrum
    return shape


def synthesise_sound(tag: str, voice: SpeakerVoice, perf: Performance | None = None) -> np.ndarray:
    """The sound for ``tag`` (any spelling in catalog.ACCEPTED_TAGS) in ``voice``, at its sample rate;
    ``perf`` (a seed's performance) stretches it and moves its pitch."""
    recipe = RECIPES[canonical(tag)]
    dur_scale, pitch_scale = perf.sound() if perf is not None else (1.0, 1.0)
    sr, n_bins = voice.sample_rate, len(voice.envelope)
    scale = FEMALE_FORMANT_SCALE if voice.f0 > FEMALE_F0 else 1.0
    freqs = np.linspace(0, sr / 2, n_bins)
    f0s, sps, aps, gains = [], [], [], []
    for seg in recipe:
        n = max(2, int(round(seg.dur * dur_scale * 1000 / FRAME_MS)))
        pts = np.asarray(seg.f0, float)
        contour = np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(pts)), pts) if len(pts) > 1 else \
            np.full(n, pts[0])
        f0s.append(contour * voice.f0 * pitch_scale)
        sps.append(np.repeat((voice.envelope * _articulation(seg.art, n_bins, sr, scale))[None], n, axis=0))
        ap_row = np.clip(seg.ap + (1 - seg.ap) * (freqs / (sr / 2)) ** 2, 1e-3, 1.0) if seg.f0[0] else np.ones(n_bins)
        aps.append(np.repeat(ap_row[None], n, axis=0))
        # amplitude: raised-cosine attack and decay inside the segment
        env = np.sin(np.pi * np.linspace(0.02, 0.98, n)) ** 0.6
        gains.append(10 ** (seg.gain_db / 10) * env ** 2)
    f0 = np.concatenate(f0s)
    sp = np.concatenate(sps) * np.concatenate(gains)[:, None]
    ap = np.concatenate(aps)
    kernel = np.ones(TIME_SMOOTH_FRAMES) / TIME_SMOOTH_FRAMES      # smooth articulatory transitions
    sp = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="same"), 0, sp) + 1e-12
    y = synthesise(WorldParams(np.ascontiguousarray(f0), np.ascontiguousarray(sp), np.ascontiguousarray(ap), sr))
    # level: the loudest segment sits at (speaker level + its gain)
    peak_gain_db = max(seg.gain_db for seg in recipe)
    y *= 10 ** ((voice.level_db + peak_gain_db - active_rms_db(y, sr, top_fraction=0.3)) / 20)
    return fade_edges(np.clip(y, -0.97, 0.97).astype(np.float32), sr, 0.005)
