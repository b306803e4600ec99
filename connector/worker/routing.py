"""Routing one raw webhook record: a typed Avro record, or a dead letter saying why.

:meth:`Router.route` is a plain function of the record (no Kafka, no clock but the one given), so
every routing rule is unit-tested without a broker. The raw handler (:mod:`connector.worker.fanout`)
feeds it the raw topic, drops duplicates, writes what it returns and acknowledges the raw record
only once Kafka has stored that.

A raw record (``zoom.webhooks.raw``) becomes:

* a typed record on ``<prefix>.<event type>``, e.g. ``zoom.quality_management.evaluation_completed``,
  when the body parses, names a known event type and fits that type's Avro schema. Its value is the
  Avro record framed by the codec (single-object encoding, or the Confluent wire format with a
  schema registry); its headers are ``zoom-event-id`` (:mod:`connector.worker.identity`) and,
  copied when present, Zoom's ``x-zm-trackingid`` and the source's ``zoom-connector-received-at``;
  its timestamp is the raw record's (when the source received the webhook).
* otherwise a dead letter on ``<prefix>.webhooks.dlq`` (:mod:`connector.worker.dead_letters`).
  That includes a body whose ``event`` names the wrong type, such as Zoom's published
  ``evaluation_completed`` example, which says ``interaction_analysis_completed``: it is checked
  against the type it names and refused (``missing_required_field`` at
  ``$.payload.object.interaction_info``). Any unexpected exception (a bug) also makes a dead letter,
  with reason ``internal_error``: a record the worker cannot handle never blocks its partition.

Typed topic keys: the id of the thing the event is about, as chosen for the raw topic's key by
:func:`connector.wire.raw_record_key`, without its ``<field>:`` prefix (so consumers join on
the bare id):

================================================================  ==============================
typed topic (``zoom.`` + event type)                               key
================================================================  ==============================
``quality_management.evaluation_completed``                        ``payload.object.evaluation_id``
``quality_management.interaction_analysis_completed``              ``payload.object.interaction_info.interaction_id``
``revenue_accelerator.conversation_analysis_completed``            ``payload.object.conversation_id``
``revenue_accelerator.post_comment_completed``                     ``payload.object.conversation_id``
``revenue_accelerator.conversation_crm_associations_changed``      the ``conversation_id`` all items share
``revenue_accelerator.playlist_create`` / ``_delete`` /            ``payload.object.playlist_id``
``_add_moment`` / ``_remove_moment``
================================================================  ==============================

When the id is missing or empty, the key is the raw key's fallback, ``sha256:`` + the hex SHA-256
of the body, so a record written twice still lands in one partition. Dead letters keep the raw
record's key unchanged.
"""  # noqa: E501

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from connector.avro.codec import EventCodec, parse_event
from connector.avro.errors import CodecError, EventValidationError
from connector.topics import TopicNames
from connector.wire import (
    EVENT_ID_HEADER,
    RECEIVED_AT_HEADER,
    TRACKING_ID_HEADER,
    Headers,
    raw_record_key,
)
from connector.worker.dead_letters import (
    Origin,
    PipelineReason,
    Refusal,
    dead_letter_headers,
)
from connector.worker.identity import event_identity

log = logging.getLogger(__name__)

COPIED_HEADERS: Final = (TRACKING_ID_HEADER, RECEIVED_AT_HEADER)
"""Raw record headers copied to the typed record, when present."""

Clock = Callable[[], float]


@dataclass(frozen=True)
class RawRecord:
    """One record of the raw topic, as the worker read it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()

    @property
    def origin(self) -> Origin:
        return Origin(self.topic, self.partition, self.offset)


@dataclass(frozen=True)
class TypedRecord:
    """A valid event, ready for its typed topic."""

    event_type: str
    topic: str
    key: bytes
    value: bytes
    headers: Headers
    event_id: str
    timestamp_ms: int | None
    datum: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The validated event as the Avro datum ``value`` encodes (what ``EventCodec.decode`` of
    ``value`` gives), for writes derived from the event without decoding it again."""


@dataclass(frozen=True)
class DeadLetter:
    """A raw record parked on the dead-letter topic, with why."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    event_id: str
    refusal: Refusal
    timestamp_ms: int | None


Outcome = TypedRecord | DeadLetter


def typed_record_key(event: dict[str, Any], body: bytes) -> bytes:
    """The typed topic's key: the raw key's object id without its ``<field>:`` prefix."""
    key = raw_record_key(event, body)
    field, _, object_id = key.partition(b":")
    return key if field == b"sha256" or not object_id else object_id


class Router:
    """Decides what a raw record becomes; holds the codec, so schemas are parsed once."""

    def __init__(self, codec: EventCodec, topics: TopicNames, clock: Clock) -> None:
        self._codec = codec
        self._topics = topics
        self._clock = clock

    def route(self, record: RawRecord) -> Outcome:
        """A typed record or a dead letter; never raises."""
        try:
            return self._route(record)
        except Exception as exc:
            log.exception(
                "internal error routing raw record topic=%s partition=%d offset=%d",
                record.topic,
                record.partition,
                record.offset,
            )
            refusal = Refusal(PipelineReason.INTERNAL_ERROR, "$", f"{type(exc).__name__}: {exc}")
            return self.dead_letter(record, refusal, _safe_identity(record))

    def dead_letter(self, record: RawRecord, refusal: Refusal, event_id: str) -> DeadLetter:
        """``record`` refused for ``refusal``, as a dead letter.

        A record with neither key nor value (a tombstone without a key: not something the source
        writes, but anyone who can write to the raw topic can) becomes a dead letter with an empty
        value, because Kafka's producer refuses a record that has neither.
        """
        headers = dead_letter_headers(
            record.headers, refusal, record.origin, event_id, round(self._clock() * 1000)
        )
        value = record.value
        if value is None and record.key is None:
            value = b""
        return DeadLetter(
            topic=self._topics.dlq,
            key=record.key,
            value=value,
            headers=headers,
            event_id=event_id,
            refusal=refusal,
            timestamp_ms=record.timestamp_ms,
        )

    def _route(self, record: RawRecord) -> Outcome:
        body = record.value if record.value is not None else b""
        event: dict[str, Any] | None = None
        try:
            event = parse_event(body)
            event_type, datum = self._codec.to_datum(event)
            value = self._codec.encode_datum(event_type, datum)
        except EventValidationError as exc:
            refusal = Refusal(exc.reason, exc.path, exc.detail, _event_name(event))
            return self.dead_letter(record, refusal, event_identity(event, body))
        except CodecError as exc:
            refusal = Refusal(exc.reason, "$", str(exc), _event_name(event))
            return self.dead_letter(record, refusal, event_identity(event, body))

        event_id = event_identity(event, body)
        headers: Headers = [(EVENT_ID_HEADER, event_id.encode("utf-8", errors="backslashreplace"))]
        headers += [(k, v) for k, v in record.headers if k in COPIED_HEADERS]
        return TypedRecord(
            event_type=event_type,
            topic=self._topics.typed(event_type),
            key=typed_record_key(event, body),
            value=value,
            headers=headers,
            event_id=event_id,
            timestamp_ms=record.timestamp_ms,
            datum=datum,
        )


def _event_name(event: dict[str, Any] | None) -> str | None:
    name = event.get("event") if event is not None else None
    return name if isinstance(name, str) and name else None


def _safe_identity(record: RawRecord) -> str:
    body = record.value if record.value is not None else b""
    try:
        return event_identity(parse_event(body), body)
    except Exception:
        return event_identity(None, body)
