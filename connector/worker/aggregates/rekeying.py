"""Re-keying: typed evaluation and interaction records become score events keyed by agent.

The handler (:class:`Rekeyer`, run by the delivery core) reads the two typed topics the aggregates
count (:data:`~.events.EVENT_TYPES`), names each event's agent (:mod:`.events`) and writes a score
event to the internal topic ``<WORKER_ID>-agent-score-events`` with the agent id as key and an
explicit partition, ``murmur2(agent id) % partitions`` (Kafka's default partitioner), so every
agent's events, state and changelog live in one partition. An unreadable record or an event that
names no agent is counted and skipped. Writing the same score event again is harmless: a state
ignores an event it already holds (:mod:`.state`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiokafka.partitioner import murmur2

from connector.avro.codec import EventCodec
from connector.avro.errors import CodecError
from connector.worker.aggregates.events import Attribution, ScoreEventError, encode, from_typed
from connector.worker.aggregates.metrics import AggregateMetrics
from connector.worker.delivery import Plan, TopicWrite, Write

log = logging.getLogger(__name__)


def events_topic_name(worker_id: str) -> str:
    """The internal topic of score events keyed by agent (Faust names its own ``<id>-...``)."""
    return f"{worker_id}-agent-score-events"


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of an agent: Kafka's default partitioner (murmur2, positive, modulo)."""
    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions


class Rekeyer:
    """:class:`~connector.worker.delivery.Handler`: typed records -> score events by agent."""

    def __init__(
        self, codec: EventCodec, topic: str, partitions: int, metrics: AggregateMetrics
    ) -> None:
        self._codec = codec
        self._topic = topic
        self._partitions = partitions
        self._metrics = metrics

    def score_event(self, value: bytes | None) -> tuple[bytes, bytes] | None:
        """The internal record (key, value) of a typed record's value, if it names an agent."""
        try:
            event_type, datum = self._codec.decode(value or b"")
            event, attribution = from_typed(event_type, datum)
        except (CodecError, ScoreEventError) as exc:
            log.error("typed record unreadable for the aggregates, skipped: %s", exc)
            self._metrics.score_events.labels("unknown", "unreadable").inc()
            return None
        self._metrics.score_events.labels(event_type, str(attribution)).inc()
        if event is None:
            assert attribution is Attribution.UNATTRIBUTED
            return None
        return event.agent.encode(), encode(event)

    def plan(self, records: Sequence[Any]) -> Plan:
        writes: list[Write] = []
        for event in records:
            record = self.score_event(event.message.value)
            if record is not None:
                key, value = record
                partition = partition_for(key, self._partitions)
                writes.append(TopicWrite(self._topic, key, value, partition=partition))
        return Plan(writes)

    def refused(self, write: Write, error: BaseException) -> Write | None:
        return write  # a score event is small; retry it
