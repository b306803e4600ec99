"""The event codec: webhook JSON -> Avro datum (validated) -> framed bytes, and back.

Schemas are the committed ``schemas/avro/*.avsc`` files, read and parsed once when the codec is
built. Per event the work is: parse JSON (orjson), convert and check it against its event type's
schema (:mod:`connector.avro.convert`, which names the offending JSON path), write with the
writer compiled from the schema (:mod:`connector.avro.writer`; fastavro reads), put the framing's
header in front (:mod:`connector.avro.framing`).

Records written under an earlier schema of an event type (single-object encoding, with the
schema history of :mod:`connector.avro.history` given as ``history``) are read with that writer
schema and resolved to the current one by fastavro: fields added since get their defaults, enum
symbols dropped since read as the enum's default.

Decoding returns plain JSON values: ``timestamp-millis`` fields come back as epoch-millisecond
integers, exactly as Zoom sent them (consumers who want ``datetime`` objects read the ``.avsc``
with fastavro directly).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import orjson
from fastavro.read import SchemaResolutionError

from connector.avro.convert import compile_converter
from connector.avro.errors import (
    CodecError,
    EventValidationError,
    Reason,
    UnknownEventTypeError,
)
from connector.avro.framing import Framing, SingleObjectFraming
from connector.avro.history import WriterSchema, fingerprint
from connector.avro.writer import compile_writer
from connector.paths import avro_schemas_dir

SCHEMA_SUFFIX = ".avsc"


def load_schemas(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """Event type -> Avro schema (as JSON), from the ``.avsc`` files of ``folder``."""
    folder = folder or avro_schemas_dir()
    schemas = {}
    for path in sorted(folder.glob(f"*{SCHEMA_SUFFIX}")):
        event_type = path.name[: -len(SCHEMA_SUFFIX)]
        schemas[event_type] = json.loads(path.read_text(encoding="utf-8"))
    if not schemas:
        raise CodecError(Reason.UNKNOWN_SCHEMA, f"no Avro schemas (*.avsc) in {folder}")
    return schemas


def without_logical_types(schema: Any) -> Any:
    """The same schema minus logical types: same binary encoding, plain values when read."""
    if isinstance(schema, list):
        return [without_logical_types(s) for s in schema]
    if isinstance(schema, dict):
        return {k: without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    return schema


@dataclass(frozen=True)
class _EventSchema:
    event_type: str
    schema: dict[str, Any]
    parsed: Any
    parsed_plain: Any
    convert: Callable[[Any], dict[str, Any]]
    write: Callable[[Any], bytes]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_event(body: bytes) -> dict[str, Any]:
    """A webhook body as a JSON object, or :class:`EventValidationError`.

    orjson parses; when it refuses, the standard library gets a second look, because orjson
    rejects some valid JSON (integers beyond 64 bits), which must reach the schema check and fail
    there with a path (``out_of_range``) rather than be called invalid JSON. ``NaN`` and
    ``Infinity`` stay invalid.
    """
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            event = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise EventValidationError("$", Reason.INVALID_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(event, dict):
        raise EventValidationError("$", Reason.NOT_AN_OBJECT, "the body is not a JSON object")
    return event


def event_type_of(event: Mapping[str, Any]) -> str:
    """The body's ``event`` field, or :class:`EventValidationError` when it has none."""
    name = event.get("event")
    if not isinstance(name, str) or not name:
        raise EventValidationError("$.event", Reason.MISSING_EVENT, "no event name (string)")
    return name


class EventCodec:
    """Converts webhook events of every known type to and from framed Avro bytes."""

    def __init__(
        self,
        schemas: Mapping[str, dict[str, Any]] | None = None,
        framing: Framing | None = None,
        history: Mapping[bytes, WriterSchema] | None = None,
    ) -> None:
        schemas = dict(schemas) if schemas is not None else load_schemas()
        self._schemas: dict[str, _EventSchema] = {}
        for event_type, schema in schemas.items():
            self._schemas[event_type] = _EventSchema(
                event_type=event_type,
                schema=schema,
                parsed=fastavro.parse_schema(schema),
                parsed_plain=fastavro.parse_schema(without_logical_types(schema)),
                convert=compile_converter(schema),
                write=compile_writer(schema),
            )
        # Writer schemas of earlier releases, parsed once: fingerprint -> (event type, schema).
        current = {fingerprint(s.schema) for s in self._schemas.values()}
        self._older: dict[bytes, tuple[str, Any]] = {
            key: (old.event_type, fastavro.parse_schema(without_logical_types(old.schema)))
            for key, old in (history or {}).items()
            if old.event_type in self._schemas and key not in current
        }
        self.framing: Framing = framing or SingleObjectFraming(
            self.canonical_forms(),
            {key: event_type for key, (event_type, _) in self._older.items()},
        )

    @property
    def event_types(self) -> list[str]:
        return sorted(self._schemas)

    def schema(self, event_type: str) -> dict[str, Any]:
        return self._lookup(event_type).schema

    def canonical_forms(self) -> dict[str, str]:
        """Event type -> the Parsing Canonical Form of its schema (fingerprints, registries)."""
        return {
            t: fastavro.schema.to_parsing_canonical_form(s.parsed) for t, s in self._schemas.items()
        }

    def _lookup(self, event_type: str) -> _EventSchema:
        try:
            return self._schemas[event_type]
        except KeyError:
            raise UnknownEventTypeError(event_type) from None

    def to_datum(
        self, event: Mapping[str, Any], event_type: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Check a parsed event against its schema: its event type and its Avro datum.

        The schema is chosen by ``event_type`` when given, else by the body's ``event`` field.
        """
        if event_type is None:
            event_type = event_type_of(event)
        return event_type, self._lookup(event_type).convert(event)

    def encode_datum(self, event_type: str, datum: Mapping[str, Any]) -> bytes:
        """A datum (from :meth:`to_datum`) as framed Avro bytes."""
        try:
            body = self._lookup(event_type).write(datum)
        except UnicodeEncodeError as exc:
            raise EventValidationError(
                "$", Reason.INVALID_STRING, f"not encodable: {exc}"
            ) from None
        return self.framing.frame(event_type, body)

    def encode(self, body: bytes, event_type: str | None = None) -> tuple[str, bytes]:
        """A raw webhook body as (event type, framed Avro bytes)."""
        event_type, datum = self.to_datum(parse_event(body), event_type)
        return event_type, self.encode_datum(event_type, datum)

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """Framed Avro bytes back to (event type, datum as plain JSON values)."""
        event_type, body = self.framing.unframe(data)
        reader = self._lookup(event_type).parsed_plain
        older = (
            self._older.get(SingleObjectFraming.fingerprint_of(data) or b"")
            if self._older
            else None
        )
        try:
            if older is None:
                datum = fastavro.schemaless_reader(io.BytesIO(body), reader, None)
            else:
                datum = fastavro.schemaless_reader(io.BytesIO(body), older[1], reader)
        except (EOFError, ValueError, IndexError, UnicodeDecodeError, SchemaResolutionError) as exc:
            raise CodecError(Reason.MALFORMED_RECORD, f"cannot read Avro body: {exc}") from exc
        if not isinstance(datum, dict):
            raise CodecError(Reason.MALFORMED_RECORD, "the Avro body is not a record")
        return event_type, datum
