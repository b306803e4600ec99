"""JSON Schema (from Zoom's OpenAPI specs) to Avro: the mapping rules, as one pure function.

The rules (the README repeats them):

* Each event type becomes one Avro record. Its namespace is ``zoom.webhooks.<product>.<event>``
  and its name the event in PascalCase (``EvaluationCompleted``). Nested objects (and enums) become
  named types whose names are the event's name followed by the PascalCase path from the root
  (``EvaluationCompletedPayloadObjectAgentInfo``; array items add ``Item``), so two objects of the
  same shape in different places (``new_associations`` and ``old_associations``) get two distinct
  names, and no two names collide, even for tools that drop namespaces. Names depend only on the
  spec, so they are stable.
* A property listed in ``required`` keeps its plain type; any other is the union
  ``["null", T]`` with ``"default": null``.
* ``string`` becomes ``string``; ``boolean`` becomes ``boolean``; ``number`` becomes ``double``;
  ``integer`` with ``format: int32`` becomes ``int``, and every other ``integer`` (``int64`` or
  no format) becomes ``long``, so a width the spec does not state is never narrowed.
* Integer fields holding epoch milliseconds (``event_ts`` and every ``*_time``) become
  ``{"type": "long", "logicalType": "timestamp-millis"}``. ``*_time`` strings (ISO 8601, such as
  ``start_time``) stay strings: they are not epoch numbers.
* ``enum`` becomes an Avro ``enum`` named by its path, with the spec's symbols in the spec's
  order followed by the sentinel ``UNKNOWN``, which is also the enum's ``default``. The codec never
  maps an unknown value to ``UNKNOWN``: an unknown symbol is a validation error and the event goes
  to the dead-letter topic with its raw bytes (nothing lost). When Zoom adds a symbol, the spec and
  schema are updated (the new symbol goes before ``UNKNOWN``) and the dead letters are replayed;
  consumers still on the old schema read the new symbol as ``UNKNOWN`` through Avro's enum default
  instead of failing.
* ``array`` becomes an Avro ``array`` of its ``items``' mapping.
* ``description`` becomes ``doc``.
* ``additionalProperties: false`` is kept as the record attribute
  ``"x-additional-properties": false`` (Avro allows extra attributes; they do not change the
  schema's canonical form or fingerprint). The codec rejects an unexpected field in such an object
  (strict, as the spec says); elsewhere unknown fields are left out of the typed record. Either
  way the raw topic keeps the event byte for byte.

Anything the rules do not cover (``oneOf``, ``$ref``, a property name Avro cannot carry) stops the
generator with an error naming the JSON path, rather than guessing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connector.errors import ConnectorError

NAMESPACE_ROOT = "zoom.webhooks"
UNKNOWN_SYMBOL = "UNKNOWN"
STRICT_ATTRIBUTE = "x-additional-properties"
TIMESTAMP_MILLIS: dict[str, Any] = {"type": "long", "logicalType": "timestamp-millis"}

_AVRO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UNSUPPORTED_KEYWORDS = ("$ref", "oneOf", "anyOf", "allOf", "not", "patternProperties")

AvroSchema = dict[str, Any] | list[Any] | str


class SchemaMappingError(ConnectorError):
    """A part of a spec the mapping rules do not cover."""

    def __init__(self, event_type: str, path: str, message: str) -> None:
        super().__init__(f"{event_type} at {path}: {message}")
        self.path = path


def pascal_case(name: str) -> str:
    """``agent_info`` -> ``AgentInfo``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)


def is_epoch_millis(field_name: str, json_type: Any) -> bool:
    """Whether an integer field carries epoch milliseconds, by Zoom's naming."""
    return json_type == "integer" and (field_name == "event_ts" or field_name.endswith("_time"))


class _Mapper:
    def __init__(self, event_type: str) -> None:
        self.event_type = event_type

    def fail(self, path: str, message: str) -> SchemaMappingError:
        return SchemaMappingError(self.event_type, path, message)

    def check_name(self, name: str, path: str) -> str:
        if not _AVRO_NAME.match(name):
            raise self.fail(path, f"{name!r} is not a valid Avro name")
        return name

    def type_of(
        self, schema: Mapping[str, Any], path: str, name_path: str, field: str
    ) -> AvroSchema:
        for keyword in _UNSUPPORTED_KEYWORDS:
            if keyword in schema:
                raise self.fail(path, f"'{keyword}' is not supported by the mapping rules")
        json_type = schema.get("type")
        if "enum" in schema:
            if json_type != "string":
                raise self.fail(path, "only string enums are supported")
            symbols = [self.check_name(str(s), path) for s in schema["enum"]]
            if len(set(symbols)) != len(symbols):
                raise self.fail(path, "enum has duplicate symbols")
            if UNKNOWN_SYMBOL not in symbols:
                symbols.append(UNKNOWN_SYMBOL)
            enum: dict[str, Any] = {"type": "enum", "name": name_path}
            if schema.get("description"):
                enum["doc"] = schema["description"]
            enum["symbols"] = symbols
            enum["default"] = UNKNOWN_SYMBOL
            return enum
        if json_type == "object":
            return self.record(schema, path, name_path)
        if json_type == "array":
            items = schema.get("items")
            if not isinstance(items, Mapping):
                raise self.fail(path, "array without an 'items' schema")
            return {
                "type": "array",
                "items": self.type_of(items, f"{path}[]", f"{name_path}Item", field),
            }
        if json_type == "string":
            return "string"
        if json_type == "boolean":
            return "boolean"
        if json_type == "number":
            return "double"
        if json_type == "integer":
            if is_epoch_millis(field, json_type):
                return dict(TIMESTAMP_MILLIS)
            return "int" if schema.get("format") == "int32" else "long"
        raise self.fail(path, f"unsupported type {json_type!r}")

    def record(self, schema: Mapping[str, Any], path: str, name: str) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        unknown_required = required - set(properties)
        if unknown_required:
            raise self.fail(path, f"required fields without a schema: {sorted(unknown_required)}")
        fields: list[dict[str, Any]] = []
        for field_name, field_schema in properties.items():
            field_path = f"{path}.{field_name}"
            self.check_name(field_name, field_path)
            avro_type = self.type_of(
                field_schema, field_path, name + pascal_case(field_name), field_name
            )
            field: dict[str, Any] = {"name": field_name}
            if field_schema.get("description"):
                field["doc"] = field_schema["description"]
            if field_name in required:
                field["type"] = avro_type
            else:
                field["type"] = ["null", avro_type]
                field["default"] = None
            fields.append(field)
        record: dict[str, Any] = {"type": "record", "name": name}
        if schema.get("description"):
            record["doc"] = schema["description"]
        record["fields"] = fields
        if schema.get("additionalProperties") is False:
            record[STRICT_ATTRIBUTE] = False
        return record


def event_namespace(event_type: str) -> str:
    return f"{NAMESPACE_ROOT}.{event_type}"


def event_record_name(event_type: str) -> str:
    return pascal_case(event_type.split(".", 1)[1])


def avro_schema_for(
    event_type: str, json_schema: Mapping[str, Any], summary: str = ""
) -> dict[str, Any]:
    """The Avro record schema of one event type, from its request body's JSON Schema."""
    mapper = _Mapper(event_type)
    if json_schema.get("type") != "object":
        raise mapper.fail("$", "an event body must be an object")
    record = mapper.record(json_schema, "$", event_record_name(event_type))
    schema: dict[str, Any] = {
        "type": "record",
        "name": record["name"],
        "namespace": event_namespace(event_type),
    }
    if summary or json_schema.get("description"):
        schema["doc"] = summary or json_schema["description"]
    schema["fields"] = record["fields"]
    if STRICT_ATTRIBUTE in record:
        schema[STRICT_ATTRIBUTE] = record[STRICT_ATTRIBUTE]
    return schema
