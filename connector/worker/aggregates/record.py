"""The ``<prefix>.agent_scores`` record: Avro, framed like the typed topics.

The schema is ``schemas/avro/aggregates/agent_scores.avsc`` (record ``AgentScores``, written by
hand, not generated from ``specs/``). It lives in a folder of its own because the codec reads every
``schemas/avro/*.avsc`` as an event type's schema, and ``zoom-connector schemas check`` compares
only the generated event-type files, so it leaves this one alone.

Framing is the typed topics': Avro single-object encoding (``C3 01``, the schema's CRC-64-AVRO
fingerprint, the body) without a schema registry; with ``SCHEMA_REGISTRY_URL`` the Confluent wire
format (``00``, schema id, body), the schema registered at start-up under the subject
``<prefix>.agent_scores-value``. The record key is the agent id, UTF-8.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient

from connector.avro.codec import without_logical_types
from connector.avro.errors import CodecError, Reason
from connector.avro.framing import ConfluentFraming, Framing, SingleObjectFraming
from connector.avro.writer import compile_writer
from connector.paths import avro_schemas_dir
from connector.registry import register_subject, registry_client, value_subject
from connector.settings import Settings
from connector.topics import TopicNames

RECORD: Final = "agent_scores"
"""The framing's name for the record's schema."""


def schema_path() -> Path:
    return avro_schemas_dir() / "aggregates" / f"{RECORD}.avsc"


def load_schema(path: Path | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((path or schema_path()).read_text(encoding="utf-8"))
    return schema


def canonical_form(schema: Mapping[str, Any]) -> str:
    return str(fastavro.schema.to_parsing_canonical_form(fastavro.parse_schema(dict(schema))))


class AgentScoresCodec:
    """Writes and reads framed ``AgentScores`` records; the schema is parsed once."""

    def __init__(
        self, schema: Mapping[str, Any] | None = None, framing: Framing | None = None
    ) -> None:
        self.schema = dict(schema) if schema is not None else load_schema()
        self._parsed_plain = fastavro.parse_schema(without_logical_types(self.schema))
        self.framing: Framing = framing or SingleObjectFraming({RECORD: self.canonical_form()})
        self._write = compile_writer(self.schema)

    def canonical_form(self) -> str:
        return canonical_form(self.schema)

    def encode(self, document: Mapping[str, Any]) -> bytes:
        """A figures document (:func:`~.figures.agent_scores`) as a framed record value."""
        return self.framing.frame(RECORD, self._write(document))

    def decode(self, data: bytes) -> dict[str, Any]:
        """A framed record value back to the document (timestamps as epoch milliseconds)."""
        name, body = self.framing.unframe(data)
        if name != RECORD:
            raise CodecError(Reason.UNKNOWN_SCHEMA, f"not an {RECORD} record: {name}")
        try:
            datum = fastavro.schemaless_reader(io.BytesIO(body), self._parsed_plain, None)
        except (EOFError, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise CodecError(Reason.MALFORMED_RECORD, f"cannot read Avro body: {exc}") from exc
        if not isinstance(datum, dict):
            raise CodecError(Reason.MALFORMED_RECORD, "the Avro body is not a record")
        return datum


def register_schema(
    settings: Settings,
    schema: Mapping[str, Any],
    *,
    client: SchemaRegistryClient | None = None,
) -> int:
    """Register the schema under ``<prefix>.agent_scores-value``; its id."""
    own_client = client is None
    client = client or registry_client(settings)
    subject = value_subject(TopicNames(settings.topic_prefix).agent_scores)
    try:
        return register_subject(settings, client, subject, schema)
    finally:
        if own_client:
            client.close()  # type: ignore[attr-defined]  # missing from types-confluent-kafka


def codec_for(settings: Settings) -> AgentScoresCodec:
    """The codec the worker writes with: Confluent framing with a registry, else single-object."""
    schema = load_schema()
    if not settings.schema_registry_url:
        return AgentScoresCodec(schema)
    return AgentScoresCodec(
        schema, framing=ConfluentFraming({RECORD: register_schema(settings, schema)})
    )
