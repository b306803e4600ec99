"""Avro binary writers compiled from a schema: a datum to its bytes, about twice as fast as
fastavro's ``schemaless_writer`` on the connector's records.

fastavro interprets the schema at every write (a dictionary look-up and a type check per value,
a validation per union branch). :func:`compile_writer` walks the schema once and returns nested
closures that only write. The datum must already be valid: it comes from
:func:`~connector.avro.convert.compile_converter` (typed records) or from the connector's own
figures (``agent_scores``); a value of the wrong type raises (``TypeError``, ``KeyError``,
``AttributeError`` or ``struct.error``), it is never written wrong. The bytes are those fastavro
writes (maps and arrays as one block then the end marker), which the tests check schema by schema.

Supported: every primitive, records, enums, arrays, maps, unions of ``null`` and one other type,
named references and logical types (written as their underlying type; the datum holds the plain
value, e.g. epoch milliseconds). Anything else is refused when compiling. The schema walk is
shared with the converter (:mod:`.schema_walk`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

from connector.avro.schema_walk import SchemaWalk

Write = Callable[[Any, list[bytes]], None]
"""Appends the encoding of a value to a list of byte strings."""

_DOUBLE: Final = struct.Struct("<d").pack
_FLOAT: Final = struct.Struct("<f").pack


def _varint(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


_SMALL: Final = {value: _varint(value) for value in range(-64, 64)}
"""Longs written in one byte."""


def encode_long(value: int) -> bytes:
    """An Avro ``long``/``int``: zigzag, then base-128 varint."""
    small = _SMALL.get(value)
    return small if small is not None else _varint(value)


def _long(value: Any, out: list[bytes]) -> None:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    out.append(encode_long(value))


def _double(value: Any, out: list[bytes]) -> None:
    out.append(_DOUBLE(value))


def _float(value: Any, out: list[bytes]) -> None:
    out.append(_FLOAT(value))


def _string(value: str, out: list[bytes]) -> None:
    data = value.encode()
    out.append(encode_long(len(data)))
    out.append(data)


def _bytes(value: bytes, out: list[bytes]) -> None:
    out.append(encode_long(len(value)))
    out.append(value)


def _boolean(value: Any, out: list[bytes]) -> None:
    out.append(b"\x01" if value else b"\x00")


def _null(value: Any, out: list[bytes]) -> None:
    if value is not None:
        raise TypeError(f"expected null, got {type(value).__name__}")


_PRIMITIVES: Final[dict[str, Write]] = {
    "null": _null,
    "boolean": _boolean,
    "int": _long,
    "long": _long,
    "float": _float,
    "double": _double,
    "bytes": _bytes,
    "string": _string,
}
_END: Final = b"\x00"


class _Compiler(SchemaWalk[Write]):
    def primitive(self, name: str) -> Write | None:
        return _PRIMITIVES.get(name)

    def union(self, branches: list[Any], namespace: str | None) -> Write:
        if len(branches) != 2 or "null" not in branches:
            raise ValueError(f"only unions of null and one type are supported: {branches!r}")
        null_index = branches.index("null")
        inner = self.compile(branches[1 - null_index], namespace)
        null_tag, value_tag = encode_long(null_index), encode_long(1 - null_index)

        def write(value: Any, out: list[bytes]) -> None:
            if value is None:
                out.append(null_tag)
            else:
                out.append(value_tag)
                inner(value, out)

        return write

    def record(self, schema: Mapping[str, Any], namespace: str | None) -> Write:
        full, space = self.full_name(schema, namespace)
        fields: list[tuple[str, Write]] = []

        def write(value: Mapping[str, Any], out: list[bytes]) -> None:
            for name, write_field in fields:
                write_field(value[name], out)

        self.named[full] = write  # before the fields: a record may refer to itself
        fields.extend((f["name"], self.compile(f["type"], space)) for f in schema["fields"])
        return write

    def enum(self, schema: Mapping[str, Any], namespace: str | None) -> Write:
        full, _ = self.full_name(schema, namespace)
        indexes = {symbol: encode_long(i) for i, symbol in enumerate(schema["symbols"])}

        def write(value: str, out: list[bytes]) -> None:
            out.append(indexes[value])

        self.named[full] = write
        return write

    def array(self, schema: Mapping[str, Any], namespace: str | None) -> Write:
        item = self.compile(schema["items"], namespace)

        def write(value: list[Any], out: list[bytes]) -> None:
            if value:
                out.append(encode_long(len(value)))
                for element in value:
                    item(element, out)
            out.append(_END)

        return write

    def map(self, schema: Mapping[str, Any], namespace: str | None) -> Write:
        item = self.compile(schema["values"], namespace)

        def write(value: Mapping[str, Any], out: list[bytes]) -> None:
            if value:
                out.append(encode_long(len(value)))
                for key, element in value.items():
                    _string(key, out)
                    item(element, out)
            out.append(_END)

        return write


def compile_writer(schema: Mapping[str, Any]) -> Callable[[Any], bytes]:
    """A function writing a datum of ``schema`` (a JSON schema, parsed or not) as Avro bytes."""
    write = _Compiler().compile(schema, schema.get("namespace"))

    def encode(datum: Any) -> bytes:
        out: list[bytes] = []
        write(datum, out)
        return b"".join(out)

    return encode
