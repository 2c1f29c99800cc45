"""torch's intra-op thread count set for a block and restored after it (tiny models only thrash on more)."""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def torch_threads(n: int):
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
