"""The pipeline's ceiling: a plain confluent-kafka loop, raw topic -> Avro -> typed topics.

    python -m bench.plain_loop --bootstrap B --raw-topic T --out-prefix P --group G
        [--codec plain|connector] [--batch 500] [--max-seconds 600]

Per batch of up to ``--batch`` raw records: parse each body (orjson), write it with fastavro against
its event type's schema (``--codec plain``: the committed ``.avsc`` parsed by fastavro, no other
checks; ``--codec connector``: the connector's own ``EventCodec``, i.e. its validation too), frame
it (single-object encoding), produce it to ``<P>.<event type>`` (or the raw bytes to
``<P>.webhooks.dlq`` when that fails; idempotent producer, ``acks=all``, ``linger.ms=5``). A
batch's raw offsets are committed once Kafka acknowledged all its records and those of every
earlier batch, while later batches are already being processed (at most ``--max-in-flight``
records unacknowledged): the same at-least-once guarantee as the worker, without Faust,
deduplication, metrics or aggregates.
Runs until SIGTERM or ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import io
import signal
import time
from collections import deque
from typing import Any

import fastavro
import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from connector.avro.codec import EventCodec, load_schemas
from connector.errors import ConnectorError


class PlainAvro:
    """fastavro alone: schemas parsed once, single-object framing from fastavro's fingerprint."""

    def __init__(self) -> None:
        self._schemas: dict[str, tuple[Any, bytes]] = {}
        for event_type, schema in load_schemas().items():
            parsed = fastavro.parse_schema(schema)
            canonical = fastavro.schema.to_parsing_canonical_form(parsed)
            # fastavro's hex digest is the fingerprint's little-endian bytes, as the spec frames it.
            fingerprint = bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))
            self._schemas[event_type] = (parsed, b"\xc3\x01" + fingerprint)

    def encode(self, body: bytes) -> tuple[str, bytes]:
        event = orjson.loads(body)
        event_type = event["event"]
        parsed, header = self._schemas[event_type]
        buffer = io.BytesIO()
        buffer.write(header)
        fastavro.schemaless_writer(buffer, parsed, event)
        return event_type, buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--raw-topic", required=True)
    parser.add_argument("--out-prefix", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--codec", choices=["plain", "connector"], default="plain")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--max-in-flight", type=int, default=20_000)
    args = parser.parse_args()

    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    codec: Any = PlainAvro() if args.codec == "plain" else EventCodec()
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    consumer.subscribe([args.raw_topic])
    dlq = f"{args.out_prefix}.webhooks.dlq"
    typed = {t: f"{args.out_prefix}.{t}" for t in load_schemas()}
    for topic in [*typed.values(), dlq]:  # set-up, not measured: each output's leaders
        producer.list_topics(topic, timeout=10)
    deadline = time.monotonic() + args.max_seconds
    # Batches in flight, oldest first: [records not yet acknowledged, next offset per partition].
    in_flight: deque[list[Any]] = deque()
    unacked = 0

    def acknowledged(batch: list[Any]) -> Any:
        def on_delivery(error: Any, message: Any) -> None:
            nonlocal unacked
            if error is not None:  # the plain loop has no retry path: stop, uncommitted
                raise SystemExit(f"delivery failed: {error}")
            batch[0] -= 1
            unacked -= 1

        return on_delivery

    def commit_done() -> None:
        offsets: dict[tuple[str, int], int] = {}
        while in_flight and in_flight[0][0] == 0:
            offsets.update(in_flight.popleft()[1])
        if offsets:
            consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                asynchronous=True,
            )

    try:
        while not stop and time.monotonic() < deadline:
            messages = consumer.consume(args.batch, timeout=0.01)
            producer.poll(0)
            commit_done()
            if not messages:
                continue
            batch: list[Any] = [0, {}]
            on_delivery = acknowledged(batch)
            for message in messages:
                if message.error():
                    continue
                body = message.value() or b""
                try:
                    event_type, value = codec.encode(body)
                    topic = typed[event_type]
                except (ValueError, TypeError, KeyError, AttributeError, ConnectorError):
                    topic, value = dlq, body
                while True:
                    try:
                        producer.produce(
                            topic, value=value, key=message.key(), on_delivery=on_delivery
                        )
                        break
                    except BufferError:
                        producer.poll(0.01)
                batch[0] += 1
                unacked += 1
                batch[1][(message.topic(), message.partition())] = (message.offset() or 0) + 1
            in_flight.append(batch)
            while unacked > args.max_in_flight:
                producer.poll(0.01)
            commit_done()
    finally:
        producer.flush(10)
        commit_done()
        consumer.close()


if __name__ == "__main__":
    main()
