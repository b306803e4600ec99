"""The raw agent's handler: raw webhook records fanned out to typed records and dead letters.

Per batch (run by :class:`~connector.worker.delivery.DeliveryCore`, which writes, retries and
acknowledges):

1. every record is routed (:class:`~connector.worker.routing.Router`): a typed record or a dead
   letter;
2. retries of events that already have their typed record are dropped
   (:class:`~connector.worker.dedup.DedupIndex`), also several occurrences of one event within the
   batch: the first is written, the later ones are retries when within the retention;
3. a typed record Kafka refuses for itself (too large) becomes a dead letter (``produce_failed``);
   a refused dead letter is given up, logged and counted;
4. each new typed record may have writes derived from it (:data:`Derivation`; the aggregates'
   score event keyed by agent, :mod:`connector.worker.aggregates.rekeying`), written in the same
   plan, so they are stored before the raw record is acknowledged; a refused derived write is
   retried;
5. once every write is stored, the batch is counted, and the typed events' dedup marks are
   written (:meth:`~connector.worker.dedup.DedupIndex.mark`), before the raw records are
   acknowledged: after the typed records, so a crash in between at worst repeats a record, never
   loses one.

Records are routed in raw order and written in that order per partition; only a retried write may
land after a later one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from connector.worker.dead_letters import PipelineReason, Refusal
from connector.worker.dedup import DedupIndex
from connector.worker.delivery import Plan, StateWrite, TopicWrite, Write
from connector.worker.metrics import WorkerMetrics
from connector.worker.patches import processing
from connector.worker.routing import DeadLetter, Outcome, RawRecord, Router, TypedRecord

log = logging.getLogger(__name__)

Derivation = Callable[[TypedRecord], TopicWrite | None]
"""A write derived from a new typed record (none: nothing to derive from this one)."""


def raw_record_of(message: Any) -> RawRecord:
    """A Faust consumer message (or a record read again) as a :class:`RawRecord`."""
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
    dropped: bool = False


class FanOut:
    """:class:`~connector.worker.delivery.Handler` of the raw topic (module docstring)."""

    def __init__(
        self,
        router: Router,
        dedup: DedupIndex,
        metrics: WorkerMetrics,
        derivations: Sequence[Derivation] = (),
    ) -> None:
        """``derivations``: consulted at every plan, so an installer may add to the sequence
        after the handler is built."""
        self._router = router
        self._dedup = dedup
        self._metrics = metrics
        self._derivations = derivations

    def plan(self, records: Sequence[Any]) -> Plan:
        items = [self._route(event) for event in records]
        first_seen: dict[str, int | None] = {}
        for item in items:
            if isinstance(item.outcome, TypedRecord) and not item.duplicate:
                event_id, timestamp = item.outcome.event_id, item.record.timestamp_ms
                if event_id in first_seen:
                    item.duplicate = self._dedup.within_retention(first_seen[event_id], timestamp)
                if not item.duplicate:
                    first_seen[event_id] = timestamp
        writes: list[Write] = []
        for item in items:
            if item.duplicate:
                continue
            writes.append(_write_of(item))
            if isinstance(item.outcome, TypedRecord):
                writes.extend(self._derived(item.outcome))
        return Plan(writes, partial(self._stored, items))

    def _derived(self, typed: TypedRecord) -> list[Write]:
        writes: list[Write] = []
        for derive in self._derivations:
            try:
                write = derive(typed)
            except Exception:  # a bug: the typed record is still written, its partition moves on
                log.exception("deriving from a typed record failed event_id=%s", typed.event_id)
                continue
            if write is not None:
                writes.append(write)
        return writes

    def refused(self, write: Write, error: BaseException) -> Write | None:
        if isinstance(write, StateWrite):  # a dedup mark: a retry may make a second typed record
            log.error("dedup mark refused, dropped event_id=%s error=%r", write.key, error)
            return None
        if write.origin is None:  # a derived write: small, retried until Kafka takes it
            return write
        item: _Item = write.origin
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
            return _write_of(item)
        log.error(
            "dead letter refused by Kafka, dropped topic=%s partition=%d offset=%d error=%r",
            record.topic,
            record.partition,
            record.offset,
            error,
        )
        item.dropped = True
        self._metrics.dead_letters_dropped.inc()
        return None

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

    def _stored(self, items: Sequence[_Item], stored_at: float) -> list[Write]:
        """Count the batch; the dedup marks of its new typed records, to write next."""
        marks: list[Write] = []
        for item in items:
            outcome = item.outcome
            if isinstance(outcome, TypedRecord) and not item.duplicate and not item.dropped:
                record = item.record
                marks.append(
                    self._dedup.mark(
                        outcome.event_id, record.partition, record.timestamp_ms, item.event
                    )
                )
            self._count(item, stored_at)
        return marks

    def _count(self, item: _Item, stored_at: float) -> None:
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
        if item.record.timestamp_ms is not None:
            latency = max(0.0, stored_at - item.record.timestamp_ms / 1000)
            self._metrics.latency.labels(kind).observe(latency)


def _write_of(item: _Item) -> TopicWrite:
    outcome = item.outcome
    return TopicWrite(
        topic=outcome.topic,
        key=outcome.key,
        value=outcome.value,
        headers=outcome.headers,
        timestamp_ms=outcome.timestamp_ms,
        origin=item,
    )
