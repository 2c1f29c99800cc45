"""What a StepAudioEngine runs with, around the request flow of engine.py: options, device and dtype, seeds,
and the prompt encodings with their cache.

- :class:`EngineOptions`: runtime options; the defaults are the official behaviour unless marked otherwise.
- :func:`pick_device` / :func:`pick_llm_dtype`: cuda > mps > cpu; LLM dtype cuda bf16, mps fp16, cpu fp32.
- :func:`derive_seeds`: one request seed -> independent sub-seeds for LLM sampling, flow noise, HiFT noise and
  the vq02 dither, per long-form piece (``numpy.random.SeedSequence``; the global RNGs are never touched).
- :class:`PromptEncoder`: one clip (<= 30 s, any rate) -> :class:`PromptAudio`, i.e. the 2+3 mixed tokens of
  the audio tokenizer (vq02 + vq06) and the decoder's prompt mel (1, T, 80) and CAM++ x-vector (1, 192).
  Encodings are kept in a bounded LRU (:class:`PromptCache`) keyed by the SHA-256 of the samples and rate,
  so iterating edits on the same take, or cloning again from the same prompt, tokenizes it once; a library
  voice's :class:`~stepedit_core.interface.PromptTokenStore` keeps the tokens across processes, keyed by the
  tokenizer's fingerprint (tokens read back give whole-group vq02 / vq06 codes: the tail codes that fill no
  2+3 group, which the LLM never sees, are not stored).
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from . import tags
from .audio import peak_cap
from .batching import MAX_BATCH_KV_BYTES
from .errors import InvalidInputError, TokenStreamError
from .interface import PromptTokenStore
from .model.prefix_cache import PREFIX_CACHE_BYTES
from .tokens import check_groups, split_vq0206, tokens_to_str

LONGFORM_MAX_S = 300.0          # longest input accepted; split into <= 30 s pieces (longform.MAX_PIECE_S)
PROMPT_CACHE_SIZE = 16          # prompt encodings kept (LRU); ~0.3 MB each for 30 s
STORE_DIGEST_CHARS = 16         # hex chars of the samples' SHA-256 in a voice's token-cache key (64 bits)


@dataclass(frozen=True)
class EngineOptions:
    """Runtime options; the defaults are the official behaviour unless a comment says otherwise."""
    # LLM sampling (official: temperature 0.7, top-k 50, top-p 1.0, repetition guard on)
    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 1.0
    # mask LLM logits to the 2+3 audio-token pattern (not official; guarantees a decodable stream)
    constrained: bool = False
    # cap on new LLM tokens; None: generate.max_new_tokens_for_audio / _for_text
    max_new_tokens: int | None = None
    # prepend <s> to every encoded prompt segment (as the official tts.py does); False = chat-template layout
    segment_bos: bool = False
    # vq02 front-end dither: 0 deterministic (default), 1.0 official (seeded here)
    vq02_dither: float = 0.0
    # round the prompt mel and x-vector through bf16 before the flow, as tts.py does
    official_bf16_roundtrip: bool = True
    # prompt encodings kept per audio content hash (0 disables the cache)
    prompt_cache_size: int = PROMPT_CACHE_SIZE
    # longest input; longer than 30 s is processed in pieces
    max_input_seconds: float = LONGFORM_MAX_S
    # transcripts of long-edit pieces: "proportional" (split the given text by voiced time) or "asr"
    # (transcribe each piece with the offline whisper of stepedit_core.lite; the given text is not used)
    longform_transcripts: str = "proportional"
    # refuse requests the engine estimates to need longer than this (seconds; StepAudioEngine.estimate_seconds).
    # None: the device's default, validation.MAX_NEURAL_REQUEST_SECONDS on CUDA (one ZeroGPU allocation) and
    # validation.MAX_NEURAL_CPU_REQUEST_SECONDS on the CPU / MPS; math.inf: no cap
    max_request_seconds: float | None = None
    # bytes of prompt keys / values kept for reuse (model.prefix_cache; LRU, 0 disables it)
    prefix_cache_bytes: int = PREFIX_CACHE_BYTES
    # bytes of keys / values one batch of candidates may hold (stepedit_core.batching; refused up front above)
    max_batch_kv_bytes: int = MAX_BATCH_KV_BYTES
    # with --quantization int8 on the CPU: the lm_head too in int8 per output channel (not official; faster
    # steps, flat in the batch width; logits differ in the last bits, agreement in bench/RESULTS_batch.md)
    int8_lm_head: bool = False
    # paralinguistic tag spellings the loaded weights expect (tags.py): "2025" (default) or "2026"
    tag_vocabulary: str = field(default_factory=tags.vocabulary_from_env)


# -- device, dtype, seeds ------------------------------------------------------------------------------
def pick_device(device: str | None) -> torch.device:
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


DTYPE_NAMES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
               "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}


def pick_llm_dtype(device: torch.device, dtype: str | torch.dtype | None) -> torch.dtype:
    """cuda bf16, mps fp16, cpu fp32 unless the caller says otherwise; a dtype the device cannot run fails
    here with one line naming the dtypes that work (:func:`device_dtypes`)."""
    if isinstance(dtype, torch.dtype):
        chosen = dtype
    elif dtype:
        if dtype not in DTYPE_NAMES:
            raise InvalidInputError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_NAMES)}")
        chosen = DTYPE_NAMES[dtype]
    else:
        return {"cuda": torch.bfloat16, "mps": torch.float16}.get(device.type, torch.float32)
    works = device_dtypes(device)
    if chosen not in works.values():
        raise InvalidInputError(f"dtype {dtype if isinstance(dtype, str) else chosen} cannot run on "
                                f"{device.type} here; use {' or '.join(works)}")
    return chosen


def device_dtypes(device: torch.device) -> dict[str, torch.dtype]:
    """The LLM dtypes ``device`` runs: every CPU runs fp32 / bf16 / fp16 (bf16 is a memory saving, not a
    speed-up, without AVX512-BF16/AMX: BENCHMARKS.md); CUDA bf16 needs compute capability >= 8.0;
    MPS bf16 needs macOS 14."""
    out = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if device.type == "cuda" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        del out["bfloat16"]
    if device.type == "mps":
        newer = getattr(torch.backends.mps, "is_macos_or_newer", None)
        if newer is None or not newer(14, 0):
            del out["bfloat16"]
    return out


def derive_seeds(seed: int, piece: int = 0) -> dict[str, int]:
    """Independent sub-seeds of one request seed for each random stage (and each long-form piece)."""
    state = np.random.SeedSequence([int(seed), int(piece)]).generate_state(4, dtype=np.uint64)
    return {name: int(s % (2**63)) for name, s in zip(("llm", "flow", "hift", "vq02"), state)}


# -- prompt encodings ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PromptAudio:
    """What one clip contributes as decoder prompt / edit source (after the official preprocessing, audio.py)."""
    tokens: tuple[int, ...]          # mixed 2+3 stream, prompt-token space
    vq02: tuple[int, ...]
    vq06: tuple[int, ...]
    speech_feat: torch.Tensor        # (1, T_mel, 80) log-mel of the peak-capped clip at 24 kHz (untrimmed)
    embedding: torch.Tensor          # (1, 192) CAM++ x-vector
    seconds: float                   # duration of the clip

    @property
    def token_str(self) -> str:
        return tokens_to_str(self.tokens)


def audio_hash(wav: np.ndarray, sample_rate: int) -> str:
    h = hashlib.sha256()
    h.update(str(int(sample_rate)).encode())
    h.update(np.ascontiguousarray(wav, dtype=np.float32).tobytes())
    return h.hexdigest()


class PromptCache:
    """A small thread-safe LRU of prompt encodings; size 0 disables it."""

    def __init__(self, size: int):
        self.size, self.data, self.lock = size, OrderedDict(), threading.Lock()
        self.hits = self.misses = 0

    def get(self, key):
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                self.hits += 1
                return self.data[key]
            self.misses += 1
            return None

    def put(self, key, value) -> None:
        if self.size <= 0:
            return
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.data.clear()


class PromptEncoder:
    """Audio tokenizer + the decoder's prompt front end, behind a :class:`PromptCache`.

    ``audio_tokenizer.tokenize(wav, sr, seed=...)`` gives the vq02 / vq06 / mixed tokens;
    ``decoder.prompt_features(wav, sr)`` the prompt mel and CAM++ x-vector. ``vq02_dither`` is fixed for the
    encoder's life (it decides whether codes depend on the seed, hence the cache key).
    """

    def __init__(self, audio_tokenizer, decoder, *, vq02_dither: float = 0.0, cache_size: int = PROMPT_CACHE_SIZE):
        self.audio_tokenizer, self.decoder = audio_tokenizer, decoder
        self.vq02_dither = vq02_dither
        self.cache = PromptCache(cache_size)

    def encode(self, wav: np.ndarray, sample_rate: int, *, seed: int | None = None,
               timings: dict | None = None, store: PromptTokenStore | None = None) -> PromptAudio:
        """Tokens, prompt mel and x-vector of one clip (<= 30 s), cached by content hash.

        The cache key includes the vq02 dither seed only when dither is on (codes are then seed-dependent).
        ``store`` (a library voice's token cache) supplies the tokens when it holds them for this tokenizer
        and these samples, and receives them after a tokenization; it is not used with dither on.
        """
        digest = audio_hash(wav, sample_rate)
        key = (digest, derive_seeds(seed or 0)["vq02"] if self.vq02_dither else None)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        store_key = self.store_key(digest) if store is not None else None
        t0 = time.perf_counter()
        w = peak_cap(np.asarray(wav, dtype=np.float32))       # GH:tts.py preprocess_prompt_wav
        stored = _stored_tokens(store, store_key)
        with torch.inference_mode():
            if stored is not None:
                vq02, vq06 = split_vq0206(stored)
            else:
                toks = self.audio_tokenizer.tokenize(w, sample_rate, seed=key[1])
                stored, vq02, vq06 = tuple(toks.tokens), tuple(toks.vq02), tuple(toks.vq06)
                if store_key is not None and stored:
                    store.store(store_key, stored)
            t1 = time.perf_counter()
            speech_feat, embedding = self.decoder.prompt_features(w, sample_rate)   # (1, T, 80), (1, 192)
        prompt = PromptAudio(tokens=tuple(stored), vq02=tuple(vq02), vq06=tuple(vq06),
                             speech_feat=speech_feat, embedding=embedding, seconds=len(w) / sample_rate)
        if timings is not None:
            timings["tokenize"] = timings.get("tokenize", 0.0) + t1 - t0
            timings["prompt_features"] = timings.get("prompt_features", 0.0) + time.perf_counter() - t1
        if not prompt.tokens:
            raise InvalidInputError("the audio holds no speech the tokenizer can encode (too short or silent)")
        self.cache.put(key, prompt)
        return prompt

    def store_key(self, digest: str) -> str | None:
        """``<tokenizer fingerprint>/<first 16 hex of the samples' hash>``: the key a voice's token cache is
        read and written under; None (no caching) when the tokenizer has no fingerprint or dithers."""
        fingerprint = getattr(self.audio_tokenizer, "fingerprint", None)
        if self.vq02_dither or not callable(fingerprint):
            return None
        return f"{fingerprint()}/{digest[:STORE_DIGEST_CHARS]}"


def _stored_tokens(store: PromptTokenStore | None, key: str | None) -> tuple[int, ...] | None:
    """The tokens ``store`` holds under ``key`` when they are whole 2+3 groups; anything else is ignored
    (and overwritten after tokenizing)."""
    if store is None or key is None:
        return None
    tokens = store.load(key)
    if not tokens:
        return None
    try:
        check_groups(tokens)
    except (TokenStreamError, ValueError, TypeError):
        return None
    return tuple(int(t) for t in tokens)
