"""Avro records written by the codec travel through a real broker and decode unchanged."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import fastavro
import pytest
from confluent_kafka import Consumer, KafkaError, Producer

from connector.avro.codec import EventCodec
from connector.paths import avro_schemas_dir
from connector.spec import load_catalog

pytestmark = pytest.mark.kafka


def _consume(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    continue
                raise AssertionError(f"consumer error: {error}")
            messages.append(message)
    finally:
        consumer.close()
    return messages


def test_every_event_type_round_trips_through_the_broker(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    codec = EventCodec()
    catalog = load_catalog()
    topic = unique_name("avro")
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    sent: dict[str, bytes] = {}
    for event_type in catalog.event_types:
        _, data = codec.encode(catalog.example_bytes(event_type))
        sent[event_type] = data
        producer.produce(topic, key=event_type.encode(), value=data)
    assert producer.flush(30) == 0

    messages = _consume(kafka_bootstrap, topic, len(sent))
    assert len(messages) == len(sent)
    for message in messages:
        event_type = message.key().decode()
        value = message.value()
        assert value == sent[event_type]
        decoded_type, datum = codec.decode(value)
        assert decoded_type == event_type
        assert datum["event"] == event_type
        # a consumer with only fastavro and the committed .avsc reads the same record
        schema = fastavro.schema.load_schema(str(avro_schemas_dir() / f"{event_type}.avsc"))
        typed = fastavro.schemaless_reader(io.BytesIO(value[10:]), schema, None)
        assert typed["payload"]["account_id"] == datum["payload"]["account_id"]
