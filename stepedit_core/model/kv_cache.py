"""The Step1 LLM's static key/value cache: preallocated per layer, filled position by position."""
from __future__ import annotations

from typing import Sequence

import torch


class StaticKVCache:
    """Preallocated keys/values for every layer, each (B, G, max_len, D), and the number of filled positions.

    Keys/values are stored per KV group (never repeated over heads). ``official_layout`` gives the official
    ``DynamicCache`` view (B, S, G*D), taken before the head split.
    """

    def __init__(self, config, max_len: int, *, batch: int = 1,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        """``config``: the model's Step1Config (layers, KV groups, head size)."""
        shape = (batch, config.num_attention_groups, max_len, config.head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.num_hidden_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.num_hidden_layers)]
        self.max_len = max_len
        self.length = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k/v (B, G, T, D) after the filled part; return views of all keys/values (B, G, length+T, D).
        ``length`` itself advances in :meth:`advance`, once all layers have been written."""
        end = self.length + k.shape[2]
        self.k[layer][:, :, self.length:end] = k
        self.v[layer][:, :, self.length:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    @property
    def batch(self) -> int:
        return self.k[0].shape[0] if self.k else 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the preallocated keys and values (every row, every position)."""
        return sum(t.numel() * t.element_size() for t in (*self.k, *self.v))

    def expand(self, batch: int) -> "StaticKVCache":
        """A ``batch``-row cache whose rows are copies of this one-row cache (same ``max_len`` and length):
        one prefill shared by a batch of decodes."""
        if self.batch != 1:
            raise ValueError(f"expand needs a one-row cache, this one has {self.batch} rows")
        out = object.__new__(StaticKVCache)
        out.k = [t.expand(batch, -1, -1, -1).clone() for t in self.k]
        out.v = [t.expand(batch, -1, -1, -1).clone() for t in self.v]
        out.max_len, out.length = self.max_len, self.length
        return out

    def keep_rows(self, rows: Sequence[int]) -> None:
        """Keep only ``rows`` (in that order): finished rows of a batched decode drop out."""
        index = torch.tensor(list(rows), dtype=torch.long, device=self.k[0].device)
        self.k = [t.index_select(0, index) for t in self.k]
        self.v = [t.index_select(0, index) for t in self.v]

    def advance(self, n: int) -> None:
        self.length += n

    def reset(self) -> None:
        self.length = 0

    def official_layout(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        b, g, _, d = self.k[layer].shape
        k = self.k[layer][:, :, :self.length].transpose(1, 2).reshape(b, self.length, g * d)
        v = self.v[layer][:, :, :self.length].transpose(1, 2).reshape(b, self.length, g * d)
        return k, v
