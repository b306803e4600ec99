"""Small helpers for tests that talk to a real Kafka broker (see ``tests/README.md``).

Every wait here polls against a deadline: a helper returns as soon as the broker has done what
was asked and fails with a message saying what was missing when the deadline passes.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

_NOT_TOPIC_CHARS = re.compile(r"[^a-zA-Z0-9-]+")


def in_ci() -> bool:
    """Whether we run under CI (``CI=true``), where a missing broker is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def kafka_unavailable(reason: str) -> None:
    """Skip the test because no broker can be had; under CI fail it instead."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a Kafka broker is required)", pytrace=False)
    pytest.skip(reason)


def unique_name(prefix: str, test_name: str = "") -> str:
    """A topic or group name no other test run uses: ``<prefix>-<test>-<random>``.

    Only ``[a-zA-Z0-9-]`` are kept (Kafka warns when topic names mix ``.`` and ``_``).
    """
    parts = [_NOT_TOPIC_CHARS.sub("-", part).strip("-") for part in (prefix, test_name)]
    stem = "-".join(part[:60] for part in parts if part)
    return f"{stem or 't'}-{uuid.uuid4().hex[:10]}"


def create_topic(
    bootstrap: str,
    topic: str,
    partitions: int = 1,
    config: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> str:
    """Create ``topic`` and wait until the broker's metadata lists all its partitions."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [
            NewTopic(
                topic, num_partitions=partitions, replication_factor=1, config=dict(config or {})
            )
        ]
    )
    futures[topic].result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(topic=topic, timeout=5.0).topics.get(topic)
        if (
            metadata is not None
            and metadata.error is None
            and len(metadata.partitions) == partitions
        ):
            return topic
        if time.monotonic() >= deadline:
            raise AssertionError(f"topic {topic} not visible with {partitions} partitions in time")
        time.sleep(0.1)


def produce(
    bootstrap: str,
    topic: str,
    values: Iterable[bytes],
    key: bytes | None = None,
    timeout: float = 30.0,
) -> int:
    """Produce ``values`` (acks=all) and wait for every delivery; return how many were sent."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    errors: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            errors.append(error)

    count = 0
    for value in values:
        producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
        count += 1
    remaining = producer.flush(timeout)
    assert remaining == 0, f"{remaining} message(s) to {topic} still undelivered after {timeout}s"
    assert not errors, f"delivery to {topic} failed: {errors}"
    return count


def consume_all(
    bootstrap: str,
    topic: str,
    expected_count: int,
    timeout: float = 30.0,
    *,
    group: str | None = None,
    config: Mapping[str, str] | None = None,
) -> list[Message]:
    """Read ``topic`` from the beginning until ``expected_count`` messages have arrived.

    Raises ``AssertionError`` listing what did arrive when the deadline passes first.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or unique_name("consume-all", topic),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": "false",
            **(config or {}),
        }
    )
    received: list[Message] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(received) < expected_count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{len(received)} of {expected_count} message(s) from {topic} within "
                    f"{timeout}s: {[m.value() for m in received][:10]}"
                )
            message = consumer.poll(min(remaining, 1.0))
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue  # the topic may be created by the producer a moment later
                raise AssertionError(f"consuming {topic}: {error}")
            received.append(message)
    finally:
        consumer.close()
    return received
