"""Approximate voice cloning: move a stock TTS voice toward a prompt speaker with WORLD.

Three speaker properties are transferred (measured on voiced frames of both clips):
- pitch: the TTS log-F0 is mapped to the prompt's log-F0 mean and spread;
- vocal-tract length: a frequency warp of the spectral envelope, the factor that best matches the two
  average log envelopes (grid search between WARP_MIN and WARP_MAX);
- timbre: a smoothed, partial equaliser from the remaining average-envelope difference;
and the speech level is matched. This is not a speaker model: it cannot copy accent or voice quality.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..listen.dsp import active_rms_db
from .prosody import FRAME_MS, F0_CEIL, F0_FLOOR, WorldParams, analyse, soft_limit, synthesise, warp_envelope
from .variation import Performance

WARP_MIN, WARP_MAX, WARP_STEPS = 0.85, 1.2, 15
MATCH_BAND_HZ = (200.0, 5000.0)     # envelope band compared for the warp and the equaliser
EQ_AMOUNT = 0.6                     # fraction of the residual envelope difference applied
EQ_LIMIT_DB = 9.0
EQ_SMOOTH_HZ = 400.0
SPREAD_RATIO_LIMITS = (0.5, 2.0)


@dataclass(frozen=True)
class VoiceProfile:
    """Average properties of a speaker: log-F0 mean/std over voiced frames, mean log envelope, level."""
    logf0_mean: float
    logf0_std: float
    log_envelope: np.ndarray
    level_db: float
    sample_rate: int

    @property
    def median_f0(self) -> float:
        return float(np.exp(self.logf0_mean))


def profile(p: WorldParams, wav: np.ndarray) -> VoiceProfile:
    voiced = p.f0 > 0
    logf = np.log(p.f0[voiced]) if voiced.sum() >= 5 else np.log(np.array([120.0, 130.0]))
    frames = p.sp[voiced] if voiced.sum() >= 5 else p.sp
    return VoiceProfile(float(logf.mean()), float(logf.std() + 1e-6), np.log(frames + 1e-12).mean(axis=0),
                        active_rms_db(wav, p.sample_rate), p.sample_rate)


def estimate_profile(wav: np.ndarray, sample_rate: int) -> VoiceProfile:
    return profile(analyse(wav, sample_rate), wav)


def _band(n_bins: int, sample_rate: int) -> np.ndarray:
    freqs = np.linspace(0, sample_rate / 2, n_bins)
    return (freqs >= MATCH_BAND_HZ[0]) & (freqs <= MATCH_BAND_HZ[1])


def best_warp(src_log_env: np.ndarray, dst_log_env: np.ndarray, sample_rate: int) -> float:
    """Warp factor that makes ``src`` envelope's shape closest to ``dst`` (level and tilt ignored)."""
    band = _band(len(src_log_env), sample_rate)
    x = np.arange(band.sum())

    def shape(v):
        v = v[band]
        return v - np.polyval(np.polyfit(x, v, 1), x)      # remove level and linear tilt

    target = shape(dst_log_env)
    best, best_err = 1.0, np.inf
    for a in np.linspace(WARP_MIN, WARP_MAX, WARP_STEPS):
        warped = np.log(warp_envelope(np.exp(src_log_env)[None], a)[0] + 1e-12)
        err = float(np.mean((shape(warped) - target) ** 2))
        if err < best_err:
            best, best_err = float(a), err
    return best


def _smooth(v: np.ndarray, sample_rate: int) -> np.ndarray:
    hz_per_bin = sample_rate / 2 / (len(v) - 1)
    w = max(1, int(EQ_SMOOTH_HZ / hz_per_bin))
    k = np.hanning(2 * w + 1)
    return np.convolve(np.pad(v, w, mode="edge"), k / k.sum(), mode="valid")


def adapt(wav: np.ndarray, sample_rate: int, target: VoiceProfile,
          perf: Performance | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """``wav`` (TTS speech) moved toward ``target``, in the seed's intonation ``perf`` if given (its timing comes
    from Kokoro's speed; a WORLD time warp here blurred short words: "we" was heard as "he"); returns the audio
    and what was applied."""
    p = analyse(wav, sample_rate)
    src = profile(p, wav)
    voiced = p.f0 > 0
    ratio = float(np.clip(target.logf0_std / src.logf0_std, *SPREAD_RATIO_LIMITS))
    logf = np.log(np.where(voiced, p.f0, 1.0))
    mapped = target.logf0_mean + (logf - src.logf0_mean) * ratio
    if perf is not None and voiced.any():
        melody = perf.melody_st(len(logf), FRAME_MS * 1e-3)
        mapped = mapped + (melody - melody[voiced].mean()) * np.log(2) / 12
    f0 = np.where(voiced, np.clip(np.exp(mapped), F0_FLOOR, F0_CEIL), 0.0)
    warp = best_warp(src.log_envelope, target.log_envelope, sample_rate)
    sp = warp_envelope(p.sp, warp)
    warped_mean = np.log(sp[voiced] + 1e-12).mean(axis=0) if voiced.sum() >= 5 else np.log(sp + 1e-12).mean(axis=0)
    diff = target.log_envelope - warped_mean
    diff -= np.median(diff[_band(len(diff), sample_rate)])          # level is matched separately
    eq_db = np.clip(_smooth(diff, sample_rate) * 10 / np.log(10) * EQ_AMOUNT, -EQ_LIMIT_DB, EQ_LIMIT_DB)
    sp = sp * 10 ** (eq_db / 10)[None, :]
    y = synthesise(WorldParams(f0, sp, p.ap, sample_rate))
    y *= 10 ** ((target.level_db - active_rms_db(y, sample_rate)) / 20)
    info = {"f0_target_hz": target.median_f0, "f0_source_hz": src.median_f0, "f0_spread_ratio": ratio,
            "formant_warp": warp}
    return soft_limit(y.astype(np.float32)), info
