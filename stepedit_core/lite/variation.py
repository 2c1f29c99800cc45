"""Seeded performances: what a seed changes in a lite take.

The neural engine samples its audio tokens, so a new seed is a new reading of the same words. The lite
engine's stages are deterministic signal processing; without this module every seed gave the same bytes and
candidates, tries and re-rolls did nothing. A :class:`Performance` is one seed's reading:

- ``rate``: the overall speaking rate (Kokoro's ``speed`` for a clone; a small factor for prosody edits);
- ``melody``: a smooth random intonation curve added to log-F0 (semitones, one knot every MELODY_KNOT_S);
- ``tempo``: a smooth random local-tempo curve for edits (some stretches a little faster, others slower, the total
  duration kept), so words land at different times;
- ``sound``: the duration and pitch of inserted non-verbal sounds.

Rates come from RATE_STEPS indexed by ``seed % len(RATE_STEPS)``: the app's candidates use consecutive seeds,
so any five consecutive seeds get five different rates; the curves come from ``numpy.random.default_rng``
on the seed, so the same seed gives the same bytes. Denoise and silence removal are restorations with one
right answer: the seed does not change them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE_STEPS = (1.0, 1.06, 0.94, 1.03, 0.97)     # relative speaking rate of seed % 5 (any 5 consecutive differ)
CLONE_RATE_SPAN = 1.5          # a clone varies its rate 1.5x as much (Kokoro's speed: 0.91 .. 1.09)
EDIT_RATE_SPAN = 0.5           # prosody / speed edits keep their preset rate within +-3 %
MELODY_KNOT_S = 0.45           # one intonation knot per 0.45 s (about a stressed syllable)
MELODY_ST = 1.2                # knot standard deviation, semitones
MELODY_LIMIT_ST = 2.2
TEMPO_KNOT_S = 0.7             # one local-tempo knot per 0.7 s (about a word group)
TEMPO_STD = 0.12               # knot standard deviation of the log local rate
TEMPO_LIMIT = 0.25             # local rate within exp(+-0.25) = 0.78 .. 1.28 of the mean
SOUND_SCALES = (1.0, 1.15, 0.87, 1.08, 0.93)  # non-verbal sound duration of seed % 5
SOUND_PITCH_ST = 1.5           # +- range of a non-verbal sound's pitch, semitones
_SALT = 0x5EED                 # keeps these streams apart from other users of the same seed


@dataclass(frozen=True)
class Performance:
    """One seed's way of saying the same words (see the module docstring)."""
    seed: int
    step: float                # RATE_STEPS entry, 1.0 = the plain reading's rate

    @classmethod
    def from_seed(cls, seed: int | None) -> "Performance":
        s = int(seed or 0)
        return cls(seed=s, step=RATE_STEPS[s % len(RATE_STEPS)])

    def rate(self, span: float) -> float:
        """Rate factor for a stage: the step's distance from 1, times ``span``."""
        return 1.0 + (self.step - 1.0) * span

    def _knots(self, stream: int, n: int, std: float, limit: float) -> np.ndarray:
        rng = np.random.default_rng([_SALT, stream, self.seed])
        return np.clip(rng.normal(0.0, std, n), -limit, limit)

    def _curve(self, stream: int, n_frames: int, frame_s: float, knot_s: float, std: float,
               limit: float) -> np.ndarray:
        """A smooth curve over ``n_frames`` frames: knots every ``knot_s`` seconds, raised-cosine between."""
        n_knots = int(np.ceil(n_frames * frame_s / knot_s)) + 2
        knots = self._knots(stream, n_knots, std, limit)
        pos = np.arange(n_frames) * frame_s / knot_s             # knot units
        lo = np.floor(pos).astype(int)
        w = 0.5 - 0.5 * np.cos(np.pi * (pos - lo))
        return knots[lo] * (1 - w) + knots[lo + 1] * w

    def melody_st(self, n_frames: int, frame_s: float) -> np.ndarray:
        """(n_frames,) intonation offsets in semitones, zero mean over the clip."""
        if n_frames == 0:
            return np.zeros(0)
        c = self._curve(1, n_frames, frame_s, MELODY_KNOT_S, MELODY_ST, MELODY_LIMIT_ST)
        return c - c.mean()

    def tempo(self, n_frames: int, frame_s: float) -> np.ndarray:
        """(n_frames,) local rate factors around 1 (geometric mean 1)."""
        if n_frames == 0:
            return np.ones(0)
        c = self._curve(2, n_frames, frame_s, TEMPO_KNOT_S, TEMPO_STD, TEMPO_LIMIT)
        return np.exp(c - c.mean())

    def positions(self, n_in: int, n_out: int, frame_s: float) -> np.ndarray:
        """(n_out,) input frame positions read by each output frame: input frame i lasts 1 / tempo[i]
        output frames, scaled so ``n_in`` frames fill exactly ``n_out``."""
        if n_in < 2 or n_out < 2:
            return np.linspace(0, max(0, n_in - 1), max(n_out, 0))
        dwell = 1.0 / self.tempo(n_in, frame_s)
        out_at = np.concatenate([[0.0], np.cumsum(dwell[:-1])])     # output time of each input frame
        out_at *= (n_out - 1) / out_at[-1]
        return np.interp(np.arange(n_out), out_at, np.arange(n_in, dtype=np.float64))

    def sound(self) -> tuple[float, float]:
        """(duration factor, pitch factor) of inserted non-verbal sounds."""
        dur = SOUND_SCALES[self.seed % len(SOUND_SCALES)]
        st = float(self._knots(3, 1, SOUND_PITCH_ST / 2, SOUND_PITCH_ST)[0])
        return dur, 2 ** (st / 12)
