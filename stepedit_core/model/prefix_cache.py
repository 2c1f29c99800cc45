"""Block-wise prefill and a prefix KV cache for the Step1 LLM: a prompt that starts like an earlier one reuses
that prompt's keys / values and prefills only the rest.

Prompts of one voice share a long head: the clone system prompt holds the speaker's prompt text and audio
tokens (script lines of one speaker, speech calls with a saved voice), and an edit prompt repeats whole when a
take is edited again. Prefilling that head costs seconds on the CPU (about 15 ms a token at real size, int8).

Blocks: every prefill runs in blocks ending at the multiples of ``PREFILL_BLOCK_TOKENS`` and at the
boundaries the caller names (the end of the voice's part of a clone prompt, of the system part of an edit
prompt: positions fixed by the prompt itself), whether or not anything is cached. A block's keys / values then depend only on the tokens up to its end, computed by
the same forwards of the same shapes, so a cache hit gives bit-identical keys / values, logits and sampled ids
to a cold run, on every device and dtype (int8 dynamic quantization scales each forward's activations as a
whole; a different split would change them).

The cache (:class:`PrefixCache`) holds whole blocks, each keyed by a SHA-256 chain over the model-weights
identity and every token up to the block's end (the exact prefix), least recently used first out, bounded in
bytes (``EngineOptions.prefix_cache_bytes``). A lookup walks the chain from the first block and stops at the
first miss; it never reuses the block holding the prompt's last token, whose logits the sampler needs.
"""
from __future__ import annotations

import hashlib
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import torch

from .kv_cache import StaticKVCache

PREFILL_BLOCK_TOKENS = 64           # tokens per prefill forward; the reuse granularity of the prefix cache
# Default byte bound: at real size (32 layers, 4 KV groups, head 64, fp32) a token's keys + values take 64 KiB;
# the voice part of a clone prompt of a 5 s voice (~310 tokens) ~19 MiB: about 13 voices. Counted in the
# 8 GB peak RSS budget of the int8 CPU engine (BENCHMARKS.md "Batched candidates").
PREFIX_CACHE_BYTES = 256 * 2 ** 20
_IDENTITY_ATTR = "_stepedit_weights_identity"


def weights_identity(model) -> str:
    """A name for ``model``'s current weights: a random id given to the model object on first use, plus the
    sum of its parameters' in-place version counters (a fine-tuning step changes it), so that two models, or
    one model before and after its weights change, never share cached keys / values."""
    ident = getattr(model, _IDENTITY_ATTR, None)
    if ident is None:
        ident = uuid.uuid4().hex
        setattr(model, _IDENTITY_ATTR, ident)
    version = 0
    for p in model.parameters():
        try:
            version += p._version
        except RuntimeError:        # inference tensors keep no version counter (and cannot be trained)
            pass
    return f"{ident}:{version}"


@dataclass(frozen=True)
class _Block:
    k: torch.Tensor                 # (L, G, P, D): every layer's keys of the block's P positions
    v: torch.Tensor

    @property
    def nbytes(self) -> int:
        return 2 * self.k.numel() * self.k.element_size()


class PrefixCache:
    """Cached prompt blocks, LRU, at most ``max_bytes`` (0 disables it). Thread-safe."""

    def __init__(self, max_bytes: int = PREFIX_CACHE_BYTES):
        if max_bytes < 0:
            raise ValueError(f"prefix_cache_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._blocks: OrderedDict[bytes, _Block] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0
        self.hits = 0               # prompts that reused at least one block
        self.misses = 0
        self.reused_tokens = 0

    def __len__(self) -> int:
        return len(self._blocks)

    @staticmethod
    def block_keys(identity: str, ids: Sequence[int], ends: Sequence[int]) -> list[bytes]:
        """The keys of the blocks of ``ids`` ending at ``ends`` (from 0, in order): each the SHA-256 of the
        previous key and the block's tokens (the first block's "previous key" is the weights identity)."""
        keys, prev, start = [], identity.encode(), 0
        for end in ends:
            prev = hashlib.sha256(prev + b"|" + ",".join(map(str, ids[start:end])).encode()).digest()
            keys.append(prev)
            start = end
        return keys

    def restore(self, identity: str, ids: Sequence[int], cache: StaticKVCache, boundaries: Sequence[int] = ()
                ) -> int:
        """Copy the longest cached block prefix of ``ids`` (never its last token) into the empty one-row
        ``cache``; returns the number of positions restored (a block end, see :func:`block_ends`)."""
        if self.max_bytes == 0:
            return 0
        ends = [e for e in block_ends(len(ids), boundaries) if e < len(ids)]
        keys = self.block_keys(identity, ids, ends)
        found: list[_Block] = []
        with self._lock:
            for key in keys:
                block = self._blocks.get(key)
                if block is None:
                    break
                found.append(block)
            for key in reversed(keys[:len(found)]):      # the first blocks end up most recent: evicted last
                self._blocks.move_to_end(key)
            self.hits += bool(found)
            self.misses += not found
        a = 0
        for block in found:
            n = block.k.shape[2]
            for layer in range(len(cache.k)):
                cache.k[layer][0, :, a:a + n] = block.k[layer]
                cache.v[layer][0, :, a:a + n] = block.v[layer]
            a += n
        cache.length = a
        self.reused_tokens += a
        return a

    def store(self, identity: str, ids: Sequence[int], cache: StaticKVCache, boundaries: Sequence[int] = ()
              ) -> None:
        """Keep every block of ``ids`` that the one-row ``cache`` holds and this cache lacks (the last, partial
        block only when its end is a block end of longer prompts too: a multiple of the block or a boundary)."""
        if self.max_bytes == 0:
            return
        n = min(len(ids), cache.length)
        ends = [e for e in block_ends(n, boundaries) if e < n or e % PREFILL_BLOCK_TOKENS == 0 or e in boundaries]
        start = 0
        for end, key in zip(ends, self.block_keys(identity, ids, ends)):
            a, start = start, end
            with self._lock:
                if key in self._blocks:
                    continue
            block = _Block(torch.stack([k[0, :, a:end] for k in cache.k]),
                           torch.stack([v[0, :, a:end] for v in cache.v]))
            if block.nbytes > self.max_bytes:
                return
            with self._lock:
                self._blocks[key] = block
                self.bytes += block.nbytes
                while self.bytes > self.max_bytes:
                    _, old = self._blocks.popitem(last=False)
                    self.bytes -= old.nbytes

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()
            self.bytes = 0


def block_ends(n: int, boundaries: Sequence[int] = ()) -> list[int]:
    """Where the prefill blocks of an n-token prompt end: every multiple of PREFILL_BLOCK_TOKENS, every
    ``boundaries`` position inside the prompt (e.g. the end of a voice's part of the prompt, so that every line
    of that voice reuses all of it), and n."""
    cuts = set(range(PREFILL_BLOCK_TOKENS, n, PREFILL_BLOCK_TOKENS)) | {b for b in boundaries if 0 < b < n}
    return sorted(cuts | {n})


def prefill(model, ids: Sequence[int], cache: StaticKVCache, prefix_cache: PrefixCache | None = None,
            boundaries: Sequence[int] = ()) -> torch.Tensor:
    """Run the prompt ``ids`` through ``model`` into the empty one-row ``cache`` block by block
    (:func:`block_ends`), reusing and then filling ``prefix_cache``; returns the last position's logits (V,)."""
    device = model.get_input_embeddings().weight.device
    identity = weights_identity(model) if prefix_cache is not None else ""
    start = prefix_cache.restore(identity, ids, cache, boundaries) if prefix_cache is not None else 0
    logits = None
    for end in block_ends(len(ids), boundaries):
        if end > start:
            logits = model.step(torch.tensor([list(ids[start:end])], device=device), cache)[0, -1]
            start = end
    if prefix_cache is not None:
        prefix_cache.store(identity, ids, cache, boundaries)
    return logits
