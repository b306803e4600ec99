"""What one record of the raw or dead-letter topic says about itself.

A dead letter carries why and where from in its ``zoom-dlq-*`` headers
(:mod:`connector.worker.dead_letters`); a raw record only has its body (the event type is the
body's ``event`` field) and its Kafka timestamp. :class:`RecordView` puts both behind one shape,
so the filters and the printing do not care which topic a record came from.

A replayed copy keeps the original key, bytes and headers (Zoom's, the receive time) minus the
dead-letter headers, plus ``zoom-replayed-from`` naming the record it was copied from.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from connector.wire import EVENT_ID_HEADER, REPLAYED_FROM_HEADER, Headers
from connector.worker.dead_letters import (
    DEAD_LETTER_HEADERS,
    EVENT_TYPE_HEADER,
    FAILED_AT_HEADER,
    MESSAGE_HEADER,
    PATH_HEADER,
    REASON_HEADER,
    SOURCE_OFFSET_HEADER,
    SOURCE_PARTITION_HEADER,
    SOURCE_TOPIC_HEADER,
)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", errors="replace")


def _int(value: bytes | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def body_event_type(body: bytes | None) -> str | None:
    """The ``event`` field of a webhook body, when the body is a JSON object that has one."""
    if not body:
        return None
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if isinstance(event, dict) and isinstance(event.get("event"), str):
        return str(event["event"])
    return None


@dataclass(frozen=True)
class RecordView:
    """One record as the commands see it: where it is, when, and (for dead letters) why."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    """Failed-at for a dead letter (its header, else the record time); the record time for raw."""
    key: bytes | None
    value: bytes | None
    headers: Headers
    dead_letter: bool
    reason: str | None = None
    path: str | None = None
    message: str | None = None
    event_type: str | None = None
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    event_id: str | None = None
    replayed_from: str | None = None
    """``zoom-replayed-from`` of the raw record: it was itself a replayed copy."""

    @classmethod
    def of(cls, message: Message, *, dead_letter: bool) -> RecordView:
        """The view of a consumed ``message``; ``dead_letter``: read its ``zoom-dlq-*`` headers."""
        headers: Headers = [(k, v if v is not None else b"") for k, v in message.headers() or []]
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        assert topic is not None and partition is not None and offset is not None
        kind, stamp = message.timestamp()
        record_ms = stamp if kind != TIMESTAMP_NOT_AVAILABLE else 0
        value = message.value()
        if not dead_letter:
            return cls(
                topic, partition, offset, record_ms, message.key(), value, headers, False,
                event_type=body_event_type(value),
            )  # fmt: skip
        found = dict(headers)
        failed_at = _int(found.get(FAILED_AT_HEADER))
        return cls(
            topic,
            partition,
            offset,
            failed_at if failed_at is not None else record_ms,
            message.key(),
            value,
            headers,
            True,
            reason=_text(found.get(REASON_HEADER)),
            path=_text(found.get(PATH_HEADER)),
            message=_text(found.get(MESSAGE_HEADER)),
            event_type=_text(found.get(EVENT_TYPE_HEADER)) or body_event_type(value),
            source_topic=_text(found.get(SOURCE_TOPIC_HEADER)),
            source_partition=_int(found.get(SOURCE_PARTITION_HEADER)),
            source_offset=_int(found.get(SOURCE_OFFSET_HEADER)),
            event_id=_text(found.get(EVENT_ID_HEADER)),
            replayed_from=_text(found.get(REPLAYED_FROM_HEADER)),
        )

    @property
    def coordinates(self) -> str:
        """``<topic>/<partition>/<offset>``: the value of ``zoom-replayed-from`` for a copy."""
        return f"{self.topic}/{self.partition}/{self.offset}"


def replay_headers(
    original: Sequence[tuple[str, bytes]], replayed_from: str
) -> list[tuple[str, str | bytes]]:
    """The headers of a replayed copy: the original ones without the dead-letter headers (and
    without an earlier ``zoom-replayed-from``), then ``zoom-replayed-from``."""
    dropped = DEAD_LETTER_HEADERS | {REPLAYED_FROM_HEADER}
    headers: list[tuple[str, str | bytes]] = [(k, v) for k, v in original if k not in dropped]
    headers.append((REPLAYED_FROM_HEADER, replayed_from.encode()))
    return headers
