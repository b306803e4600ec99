"""Re-keying: each new evaluation and interaction analysis becomes a score event keyed by agent.

The raw agent derives it (:class:`ScoreEvents`, one of the context's
:attr:`~connector.worker.context.WorkerContext.derivations`) from the datum it has just validated,
and writes it in the same plan as the typed record, so it is acknowledged with it and no record
makes a second trip through Kafka and Faust to be re-keyed. It names the event's agent
(:mod:`.events`) and writes the score event to the internal topic
``<WORKER_ID>-agent-score-events`` with the agent id as key and an explicit partition,
``murmur2(agent id) % partitions`` (Kafka's default partitioner), so every agent's events, state
and changelog live in one partition. An event that names no agent is counted and skipped. Writing
the same score event again (a batch processed again after a crash) is harmless: a state ignores
an event it already holds (:mod:`.state`).
"""

from __future__ import annotations

import logging

from aiokafka.partitioner import murmur2

from connector.worker.aggregates.events import (
    EVENT_TYPES,
    Attribution,
    ScoreEventError,
    encode,
    from_typed,
)
from connector.worker.aggregates.metrics import AggregateMetrics
from connector.worker.delivery import TopicWrite
from connector.worker.routing import TypedRecord

log = logging.getLogger(__name__)


def events_topic_name(worker_id: str) -> str:
    """The internal topic of score events keyed by agent (Faust names its own ``<id>-...``)."""
    return f"{worker_id}-agent-score-events"


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of an agent: Kafka's default partitioner (murmur2, positive, modulo)."""
    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions


class ScoreEvents:
    """Typed records -> score events by agent (a derivation of the raw agent's plan)."""

    def __init__(self, topic: str, partitions: int, metrics: AggregateMetrics) -> None:
        self._topic = topic
        self._partitions = partitions
        self._metrics = metrics

    def __call__(self, typed: TypedRecord) -> TopicWrite | None:
        """The score event of ``typed``, if it is one the aggregates count and names an agent."""
        if typed.event_type not in EVENT_TYPES:
            return None
        try:
            event, attribution = from_typed(typed.event_type, typed.datum)
        except ScoreEventError as exc:
            log.error("typed record unreadable for the aggregates, skipped: %s", exc)
            self._metrics.score_events.labels(typed.event_type, "unreadable").inc()
            return None
        self._metrics.score_events.labels(typed.event_type, str(attribution)).inc()
        if event is None:
            assert attribution is Attribution.UNATTRIBUTED
            return None
        key = event.agent.encode()
        partition = partition_for(key, self._partitions)
        return TopicWrite(self._topic, key, encode(event), partition=partition)
