"""The delivery core's writes handed to Faust's producer: topic records and table entries.

Topics are Faust topics of raw bytes (the codec frames Avro itself); a topic the worker declared
(an internal one, created by Faust with its partition count) is used as declared. A table entry
is stored locally under the record it was computed from, then sent to the table's changelog.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any

import faust

from connector.worker.delivery import StateWrite, Write
from connector.worker.patches import processing


class FaustSink:
    """:class:`~connector.worker.delivery.Sink` over a Faust app's producer."""

    def __init__(self, app: faust.App, tables: Mapping[str, Any] | None = None) -> None:
        self._app = app
        self._topics: dict[str, Any] = {}
        self._tables = dict(tables or {})

    def declare(self, topic: Any) -> None:
        """Write to ``topic`` (a Faust topic) as it is, e.g. an internal topic."""
        self._topics[topic.get_topic_name()] = topic

    def add_table(self, name: str, table: Any) -> None:
        self._tables[name] = table

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

    def _put(self, write: StateWrite) -> Awaitable[Any]:
        table = self._tables[write.table]
        if write.record is not None:
            with processing(write.record):
                table.data[write.key] = write.value
        future: Awaitable[Any] = table.send_changelog(write.partition, write.key, write.value)
        return future
