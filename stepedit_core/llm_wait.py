"""Waiting for a remote LLM stage (``--llm-server``) without holding up the other requests.

The engine wraps every wait for its LLM in :class:`llm_wait`. With the LLM in this process nothing changes (it is
one of the local models, one call at a time). With the LLM on a server the thread lets go of the service's gate
(:func:`stepedit_core.service.gate.step_aside`) and of the engine lock for the wait, so concurrent requests reach
the server together and are batched there, while the local models (tokenizer, decoder) still serve one call at a
time; both are taken back, gate first, when the wait ends.
"""
from __future__ import annotations

import threading
from typing import Callable, TypeVar

from .service.gate import step_aside

T = TypeVar("T")


class llm_wait:  # noqa: N801 -- used as a context manager, named as one
    """``with llm_wait(llm, lock):`` around a wait for ``llm``; ``lock``: the engine lock this thread holds
    (let go and taken back too). See the module docstring."""

    def __init__(self, llm, lock: threading.Lock | None = None):
        self.remote, self.lock = getattr(llm, "remote_generate", None) is not None, lock
        self._aside = None

    def __enter__(self) -> None:
        if not self.remote:
            return
        if self.lock is not None:
            self.lock.release()
        self._aside = step_aside()
        self._aside.__enter__()

    def __exit__(self, *exc) -> None:
        if not self.remote:
            return
        try:
            self._aside.__exit__(*exc)
        finally:
            if self.lock is not None:
                self.lock.acquire()                 # after the gate: the order every holder takes them in

    def run(self, fn: Callable[[], T]) -> T:
        with self:
            return fn()


__all__ = ["llm_wait"]
