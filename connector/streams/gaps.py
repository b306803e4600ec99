"""Records a Faust stream skipped, found by their offsets and read again from Kafka.

faust-streaming 0.15.3 can lose a record at a rebalance, on a partition the worker keeps: a record
fetched under the previous consumer generation reaches the stream after the new generation began;
the stream skips it *and acknowledges it* (``streams.py``: ``message.generation_id !=
app.consumer_generation_id`` -> ``skipped_value``, acked "otherwise the lag would increase"),
and the copy fetched again after the seek to the committed offsets is not delivered either. The
offset is then committed past the record: at-least-once is broken. Seen here with two workers
starting together: the aggregating agent received offsets 76, 77, 79 of one partition, never 78,
and the agent's figures missed an event for good.

The same path loses more when the old generation's records were many: a worker keeping a
partition across a rebalance saw offset 11 before it and 135 after it, the 123 records between
acknowledged unseen and committed.

The topics the connector reads are neither compacted nor transactional, so their offsets are
dense: a jump in the offsets a stream delivers for a partition (within a consumer generation, or
into the next one for a partition the worker kept) is a lost record. :class:`OffsetGaps` finds
the jumps; :class:`Refetcher` reads the missing offsets again (a plain consumer assigned to the
partition, no group membership, nothing committed); the agent processes them with the batch,
before acknowledging it. The raw-topic agent (:mod:`connector.streams.agent`) and both stages of
the aggregates use it. Processing is idempotent, so a record that was only late, not lost, or a
range another worker processed after all, does no harm.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, TopicPartition

from connector.settings import Settings

log = logging.getLogger(__name__)

_POLL_SECONDS: Final = 0.5
_REFETCH_TIMEOUT_SECONDS: Final = 30.0


@dataclass(frozen=True)
class Gap:
    """Offsets ``start`` to ``end - 1`` of a partition that a stream never delivered."""

    topic: str
    partition: int
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start


class OffsetGaps:
    """Tracks, per topic partition, the next offset a stream should deliver, and reports the
    ranges it skipped."""

    def __init__(self) -> None:
        self._next: dict[tuple[str, int], tuple[Any, int]] = {}

    def observe(self, messages: Iterable[Any]) -> list[Gap]:
        """The gaps before ``messages`` (Faust messages: ``topic``, ``partition``, ``offset``,
        ``generation_id``), which then count as delivered.

        A jump counts within a consumer generation, and from one generation to the next: a
        partition kept across a rebalance resumes at its committed offset, which is past the last
        record delivered only if records were acknowledged undelivered (what Faust does to the
        records it fetched under the old generation). After a longer absence (another worker may
        have had the partition meanwhile) the first offset starts a new count. An offset lower
        than expected (a seek back) is not a gap.
        """
        gaps: list[Gap] = []
        ordered = sorted(messages, key=lambda m: (m.topic, m.partition, m.offset))
        for message in ordered:
            key = (message.topic, message.partition)
            generation = getattr(message, "generation_id", None)
            known = self._next.get(key)
            offset: int = message.offset
            if known is not None and _consecutive(known[0], generation):
                if offset > known[1]:
                    gaps.append(Gap(message.topic, message.partition, known[1], offset))
                offset = max(offset, known[1] - 1)
            self._next[key] = (generation, offset + 1)
        return gaps


def _consecutive(before: Any, now: Any) -> bool:
    """Whether generation ``now`` is ``before`` or the one right after it."""
    if isinstance(before, int) and isinstance(now, int):
        return now in (before, before + 1)
    return bool(before == now)


@dataclass(frozen=True)
class Record:
    """A record read again: what a Faust message carries that the agents use."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    generation_id: Any = None
    timestamp: float | None = None
    """Seconds since the epoch, as Faust gives it."""
    headers: list[tuple[str, bytes]] | None = None


@dataclass(frozen=True)
class RefetchedEvent:
    """A refetched record where the agents expect a Faust event (never acknowledged)."""

    message: Record


class Fetcher(Protocol):
    """Reads the records of a gap again."""

    async def fetch(self, gap: Gap) -> list[Record]: ...


class Refetcher:
    """Reads ranges of offsets again with a plain consumer (librdkafka, the cluster's security
    settings), in a thread: gaps are rare, a blocking read is simplest."""

    def __init__(self, settings: Settings, timeout: float = _REFETCH_TIMEOUT_SECONDS) -> None:
        self._config = {
            **settings.kafka_client_config(),
            # required by librdkafka; never joined (assign, not subscribe), never committed to
            "group.id": f"{settings.worker_id}-refetch",
            "enable.auto.commit": "false",
            "enable.partition.eof": "true",
            "auto.offset.reset": "earliest",
        }
        self._timeout = timeout

    async def fetch(self, gap: Gap) -> list[Record]:
        return await asyncio.to_thread(self._fetch, gap)

    def _fetch(self, gap: Gap) -> list[Record]:
        consumer = Consumer(self._config)
        records: list[Record] = []
        try:
            consumer.assign([TopicPartition(gap.topic, gap.partition, gap.start)])
            deadline = time.monotonic() + self._timeout
            while time.monotonic() < deadline:
                message = consumer.poll(_POLL_SECONDS)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        break
                    log.warning("refetching %s: %s", gap, error)
                    continue
                offset = message.offset()
                if offset is None or offset >= gap.end:
                    break
                if offset >= gap.start:
                    records.append(_record(gap, offset, message))
                if offset == gap.end - 1:
                    break
        finally:
            consumer.close()
        return records


def _record(gap: Gap, offset: int, message: Any) -> Record:
    kind, timestamp_ms = message.timestamp()
    return Record(
        gap.topic,
        gap.partition,
        offset,
        message.key(),
        message.value(),
        timestamp=timestamp_ms / 1000 if kind != TIMESTAMP_NOT_AVAILABLE else None,
        headers=[(k, v if v is not None else b"") for k, v in (message.headers() or ())],
    )


async def refill(events: Sequence[Any], gaps: OffsetGaps, refetcher: Fetcher | None) -> list[Any]:
    """``events`` with, in front, the records the stream skipped before them (read again)."""
    found = gaps.observe(event.message for event in events)
    if not found or refetcher is None:
        return list(events)
    refetched: list[Any] = []
    for gap in found:
        records = await refetcher.fetch(gap)
        log.error(
            "the stream skipped %d record(s) of %s[%d] at offsets %d-%d (faust-streaming"
            " rebalance race); read %d of them again from Kafka",
            len(gap),
            gap.topic,
            gap.partition,
            gap.start,
            gap.end - 1,
            len(records),
        )
        refetched += [RefetchedEvent(record) for record in records]
    return [*refetched, *events]
