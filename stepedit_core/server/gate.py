"""One engine, many clients: :class:`EngineGate` runs engine work one call at a time, off the event loop.

Requests wait in arrival order (the service's fair gate) instead of failing; only when more than ``max_waiting`` are
already waiting does a new one get :class:`ServerBusyError` (HTTP 503), so a flood cannot pile up unbounded
threads. Streams hold the engine from their first chunk to their last: a producer thread owns the lock and
hands chunks to the response through a small queue; a client that goes away stops the producer. With
``--llm-server`` a request steps aside while it waits on the LLM server (service.gate.step_aside), so concurrent
requests are batched there.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import anyio

from ..errors import StepEditError
from ..service.gate import Gate

T = TypeVar("T")
MAX_WAITING = 16              # queued requests beyond the running one; the threadpool (40) stays free for I/O
STREAM_BUFFER = 8             # chunks a producer may run ahead of a slow client
STREAM_STALL_SECONDS = 120.0  # a consumer that takes no chunk for this long is gone: free the engine
POLL_SECONDS = 0.1
_DONE = object()


class ServerBusyError(StepEditError):
    """More requests are waiting for the engine than the queue holds."""


class EngineGate:
    """Serialises engine calls; ``await gate.run(fn, *args)`` and ``gate.stream(make_iterator)``. It queues on
    ``gate``, the service's one :class:`~stepedit_core.service.gate.Gate` (shared with the app's runner when
    both serve one engine), and bounds how many may wait."""

    def __init__(self, max_waiting: int = MAX_WAITING, gate: Gate | None = None):
        self.max_waiting = max_waiting
        self._fifo = gate if gate is not None else Gate()

    @property
    def calls(self) -> int:
        """Engine calls run so far (for /health)."""
        return self._fifo.calls

    @property
    def waiting(self) -> int:
        """Requests holding or waiting for the engine."""
        return self._fifo.waiting()

    def _ticket(self) -> int:
        if self._fifo.waiting() > self.max_waiting:
            raise ServerBusyError(f"the engine is busy: {self.max_waiting} requests are already waiting; "
                                  "retry in a moment")
        return self._fifo.ticket()

    def _locked(self, ticket: int, fn: Callable[..., T], *args) -> T:
        self._fifo.acquire(ticket)
        try:
            return fn(*args)
        finally:
            self._fifo.release()

    async def run(self, fn: Callable[..., T], *args) -> T:
        """Run ``fn(*args)`` in a worker thread once every earlier request is done."""
        ticket = self._ticket()
        return await anyio.to_thread.run_sync(self._locked, ticket, fn, *args, abandon_on_cancel=False)

    async def stream(self, make: Callable[[], Iterator[T]]):
        """An async iterator over ``make()``'s items, produced in one thread that holds the engine throughout.

        Errors raised by the producer (validation included) surface at the consumer's next item, so awaiting
        the first item before sending response headers turns them into proper error responses."""
        ticket = self._ticket()
        items: queue.Queue = queue.Queue(maxsize=STREAM_BUFFER)
        stop = threading.Event()

        def put(item) -> bool:
            for _ in range(int(STREAM_STALL_SECONDS / POLL_SECONDS)):
                if stop.is_set():
                    return False
                try:
                    items.put(item, timeout=POLL_SECONDS)
                    return True
                except queue.Full:
                    continue
            stop.set()
            return False

        def get():
            while True:
                try:
                    return items.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    if stop.is_set():
                        return _DONE

        def produce() -> None:
            try:
                def body() -> None:
                    iterator = make()
                    try:
                        for item in iterator:
                            if not put(item):
                                break
                    finally:
                        close = getattr(iterator, "close", None)
                        if close:
                            close()
                self._locked(ticket, body)
            except BaseException as exc:  # noqa: BLE001 -- handed to the consumer, re-raised there
                put(exc)
                return
            put(_DONE)

        threading.Thread(target=produce, name="engine-stream", daemon=True).start()
        try:
            while True:
                item = await anyio.to_thread.run_sync(get, abandon_on_cancel=True)
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()


__all__ = ["EngineGate", "ServerBusyError", "MAX_WAITING"]
