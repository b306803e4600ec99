"""Where the delivery core's writes go: topic records to librdkafka, table entries to Faust.

Topic records (typed records, dead letters, score events, ``agent_scores``) are written by a
:class:`~connector.kafka.producer.KafkaDurableProducer` (librdkafka, idempotent, ``acks=all``,
murmur2 partitioner as Kafka's Java client and Faust's producer; :func:`topic_writer`): the
bench measured Faust's aiokafka producer as the larger part of a Faust agent's cost per record
(``docs/benchmarks.md``). Without one (unit tests) they go to Faust's producer as Faust topics
of raw bytes. A table entry is stored locally under the record it was computed from, then sent
to the table's changelog by Faust, which owns the table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, Final

import faust

from connector.kafka.admin import max_record_bytes
from connector.kafka.producer import KafkaDurableProducer
from connector.settings import Settings
from connector.worker.delivery import StateWrite, TopicWrite, Write
from connector.worker.patches import processing

WRITE_DEADLINE_SECONDS: Final = 30.0
"""How long librdkafka tries one record before the delivery core sees a timeout and retries."""
_MIN_RECORD_BYTES: Final = 1024 * 1024


def topic_writer(settings: Settings) -> KafkaDurableProducer:
    """The worker's librdkafka producer: the cluster's settings (credentials included), durable
    writes, ``WORKER_PRODUCER_LINGER_MS``, records up to what the topics accept."""
    deadline_ms = round(WRITE_DEADLINE_SECONDS * 1000)
    config = {
        **settings.kafka_client_config(),
        "client.id": f"{settings.worker_id}-writer",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": settings.worker_producer_linger_ms,
        "partitioner": "murmur2_random",
        "message.timeout.ms": deadline_ms,
        "request.timeout.ms": deadline_ms,
        # A dead letter carries a raw body as large as the source accepts, plus headers.
        "message.max.bytes": max(_MIN_RECORD_BYTES, max_record_bytes(settings)),
        "reconnect.backoff.max.ms": 1000,
    }
    return KafkaDurableProducer(
        config,
        delivery_timeout=WRITE_DEADLINE_SECONDS,
        librdkafka_logger="connector.worker.librdkafka",
        client_name="worker",
        meanwhile="the worker retries its writes",
    )


class FaustSink:
    """:class:`~connector.worker.delivery.Sink` over a Faust app's producer."""

    def __init__(
        self,
        app: faust.App,
        tables: Mapping[str, Any] | None = None,
        *,
        writer: KafkaDurableProducer | None = None,
    ) -> None:
        """``writer``: writes the topic records (started at the first write, closed when the
        app stops); ``None``: Faust's producer does."""
        self._app = app
        self._topics: dict[str, Any] = {}
        self._tables = dict(tables or {})
        self._writer = writer
        self._writer_started = False
        if writer is not None:
            app.on_before_shutdown.connect(self._close_writer)

    def declare(self, topic: Any) -> None:
        """Write to ``topic`` (a Faust topic) as it is, e.g. an internal topic."""
        self._topics[topic.get_topic_name()] = topic

    def add_table(self, name: str, table: Any) -> None:
        self._tables[name] = table

    async def send(self, write: Write) -> Awaitable[Any]:
        if isinstance(write, StateWrite):
            return self._put(write)
        if self._writer is not None:
            return await self._write(self._writer, write)
        topic = self._topics.get(write.topic)
        if topic is None:
            topic = self._topics[write.topic] = self._app.topic(
                write.topic, key_serializer="raw", value_serializer="raw"
            )
        # Faust takes seconds and converts with int(seconds * 1000.0); the half millisecond keeps
        # float rounding from turning ...572 ms into ...571.
        timestamp = (write.timestamp_ms + 0.5) / 1000 if write.timestamp_ms is not None else None
        future: Awaitable[Any] = await topic.send(
            key=write.key,
            value=write.value,
            headers=write.headers or None,
            timestamp=timestamp,
            partition=write.partition,
        )
        return future

    async def _write(self, writer: KafkaDurableProducer, write: TopicWrite) -> Awaitable[Any]:
        if not self._writer_started:
            await writer.start()
            self._writer_started = True
        return writer.enqueue(
            write.topic,
            write.key,
            write.value,
            write.headers,
            partition=write.partition,
            timestamp_ms=write.timestamp_ms,
        )

    async def _close_writer(self, app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        if self._writer is not None and self._writer_started:
            self._writer_started = False
            await self._writer.close()

    def _put(self, write: StateWrite) -> Awaitable[Any]:
        table = self._tables[write.table]
        if write.record is not None:
            with processing(write.record):
                table.data[write.key] = write.value
        future: Awaitable[Any] = table.send_changelog(write.partition, write.key, write.value)
        return future
