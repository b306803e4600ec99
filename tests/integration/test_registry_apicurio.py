"""Schema registration against a real Confluent-compatible registry (a local Apicurio Registry).

The registry runs with the global compatibility rule ``BACKWARD`` (``schema_registry`` fixture).
Each test uses its own topic prefix, so its subjects are its own. Checked here: every schema
registered under ``<topic>-value`` and a restart reusing the ids; the wire format read back by
confluent-kafka's ``AvroDeserializer``; an incompatible schema stopping the worker at start-up
with the subject named; a new enum symbol accepted; a removed enum symbol refused by our own
check although the registry accepts it; a warning for a subject whose level is ``NONE``.
"""

from __future__ import annotations

import copy
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from connector.avro.codec import EventCodec, load_schemas
from connector.avro.framing import ConfluentFraming
from connector.registry import (
    IncompatibleSchemaError,
    RemovedEnumSymbolError,
    compatibility_level,
    register_schemas,
    registry_client,
)
from connector.settings import Settings
from connector.spec import load_catalog

pytestmark = pytest.mark.registry

CATALOG = load_catalog()
EVALUATION = "quality_management.evaluation_completed"
ENUM_NAME = "EvaluationCompletedPayloadObjectEvaluationType"


@pytest.fixture
def client(schema_registry: str) -> Iterator[SchemaRegistryClient]:
    with registry_client(Settings(schema_registry_url=schema_registry)) as opened:
        yield opened


@pytest.fixture
def settings(schema_registry: str, unique_name: Callable[[str], str]) -> Settings:
    return Settings(schema_registry_url=schema_registry, topic_prefix=unique_name("reg"))


def subject(settings: Settings, event_type: str = EVALUATION) -> str:
    return f"{settings.topic_prefix}.{event_type}-value"


def with_enum(schema: dict[str, Any], symbols: list[str]) -> dict[str, Any]:
    """``schema`` with the evaluation type enum's symbols replaced."""
    changed = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "enum" and node.get("name") == ENUM_NAME:
                node["symbols"] = symbols
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(changed)
    assert changed != schema or symbols == ["MANUAL", "AUTOMATED", "UNKNOWN"]
    return changed


def test_every_schema_is_registered_and_a_restart_reuses_the_ids(
    settings: Settings, client: SchemaRegistryClient
) -> None:
    schemas = load_schemas()
    ids = register_schemas(settings, schemas)
    assert set(ids) == set(schemas) == set(CATALOG.event_types)
    registered = {s for s in client.get_subjects() if s.startswith(f"{settings.topic_prefix}.")}
    assert registered == {subject(settings, t) for t in schemas}
    latest = client.get_latest_version(subject(settings))
    assert latest.schema_id == ids[EVALUATION]
    assert json.loads(latest.schema.schema_str or "") == schemas[EVALUATION]
    # the worker starting again: the same ids, no second version
    assert register_schemas(settings, schemas) == ids
    assert client.get_versions(subject(settings)) == [1]


@pytest.mark.parametrize("event_type", CATALOG.event_types)
def test_confluent_avro_deserializer_reads_our_records(
    settings: Settings, client: SchemaRegistryClient, event_type: str
) -> None:
    schemas = load_schemas()
    ids = register_schemas(settings, {event_type: schemas[event_type]})
    codec = EventCodec({event_type: schemas[event_type]}, framing=ConfluentFraming(ids))
    _, data = codec.encode(CATALOG.example_bytes(event_type))
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == ids[event_type]

    context = SerializationContext(f"{settings.topic_prefix}.{event_type}", MessageField.VALUE)
    datum = AvroDeserializer(client)(data, context)
    assert isinstance(datum, dict) and datum["event"] == event_type
    expected = fastavro.schemaless_reader(
        io.BytesIO(data[5:]), fastavro.parse_schema(schemas[event_type]), None
    )
    assert datum == expected


def test_the_worker_refuses_to_start_on_an_incompatible_schema(
    settings: Settings,
    client: SchemaRegistryClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from connector.cli import main

    # an earlier version whose "event" field was an int: a string reader cannot read it
    earlier = copy.deepcopy(load_schemas()[EVALUATION])
    for field in earlier["fields"]:
        if field["name"] == "event":
            field["type"] = "int"
    client.register_schema(subject(settings), Schema(json.dumps(earlier), "AVRO"))
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", settings.schema_registry_url or "")
    monkeypatch.setenv("TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # never reached
    assert main(["worker"]) == 2
    error = capsys.readouterr().err
    assert f"subject {subject(settings)!r}" in error and "incompatible" in error
    assert "409" in error and "Traceback" not in error


def test_a_new_enum_symbol_is_a_compatible_evolution(
    settings: Settings, client: SchemaRegistryClient
) -> None:
    schema = load_schemas()[EVALUATION]
    (first,) = register_schemas(settings, {EVALUATION: schema}).values()
    evolved = with_enum(schema, ["MANUAL", "AUTOMATED", "PEER", "UNKNOWN"])
    (second,) = register_schemas(settings, {EVALUATION: evolved}).values()
    assert second != first
    assert client.get_versions(subject(settings)) == [1, 2]


def test_a_removed_enum_symbol_is_refused_though_the_registry_would_take_it(
    settings: Settings, client: SchemaRegistryClient
) -> None:
    schema = load_schemas()[EVALUATION]
    register_schemas(settings, {EVALUATION: schema})
    shrunk = with_enum(schema, ["MANUAL", "UNKNOWN"])
    # the registry's BACKWARD rule alone accepts it (old records' AUTOMATED reads as UNKNOWN) ...
    assert client.test_compatibility(subject(settings), Schema(json.dumps(shrunk), "AVRO"))
    # ... our check does not
    with pytest.raises(RemovedEnumSymbolError) as info:
        register_schemas(settings, {EVALUATION: shrunk})
    assert info.value.subject == subject(settings)
    assert list(info.value.removed.values()) == [["AUTOMATED"]]
    assert "AUTOMATED" in str(info.value)
    assert client.get_versions(subject(settings)) == [1]
    # an older worker restarting with a schema registered before is not refused
    evolved = with_enum(schema, ["MANUAL", "AUTOMATED", "PEER", "UNKNOWN"])
    register_schemas(settings, {EVALUATION: evolved})
    assert register_schemas(settings, {EVALUATION: schema})


def test_a_subject_without_compatibility_is_a_warning(
    settings: Settings, client: SchemaRegistryClient, caplog: pytest.LogCaptureFixture
) -> None:
    schemas = {EVALUATION: load_schemas()[EVALUATION]}
    with caplog.at_level(logging.WARNING, logger="connector.registry"):
        register_schemas(settings, schemas)
    assert compatibility_level(client, subject(settings)) == "BACKWARD"
    assert not caplog.records

    client.set_compatibility(subject(settings), "NONE")
    with caplog.at_level(logging.WARNING, logger="connector.registry"):
        register_schemas(settings, schemas)
    (warning,) = caplog.records
    assert subject(settings) in warning.getMessage()
    assert "compatibility is NONE" in warning.getMessage()


def test_an_incompatible_schema_names_the_subject(
    settings: Settings, client: SchemaRegistryClient
) -> None:
    schema = load_schemas()[EVALUATION]
    register_schemas(settings, {EVALUATION: schema})
    required = copy.deepcopy(schema)
    required["fields"].append({"name": "added_without_default", "type": "string"})
    with pytest.raises(IncompatibleSchemaError) as info:
        register_schemas(settings, {EVALUATION: required})
    assert info.value.subject == subject(settings)
