"""The raw-topic agent's work on one batch: route, drop retries, write, and only then acknowledge.

Delivery guarantee: at least once, correct by construction rather than by Faust's commit timing.
The agent takes batches with :func:`~connector.worker.patches.batching.take_available` (like Faust's
``stream.noack_take``: ``stream.take`` whose events Faust does not acknowledge by itself, but
handed over as soon as the agent is free) and, per batch:

1. routes every record (:class:`~connector.worker.routing.Router`) and drops the retries of
   events that already have their typed record (:class:`~connector.worker.dedup.DedupIndex`);
2. hands every output record to the producer at once (no await per record; aiokafka batches them),
   then awaits all their delivery futures, i.e. until Kafka acknowledged each write (``acks=all``);
   a retriable failure is retried with backoff, as long as it takes; a failure tied to the record
   (too large) turns a typed record into a dead letter (``produce_failed``);
3. marks the typed events seen in the deduplication table (after the write, so a crash in between
   at worst repeats a record, never loses one);
4. acknowledges the raw records. Records Faust skipped at a rebalance (it acknowledges them
   unprocessed, see :mod:`connector.worker.patches.gaps`) are found by their offsets (a jump, or a first
   offset past where the group stands), read again from Kafka and processed in front of the
   batch, before it is acknowledged. Faust commits an
   offset only once every record before it is acknowledged (and flushes its producer first), so
   the raw offset is committed after the records written for it are stored. If the worker stops
   or dies before step 4, nothing is acknowledged and the batch is processed again: its typed
   records may be written a second time, with the same ``zoom-event-id`` header (at-least-once;
   the deduplication table usually catches even that, unless the crash came before the marks of
   step 3 reached the table's changelog).

Why no-ack batches rather than ``take`` or ``take_events``: those acknowledge a batch in a
``finally`` clause, also when the code consuming it raised, so a batch whose writes failed would
be committed, i.e. lost. Here a batch that fails outside the per-record isolation stays
unacknowledged: Faust cannot commit past it, and it is processed again after a restart.

Records are routed in raw order and written in that order per partition; only a retried write may
land after a later one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from aiokafka.errors import (
    CorruptRecordException,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from faust.streams import _current_event

from connector.worker.dead_letters import Headers, PipelineReason, Refusal
from connector.worker.dedup import DedupIndex
from connector.worker.metrics import WorkerMetrics
from connector.worker.patches.gaps import Fetcher, OffsetGaps, refill, settle
from connector.worker.routing import DeadLetter, Outcome, RawRecord, Router, TypedRecord

log = logging.getLogger(__name__)

Clock = Callable[[], float]

# Kafka errors that are about the record itself: retrying the same bytes cannot succeed.
_RECORD_ERRORS: Final = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
)
_FIRST_BACKOFF_SECONDS: Final = 0.2
_MAX_BACKOFF_SECONDS: Final = 10.0


class Sender(Protocol):
    """Hands one record to the producer; the awaitable it returns resolves once Kafka stored it."""

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        timestamp_ms: int | None,
    ) -> Awaitable[Any]: ...


class DeliveryAborted(Exception):
    """The worker is stopping while writes still fail: the batch stays unacknowledged."""


@contextlib.contextmanager
def processing(event: Any) -> Iterator[None]:
    """Make ``event`` Faust's current event while table operations run.

    Faust routes a table write to the changelog partition of ``faust.current_event()`` (and a
    RocksDB table read to that partition's database). ``current_event`` is a context variable set
    by the stream's own iteration, which for ``take``-style batches runs in another task, so a batch
    consumer sets it per record (faust-streaming issue #497: tables cannot be written from
    ``stream.take``).
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def raw_record_of(message: Any) -> RawRecord:
    """A Faust consumer message as a :class:`RawRecord`."""
    timestamp = message.timestamp
    return RawRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=round(timestamp * 1000) if timestamp is not None else None,
        key=message.key,
        value=message.value,
        headers=[(k, v if v is not None else b"") for k, v in (message.headers or ())],
    )


@dataclass
class _Item:
    event: Any
    record: RawRecord
    outcome: Outcome
    duplicate: bool = False
    delivered_at: float | None = None
    dropped: bool = False
    attempts: int = 0


class RawTopicAgent:
    """Processes batches of raw-topic events; see the module docstring for the guarantees."""

    def __init__(
        self,
        router: Router,
        dedup: DedupIndex,
        sender: Sender,
        metrics: WorkerMetrics,
        *,
        stopping: Callable[[], bool],
        clock: Clock = time.time,
        refetcher: Fetcher | None = None,
    ) -> None:
        self._router = router
        self._dedup = dedup
        self._sender = sender
        self._metrics = metrics
        self._stopping = stopping
        self._clock = clock
        self._gaps = OffsetGaps()
        self._refetcher = refetcher
        self.next_offsets: dict[int, int] = {}
        """Raw partition -> the offset after the last record processed (for the lag metric)."""

    async def process(self, events: Sequence[Any], ack: Callable[[Any], Awaitable[Any]]) -> None:
        """Route, write and acknowledge one batch; raises :class:`DeliveryAborted` on shutdown."""
        started = time.perf_counter()
        # Records the stream skipped at a rebalance (and acknowledged: faust-streaming's race,
        # see connector.worker.patches.gaps) are read again and processed in front of the batch.
        received = await refill(events, self._gaps, self._refetcher)
        if len(received) > len(events):
            self._metrics.refetched.inc(len(received) - len(events))
        items = [self._route(event) for event in received]
        # Several occurrences of one event in a batch: the first is written, the later ones are
        # retries when within the retention, as they would be in separate batches.
        first_seen: dict[str, int | None] = {}
        for item in items:
            if isinstance(item.outcome, TypedRecord) and not item.duplicate:
                event_id, timestamp = item.outcome.event_id, item.record.timestamp_ms
                if event_id in first_seen:
                    item.duplicate = self._dedup.within_retention(first_seen[event_id], timestamp)
                if not item.duplicate:
                    first_seen[event_id] = timestamp
        await self._deliver([item for item in items if not item.duplicate])
        for item in items:
            self._remember(item)
            self._record_metrics(item)
        for event in events:  # the refetched records are acknowledged apart (settle)
            await ack(event)
            message = event.message
            self.next_offsets[message.partition] = message.offset + 1
        await settle(received, self._refetcher)
        self._metrics.batch_duration.observe(time.perf_counter() - started)

    def _route(self, event: Any) -> _Item:
        record = raw_record_of(event.message)
        self._dedup.observe(record.partition, record.timestamp_ms)
        item = _Item(event, record, self._router.route(record))
        if isinstance(item.outcome, TypedRecord):
            item.duplicate = self._is_duplicate(item, item.outcome)
        return item

    def _is_duplicate(self, item: _Item, typed: TypedRecord) -> bool:
        try:
            with processing(item.event):
                return self._dedup.is_duplicate(typed.event_id, item.record.timestamp_ms)
        except Exception:
            # Never lose an event over the table: write it, a consumer may see it twice.
            log.exception("deduplication lookup failed event_id=%s", typed.event_id)
            return False

    def _remember(self, item: _Item) -> None:
        if item.duplicate or item.delivered_at is None or not isinstance(item.outcome, TypedRecord):
            return
        try:
            with processing(item.event):
                self._dedup.remember(
                    item.outcome.event_id, item.record.partition, item.record.timestamp_ms
                )
        except Exception:
            log.exception("deduplication update failed event_id=%s", item.outcome.event_id)

    async def _deliver(self, items: list[_Item]) -> None:
        pending = items
        backoff = _FIRST_BACKOFF_SECONDS
        while pending:
            results = await self._send_all([item.outcome for item in pending])
            again: list[_Item] = []
            retries = 0
            for item, result in zip(pending, results, strict=True):
                if not isinstance(result, BaseException):
                    item.delivered_at = self._clock()
                elif isinstance(result, asyncio.CancelledError):
                    raise DeliveryAborted("a write was cancelled; not acknowledging the batch")
                elif isinstance(result, _RECORD_ERRORS) or not isinstance(result, KafkaError):
                    self._refused(item, result, again)
                else:
                    retries += 1
                    item.attempts += 1
                    again.append(item)
                    log.warning(
                        "write failed, will retry topic=%s attempt=%d error=%r",
                        item.outcome.topic,
                        item.attempts,
                        result,
                    )
            if retries:
                self._metrics.produce_retries.inc(retries)
                if self._stopping():
                    raise DeliveryAborted("stopping with unwritten records; not acknowledging")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
            pending = again

    def _refused(self, item: _Item, error: BaseException, again: list[_Item]) -> None:
        record = item.record
        if isinstance(item.outcome, TypedRecord):
            log.error(
                "typed record refused, dead-lettering topic=%s partition=%d offset=%d error=%r",
                record.topic,
                record.partition,
                record.offset,
                error,
            )
            refusal = Refusal(
                PipelineReason.PRODUCE_FAILED,
                "$",
                f"{item.outcome.topic}: {type(error).__name__}: {error}",
                item.outcome.event_type,
            )
            item.outcome = self._router.dead_letter(record, refusal, item.outcome.event_id)
            again.append(item)
        else:
            log.error(
                "dead letter refused by Kafka, dropped topic=%s partition=%d offset=%d error=%r",
                record.topic,
                record.partition,
                record.offset,
                error,
            )
            item.dropped = True
            self._metrics.dead_letters_dropped.inc()

    async def _send_all(self, outcomes: list[Outcome]) -> list[Any]:
        waiting: list[Awaitable[Any]] = []
        for outcome in outcomes:
            try:
                waiting.append(
                    await self._sender.send(
                        outcome.topic,
                        outcome.key,
                        outcome.value,
                        outcome.headers,
                        outcome.timestamp_ms,
                    )
                )
            except Exception as exc:  # refused before it left, e.g. larger than max_request_size
                waiting.append(_failed(exc))
        return list(await asyncio.gather(*waiting, return_exceptions=True))

    def _record_metrics(self, item: _Item) -> None:
        outcome = item.outcome
        if item.duplicate:
            event_type = outcome.event_type if isinstance(outcome, TypedRecord) else None
            self._metrics.count(event_type, "duplicate")
            return
        if item.dropped:
            return
        if isinstance(outcome, TypedRecord):
            self._metrics.count(outcome.event_type, "typed")
            kind = "typed"
        else:
            assert isinstance(outcome, DeadLetter)
            self._metrics.count(outcome.refusal.event_type, "dlq", str(outcome.refusal.reason))
            kind = "dlq"
        if item.delivered_at is not None and item.record.timestamp_ms is not None:
            latency = max(0.0, item.delivered_at - item.record.timestamp_ms / 1000)
            self._metrics.latency.labels(kind).observe(latency)


async def _failed(error: Exception) -> Any:
    raise error
