"""The one concurrency gate: engine work runs one call at a time, granted in arrival order.

Every door holds the same :class:`Gate` (the service's) around its engine calls: the app's GPU island
(app_ui/runner.py), the HTTP server's worker threads (server/gate.py adds the async queue with its bound),
the CLI. The gate is re-entrant for the thread holding it, so a call made under it (a checked take calling
the ASR, a streamed take's producer) never waits for itself.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")


class Gate:
    """A re-entrant lock granted in arrival order (threading.RLock makes no fairness promise)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0
        self._owner: int | None = None       # thread id holding the gate
        self._depth = 0                      # re-entries of the owner
        self.calls = 0                       # engine calls run so far (HTTP /health)

    def ticket(self) -> int:
        """A place in the queue; :meth:`acquire` with it, then :meth:`release` once."""
        with self._cond:
            self._next_ticket += 1
            return self._next_ticket - 1

    def waiting(self) -> int:
        """Callers holding or waiting for the gate."""
        with self._cond:
            return self._next_ticket - self._serving

    def acquire(self, ticket: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._serving == ticket)
            self._owner, self._depth = threading.get_ident(), 1
            self.calls += 1

    def release(self) -> None:
        with self._cond:
            self._owner, self._depth = None, 0
            self._serving += 1
            self._cond.notify_all()

    def owned(self) -> bool:
        """True in the thread holding the gate."""
        with self._cond:
            return self._owner == threading.get_ident()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the gate for the block (at once when this thread already holds it)."""
        if self.owned():
            with self._cond:
                self._depth += 1
            try:
                yield
            finally:
                with self._cond:
                    self._depth -= 1
            return
        ticket = self.ticket()
        self.acquire(ticket)
        try:
            yield
        finally:
            self.release()

    def run(self, fn: Callable[..., T], *args, **kwargs) -> T:
        with self.hold():
            return fn(*args, **kwargs)


__all__ = ["Gate"]
