"""The worker's one at-least-once engine: every agent is a :class:`Handler` run by a
:class:`DeliveryCore`.

Per batch, in this order:

1. take the batch from the stream, unacknowledged (:func:`~.patches.take_available`);
2. read again the records Faust's stream skipped, in front of the batch
   (:func:`~connector.worker.patches.refill`);
3. fence: a worker frozen past its group session while holding the batch writes nothing and leaves
   it unacknowledged (:class:`~connector.worker.patches.FreezeGuard`; only where a handler's writes
   are whole states);
4. hand the records to the handler, which returns its writes (:class:`Plan`) without any I/O;
5. write everything at once and await every acknowledgement (``acks=all``); a failure is retried
   under one :class:`RetryPolicy` for as long as it takes, a record Kafka refuses for itself goes
   back to the handler (:meth:`Handler.refused`);
6. tell the handler its writes are stored (:attr:`Plan.stored`);
7. acknowledge the batch's records, then register the records read again as processed
   (:func:`~connector.worker.patches.settle`).

Faust commits an offset only once every record before it is acknowledged, so a committed offset
never runs ahead of the writes made for it. A worker that stops or dies before step 7 processes
the batch again (at-least-once; every handler is idempotent). A batch that fails outside a
handler's own isolation stays unacknowledged: Faust cannot commit past it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

from connector.wire import Headers
from connector.worker.patches import (
    Fetcher,
    OffsetGaps,
    refill,
    refuses_record,
    release_unwritten,
    settle,
    take_available,
)
from connector.worker.stalls import Batches

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TopicWrite:
    """One record for a topic. ``origin``: the handler's own note of what it was written for
    (handed back with it by :meth:`Handler.refused`); never written."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)
    timestamp_ms: int | None = None
    partition: int | None = None
    origin: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StateWrite:
    """One entry of a table: stored locally under ``record`` (the record whose partition holds
    it) and written to the table's changelog partition ``partition``. Without a ``record`` the
    value is held locally already and only the changelog is written (a repair). ``key`` and
    ``value`` are as the table holds them (the sink serializes them as the table does)."""

    table: str
    partition: int
    key: Any
    value: Any
    record: Any = None


Write = TopicWrite | StateWrite


def _nothing(stored_at: float) -> None:
    return None


@dataclass
class Plan:
    """What a handler wants written for a batch, and what to do once Kafka stored all of it.
    ``stored`` is called with the time (``time.time()``) the last acknowledgement came; it may
    return writes that must only follow those (the dedup marks), which the core writes before it
    acknowledges the batch."""

    writes: list[Write] = field(default_factory=list)
    stored: Callable[[float], Sequence[Write] | None] = _nothing


class Handler(Protocol):
    """One agent's work on a batch: records in, writes out; no I/O of its own."""

    def plan(self, records: Sequence[Any]) -> Plan:
        """The writes for ``records`` (Faust events, or records read again), in order."""
        ...

    def refused(self, write: Write, error: BaseException) -> Write | None:
        """Kafka refused ``write`` for the record itself: what to write instead (the same write
        to retry it), or ``None`` to give it up."""
        ...


class Sink(Protocol):
    """Hands a write to the producer; the awaitable it returns resolves once Kafka stored it."""

    async def send(self, write: Write) -> Awaitable[Any]: ...


@runtime_checkable
class BatchSink(Sink, Protocol):
    """A sink that also takes a batch's writes at once and reports them together."""

    async def write_all(self, writes: Sequence[Write]) -> list[BaseException | None]:
        """Each write's outcome, in order: ``None`` once stored, else why not."""
        ...


class DeliveryAborted(Exception):
    """The worker is stopping while writes still fail: the batch stays unacknowledged."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before each new round of failed writes: doubling, capped."""

    first_backoff: float = 0.2
    max_backoff: float = 10.0

    def backoffs(self) -> Iterator[float]:
        backoff = self.first_backoff
        while True:
            yield backoff
            backoff = min(backoff * 2, self.max_backoff)


RETRY: Final = RetryPolicy()
"""The worker's retry policy for every write."""

Fence = Callable[[Sequence[Any]], Awaitable[bool]]
"""Whether a batch fetched as the given events may still write (:class:`~.patches.FreezeGuard`)."""


@dataclass
class CoreHooks:
    """What the core reports, for metrics: writes retried, records read again, batches fenced,
    batch durations."""

    retried: Callable[[int], None] = lambda count: None
    refetched: Callable[[int], None] = lambda count: None
    fenced: Callable[[int], None] = lambda count: None
    batch_seconds: Callable[[float], None] = lambda seconds: None


class DeliveryCore:
    """Runs one handler's batches with the at-least-once sequence of the module docstring."""

    def __init__(
        self,
        name: str,
        handler: Handler,
        sink: Sink,
        *,
        stopping: Callable[[], bool],
        refetcher: Fetcher | None = None,
        fence: Fence | None = None,
        retry: RetryPolicy = RETRY,
        hooks: CoreHooks | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.handler = handler
        self._sink = sink
        self._batch_sink = sink if isinstance(sink, BatchSink) else None
        self._stopping = stopping
        self._refetcher = refetcher
        self._fence = fence
        self._retry = retry
        self._hooks = hooks or CoreHooks()
        self._clock = clock
        self._gaps = OffsetGaps()
        self.writing = asyncio.Lock()
        """Held while a batch (or another writer of the same state, a repair) writes."""
        self.next_offsets: dict[tuple[str, int], int] = {}
        """(topic, partition) -> the offset after the last record acknowledged (the lag)."""

    async def run(
        self, stream: Any, batches: Batches, size: int, within: float, *, fill: bool = False
    ) -> None:
        """The agent's body: every batch of ``stream`` through :meth:`process`, until stopped.

        Batches are handed over as soon as the agent is free (:func:`~.patches.take_available`),
        or, with ``fill``, once ``size`` records are there or ``within`` seconds have passed
        (Faust's ``noack_take``): fewer, larger batches, for handlers whose writes are per batch
        rather than per record (the aggregates write each agent's whole state once per batch).
        """
        taken = (
            stream.noack_take(size, within=within) if fill else take_available(stream, size, within)
        )
        async for events in taken:
            try:
                with batches.working(self.name, len(events)):
                    await self.process(events, stream.ack)
            except DeliveryAborted as exc:
                log.warning("%s: batch left unacknowledged: %s", self.name, exc)
                return
            except Exception:
                # A bug: the batch stays unacknowledged (not committed, processed again after a
                # restart); go on with the next.
                log.exception(
                    "%s: batch failed, left unacknowledged size=%d", self.name, len(events)
                )

    async def process(self, events: Sequence[Any], ack: Callable[[Any], Awaitable[Any]]) -> None:
        """One batch; raises :class:`DeliveryAborted` when the worker stops with writes unmade."""
        started = time.perf_counter()
        received = await refill(events, self._gaps, self._refetcher)
        if len(received) > len(events):
            self._hooks.refetched(len(received) - len(events))
        async with self.writing:
            if self._fence is not None and not await self._fence(events):
                log.warning(
                    "%s: batch not written: the worker was frozen and the group rebalanced"
                    " meanwhile; its records are read again after the rebalance size=%d",
                    self.name,
                    len(events),
                )
                release_unwritten(events)
                self._hooks.fenced(len(events))
                return
            # Nothing awaits between the fence and the first write.
            plan = self.handler.plan(received)
            stored_at = await self.deliver(plan.writes)
            following = plan.stored(stored_at)
            if following:
                await self.deliver(following)
        for event in events:  # the records read again are registered apart (settle)
            await ack(event)
            message = event.message
            self.next_offsets[(message.topic, message.partition)] = message.offset + 1
        await settle(received, self._refetcher)
        self._hooks.batch_seconds(time.perf_counter() - started)

    def forget(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Partitions taken away: what was acknowledged there says nothing about them now."""
        for partition in partitions:
            self.next_offsets.pop(partition, None)

    async def deliver(self, writes: Sequence[Write]) -> float:
        """Write ``writes`` until Kafka acknowledged each, retrying failures under the policy;
        the time the last acknowledgement came. Raises :class:`DeliveryAborted` when the worker
        stops while writes still fail."""
        pending = list(writes)
        backoffs = self._retry.backoffs()
        while pending:
            results = await self._send_all(pending)
            again: list[Write] = []
            retries = 0
            for write, result in zip(pending, results, strict=True):
                if not isinstance(result, BaseException):
                    continue
                if isinstance(result, asyncio.CancelledError):
                    raise DeliveryAborted("a write was cancelled; not acknowledging the batch")
                if refuses_record(result):
                    instead = self.handler.refused(write, result)
                    if instead is None:
                        continue
                    again.append(instead)
                    if instead is not write:
                        continue  # another record: write it at once
                else:
                    again.append(write)
                retries += 1
                log.warning(
                    "%s: write failed, will retry topic=%s error=%r",
                    self.name,
                    write.topic if isinstance(write, TopicWrite) else write.table,
                    result,
                )
            if retries:
                self._hooks.retried(retries)
                if self._stopping():
                    raise DeliveryAborted("stopping with unwritten records; not acknowledging")
                await asyncio.sleep(next(backoffs))
            pending = again
        return self._clock()

    async def _send_all(self, writes: Sequence[Write]) -> list[Any]:
        if self._batch_sink is not None:
            return await self._batch_sink.write_all(writes)
        waiting: list[Awaitable[Any]] = []
        for write in writes:
            try:
                waiting.append(await self._sink.send(write))
            except Exception as exc:  # refused before it left, e.g. larger than max_request_size
                waiting.append(_failed(exc))
        return list(await asyncio.gather(*waiting, return_exceptions=True))


async def _failed(error: Exception) -> Any:
    raise error
