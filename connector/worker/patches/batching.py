"""Batches of events from a Faust stream, handed to the agent as soon as it can take them.

Faust's ``stream.noack_take(n, within=s)`` hands over a batch when ``n`` events are buffered, else
when ``s`` seconds have passed since it began waiting, and buffers nothing while the agent works on
a batch. Below ``n`` events per ``s`` seconds every event therefore waits for the window to close:
``WORKER_BATCH_SECONDS`` (0.2 s) of latency at the traffic Zoom actually sends.

:func:`take_available` keeps ``noack_take``'s contract: Faust does not acknowledge the events (the
agent acknowledges each once its outputs are stored), a batch holds at most ``max_events``. What
changes is when a batch is handed over: as soon as the agent asks for one and an event is waiting,
with every event that arrived meanwhile. Once the first event is there, the batch takes whatever
else is already queued (while events keep coming without a pause, for at most ``within`` seconds),
so a backlog still gives full batches. And while the agent works on a batch, the next one fills up
(to ``max_events``, then the stream waits), so buffering overlaps the agent's wait for Kafka's
acknowledgements.

Patch: Faust offers ``noack_take`` (waits for the window) and ``take`` (acknowledges in a
``finally``, also when the batch failed); neither serves. Private names: ``Stream._enable_passive``,
``Stream._processors``. Pinned by ``tests/unit/test_worker_batches.py`` (a real Faust agent over
an in-memory channel). Remove when Faust hands over unacknowledged batches without a fixed delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

log = logging.getLogger(__name__)

_IDLE_CHECK_SECONDS: Final = 1.0
"""How often an idle batcher looks whether the stream is stopping."""


async def take_available(stream: Any, max_events: int, within: float) -> AsyncIterator[list[Any]]:
    """Batches of ``stream``'s events (Faust ``Event`` objects, not acknowledged)."""
    if max_events < 1:
        raise ValueError("a batch holds at least one event")
    loop = asyncio.get_running_loop()
    buffer: list[Any] = []
    arrived = asyncio.Event()
    room = asyncio.Event()
    room.set()

    async def add_to_buffer(value: Any) -> Any:
        # Runs in the stream's own task for every event, before the next one is read.
        try:
            while len(buffer) >= max_events:
                room.clear()
                await stream.wait(room)
                if stream.should_stop:
                    return value  # never buffered, never acknowledged: read again after a restart
            event = stream.current_event
            if event is None:
                raise RuntimeError("the stream has no current event")
            buffer.append(event)
            arrived.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("cannot buffer an event: %r", exc)
            await stream.crash(exc)
        return value

    acks_enabled = stream.enable_acks
    stream.enable_acks = False  # the agent acknowledges
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))
    try:
        while not stream.should_stop:
            if not buffer:
                arrived.clear()
                await stream.wait(arrived, timeout=_IDLE_CHECK_SECONDS)
                continue
            deadline = loop.time() + within
            while len(buffer) < max_events and loop.time() < deadline:
                seen = len(buffer)
                await asyncio.sleep(0)  # let the stream add what is already queued
                if len(buffer) == seen:
                    break
            batch = buffer[:max_events]
            del buffer[:max_events]
            room.set()
            yield batch
    finally:
        stream.enable_acks = acks_enabled
        stream._processors.remove(add_to_buffer)
