"""Every schema ever released, kept by fingerprint, so records outlive the schema that wrote them.

Without a schema registry a typed record names its writer's schema only by the CRC-64-AVRO
fingerprint in its single-object header. After a spec change the current ``.avsc`` has another
fingerprint, so a reader needs the older schemas too: Avro's schema resolution then reads an old
record with the reader's schema (a field added since gets its default, an enum symbol the reader
does not know becomes the enum's default, ``UNKNOWN``).

Layout: ``schemas/avro/history/<event type>/<fingerprint>.avsc``, where ``<fingerprint>`` is the
hexadecimal of the 8 bytes after ``C3 01`` in the records that schema wrote, so a reader finds
the writer's schema with ``value[2:10].hex()``. The files are the ``.avsc`` exactly as released.

``zoom-connector schemas generate`` adds the current schema of every event type (it never removes
one); ``schemas check`` fails when a current schema is missing from the history, a history file
does not match its name, or records of a released schema and of the current one cannot be read
with the other (sample records of each, generated from the schema, written with one and read with
the other: a new field without a default, a changed type or a dropped union branch fail), or the
current schema drops an enum symbol a released one has (Avro would read it as ``UNKNOWN``:
:mod:`connector.avro.evolution`). The history is committed, and shipped in the wheel with
``schemas/avro``.
"""

from __future__ import annotations

import io
import json
import random
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import fastavro
import fastavro.utils

from connector.avro.errors import CodecError, Reason
from connector.avro.evolution import removed_enum_symbols
from connector.avro.framing import crc64_avro
from connector.paths import avro_schemas_dir

HISTORY_DIR: Final = "history"
SCHEMA_SUFFIX: Final = ".avsc"


def fingerprint(schema: Mapping[str, Any]) -> bytes:
    """The 8 bytes single-object encoding puts after ``C3 01`` for records ``schema`` wrote."""
    canonical = fastavro.schema.to_parsing_canonical_form(fastavro.parse_schema(dict(schema)))
    return struct.pack("<Q", crc64_avro(canonical.encode("utf-8")))


def history_dir(schemas_dir: Path | None = None) -> Path:
    """The history folder of ``schemas_dir`` (the committed ``schemas/avro`` by default)."""
    return (schemas_dir or avro_schemas_dir()) / HISTORY_DIR


@dataclass(frozen=True)
class WriterSchema:
    """A released schema: its event type, the schema, and the file it lives in."""

    event_type: str
    schema: dict[str, Any]
    path: Path


def load_history(schemas_dir: Path | None = None) -> dict[bytes, WriterSchema]:
    """Fingerprint -> released schema, for every file of the history."""
    folder = history_dir(schemas_dir)
    history: dict[bytes, WriterSchema] = {}
    for path in sorted(folder.glob(f"*/*{SCHEMA_SUFFIX}")):
        try:
            key = bytes.fromhex(path.name[: -len(SCHEMA_SUFFIX)])
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CodecError(
                Reason.UNKNOWN_SCHEMA, f"unreadable history file {path}: {exc}"
            ) from exc
        history[key] = WriterSchema(path.parent.name, schema, path)
    return history


def record_released(schemas_dir: Path, files: Mapping[str, bytes]) -> list[Path]:
    """Add each schema of ``files`` (event type -> ``.avsc`` bytes) to the history if new.

    Returns the files written. Nothing is ever removed or rewritten: old records need them.
    """
    written = []
    for event_type, content in sorted(files.items()):
        path = _path_for(schemas_dir, event_type, json.loads(content))
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            written.append(path)
    return written


def history_problems(schemas_dir: Path, files: Mapping[str, bytes]) -> list[str]:
    """Lines naming each current schema missing from the history, and each mislabelled file."""
    problems = []
    for event_type, content in sorted(files.items()):
        path = _path_for(schemas_dir, event_type, json.loads(content))
        if not path.exists():
            problems.append(f"missing: {path}")
    for key, released in load_history(schemas_dir).items():
        actual = fingerprint(released.schema)
        if actual != key:
            problems.append(
                f"wrong name: {released.path} holds the schema with fingerprint {actual.hex()}"
            )
            continue
        if released.event_type not in files:
            continue
        current = json.loads(files[released.event_type])
        if actual == fingerprint(current):
            continue
        for writer, reader, who in (
            (released.schema, current, "the current schema cannot read records of"),
            (current, released.schema, "readers of this schema cannot read current records:"),
        ):
            failure = unreadable(writer, reader)
            if failure is not None:
                problems.append(f"incompatible: {who} {released.path}: {failure}")
        removed = removed_enum_symbols(released.schema, current)
        if removed:
            listed = "; ".join(f"{enum}: {', '.join(gone)}" for enum, gone in removed.items())
            problems.append(
                f"removed enum symbols: the current {released.event_type} schema drops {listed}"
                f" of {released.path} (records carrying them would read as the enum's default)"
            )
    return problems


SAMPLE_RECORDS: Final = 50


def unreadable(writer: Mapping[str, Any], reader: Mapping[str, Any]) -> str | None:
    """Why records ``writer`` wrote cannot be read as ``reader`` (sample records), or ``None``."""
    parsed_writer = fastavro.parse_schema(dict(writer))
    parsed_reader = fastavro.parse_schema(dict(reader))
    state = random.getstate()
    random.seed(0)  # fastavro's sample records come from the random module: the same every run
    try:
        for datum in fastavro.utils.generate_many(parsed_writer, SAMPLE_RECORDS):
            buffer = io.BytesIO()
            fastavro.schemaless_writer(buffer, parsed_writer, datum)
            buffer.seek(0)
            try:
                fastavro.schemaless_reader(buffer, parsed_writer, parsed_reader)
            except Exception as exc:  # fastavro's resolution errors have no common base
                return f"{type(exc).__name__}: {exc}"
    finally:
        random.setstate(state)
    return None


def _path_for(schemas_dir: Path, event_type: str, schema: Mapping[str, Any]) -> Path:
    return history_dir(schemas_dir) / event_type / f"{fingerprint(schema).hex()}{SCHEMA_SUFFIX}"
