"""The schema generator: golden files, determinism, drift detection and each mapping rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import pytest

from connector.avro.generator import generate, generated_files, stale_files
from connector.avro.mapping import SchemaMappingError, avro_schema_for
from connector.paths import avro_schemas_dir
from connector.spec import load_catalog, load_catalog_from

DATA = Path(__file__).parent.parent / "data"


def test_golden_files_match() -> None:
    catalog = load_catalog_from(DATA / "openapi")
    for name, content in generated_files(catalog).items():
        assert content == (DATA / "expected" / name).read_bytes(), name


def test_generation_is_byte_identical_on_rerun(tmp_path: Path) -> None:
    catalog = load_catalog()
    written = generate(catalog, tmp_path)
    assert len(catalog.event_types) == 9
    assert len([n for n in written if not n.startswith("history/")]) == 9
    assert len([n for n in written if n.startswith("history/")]) == 9
    first = {p: p.read_bytes() for p in tmp_path.rglob("*.avsc")}
    assert generate(catalog, tmp_path) == []
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.avsc")} == first


def test_committed_schemas_are_up_to_date() -> None:
    assert stale_files(load_catalog(), avro_schemas_dir()) == []


def test_check_names_each_stale_and_missing_file(tmp_path: Path) -> None:
    catalog = load_catalog()
    generate(catalog, tmp_path)
    stale = tmp_path / "quality_management.evaluation_completed.avsc"
    stale.write_bytes(stale.read_bytes().replace(b"evaluation", b"evaluatoin"))
    (tmp_path / "revenue_accelerator.playlist_create.avsc").unlink()
    problems = stale_files(catalog, tmp_path)
    assert problems == [
        f"stale: {stale}",
        f"missing: {tmp_path / 'revenue_accelerator.playlist_create.avsc'}",
    ]


@pytest.mark.parametrize("event_type", load_catalog().event_types)
def test_every_committed_schema_parses(event_type: str) -> None:
    schema = json.loads((avro_schemas_dir() / f"{event_type}.avsc").read_text())
    fastavro.parse_schema(schema)
    assert schema["namespace"] == f"zoom.webhooks.{event_type}"


def _field(schema: dict[str, Any], *path: str) -> dict[str, Any]:
    """A field of a record schema, following nested records (through null unions and arrays)."""
    record = schema
    field: dict[str, Any] = {}
    for name in path:
        field = next(f for f in record["fields"] if f["name"] == name)
        record = _unwrap(field["type"])
    return field


def _unwrap(avro_type: Any) -> Any:
    if isinstance(avro_type, list):
        avro_type = next(t for t in avro_type if t != "null")
    if isinstance(avro_type, dict) and avro_type.get("type") == "array":
        return _unwrap(avro_type["items"])
    return avro_type


def _schema(event_type: str) -> dict[str, Any]:
    event = load_catalog().event(event_type)
    return avro_schema_for(event_type, event.schema, event.summary)


EVALUATION = "quality_management.evaluation_completed"
INTERACTION = "quality_management.interaction_analysis_completed"
CRM = "revenue_accelerator.conversation_crm_associations_changed"


@pytest.mark.parametrize(
    ("event_type", "path", "expected_type", "has_default"),
    [
        (EVALUATION, ("event",), "string", False),
        (EVALUATION, ("event_ts",), {"type": "long", "logicalType": "timestamp-millis"}, False),
        (EVALUATION, ("payload", "object", "evaluation_id"), "string", False),
        (EVALUATION, ("payload", "object", "agent_user_id"), ["null", "string"], True),
        (EVALUATION, ("payload", "object", "evaluation_score"), ["null", "double"], True),
        (INTERACTION, ("payload", "object", "duration"), ["null", "long"], True),
        (INTERACTION, ("payload", "object", "start_time"), ["null", "string"], True),
        (
            "revenue_accelerator.playlist_remove_moment",
            ("payload", "object", "update_time"),
            ["null", {"type": "long", "logicalType": "timestamp-millis"}],
            True,
        ),
        (
            INTERACTION,
            ("payload", "object", "interaction_info", "associated_ids"),
            ["null", {"type": "array", "items": "string"}],
            True,
        ),
    ],
)
def test_field_mapping(
    event_type: str, path: tuple[str, ...], expected_type: Any, has_default: bool
) -> None:
    field = _field(_schema(event_type), *path)
    assert field["type"] == expected_type
    assert ("default" in field) is has_default
    if has_default:
        assert field["default"] is None and field["type"][0] == "null"


def test_enum_keeps_spec_order_and_adds_unknown_default() -> None:
    enum = _unwrap(_field(_schema(EVALUATION), "payload", "object", "evaluation_type")["type"])
    assert enum["symbols"] == ["MANUAL", "AUTOMATED", "UNKNOWN"]
    assert enum["default"] == "UNKNOWN"
    assert enum["name"] == "EvaluationCompletedPayloadObjectEvaluationType"


def test_same_shaped_association_arrays_get_distinct_names() -> None:
    schema = _schema(CRM)
    new = _unwrap(_field(schema, "payload", "object", "new_associations")["type"])
    old = _unwrap(_field(schema, "payload", "object", "old_associations")["type"])
    assert new["fields"] == old["fields"]
    assert new["name"] != old["name"]
    assert _unwrap(_field(schema, "payload", "object")["type"])["type"] == "record"


def test_descriptions_become_docs_and_strictness_is_kept() -> None:
    schema = _schema(EVALUATION)
    assert schema["doc"].startswith("Zoom triggers this event")
    assert _field(schema, "event_ts")["doc"] == "The timestamp at which the event occurred."
    assert schema["x-additional-properties"] is False
    obj = _unwrap(_field(schema, "payload", "object")["type"])
    assert obj["x-additional-properties"] is False
    assert "x-additional-properties" not in _schema(CRM)


def test_all_record_names_are_unique_per_schema() -> None:
    for event_type in load_catalog().event_types:
        names: list[str] = []

        def collect(node: Any, names: list[str] = names) -> None:
            if isinstance(node, dict):
                if node.get("type") in ("record", "enum"):
                    names.append(node["name"])
                for value in node.values():
                    collect(value)
            elif isinstance(node, list):
                for value in node:
                    collect(value)

        collect(_schema(event_type))
        assert len(names) == len(set(names)), event_type


@pytest.mark.parametrize(
    ("json_schema", "path"),
    [
        ({"type": "object", "properties": {"a": {"$ref": "#/x"}}}, "$.a"),
        ({"type": "object", "properties": {"a": {"oneOf": []}}}, "$.a"),
        ({"type": "object", "properties": {"bad-name": {"type": "string"}}}, "$.bad-name"),
        ({"type": "object", "properties": {"a": {"type": "array"}}}, "$.a"),
        ({"type": "object", "properties": {"a": {"type": "integer", "enum": [1]}}}, "$.a"),
        ({"type": "object", "properties": {"a": {"type": "null"}}}, "$.a"),
        ({"type": "object", "required": ["b"], "properties": {}}, "$"),
        ({"type": "array"}, "$"),
    ],
)
def test_unsupported_constructs_fail_with_path(json_schema: dict[str, Any], path: str) -> None:
    with pytest.raises(SchemaMappingError) as info:
        avro_schema_for("demo.event", json_schema)
    assert info.value.path == path


def test_generate_command_writes_into_repo_folder(tmp_path: Path, monkeypatch: Any) -> None:
    target = tmp_path / "avro"
    shutil.copytree(avro_schemas_dir(), target)
    monkeypatch.setattr("connector.avro.generator.avro_schemas_dir", lambda: target)
    from connector.avro.generator import check_command, generate_command

    assert check_command() == 0
    (target / "quality_management.evaluation_completed.avsc").write_text("{}")
    assert check_command() == 1
    assert generate_command() == 0
    assert check_command() == 0
