"""Webhook JSON to Avro datum, checked field by field against the schema.

:func:`compile_converter` walks an Avro schema once and returns a function that converts a parsed
JSON value into a datum fastavro can write, or raises :class:`EventValidationError` with the JSON
path of the first offending field. The per-event work is only the walk over the event itself; the
path is assembled only when something is wrong, so the happy path pays nothing for it.

JSON-specific rules, beyond the schema's own types:

* ``long``/``int``: a JSON integer in range; an integral float (``5.0``) is accepted as JSON Schema
  says ``integer`` does; ``true``/``false`` are not numbers.
* ``double``: any JSON number; integers become floats.
* A missing optional field, or ``null`` in one, becomes ``null``; a missing required field is
  ``missing_required_field``; ``null`` in a required field is ``wrong_type``.
* Unknown fields: rejected (``unexpected_field``) in records marked
  ``"x-additional-properties": false``, left out of the datum elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connector.avro.errors import EventValidationError, Reason
from connector.avro.mapping import STRICT_ATTRIBUTE
from connector.avro.schema_walk import SchemaWalk

Converter = Callable[[Any], Any]

INT_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)


class _Invalid(Exception):
    """Raised inside the walk; carries the path segments from the failing field outwards."""

    def __init__(self, reason: Reason, message: str) -> None:
        self.reason = reason
        self.message = message
        self.segments: list[str] = []


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _wrong(expected: str, value: Any) -> _Invalid:
    return _Invalid(Reason.WRONG_TYPE, f"expected {expected}, got {_type_name(value)}")


def _string(value: Any) -> Any:
    if type(value) is str:
        return value
    raise _wrong("string", value)


def _boolean(value: Any) -> Any:
    if type(value) is bool:
        return value
    raise _wrong("boolean", value)


def _integer(bounds: tuple[int, int], label: str) -> Converter:
    low, high = bounds

    def convert(value: Any) -> Any:
        if type(value) is float and value.is_integer():
            value = int(value)
        if type(value) is not int:
            raise _wrong(label, value)
        if not low <= value <= high:
            raise _Invalid(Reason.OUT_OF_RANGE, f"{value} does not fit in an Avro {label}")
        return value

    return convert


def _double(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            raise _Invalid(Reason.OUT_OF_RANGE, f"{value} does not fit in an Avro double") from None
    raise _wrong("number", value)


_PRIMITIVES: dict[str, Converter] = {
    "string": _string,
    "boolean": _boolean,
    "int": _integer(INT_RANGE, "int"),
    "long": _integer(LONG_RANGE, "long"),
    "double": _double,
    "float": _double,
}


class _Compiler(SchemaWalk[Converter]):
    def primitive(self, name: str) -> Converter | None:
        if name == "null":
            return self._null
        return _PRIMITIVES.get(name)

    @staticmethod
    def _null(value: Any) -> Any:
        if value is None:
            return None
        raise _wrong("null", value)

    def union(self, branches: list[Any], namespace: str | None) -> Converter:
        non_null = [b for b in branches if b != "null"]
        if len(non_null) != 1 or len(branches) != 2:
            raise ValueError("only [null, T] unions are supported")
        inner = self.compile(non_null[0], namespace)

        def convert(value: Any) -> Any:
            return None if value is None else inner(value)

        return convert

    def enum(self, schema: Mapping[str, Any], namespace: str | None) -> Converter:
        full, _ = self.full_name(schema, namespace)
        symbols = frozenset(schema["symbols"])
        listed = ", ".join(schema["symbols"])

        def convert(value: Any) -> Any:
            if type(value) is not str:
                raise _wrong("string", value)
            if value not in symbols:
                raise _Invalid(Reason.UNKNOWN_ENUM_SYMBOL, f"{value!r} is not one of {listed}")
            return value

        self.named[full] = convert
        return convert

    def array(self, schema: Mapping[str, Any], namespace: str | None) -> Converter:
        item = self.compile(schema["items"], namespace)

        def convert(value: Any) -> Any:
            if type(value) is not list:
                raise _wrong("array", value)
            out = []
            for index, element in enumerate(value):
                try:
                    out.append(item(element))
                except _Invalid as exc:
                    exc.segments.append(f"[{index}]")
                    raise
            return out

        return convert

    def record(self, schema: Mapping[str, Any], namespace: str | None) -> Converter:
        full, space = self.full_name(schema, namespace)
        fields: list[tuple[str, Converter, bool]] = []
        strict = schema.get(STRICT_ATTRIBUTE) is False
        names: frozenset[str] = frozenset(f["name"] for f in schema["fields"])

        def convert(value: Any) -> Any:
            if type(value) is not dict:
                raise _Invalid(Reason.NOT_AN_OBJECT, f"expected object, got {_type_name(value)}")
            datum: dict[str, Any] = {}
            for name, field_convert, optional in fields:
                field_value = value.get(name)
                if field_value is None:
                    if optional:
                        datum[name] = None
                        continue
                    if name not in value:
                        missing = _Invalid(
                            Reason.MISSING_REQUIRED_FIELD, "required field is missing"
                        )
                        missing.segments.append(f".{name}")
                        raise missing
                try:
                    datum[name] = field_convert(field_value)
                except _Invalid as exc:
                    exc.segments.append(f".{name}")
                    raise
            if strict:
                for key in value:
                    if key not in names:
                        extra = _Invalid(Reason.UNEXPECTED_FIELD, "field is not in the schema")
                        extra.segments.append(f".{key}")
                        raise extra
            return datum

        self.named[full] = convert
        for field in schema["fields"]:
            field_type = field["type"]
            optional = isinstance(field_type, list) and "null" in field_type
            fields.append((field["name"], self.compile(field_type, space), optional))
        return convert


def compile_converter(schema: Mapping[str, Any]) -> Callable[[Any], dict[str, Any]]:
    """A function turning a parsed JSON event into a datum of ``schema`` (a record schema)."""
    compiler = _Compiler()
    root = compiler.compile(schema, schema.get("namespace"))

    def convert(value: Any) -> dict[str, Any]:
        try:
            datum: dict[str, Any] = root(value)
        except _Invalid as exc:
            path = "$" + "".join(reversed(exc.segments))
            raise EventValidationError(path, exc.reason, exc.message) from None
        return datum

    return convert
