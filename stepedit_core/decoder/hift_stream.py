"""Chunked HiFT vocoding for streaming token2wav (the HiFT part; decoder/streaming.py is the flow part).

The official scheme: each chunk is vocoded on [8 cached mel frames ‖ new mel], the NSF source of the cached
part is reused as the source prefix, the overlap is cross-faded with a Hamming window over 2·3840 samples,
and 3840 samples are held back except on the last chunk.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..errors import InvalidInputError
from .hift import F0_CONTEXT_FRAMES, HiFTGenerator

STREAM_MEL_CACHE_FRAMES = 8      # GH:cli/cosyvoice.py mel_cache_len: mel frames re-fed with the next chunk


class HiFTStreamer:
    """Chunked HiFT vocoding as the official streaming wrapper does it (GH:cli/cosyvoice.py, §13).

    Per chunk of new mel frames ``(1, 80, t)``:
      1. prepend the last ``mel_cache_frames`` (8) mel frames of the previous chunk;
      2. vocode, overwriting the first source samples with the cached source (8·480 = 3840 samples), so the
         excitation over the re-fed frames is the one already used;
      3. cross-fade the first 3840 output samples with the 3840 samples held back from the previous chunk,
         with the two halves of a Hamming window of 2·3840 (``normalized_fade=True`` divides by their sum, a
         true cross-fade; the official halves sum to ≈1.08 over the overlap);
      4. cache the last 8 mel frames, 3840 source and 3840 speech samples; hold the speech tail back except
         on the last chunk.
    Joined outputs have exactly 480 samples per mel frame fed. Not thread-safe: one streamer per session.
    Randomness: zeros when ``zero_noise`` (deterministic), else draws from ``generator`` per chunk.

    The official scheme restarts the NSF phase integration at every chunk, so after the first boundary the
    waveform decorrelates from a one-shot call (same spectrum, other phases). ``phase_continuous=True`` (not
    official) instead carries the accumulated harmonic phase across chunks in float64, computes f0 with
    ``F0_CONTEXT_FRAMES`` extra mel frames of left context, and recomputes the overlap's source rather than
    reusing the cached one: the joined output then follows the one-shot output up to the decoder's edge effects.
    """

    def __init__(self, hift: HiFTGenerator, *, mel_cache_frames: int = STREAM_MEL_CACHE_FRAMES,
                 generator: Optional[torch.Generator] = None, zero_noise: bool = False,
                 normalized_fade: bool = False, phase_continuous: bool = False):
        self.hift = hift
        self.phase_continuous = phase_continuous
        self.mel_cache_frames = int(mel_cache_frames)
        self.overlap = self.mel_cache_frames * hift.cfg.samples_per_frame         # 3840 samples
        self.generator = generator
        self.zero_noise = zero_noise
        window = torch.from_numpy(np.hamming(2 * self.overlap)).float()          # symmetric, as np.hamming
        self.fade_in, self.fade_out = window[:self.overlap], window[self.overlap:]
        if normalized_fade:
            total = self.fade_in + self.fade_out
            self.fade_in, self.fade_out = self.fade_in / total, self.fade_out / total
        self.reset()

    def reset(self) -> None:
        self.cache_mel: Optional[torch.Tensor] = None
        self.cache_source: Optional[torch.Tensor] = None
        self.cache_speech: Optional[torch.Tensor] = None
        self.f0_context: Optional[torch.Tensor] = None      # mel frames just before the window (f0 context)
        self.start_cycles: Optional[torch.Tensor] = None    # NSF phase (cycles) before the window, float64
        self.finished = False

    @torch.inference_mode()
    def step(self, mel: torch.Tensor, last: bool = False) -> torch.Tensor:
        """New mel frames (1, 80, t) -> the next waveform piece (1, n). After ``last=True`` call ``reset``."""
        if self.finished:
            raise InvalidInputError("this HiFT stream is finished; call reset() to start a new one")
        if mel.dim() != 3 or mel.shape[0] != 1:
            raise InvalidInputError(f"stream chunks must be (1, 80, t), got {tuple(mel.shape)}")
        if self.cache_mel is not None:
            mel = torch.cat([self.cache_mel, mel], dim=2)
        if not last and mel.shape[2] < self.mel_cache_frames:
            raise InvalidInputError(f"a non-final stream chunk needs at least {self.mel_cache_frames} mel frames")
        length = mel.shape[2] * self.hift.cfg.samples_per_frame
        rand_ini = noise = None
        if self.zero_noise:
            rand_ini = mel.new_zeros(1, self.hift.cfg.num_harmonic_sines)
            noise = mel.new_zeros(1, length, self.hift.cfg.num_harmonic_sines)
        if self.phase_continuous:
            speech, source = self._continued(mel, noise)
        else:
            speech, source = self.hift.inference(mel, self.cache_source, rand_ini=rand_ini, noise=noise,
                                                 generator=self.generator)
        if self.cache_speech is not None:
            n = self.overlap
            speech = speech.clone()
            speech[:, :n] = speech[:, :n] * self.fade_in.to(speech) + self.cache_speech * self.fade_out.to(speech)
        self.cache_mel = mel[:, :, -self.mel_cache_frames:].clone()
        self.cache_source = source[:, :, -self.overlap:].clone()
        self.cache_speech = speech[:, -self.overlap:].clone()
        if last:
            self.finished = True
            return speech
        return speech[:, :-self.overlap]

    def _continued(self, mel: torch.Tensor, noise: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Phase-continuous vocoding of one window (cached frames + new ones); updates the phase state."""
        hift, keep = self.hift, mel.shape[2] - self.mel_cache_frames    # frames before the next window
        ctx = 0 if self.f0_context is None else self.f0_context.shape[2]
        f0_in = mel if self.f0_context is None else torch.cat([self.f0_context, mel], dim=2)
        f0 = hift.f0_predictor(f0_in)[:, ctx:]
        if noise is None:
            noise = torch.randn(1, mel.shape[2] * hift.cfg.samples_per_frame, hift.cfg.num_harmonic_sines,
                                generator=self.generator)
        source = hift.m_source.continued_sine_waves(f0, noise, self.start_cycles)
        advance = hift.m_source.frame_cycles(f0[:, :max(keep, 0)]).sum(dim=1)
        self.start_cycles = torch.frac(advance if self.start_cycles is None else self.start_cycles + advance)
        self.f0_context = f0_in[:, :, :ctx + max(keep, 0)][:, :, -F0_CONTEXT_FRAMES:]
        return hift.decode(mel, source), source
