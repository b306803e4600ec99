"""Dead letters: a raw record the worker could not turn into a typed record, and why.

A dead letter is the raw record exactly as it arrived (same key, same bytes, same headers, Zoom's
included) plus headers that say why and where from, so an operator can group dead letters by
reason without parsing prose, fix the cause and replay them to the raw topic:

=============================  =====================================================================
header                         value (UTF-8)
=============================  =====================================================================
``zoom-dlq-reason``            machine-readable reason: one of the codec's
                               :class:`~connector.avro.errors.Reason` values (``invalid_json``,
                               ``missing_required_field``, ``unknown_event_type``, ...) or one of
                               :class:`PipelineReason` (``internal_error``, ``produce_failed``)
``zoom-dlq-path``              JSON path of the offending value, e.g.
                               ``$.payload.object.evaluation_id`` (``$`` when it is the body)
``zoom-dlq-message``           a human-readable message (at most 1000 characters)
``zoom-dlq-event-type``        the body's ``event`` field, when it has one
``zoom-dlq-source-topic``      where the raw record was read: topic,
``zoom-dlq-source-partition``  partition (decimal)
``zoom-dlq-source-offset``     and offset (decimal)
``zoom-dlq-failed-at``         when the worker refused it, epoch milliseconds (decimal)
``zoom-event-id``              the event's identity (:mod:`connector.worker.identity`)
=============================  =====================================================================

Headers of the original record with these names are dropped (a dead letter replayed and refused
again says why *this* time), every other original header is kept in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from connector.avro.errors import Reason
from connector.wire import EVENT_ID_HEADER, Headers

REASON_HEADER: Final = "zoom-dlq-reason"
PATH_HEADER: Final = "zoom-dlq-path"
MESSAGE_HEADER: Final = "zoom-dlq-message"
EVENT_TYPE_HEADER: Final = "zoom-dlq-event-type"
SOURCE_TOPIC_HEADER: Final = "zoom-dlq-source-topic"
SOURCE_PARTITION_HEADER: Final = "zoom-dlq-source-partition"
SOURCE_OFFSET_HEADER: Final = "zoom-dlq-source-offset"
FAILED_AT_HEADER: Final = "zoom-dlq-failed-at"

DEAD_LETTER_HEADERS: Final = frozenset(
    {
        REASON_HEADER,
        PATH_HEADER,
        MESSAGE_HEADER,
        EVENT_TYPE_HEADER,
        SOURCE_TOPIC_HEADER,
        SOURCE_PARTITION_HEADER,
        SOURCE_OFFSET_HEADER,
        FAILED_AT_HEADER,
        EVENT_ID_HEADER,
    }
)

MAX_MESSAGE_CHARS: Final = 1000


class PipelineReason(StrEnum):
    """Reasons that come from the worker rather than from the event's content."""

    INTERNAL_ERROR = "internal_error"
    """An unexpected exception while routing the record (a bug): the record is parked, not lost."""
    PRODUCE_FAILED = "produce_failed"
    """The typed record could not be written for a reason tied to the record (e.g. too large)."""


DeadLetterReason = Reason | PipelineReason


@dataclass(frozen=True)
class Refusal:
    """Why a record became a dead letter."""

    reason: DeadLetterReason
    path: str
    message: str
    event_type: str | None = None


@dataclass(frozen=True)
class Origin:
    """Where a raw record was read."""

    topic: str
    partition: int
    offset: int


def dead_letter_headers(
    original: Sequence[tuple[str, bytes]],
    refusal: Refusal,
    origin: Origin,
    event_id: str,
    failed_at_ms: int,
) -> Headers:
    """The dead letter's headers: the original ones, then why and where from."""
    message = refusal.message
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    headers: Headers = [(k, v) for k, v in original if k not in DEAD_LETTER_HEADERS]
    headers += [
        (REASON_HEADER, str(refusal.reason).encode()),
        (PATH_HEADER, refusal.path.encode("utf-8", errors="backslashreplace")),
        (MESSAGE_HEADER, message.encode("utf-8", errors="backslashreplace")),
    ]
    if refusal.event_type is not None:
        headers.append(
            (EVENT_TYPE_HEADER, refusal.event_type.encode("utf-8", errors="backslashreplace"))
        )
    headers += [
        (SOURCE_TOPIC_HEADER, origin.topic.encode()),
        (SOURCE_PARTITION_HEADER, str(origin.partition).encode()),
        (SOURCE_OFFSET_HEADER, str(origin.offset).encode()),
        (FAILED_AT_HEADER, str(failed_at_ms).encode()),
        (EVENT_ID_HEADER, event_id.encode("utf-8", errors="backslashreplace")),
    ]
    return headers
