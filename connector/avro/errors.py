"""Why an event does not fit its schema: a JSON path and a machine-readable reason.

The dead-letter topic copies :attr:`EventValidationError.reason` and
:attr:`EventValidationError.path` into record headers, so a consumer of dead letters can group
and replay them without parsing prose.
"""

from __future__ import annotations

from enum import StrEnum

from connector.errors import ConnectorError


class Reason(StrEnum):
    """Machine-readable reasons an event was refused."""

    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_EVENT = "missing_event"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    MISSING_REQUIRED_FIELD = "missing_required_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_ENUM_SYMBOL = "unknown_enum_symbol"
    UNEXPECTED_FIELD = "unexpected_field"
    OUT_OF_RANGE = "out_of_range"
    INVALID_STRING = "invalid_string"
    UNKNOWN_SCHEMA = "unknown_schema"
    MALFORMED_RECORD = "malformed_record"


class CodecError(ConnectorError):
    """Bytes that cannot be framed or unframed (unknown fingerprint, bad magic, ...)."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class EventValidationError(ConnectorError):
    """An event body that does not fit its event type's Avro schema."""

    def __init__(self, path: str, reason: Reason, message: str) -> None:
        super().__init__(f"{path}: {message} ({reason})")
        self.path = path
        self.reason = reason
        self.detail = message


class UnknownEventTypeError(EventValidationError):
    """The body's ``event`` names no event type the connector has a schema for."""

    def __init__(self, event_type: str) -> None:
        super().__init__("$.event", Reason.UNKNOWN_EVENT_TYPE, f"unknown event type {event_type!r}")
        self.event_type = event_type
