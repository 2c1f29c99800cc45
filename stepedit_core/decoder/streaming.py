"""Streaming token2wav: audio tokens in as the LLM emits them, 24 kHz speech out per chunk.

Legend: rows = flow token frames (25 Hz, one vq06 code each; 3 rows per 5 mixed tokens), frames = mel frames
(50 Hz, 2 per row), samples = 24 kHz audio (480 per frame).

The official cache scheme (GH:cli/cosyvoice.py ``token2wav_stream``, flow.py ``setup_cache`` /
``inference_chunk``, flow_matching.py ``forward_chunk``), re-implemented with explicit caches:

1. **Setup**, once the first lookahead (3 rows = 5 mixed tokens) is in: the encoder runs over prompt rows +
   lookahead and keeps its caches; the DiT solver runs over the prompt frames (cond = prompt mel) and keeps,
   per Euler step and per block, the attention k/v and the causal-conv history.
2. **Chunks** of 15, 24, then 48 rows (+ 3 lookahead rows that are re-read by the next chunk): the encoder
   attends to every cached frame and the chunk; the DiT attends to the prompt frames, the newest
   ``left_context`` (96 = 2 s) generated frames, and the chunk. The last chunk takes every remaining token and
   zero-pads the lookahead, as the non-streaming encoder does.
3. **Vocoder**: ``hift_stream.HiFTStreamer`` (official): HiFT on [8 cached mel frames ‖ chunk mel], the cached
   3840-sample NSF source replacing the start of the new source, a Hamming cross-fade over the first 3840
   samples, the last 3840 samples held back except on the last chunk.

Deliberate difference: the official solver reads its noise at ``rand_noise[:, :, cache_len:]`` where cache_len
stops growing once the DiT cache is truncated, so windows get reused; here every frame takes the noise of its
absolute position (prompt frames + generated frames), the same z the non-streaming path uses. With a shared
noise buffer, a stream therefore equals the non-streaming flow run with block attention masks (tested), and
differs from the full-attention non-streaming output only through the limited context (measured in
tests/decoder/test_token2wav.py and bench/RESULTS_decoder.md).
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..errors import InvalidInputError, ModelUnavailableError
from ..tokens import GROUP_SIZE
from .flow import DEFAULT_NOISE_SEED, DiTCache, flow_rows, noise_buffer
from .flow_encoder import EncoderCache
from .hift import HiFTGenerator
from .hift_stream import HiFTStreamer

CHUNK_SIZES = (15, 24, 48)       # rows per chunk: 0.6 / 0.96 / 1.92 s, the last size repeats
LEFT_CONTEXT_FRAMES = 2 * 48     # DiT cache keeps the prompt + the newest 2 s of generated frames
MEL_CACHE_FRAMES = 8             # HiFT context frames carried over between chunks (official mel_cache_len)
ROWS_PER_GROUP = 3               # one 2+3 group of mixed tokens gives 3 flow rows


def mixed_len(rows: int) -> int:
    """Flow rows -> mixed tokens (official ``(n // 3) * 5``)."""
    return (rows // ROWS_PER_GROUP) * GROUP_SIZE


class Token2WavStream:
    """One streaming session for one prompt: ``push(tokens)`` -> new speech, ``finish()`` -> the rest.

    Tokens are mixed 2+3 ids in prompt-token space. ``noise`` is a (1, 80, N) buffer indexed by absolute
    frame (default: :func:`stepedit_core.decoder.flow.noise_buffer` of ``seed``, 600 s); pass the same buffer to the
    non-streaming ``token2wav(flow_noise=...)`` to compare the two.
    """

    def __init__(self, decoder, prompt_token, prompt_feat: torch.Tensor, embedding: torch.Tensor, *,
                 chunk_sizes: Sequence[int] = CHUNK_SIZES, n_timesteps: int | None = None,
                 noise: torch.Tensor | None = None, seed: int = DEFAULT_NOISE_SEED, hift_seed: int | None = 0,
                 hift_zero_noise: bool = False, left_context: int = LEFT_CONTEXT_FRAMES,
                 mel_cache_frames: int = MEL_CACHE_FRAMES):
        if not chunk_sizes or any(c <= 0 or c % ROWS_PER_GROUP for c in chunk_sizes):
            raise InvalidInputError(f"chunk sizes must be positive multiples of 3 rows, got {chunk_sizes}")
        if not isinstance(decoder.hift, HiFTGenerator):   # BigVGAN's 3-frame reflect context is not HiFTStreamer's
            raise ModelUnavailableError("streaming token2wav is implemented for the HiFT vocoder only; this "
                                        f"cosyvoice.yaml uses {type(decoder.hift).__name__} (use token2wav)")
        self.decoder, self.flow = decoder, decoder.flow
        self.chunk_sizes = list(chunk_sizes)
        self.n_timesteps = n_timesteps or decoder.n_timesteps
        self.noise = noise if noise is not None else noise_buffer(seed)
        self.left_context = left_context
        self.lookahead = self.flow.pre_lookahead_len
        self._raw_prompt = (prompt_token, prompt_feat, embedding)
        _, self.prompt, self.prompt_feat, emb = decoder.prepare([], prompt_token, prompt_feat, embedding)
        self.spk = self.flow.project_speaker(emb)
        self.prompt_frames = self.prompt_feat.shape[1]
        gen = torch.Generator(device=decoder.device)
        gen.seed() if hift_seed is None else gen.manual_seed(hift_seed)
        self.vocoder = HiFTStreamer(decoder.hift, mel_cache_frames=mel_cache_frames, generator=gen,
                                    zero_noise=hift_zero_noise)
        self.pending: list[int] = []
        self.enc_cache: EncoderCache | None = None
        self.dit_caches: list[DiTCache] | None = None
        self.frames = 0                 # generated mel frames so far
        self.mels: list[torch.Tensor] = []
        self.done = False

    @property
    def mel(self) -> torch.Tensor:
        """Generated mel so far (1, 80, frames)."""
        return torch.cat(self.mels, dim=2) if self.mels else self.prompt_feat.new_zeros(1, 80, 0)

    def _rows(self, tokens: Sequence[int]) -> torch.Tensor:
        return flow_rows(tokens).to(self.prompt.device)

    def _solve(self, mu: torch.Tensor, cond: torch.Tensor, offset: int) -> torch.Tensor:
        z = self.flow.noise_for(mu.shape[2], self.noise, DEFAULT_NOISE_SEED, mu, offset=offset)
        mel, self.dit_caches = self.flow.decoder(z, mu, None, self.spk, cond, self.n_timesteps,
                                                 caches=self.dit_caches or [])
        for cache in self.dit_caches:
            cache.truncate(self.prompt_frames, self.left_context)
        return mel

    def _setup(self) -> None:
        rows = torch.cat([self.prompt, self._rows(self.pending[:mixed_len(self.lookahead)])], dim=1)
        mu, self.enc_cache = self.flow.encode_chunk(rows, None, last=False)
        assert mu.shape[2] == self.prompt_frames, (mu.shape, self.prompt_frames)
        self._solve(mu, self.prompt_feat.transpose(1, 2), 0)

    def _chunk(self, tokens: Sequence[int], last: bool) -> torch.Tensor:
        mu, self.enc_cache = self.flow.encode_chunk(self._rows(tokens), self.enc_cache, last)
        mel = self._solve(mu, torch.zeros_like(mu), self.prompt_frames + self.frames)
        self.frames += mel.shape[2]
        self.mels.append(mel)
        return self.vocoder.step(mel, last)

    @torch.inference_mode()
    def push(self, tokens: Sequence[int] = (), last: bool = False) -> torch.Tensor:
        """Add mixed tokens; returns the speech (1, k) float32 CPU that became final (k may be 0)."""
        if self.done:
            raise InvalidInputError("this stream is finished")
        self.pending.extend(int(t) for t in tokens)
        out = []
        look = mixed_len(self.lookahead)
        if self.enc_cache is None:
            if len(self.pending) >= look:
                self._setup()
            elif last:
                self.done = True
                if not self.pending:
                    return torch.zeros(1, 0)
                # shorter than one lookahead: nothing to stream, decode it in one go
                mel = self.decoder.token2mel(self.pending, *self._raw_prompt, n_timesteps=self.n_timesteps,
                                             flow_noise=self.noise)
                self.mels.append(mel)
                return self.vocoder.step(mel, last=True).float().cpu()
        while self.enc_cache is not None:     # whole chunks first, also when ``last`` (same as token by token)
            size = mixed_len(self.chunk_sizes[0])
            if len(self.pending) < size + look:
                break
            out.append(self._chunk(self.pending[:size + look], last=False))
            self.pending = self.pending[size:]
            if len(self.chunk_sizes) > 1:
                self.chunk_sizes.pop(0)
        if last and self.enc_cache is not None:
            out.append(self._chunk(self.pending, last=True))
            self.pending, self.done = [], True
        return torch.cat(out, dim=1).float().cpu() if out else torch.zeros(1, 0)

    def finish(self) -> torch.Tensor:
        """Flush: decode every remaining token and release the held-back tail."""
        return self.push((), last=True)
