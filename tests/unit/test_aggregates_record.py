"""The ``agent_scores`` record: Avro with the committed schema, framed like the typed topics."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from connector.avro.codec import load_schemas
from connector.avro.framing import ConfluentFraming, crc64_avro
from connector.avro.generator import stale_files
from connector.paths import avro_schemas_dir
from connector.registry import registry_client
from connector.settings import Settings
from connector.spec import load_catalog
from connector.worker.aggregates.events import Evaluation, InteractionAnalysis
from connector.worker.aggregates.figures import agent_scores
from connector.worker.aggregates.record import (
    RECORD,
    AgentScoresCodec,
    codec_for,
    load_schema,
    register_schema,
    schema_path,
)
from connector.worker.aggregates.state import AgentState, Retention
from tests.unit.test_registry import FakeSchemaRegistry

DAY = 86_400_000
RETENTION = Retention(31 * DAY, 3000)


def _document(as_of: int | None = None) -> dict[str, dict[str, Any]]:
    state = AgentState("agent-1")
    state.apply(
        Evaluation("agent-1", "e1", 20_000 * DAY, 10.0, 0.2, "MANUAL", None, "A"), RETENTION, 0
    )
    state.apply(
        Evaluation("agent-1", "e2", 20_001 * DAY, None, None, None, "C", None), RETENTION, 0
    )
    named = AgentState("name:Admin3")
    named.apply(
        InteractionAnalysis(
            "name:Admin3", "i", 20_000 * DAY, 1.0, None, 2.0, 1, 2, 3, 4, "SMS", "q", "Q"
        ),
        RETENTION,
        0,
    )
    return {"evaluations": agent_scores(state, as_of), "interactions": agent_scores(named, as_of)}


@pytest.mark.parametrize("which", ["evaluations", "interactions"])
def test_round_trip_in_single_object_encoding(which: str) -> None:
    codec = AgentScoresCodec()
    document = _document()[which]
    value = codec.encode(document)
    fingerprint = struct.pack("<Q", crc64_avro(codec.canonical_form().encode()))
    assert value[:10] == b"\xc3\x01" + fingerprint
    assert codec.decode(value) == document
    # a consumer with fastavro and the committed .avsc reads it too (timestamps as datetimes)
    schema = fastavro.schema.load_schema(str(schema_path()))
    datum: Any = fastavro.schemaless_reader(io.BytesIO(value[10:]), schema, None)
    assert datum["agent_id"] == document["agent_id"]


@pytest.mark.parametrize("which", ["evaluations", "interactions"])
def test_naming_the_union_branch_writes_what_fastavro_chooses(which: str) -> None:
    """The codec names the record branch of the two nullable sections (a speed-up); the bytes
    equal fastavro's own choice of branch, and the document is left unchanged."""
    codec = AgentScoresCodec()
    document = _document()[which]
    before = repr(document)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(load_schema()), document)
    assert codec.encode(document)[10:] == buffer.getvalue()
    assert repr(document) == before


def test_confluent_framing() -> None:
    codec = AgentScoresCodec(framing=ConfluentFraming({RECORD: 77}))
    document = _document()["evaluations"]
    value = codec.encode(document)
    assert value[:5] == b"\x00" + struct.pack(">I", 77)
    assert codec.decode(value) == document


def test_the_schema_is_not_an_event_type_and_not_generated() -> None:
    assert schema_path().parent == avro_schemas_dir() / "aggregates"
    assert RECORD not in load_schemas() and "aggregates.agent_scores" not in load_schemas()
    assert stale_files(load_catalog(), avro_schemas_dir()) == []
    assert load_schema()["name"] == "AgentScores"


@pytest.fixture
def registry() -> Iterator[FakeSchemaRegistry]:
    server = FakeSchemaRegistry().start()
    yield server
    server.stop()


def test_registered_under_the_agent_scores_subject(registry: FakeSchemaRegistry) -> None:
    settings = Settings(schema_registry_url=registry.url, topic_prefix="acme")
    schema_id = register_schema(settings, load_schema())
    assert registry.subjects == {"acme.agent_scores-value": [schema_id]}
    assert register_schema(settings, load_schema()) == schema_id  # idempotent
    codec = codec_for(settings)
    value = codec.encode(_document()["evaluations"])
    assert value[:5] == b"\x00" + struct.pack(">I", schema_id)
    # a downstream consumer reads it with confluent-kafka's deserializer and the registry
    deserializer = AvroDeserializer(registry_client(Settings(schema_registry_url=registry.url)))
    datum: Any = deserializer(value, SerializationContext("acme.agent_scores", MessageField.VALUE))
    assert datum["agent_id"] == "agent-1"
    assert datum["evaluations"]["lifetime"]["count"] == 2


def test_without_a_registry_the_framing_is_single_object() -> None:
    assert codec_for(Settings()).encode(_document()["evaluations"])[:2] == b"\xc3\x01"
