"""The one concurrency gate: engine work runs one call at a time, granted in arrival order.

Every door holds the same :class:`Gate` (the service's) around its engine calls: the app's GPU island
(app_ui/runner.py), the HTTP server's worker threads (server/gate.py adds the async queue with its bound),
the CLI. The gate is re-entrant for the thread holding it, so a call made under it (a checked take calling
the ASR, a streamed take's producer) never waits for itself.

A holder that waits on work done elsewhere (the LLM stage on a ``--llm-server``) steps aside
(:func:`step_aside`): the next caller in the queue gets the gate meanwhile and the holder queues again when the
wait ends, so concurrent requests reach the LLM server concurrently while the local models (tokenizer, decoder)
still serve one call at a time.
"""
from __future__ import annotations

import threading
from contextlib import ExitStack, contextmanager
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")
_held = threading.local()               # .gates: the gates this thread holds, in the order it took them


def _held_gates() -> list["Gate"]:
    if not hasattr(_held, "gates"):
        _held.gates = []
    return _held.gates


class Gate:
    """A re-entrant lock granted in arrival order (threading.RLock makes no fairness promise)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0
        self._owner: int | None = None       # thread id holding the gate
        self._depth = 0                      # re-entries of the owner
        self._away = 0                       # holders stepped aside (step_aside), still in flight
        self.calls = 0                       # engine calls run so far (HTTP /health)

    def ticket(self) -> int:
        """A place in the queue; :meth:`acquire` with it, then :meth:`release` once."""
        with self._cond:
            self._next_ticket += 1
            return self._next_ticket - 1

    def waiting(self) -> int:
        """Callers holding, waiting for, or stepped aside from the gate (requests in flight)."""
        with self._cond:
            return self._next_ticket - self._serving + self._away

    def acquire(self, ticket: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._serving == ticket)
            self._owner, self._depth = threading.get_ident(), 1
            self.calls += 1
        _held_gates().append(self)

    def release(self) -> None:
        with self._cond:
            self._owner, self._depth = None, 0
            self._serving += 1
            self._cond.notify_all()
        if self in _held_gates():
            _held_gates().remove(self)

    @contextmanager
    def aside(self) -> Iterator[None]:
        """The holder lets the next caller in for the block and queues again after it (a new ticket), at the
        same re-entry depth; a no-op in a thread that does not hold the gate."""
        with self._cond:
            depth = self._depth if self._owner == threading.get_ident() else 0
            if depth:
                self._owner, self._depth = None, 0
                self._serving += 1
                self._away += 1
                self._cond.notify_all()
        if not depth:
            yield
            return
        try:
            yield
        finally:
            with self._cond:
                ticket = self._next_ticket
                self._next_ticket += 1
                self._away -= 1
                self._cond.wait_for(lambda: self._serving == ticket)
                self._owner, self._depth = threading.get_ident(), depth

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


@contextmanager
def step_aside() -> Iterator[None]:
    """Every gate this thread holds steps aside for the block (:meth:`Gate.aside`; the last taken first, taken
    back in the order they were taken): wrap a wait on work done outside this process around it."""
    with ExitStack() as stack:
        for gate in reversed(list(_held_gates())):
            stack.enter_context(gate.aside())
        yield


__all__ = ["Gate", "step_aside"]
