"""Reading one topic from given offsets up to the end offsets taken when a command started.

:func:`take_plan` looks the topic up (it must exist; ``--partition`` values must be its
partitions) and takes each partition's low and high watermark: the records that exist now.
:func:`read_range` then reads each partition from its start to its end and stops; records written
later (a replayed dead letter refused again, say) are not read by the same run. With ``follow``
it goes on reading new records until told to stop.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable, Collection, Generator, Iterator, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Final

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from connector.errors import ConnectorError
from connector.settings import Settings

logger = logging.getLogger(__name__)

_TIMEOUT_SECONDS: Final = 30.0
_POLL_SECONDS: Final = 0.2
_GIVE_UP: Final = frozenset(
    {
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
    }
)


class ReadError(ConnectorError):
    """The topic cannot be read as asked (missing topic or partition, Kafka refusing)."""


@dataclass(frozen=True)
class Range:
    """The offsets of one partition a run reads: ``start`` (first) to ``end`` (excluded)."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


Plan = dict[int, Range]
"""Partition -> the range a run reads there."""


class StopSignal:
    """SIGINT and SIGTERM set a flag the copy loop checks, so it can checkpoint and say so."""

    def __init__(self) -> None:
        self.received = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopSignal]:
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def open_consumer(settings: Settings, group_id: str) -> Consumer:
    """A consumer that never commits by itself and reads records as they were written."""
    return Consumer(
        {
            **settings.kafka_client_config(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )


def topic_partitions(consumer: Consumer, topic: str) -> list[int]:
    """The partitions of ``topic``; :class:`ReadError` when the cluster has no such topic."""
    try:
        metadata = consumer.list_topics(timeout=_TIMEOUT_SECONDS)
    except KafkaException as exc:
        raise ReadError(f"cannot list the cluster's topics: {exc}") from exc
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        raise ReadError(f"topic {topic} does not exist (zoom-connector topics create makes it)")
    return sorted(found.partitions)


def take_plan(
    consumer: Consumer,
    topic: str,
    partitions: Collection[int] = (),
    since_ms: int | None = None,
) -> Plan:
    """Each partition's range: from its first record (or, with ``since_ms``, its first record
    stored at or after that time) to its end now. ``partitions``: only these (all when empty)."""
    existing = topic_partitions(consumer, topic)
    missing = sorted(set(partitions) - set(existing))
    if missing:
        raise ReadError(
            f"topic {topic} has partitions 0-{len(existing) - 1}, not {missing[0]} (--partition)"
        )
    chosen = sorted(partitions) if partitions else existing
    plan: Plan = {}
    try:
        for p in chosen:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=_TIMEOUT_SECONDS, cached=False
            )
            plan[p] = Range(low, high)
        if since_ms is not None and plan:
            asked = [TopicPartition(topic, p, since_ms) for p in plan]
            for tp in consumer.offsets_for_times(asked, timeout=_TIMEOUT_SECONDS):
                # -1: no record at or after since_ms, so nothing to read there.
                start = tp.offset if tp.offset >= 0 else plan[tp.partition].end
                plan[tp.partition] = Range(
                    max(start, plan[tp.partition].start), plan[tp.partition].end
                )
    except KafkaException as exc:
        raise ReadError(f"cannot read the offsets of {topic}: {exc}") from exc
    return plan


def read_range(
    consumer: Consumer,
    topic: str,
    plan: Mapping[int, Range],
    *,
    follow: bool = False,
    stop: Callable[[], bool] = lambda: False,
) -> Generator[Message, None, None]:
    """The records of ``plan``, partition by partition in offset order (partitions interleaved).

    Ends once every partition's position reached its end, or, with ``follow``, when ``stop()``
    says so (checked at least every 0.2 s, also while nothing comes).
    """
    reading = {p: r for p, r in plan.items() if follow or r.size > 0}
    if not reading:
        return
    consumer.assign([TopicPartition(topic, p, r.start) for p, r in reading.items()])
    remaining = {p for p, r in reading.items() if r.size > 0}
    try:
        while (remaining or follow) and not stop():
            message = consumer.poll(_POLL_SECONDS)
            if message is not None:
                error = message.error()
                if error is None:
                    p, offset = message.partition(), message.offset()
                    assert p is not None and offset is not None
                    if follow or offset < reading[p].end:
                        yield message
                elif error.code() == KafkaError._PARTITION_EOF:
                    # At the log's end: done, also when the position is unknown because the
                    # records left were deleted (retention) and the consumer skipped to the end.
                    p, offset = message.partition(), message.offset()
                    if p in remaining and offset is not None and offset >= reading[p].end:
                        remaining.discard(p)
                        if not follow:
                            consumer.pause([TopicPartition(topic, p)])
                else:
                    if error.fatal() or error.code() in _GIVE_UP:
                        raise ReadError(f"reading {topic} failed: {error}")
                    logger.warning("reading %s: %s (the client retries)", topic, error)
            if remaining:
                positions = consumer.position([TopicPartition(topic, p) for p in remaining])
                for tp in positions:
                    if tp.offset >= reading[tp.partition].end:
                        remaining.discard(tp.partition)
                        if not follow:
                            consumer.pause([TopicPartition(topic, tp.partition)])
    finally:
        consumer.unassign()
