"""Kafka for the bench: topics per run (created with the connector's own specs, deleted after),
pre-filling a raw topic as the source would, counting records on topics, reading append times."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from confluent_kafka import (
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from bench.http_stack.servers import BENCH_SECRET
from bench.workload import Event
from connector.kafka.admin import create_topics, topic_specs
from connector.settings import Settings
from connector.source.signature import signed_headers
from connector.spec import load_catalog
from connector.topics import TopicNames
from connector.wire import RECEIVED_AT_HEADER

PARTITIONS = 6
_TIMEOUT = 30.0


def settings_for(bootstrap: str, prefix: str, **more: Any) -> Settings:
    """The connector's settings for one bench deployment."""
    return Settings.model_validate(
        {
            "kafka_bootstrap_servers": bootstrap,
            "topic_prefix": prefix,
            "topic_partitions": PARTITIONS,
            "zoom_webhook_secret_token": BENCH_SECRET,
            **more,
        }
    )


class Cluster:
    """The broker under test, seen through one AdminClient."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        # Warnings and worse only: it sees every topic, and notices each one the bench deletes.
        self.admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
        self._partitions: dict[str, int] = {}

    def create(self, prefix: str, *, log_append_time: bool = False) -> TopicNames:
        """Every topic of ``prefix`` (the connector's specs); typed topics optionally stamped with
        the broker's append time, so a typed record's timestamp says when it was stored."""
        settings = settings_for(self.bootstrap, prefix)
        specs = topic_specs(settings, load_catalog().event_types)
        if log_append_time:
            names = TopicNames(prefix)
            typed = {names.typed(t) for t in load_catalog().event_types}
            specs = [
                replace(s, config={**s.config, "message.timestamp.type": "LogAppendTime"})
                if s.name in typed
                else s
                for s in specs
            ]
        create_topics(settings, specs, admin=self.admin)
        self._wait_listed([s.name for s in specs])
        return TopicNames(prefix)

    def _wait_listed(self, topics: Sequence[str]) -> None:
        deadline = time.monotonic() + _TIMEOUT
        while time.monotonic() < deadline:
            metadata = self.admin.list_topics(timeout=10)
            if all(
                t in metadata.topics
                and len(metadata.topics[t].partitions) > 0
                and all(p.leader >= 0 for p in metadata.topics[t].partitions.values())
                for t in topics
            ):
                return
            time.sleep(0.2)
        raise RuntimeError(f"topics not visible after {_TIMEOUT:.0f} s: {topics}")

    def delete_prefix(self, prefix: str) -> list[str]:
        """Delete every topic whose name starts with ``prefix`` (Faust's internal ones too)."""
        return self._delete_where(lambda name: name.startswith(prefix))

    def delete_containing(self, part: str) -> list[str]:
        """Delete every topic whose name contains ``part`` (Quix's internal topics are named
        ``changelog__<group>--...`` and ``repartition__<group>--...``)."""
        return self._delete_where(lambda name: part in name)

    def _delete_where(self, chosen: Callable[[str], bool]) -> list[str]:
        names = [t for t in self.admin.list_topics(timeout=10).topics if chosen(t)]
        if names:
            futures = self.admin.delete_topics(names, operation_timeout=_TIMEOUT)
            for future in futures.values():
                with contextlib.suppress(KafkaException):
                    future.result(timeout=_TIMEOUT + 5)
        return names

    def partitions(self, topic: str) -> int:
        if topic not in self._partitions:
            metadata = self.admin.list_topics(topic, timeout=10).topics.get(topic)
            self._partitions[topic] = len(metadata.partitions) if metadata else 0
        return self._partitions[topic]

    def end_offsets(self, topics: Iterable[str]) -> int:
        """The sum of the high watermarks of every partition of ``topics`` (one request)."""
        request = {
            TopicPartition(t, p): OffsetSpec.latest()
            for t in topics
            for p in range(self.partitions(t))
        }
        if not request:
            return 0
        for attempt in range(20):  # a new topic's leaders can take a moment to be known
            futures = self.admin.list_offsets(request, request_timeout=10)
            try:
                return sum(max(0, f.result(timeout=15).offset) for f in futures.values())
            except KafkaException:
                if attempt == 19:
                    raise
                time.sleep(0.25)
        raise AssertionError("unreachable")


def outputs_of(names: TopicNames) -> list[str]:
    """The topics the pipeline writes per raw record: every typed topic and the DLQ."""
    return [*(names.typed(t) for t in load_catalog().event_types), names.dlq]


def producer(bootstrap: str, **extra: Any) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 200_000,
            **extra,
        }
    )


def raw_headers(event: Event, now: float) -> list[tuple[str, bytes]]:
    """The headers the source writes: Zoom's timestamp and signature, the receive time."""
    signed = signed_headers(BENCH_SECRET.encode(), event.body, now)
    headers = [(name, value.encode()) for name, value in signed.items()]
    headers.append((RECEIVED_AT_HEADER, str(int(now * 1000)).encode()))
    return headers


def prefill(bootstrap: str, topic: str, events: Iterable[Event], progress_every: int = 0) -> int:
    """Write ``events`` to the raw topic as the source would (key, body, headers); returns how
    many, once all are acknowledged."""
    out = producer(bootstrap)
    failures: list[str] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    count = 0
    for event in events:
        while True:
            try:
                out.produce(
                    topic,
                    value=event.body,
                    key=event.raw_key,
                    headers=raw_headers(event, time.time()),
                    on_delivery=delivered,
                )
                break
            except BufferError:
                out.poll(0.05)
        count += 1
        if count % 1000 == 0:
            out.poll(0)
        if progress_every and count % progress_every == 0:
            from bench.procs import progress

            progress(f"  pre-filled {count:,} raw records")
    remaining = out.flush(120)
    if remaining or failures:
        raise RuntimeError(f"pre-fill failed: {remaining} undelivered, errors {failures[:3]}")
    return count


def append_times(
    bootstrap: str, topics: Sequence[str], timeout: float = 60.0
) -> dict[bytes, tuple[int, int | None]]:
    """Key -> (broker append time in ms, the source's receive time in ms if the record carries
    it) of every record on ``topics`` (which must be created with ``LogAppendTime``); reads from
    the beginning to the end offsets seen at the start."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        assignment: list[TopicPartition] = []
        ends: dict[tuple[str, int], int] = {}
        metadata = consumer.list_topics(timeout=10)
        for topic in topics:
            for p in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if high > low:
                    ends[(topic, p)] = high
                    assignment.append(TopicPartition(topic, p, low))
        consumer.assign(assignment)
        found: dict[bytes, tuple[int, int | None]] = {}
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.5):
                if message.error():
                    continue
                kind, stamp = message.timestamp()
                if kind != TIMESTAMP_LOG_APPEND_TIME:
                    raise RuntimeError(f"{message.topic()} does not use LogAppendTime")
                received = dict(message.headers() or ()).get(RECEIVED_AT_HEADER)
                found[message.key() or b""] = (stamp, int(received) if received else None)
                where = (message.topic() or "", message.partition() or 0)
                if where in ends and (message.offset() or 0) + 1 >= ends[where]:
                    del ends[where]
        return found
    finally:
        consumer.close()
