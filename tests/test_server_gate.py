"""EngineGate: first come first served, one call at a time, bounded waiting, and streams that give the engine
back when their consumer stops early or the producer fails."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from stepedit_core.errors import InvalidInputError
from stepedit_core.server.gate import EngineGate, ServerBusyError


def test_calls_run_one_at_a_time_in_arrival_order():
    gate, order, active, peak = EngineGate(), [], [0], [0]
    lock = threading.Lock()

    def work(i):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        order.append(i)
        with lock:
            active[0] -= 1
        return i * i

    async def main():
        tasks = []
        for i in range(5):
            tasks.append(asyncio.create_task(gate.run(work, i)))
            await asyncio.sleep(0.01)                     # arrival order 0..4
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == [0, 1, 4, 9, 16]
    assert order == [0, 1, 2, 3, 4] and peak[0] == 1 and gate.waiting == 0 and gate.calls == 5


def test_more_than_max_waiting_is_refused_not_queued():
    gate = EngineGate(max_waiting=1)

    async def main():
        first = asyncio.create_task(gate.run(time.sleep, 0.3))
        await asyncio.sleep(0.02)
        second = asyncio.create_task(gate.run(time.sleep, 0.01))
        await asyncio.sleep(0.02)
        with pytest.raises(ServerBusyError, match="busy"):
            await gate.run(time.sleep, 0)
        await asyncio.gather(first, second)

    asyncio.run(main())
    assert gate.waiting == 0


def test_a_stream_stopped_early_frees_the_engine():
    gate, produced = EngineGate(), []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    async def main():
        stream = gate.stream(endless)
        assert [await stream.__anext__() for _ in range(3)] == [0, 1, 2]
        await stream.aclose()                              # the client went away
        started = time.monotonic()
        assert await asyncio.wait_for(gate.run(lambda: "next"), timeout=5) == "next"
        return time.monotonic() - started

    assert asyncio.run(main()) < 2
    assert len(produced) < 50                              # the producer stopped, it did not run on


def test_producer_errors_reach_the_consumer_and_release_the_engine():
    gate = EngineGate()

    def failing():
        yield 1
        raise InvalidInputError("the target text is empty")

    async def main():
        got = []
        with pytest.raises(InvalidInputError, match="target text is empty"):
            async for item in gate.stream(failing):
                got.append(item)
        assert got == [1]
        return await asyncio.wait_for(gate.run(lambda: 7), timeout=5)

    assert asyncio.run(main()) == 7
