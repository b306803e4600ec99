"""Where the delivery core's writes go: every record of a batch to librdkafka at once.

A batch's topic records (typed records, dead letters, score events, ``agent_scores``) and its
table entries' changelog records are handed together to a
:class:`~connector.kafka.batch_writer.BatchWriter` (librdkafka, idempotent, ``acks=all``, the
murmur2 partitioner of Kafka's Java client and of Faust's producer; built by
:func:`topic_writer`) and awaited once. A table entry is first stored in the Faust table, under
the record it was computed from; its changelog record is what Faust would write (serialized
with the table's serializers) to the partition Faust would choose. Faust still owns the tables:
it restores them from the changelog, serves them, and writes the dedup table's purges.
Once a changelog record is stored, its offset is given to the table's store, as Faust does after
its own writes (a RocksDB store restores from there).

Without a writer (unit tests) topic records go to Faust's producer as Faust topics of raw bytes,
and changelog records through the table's ``send_changelog``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Final

import faust
from faust.types import TP

from connector.kafka.admin import max_record_bytes
from connector.kafka.batch_writer import BatchWriter, OutgoingRecord, WriteError
from connector.settings import Settings
from connector.worker.delivery import StateWrite, TopicWrite, Write
from connector.worker.patches import processing

WRITE_DEADLINE_SECONDS: Final = 30.0
"""How long a batch's topic records may take before those unreported count as failed (the
delivery core then writes them again)."""
_MIN_RECORD_BYTES: Final = 1024 * 1024


def topic_writer(settings: Settings) -> BatchWriter:
    """The worker's librdkafka writer: the cluster's settings (credentials included), durable
    writes, ``WORKER_PRODUCER_LINGER_MS``, records as large as the topics take."""
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
    return BatchWriter(
        config,
        deadline=WRITE_DEADLINE_SECONDS,
        name="worker",
        meanwhile="the worker's batches wait and are written again",
    )


class FaustSink:
    """:class:`~connector.worker.delivery.Sink` over a Faust app's producer."""

    def __init__(
        self,
        app: faust.App,
        tables: Mapping[str, Any] | None = None,
        *,
        writer: BatchWriter | None = None,
    ) -> None:
        """``writer``: writes the topic records (closed when the app stops); ``None``: Faust's
        producer does."""
        self._app = app
        self._topics: dict[str, Any] = {}
        self._tables: dict[str, Any] = {}
        self._changelogs: dict[str, str] = {}
        for name, table in (tables or {}).items():
            self.add_table(name, table)
        self._writer = writer
        if writer is not None:
            app.on_before_shutdown.connect(self._close_writer)

    async def write_all(self, writes: Sequence[Write]) -> list[BaseException | None]:
        """Each write of a batch, all records to the writer at once; each write's outcome."""
        if self._writer is None:
            return await _gather([await _sent(self.send(write)) for write in writes])
        records: list[OutgoingRecord] = []
        for write in writes:
            if isinstance(write, TopicWrite):
                records.append(
                    OutgoingRecord(
                        write.topic,
                        write.key,
                        write.value,
                        write.headers,
                        write.partition,
                        write.timestamp_ms,
                    )
                )
            else:
                records.append(self._changelog_record(write))
        written = await self._writer.write(records)
        self._persist_offsets(writes, written)
        return [outcome if isinstance(outcome, WriteError) else None for outcome in written]

    def declare(self, topic: Any) -> None:
        """Write to ``topic`` (a Faust topic) as it is, e.g. an internal topic."""
        self._topics[topic.get_topic_name()] = topic

    def add_table(self, name: str, table: Any) -> None:
        """Write ``table``'s entries (Faust tables; ``StateWrite.table`` names them)."""
        self._tables[name] = table
        self._changelogs[name] = table.changelog_topic.get_topic_name()

    async def send(self, write: Write) -> Awaitable[Any]:
        if isinstance(write, StateWrite):
            return self._put(write)
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

    async def _close_writer(self, app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        if self._writer is not None:
            await self._writer.close()

    def _changelog_record(self, write: StateWrite) -> OutgoingRecord:
        """Store the entry in its table; the changelog record Faust would write for it."""
        table = self._store(write)
        key, value = write.key, write.value
        if table.key_serializer != "raw":
            key, _ = table.changelog_topic.prepare_key(key, table.key_serializer)
        if table.value_serializer != "raw":
            value, _ = table.changelog_topic.prepare_value(value, table.value_serializer)
        return OutgoingRecord(self._changelogs[write.table], key, value, (), write.partition)

    def _persist_offsets(
        self, writes: Sequence[Write], written: Sequence[WriteError | int]
    ) -> None:
        """Tell each table's store the last changelog offset this batch stored, per partition
        (what Faust's ``Table._on_changelog_sent`` does; a memory store ignores it)."""
        last: dict[tuple[str, int], int] = {}
        for write, outcome in zip(writes, written, strict=True):
            if isinstance(write, StateWrite) and not isinstance(outcome, WriteError):
                key = (write.table, write.partition)
                last[key] = max(outcome, last.get(key, -1))
        for (name, partition), offset in last.items():
            if offset >= 0:
                tp = TP(self._changelogs[name], partition)
                self._tables[name].data.set_persisted_offset(tp, offset)

    def _store(self, write: StateWrite) -> Any:
        """Store the entry locally, in the partition of its record (none: held already); its
        table."""
        table = self._tables[write.table]
        if write.record is not None:
            with processing(write.record):
                table.data[write.key] = write.value
        return table

    def _put(self, write: StateWrite) -> Awaitable[Any]:
        table = self._store(write)
        future: Awaitable[Any] = table.send_changelog(write.partition, write.key, write.value)
        return future


async def _gather(waiting: Sequence[Awaitable[Any]]) -> list[BaseException | None]:
    results = await asyncio.gather(*waiting, return_exceptions=True)
    return [result if isinstance(result, BaseException) else None for result in results]


async def _sent(sending: Awaitable[Awaitable[Any]]) -> Awaitable[Any]:
    """What :meth:`FaustSink.send` returned, or a failed awaitable when it raised."""
    try:
        return await sending
    except Exception as exc:  # refused before it left, e.g. larger than max_request_size
        return _failed(exc)


async def _failed(error: Exception) -> Any:
    raise error
