"""``take_available``: what a batch holds, and that every event is in exactly one, in order.

The batcher runs in a real Faust agent over an in-memory channel (``agent.test_context()``), so
the stream, its processors and its waits are Faust's own; no Kafka is involved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import faust
import pytest

from connector.worker.patches.batching import take_available


@dataclass
class _Batches:
    handed: list[tuple[float, list[int]]] = field(default_factory=list)
    """(monotonic time the agent got it, the values in it)"""

    def values(self) -> list[int]:
        return [v for _, batch in self.handed for v in batch]


Batcher = Callable[..., tuple[Any, _Batches]]


@pytest.fixture
def batcher() -> Iterator[Batcher]:
    """Makes agents taking batches; closes what their streams left open."""
    apps: list[faust.App] = []

    def make(max_events: int, busy: Callable[[int], float] = lambda _: 0.0) -> tuple[Any, _Batches]:
        app = faust.App("batches-test", store="memory://", autodiscover=False)
        apps.append(app)
        return _batcher(app, max_events, busy)

    yield make
    for app in apps:
        # Iterating a stream creates the app's Kafka consumer, never started here; its thread
        # has an event loop of its own.
        consumer = app._consumer
        if consumer is not None:
            consumer._thread.thread_loop.close()


def _batcher(app: faust.App, max_events: int, busy: Callable[[int], float]) -> tuple[Any, _Batches]:
    """An agent taking batches with ``take_available``; it works ``busy(n)`` s on its n-th."""
    seen = _Batches()

    @app.agent()
    async def batcher(stream: Any) -> None:
        async for batch in take_available(stream, max_events, 0.2):
            seen.handed.append((time.monotonic(), [e.value for e in batch]))
            await asyncio.sleep(busy(len(seen.handed)))
            for event in batch:
                await stream.ack(event)

    return batcher, seen


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.005)


async def _put_spaced(agent: Any, values: range, gap: float) -> float:
    """Put ``values`` ``gap`` seconds apart; when the first went in."""
    first = time.monotonic()
    for value in values:
        await agent.put(value)
        await asyncio.sleep(gap)
    return first


async def test_free_agent_takes_each_event_as_it_comes(batcher: Batcher) -> None:
    taker, seen = batcher(max_events=100)
    async with taker.test_context() as agent:
        for value in range(4):
            await agent.put(value)
            await _until(lambda v=value: v in seen.values())  # type: ignore[misc]
    assert [batch for _, batch in seen.handed] == [[0], [1], [2], [3]]


async def test_every_event_is_in_exactly_one_batch_in_order(batcher: Batcher) -> None:
    taker, seen = batcher(max_events=7, busy=lambda n: 0.01 * (n % 3))
    async with taker.test_context() as agent:
        await _put_spaced(agent, range(60), gap=0.002)
        await _until(lambda: len(seen.values()) >= 60)
    assert seen.values() == list(range(60))
    assert all(len(batch) <= 7 for _, batch in seen.handed)


async def test_events_that_arrive_while_the_agent_works_make_up_the_next_batches(
    batcher: Batcher,
) -> None:
    taker, seen = batcher(max_events=4, busy=lambda n: 0.5 if n == 1 else 0.0)
    async with taker.test_context() as agent:
        await agent.put(0)
        await _until(lambda: len(seen.handed) == 1)
        await _put_spaced(agent, range(1, 11), gap=0.0)  # while the first batch is worked on
        await _until(lambda: len(seen.values()) == 11)
    # The four events buffered while the agent worked go together (a batch holds at most four);
    # the rest follow in order, in batches of whatever the stream had queued by then.
    assert [batch for _, batch in seen.handed][:2] == [[0], [1, 2, 3, 4]]
    assert seen.values() == list(range(11))
    assert all(len(batch) <= 4 for _, batch in seen.handed)
