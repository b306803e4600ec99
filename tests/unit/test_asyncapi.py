"""The AsyncAPI document: committed and fresh, deterministic, and true to the code it describes.

The document was also validated with AsyncAPI's own parser (``@asyncapi/parser`` 3 with
``@asyncapi/avro-schema-parser``, Node): valid, Kafka bindings and Avro payloads included. That
needs Node, so it is not part of these tests; they check what the connector promises instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from connector import asyncapi
from connector.cli import main
from connector.kafka.admin import topic_specs
from connector.paths import avro_schemas_dir
from connector.settings import Settings
from connector.spec import load_catalog
from connector.topics import TopicNames
from connector.worker.dead_letters import DEAD_LETTER_HEADERS
from connector.worker.routing import typed_record_key

CATALOG = load_catalog()
NAMES = TopicNames()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(asyncapi.generated())
    return loaded


def test_the_committed_document_is_up_to_date() -> None:
    path = asyncapi.document_path()
    assert asyncapi.stale(path, asyncapi.generated()) is None, (
        "run `zoom-connector asyncapi generate` and commit the result"
    )
    assert main(["asyncapi", "check"]) == 0


def test_check_names_a_stale_or_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "doc.json"
    assert asyncapi.check_command(path) == 1
    assert f"missing: {path}" in capsys.readouterr().err
    assert asyncapi.generate_command(path) == 0
    assert asyncapi.check_command(path) == 0
    document = json.loads(path.read_bytes())
    document["channels"]["webhooks.raw"]["bindings"]["kafka"]["partitions"] = 1
    path.write_text(json.dumps(document, indent=2) + "\n")
    assert asyncapi.check_command(path) == 1
    err = capsys.readouterr().err
    assert f"stale: {path}" in err and "asyncapi generate" in err


def test_output_is_deterministic_and_ignores_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = asyncapi.generated()
    monkeypatch.setenv("TOPIC_PREFIX", "other")
    monkeypatch.setenv("TOPIC_PARTITIONS", "2")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "elsewhere:9092")
    assert asyncapi.generated() == first
    assert first.endswith(b"}\n") and b"\r" not in first


def test_one_channel_per_topic(document: dict[str, Any]) -> None:
    addresses = {cid: channel["address"] for cid, channel in document["channels"].items()}
    assert addresses == {
        "webhooks.raw": NAMES.raw,
        **{t: NAMES.typed(t) for t in CATALOG.event_types},
        "webhooks.dlq": NAMES.dlq,
        "agent_scores": NAMES.agent_scores,
    }
    assert document["asyncapi"] == "3.0.0"


def test_bindings_say_how_topics_create_makes_each_topic(document: dict[str, Any]) -> None:
    specs = {s.name: s for s in topic_specs(Settings.model_construct(), CATALOG.event_types)}
    for channel in document["channels"].values():
        binding = channel["bindings"]["kafka"]
        spec = specs[channel["address"]]
        assert binding["bindingVersion"] == "0.5.0"
        assert binding["partitions"] == spec.partitions
        config = binding["topicConfiguration"]
        assert config["cleanup.policy"] == spec.config.get("cleanup.policy", "delete").split(",")
        for name in ("retention.ms", "max.message.bytes"):
            assert config.get(name) == (int(spec.config[name]) if name in spec.config else None)
    scores = document["channels"]["agent_scores"]["bindings"]["kafka"]["topicConfiguration"]
    assert scores["cleanup.policy"] == ["compact"]


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_reference_resolves_and_operations_use_their_channel(
    document: dict[str, Any],
) -> None:
    refs = _refs(document)
    assert len(refs) > 40
    for ref in refs:
        _resolve(document, ref)
    for operation in document["operations"].values():
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel + "/messages/")


def test_typed_messages_embed_the_committed_avro_schemas(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    for event_type in CATALOG.event_types:
        message = messages[event_type]
        committed = json.loads((avro_schemas_dir() / f"{event_type}.avsc").read_text())
        assert message["payload"] == {
            "schemaFormat": "application/vnd.apache.avro+json;version=1.9.0",
            "schema": committed,
        }
        assert message["name"] == committed["name"]
        assert message["headers"]["required"] == ["zoom-event-id"]
        assert message["correlationId"]["location"] == "$message.header#/zoom-event-id"
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
    scores = json.loads((avro_schemas_dir() / "aggregates" / "agent_scores.avsc").read_text())
    assert messages["AgentScores"]["payload"]["schema"] == scores


def test_dead_letter_headers_are_all_described(document: dict[str, Any]) -> None:
    headers = document["components"]["messages"]["DeadLetter"]["headers"]["properties"]
    assert set(headers) >= DEAD_LETTER_HEADERS
    raw = document["components"]["messages"]["RawWebhook"]["headers"]["properties"]
    assert set(raw) <= set(headers)


@pytest.mark.parametrize("event_type", CATALOG.event_types)
def test_the_documented_key_is_the_key_the_worker_writes(
    event_type: str, document: dict[str, Any]
) -> None:
    """Put an id where the key binding says the key comes from: the worker's key is that id."""
    binding = document["components"]["messages"][event_type]["bindings"]["kafka"]["key"]
    description: str = binding["description"]
    example = CATALOG.example(event_type)
    if path := re.match(r"UTF-8 string: payload\.object\.([\w.]+);", description):
        *parents, leaf = path.group(1).split(".")
        node = example["payload"]["object"]
        for part in parents:
            node = node[part]
        node[leaf] = "id-4711"
    else:
        shared = re.match(
            r"UTF-8 string: the (\w+) that every item of payload\.object", description
        )
        assert shared, description
        for item in example["payload"]["object"]:
            item[shared.group(1)] = "id-4711"
    assert typed_record_key(example, json.dumps(example).encode()) == b"id-4711"
