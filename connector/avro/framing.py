"""How an Avro body is framed on a Kafka topic, so a reader knows which schema wrote it.

* :class:`SingleObjectFraming` - Avro's single-object encoding, used when no schema registry is
  configured: ``C3 01``, the schema's 8-byte CRC-64-AVRO fingerprint (little-endian), the body.
* :class:`ConfluentFraming` - the Confluent wire format, used with a schema registry: ``00``, the
  registry's 4-byte schema id (big-endian), the body.

Both implement :class:`Framing`; the codec holds one and never looks inside the header itself.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Protocol

from connector.avro.errors import CodecError, Reason

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"

_EMPTY64 = 0xC15D213AA4D7A795


def _crc64_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY64 & -(fp & 1))
        table.append(fp)
    return table


_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """The CRC-64-AVRO (Rabin) fingerprint of ``data``, as the Avro specification defines it."""
    fp = _EMPTY64
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


class Framing(Protocol):
    """Puts a schema reference in front of an Avro body, and reads it back."""

    def frame(self, event_type: str, body: bytes) -> bytes: ...

    def unframe(self, data: bytes) -> tuple[str, bytes]:
        """The event type whose schema wrote ``data``, and the Avro body."""
        ...


class SingleObjectFraming:
    """Avro single-object encoding, keyed by each schema's canonical-form fingerprint.

    ``older`` maps the fingerprints of earlier schemas (``schemas/avro/history``) to their event
    types: records they wrote are recognised too (the codec resolves them to the current schema).
    """

    def __init__(
        self, canonical_forms: Mapping[str, str], older: Mapping[bytes, str] | None = None
    ) -> None:
        self._headers: dict[str, bytes] = {}
        self._event_types: dict[bytes, str] = dict(older or {})
        for event_type, canonical in canonical_forms.items():
            fingerprint = struct.pack("<Q", crc64_avro(canonical.encode("utf-8")))
            self._headers[event_type] = SINGLE_OBJECT_MAGIC + fingerprint
            self._event_types[fingerprint] = event_type

    def header(self, event_type: str) -> bytes:
        return self._headers[event_type]

    @staticmethod
    def fingerprint_of(data: bytes) -> bytes | None:
        """The writer's fingerprint in ``data``, ``None`` when it is not single-object encoded."""
        return bytes(data[2:10]) if len(data) >= 10 and data[:2] == SINGLE_OBJECT_MAGIC else None

    def frame(self, event_type: str, body: bytes) -> bytes:
        return self._headers[event_type] + body

    def unframe(self, data: bytes) -> tuple[str, bytes]:
        if len(data) < 10 or data[:2] != SINGLE_OBJECT_MAGIC:
            raise CodecError(Reason.MALFORMED_RECORD, "not Avro single-object encoding (no C3 01)")
        fingerprint = bytes(data[2:10])
        try:
            return self._event_types[fingerprint], data[10:]
        except KeyError:
            raise CodecError(
                Reason.UNKNOWN_SCHEMA, f"no schema has fingerprint {fingerprint.hex()}"
            ) from None


class ConfluentFraming:
    """Confluent wire format, with schema ids the registry assigned (see ``connector.registry``)."""

    def __init__(self, schema_ids: Mapping[str, int]) -> None:
        self._headers = {t: CONFLUENT_MAGIC + struct.pack(">I", i) for t, i in schema_ids.items()}
        self._event_types = {i: t for t, i in schema_ids.items()}

    def frame(self, event_type: str, body: bytes) -> bytes:
        return self._headers[event_type] + body

    def unframe(self, data: bytes) -> tuple[str, bytes]:
        if len(data) < 5 or data[:1] != CONFLUENT_MAGIC:
            raise CodecError(Reason.MALFORMED_RECORD, "not Confluent wire format (no magic byte 0)")
        (schema_id,) = struct.unpack(">I", data[1:5])
        try:
            return self._event_types[schema_id], data[5:]
        except KeyError:
            raise CodecError(Reason.UNKNOWN_SCHEMA, f"schema id {schema_id} is not ours") from None
