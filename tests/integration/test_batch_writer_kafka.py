"""The worker's librdkafka writer against the real broker (connector.kafka.batch_writer)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from connector.kafka.batch_writer import BatchWriter, OutgoingRecord, WriteError
from connector.settings import Settings
from connector.worker.aggregates.rekeying import partition_for
from connector.worker.sink import topic_writer


def _read(bootstrap: str, topic: str, partitions: int, count: int) -> list[tuple[int, object]]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader", "enable.auto.commit": False}
    )
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        found = []
        for _ in range(100):
            for message in consumer.consume(count, timeout=0.5):
                assert message.error() is None, message.error()
                found.append((message.partition(), message))
            if len(found) >= count:
                break
        return found
    finally:
        consumer.close()


def test_a_batch_is_stored_as_given_and_refusals_are_told_apart(
    kafka_bootstrap: str, create_topic: Callable[..., str]
) -> None:
    """Explicit partitions and timestamps are kept; a keyed record without a partition lands
    where Kafka's Java client (murmur2) puts it; a record larger than the topic takes is refused,
    and only it: the broker refused the whole record batch it shared with a small record."""
    topic = create_topic("writer", partitions=4, config={"max.message.bytes": "4096"})
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, worker_id="writer-test")
    records = [
        OutgoingRecord(topic, b"agent-1", b"one", [("h", b"1")], partition=3, timestamp_ms=1_000),
        OutgoingRecord(topic, b"agent-2", b"x" * 10_000, partition=3),  # over max.message.bytes
        OutgoingRecord(topic, b"agent-3", b"three", timestamp_ms=3_000),
    ]

    async def write() -> list[object]:
        writer = topic_writer(settings)
        try:
            return list(await writer.write(records))
        finally:
            await writer.close()

    outcomes = asyncio.run(write())
    assert isinstance(outcomes[0], int) and isinstance(outcomes[2], int), outcomes
    refused = outcomes[1]
    assert refused is not None and getattr(refused, "refused", False), refused
    stored = {m.key(): (p, m) for p, m in _read(kafka_bootstrap, topic, 4, 2)}
    assert set(stored) == {b"agent-1", b"agent-3"}
    partition, first = stored[b"agent-1"]
    assert partition == 3 and first.value() == b"one" and first.headers() == [("h", b"1")]
    assert first.offset() == outcomes[0]  # each stored record's outcome is its offset
    assert first.timestamp()[1] == 1_000
    partition, third = stored[b"agent-3"]
    assert partition == partition_for(b"agent-3", 4)
    assert third.timestamp()[1] == 3_000
    assert third.offset() == outcomes[2]


def test_an_unreachable_cluster_ends_the_batch_in_timeouts_not_refusals() -> None:
    writer = BatchWriter(
        {"bootstrap.servers": "localhost:1", "message.timeout.ms": 800, "acks": "all"},
        deadline=1.0,
        name="worker",
        meanwhile="the test waits",
    )

    async def write() -> list[object]:
        try:
            return list(await writer.write([OutgoingRecord("t", b"k", b"v")] * 3))
        finally:
            await writer.close()

    outcomes = asyncio.run(write())
    assert len(outcomes) == 3
    for outcome in outcomes:  # retried by the delivery core, never dead-lettered
        assert isinstance(outcome, WriteError) and not outcome.refused, outcome
