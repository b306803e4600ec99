"""Where the source stores a webhook when the spool is on: Kafka, or the disk spool.

:meth:`SpoolingStore.store` sends the record to Kafka as without a spool. When Kafka does not
acknowledge it in time (any :class:`~connector.source.producer.ProduceError`), the record is
appended to the spool instead and the answer is still 200. While the spool holds records not yet
in Kafka, new records go straight to the spool, behind them: the raw topic then receives them in
the order they came in, and a request does not wait out the produce timeout during an outage.
Once the drainer has emptied the spool, records go to Kafka directly again.

Appends are group-committed: the records of all requests that arrive while one write is under
way are written and fsynced together by the next one, off the event loop, so an fsync costs
one disk flush per burst rather than per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connector.source.drainer import Drainer
from connector.source.metrics import SourceMetrics
from connector.source.producer import DeliveryReport, DurableProducer, Headers, ProduceError
from connector.source.spool import Spool, SpooledRecord, SpoolError, SpoolFull

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Spooled:
    """The record is on this disk, fsynced, and will be sent to Kafka by the drainer."""

    reason: str


class SpoolingStore:
    """Kafka first, the spool when Kafka does not answer (or while the spool holds records)."""

    def __init__(
        self,
        spool: Spool,
        producer: DurableProducer,
        topic: str,
        metrics: SourceMetrics,
        drainer: Drainer,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spool = spool
        self._producer = producer
        self._topic = topic
        self._metrics = metrics
        self._drainer = drainer
        self._clock = clock
        self._queued: list[tuple[SpooledRecord, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._refused_at: int | None = None  # the spool's size when it last refused a record
        metrics.spool_bytes.set_function(spool.size_bytes)
        metrics.spool_records.set_function(spool.records)
        metrics.spool_oldest_age.set_function(self.oldest_age_seconds)

    def holding(self) -> bool:
        """Whether records wait in the spool (or are being written to it)."""
        return self.spool.records() > 0 or bool(self._queued) or self._writing()

    def _writing(self) -> bool:
        return self._writer is not None and not self._writer.done()

    async def store(
        self, key: bytes, value: bytes, headers: Headers, received_at: float
    ) -> DeliveryReport | Spooled:
        """Store one record in Kafka or the spool; raises :class:`SpoolError` when neither can
        take it (the spool full, or a disk error)."""
        reason = "spool_not_empty"
        if not self.holding():
            try:
                return await self._producer.send(self._topic, key, value, headers)
            except ProduceError as exc:
                self._metrics.produce_errors.labels(reason=exc.reason).inc()
                reason = exc.reason
                if not self.holding():
                    log.warning("kafka did not take a webhook, spooling it reason=%s", reason)
        record = SpooledRecord(key, value, tuple(headers), int(received_at * 1000))
        await self._append(record)
        self._metrics.spooled.inc()
        self._drainer.wake()
        return Spooled(reason)

    async def _append(self, record: SpooledRecord) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((record, future))
        if not self._writing():
            self._writer = asyncio.create_task(self._write_queued())
        await future

    async def _write_queued(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            outcome: int | SpoolError
            try:
                outcome = await asyncio.to_thread(self.spool.append, [r for r, _ in batch])
            except SpoolError as exc:
                log.error("spool write failed records=%d error=%s", len(batch), exc)
                outcome = exc
            for index, (_, future) in enumerate(batch):
                if future.done():
                    continue
                if isinstance(outcome, SpoolError):
                    future.set_exception(outcome)
                elif index < outcome:
                    future.set_result(None)
                else:
                    self._refused_at = self.spool.size_bytes()
                    future.set_exception(
                        SpoolFull(f"the spool holds {self._refused_at} bytes, next to its limit")
                    )

    def oldest_age_seconds(self) -> float:
        """How long the oldest record not yet in Kafka has waited; 0 when none waits."""
        oldest = self.spool.oldest_received_ms()
        return 0.0 if oldest is None else max(0.0, self._clock() - oldest / 1000)

    def full(self) -> bool:
        """Whether the spool refused a record for lack of room and has not shrunk since."""
        if self._refused_at is not None and self.spool.size_bytes() < self._refused_at:
            self._refused_at = None
        return self._refused_at is not None

    def status(self) -> dict[str, Any]:
        """The spool as ``/readyz`` reports it."""
        return {
            "records": self.spool.records(),
            "bytes": self.spool.size_bytes(),
            "max_bytes": self.spool.max_bytes,
            "full": self.full(),
            "oldest_age_seconds": round(self.oldest_age_seconds(), 3),
        }
