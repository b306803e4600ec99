"""Every released schema is kept by fingerprint, and old records stay readable after a change."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connector.avro.codec import EventCodec, load_schemas
from connector.avro.errors import CodecError
from connector.avro.generator import generate, stale_files
from connector.avro.history import fingerprint, history_dir, load_history
from connector.paths import avro_schemas_dir
from connector.spec import load_catalog, load_catalog_from
from tests.evolution import EVENT_TYPE, NEW_FIELD, NEW_SYMBOL, Release, new_event


def test_the_committed_history_holds_every_current_schema() -> None:
    history = load_history()
    for path in sorted(avro_schemas_dir().glob("*.avsc")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        released = history[fingerprint(schema)]
        assert released.event_type == path.name.removesuffix(".avsc")
        assert released.path.read_bytes() == path.read_bytes()
    assert stale_files(load_catalog(), avro_schemas_dir()) == []


def test_the_fingerprint_is_the_one_in_the_records(tmp_path: Path) -> None:
    codec = Release.copy_of_the_repository(tmp_path).codec()
    _, record = codec.encode(json.dumps(load_catalog().example(EVENT_TYPE)).encode())
    assert record[:2] == b"\xc3\x01"
    assert (history_dir() / EVENT_TYPE / f"{record[2:10].hex()}.avsc").is_file()


def test_a_schema_change_adds_to_the_history_and_keeps_the_old_schema(tmp_path: Path) -> None:
    release = Release.copy_of_the_repository(tmp_path)
    before = set(load_history(release.schemas))
    written = release.add_a_symbol_and_a_field()
    after = load_history(release.schemas)
    assert written[0] == f"{EVENT_TYPE}.avsc"
    assert [w.split("/")[:2] for w in written[1:]] == [["history", EVENT_TYPE]]
    assert before < set(after) and len(after) == len(before) + 1
    assert stale_files(load_catalog_from(release.specs), release.schemas) == []
    assert generate(load_catalog_from(release.specs), release.schemas) == []  # nothing new


def test_check_names_a_current_schema_missing_from_the_history(tmp_path: Path) -> None:
    release = Release.copy_of_the_repository(tmp_path)
    schema = json.loads((release.schemas / f"{EVENT_TYPE}.avsc").read_text(encoding="utf-8"))
    released = history_dir(release.schemas) / EVENT_TYPE / f"{fingerprint(schema).hex()}.avsc"
    released.unlink()
    assert stale_files(load_catalog_from(release.specs), release.schemas) == [
        f"missing: {released}"
    ]


def test_check_names_a_history_file_whose_name_is_not_its_fingerprint(tmp_path: Path) -> None:
    release = Release.copy_of_the_repository(tmp_path)
    folder = history_dir(release.schemas) / EVENT_TYPE
    (released,) = folder.glob("*.avsc")
    wrong = folder / "0000000000000000.avsc"
    wrong.write_bytes(released.read_bytes())
    (problem,) = stale_files(load_catalog_from(release.specs), release.schemas)
    assert problem.startswith(f"wrong name: {wrong} holds the schema with fingerprint")


def test_the_new_codec_reads_records_the_old_schema_wrote(tmp_path: Path) -> None:
    release = Release.copy_of_the_repository(tmp_path)
    old_event = release.example()
    _, old_record = release.codec().encode(json.dumps(old_event).encode())
    release.add_a_symbol_and_a_field()
    codec = release.codec()
    event_type, datum = codec.decode(old_record)
    assert event_type == EVENT_TYPE
    assert datum["payload"]["object"][NEW_FIELD] is None
    assert (
        datum["payload"]["object"]["evaluation_type"]
        == old_event["payload"]["object"]["evaluation_type"]
    )
    _, new_record = codec.encode(json.dumps(new_event(old_event)).encode())
    assert new_record[2:10] != old_record[2:10]
    new = codec.decode(new_record)[1]["payload"]["object"]
    assert (new["evaluation_type"], new[NEW_FIELD]) == (NEW_SYMBOL, "second opinion")


def test_without_the_history_an_old_record_is_an_unknown_schema(tmp_path: Path) -> None:
    release = Release.copy_of_the_repository(tmp_path)
    _, old_record = release.codec().encode(json.dumps(release.example()).encode())
    release.add_a_symbol_and_a_field()
    with pytest.raises(CodecError, match="no schema has fingerprint"):
        EventCodec(load_schemas(release.schemas)).decode(old_record)


def _change_the_evaluation(release: Release, change: Callable[[dict[str, Any]], None]) -> None:
    path = release.specs / "quality_management.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    body = document["webhooks"][EVENT_TYPE]["post"]["requestBody"]["content"]
    change(body["application/json"]["schema"]["properties"]["payload"]["properties"]["object"])
    path.write_text(json.dumps(document), encoding="utf-8")
    generate(load_catalog_from(release.specs), release.schemas)


def _required_field(evaluation: dict[str, Any]) -> None:
    evaluation["properties"]["reviewer"] = {"type": "string"}
    evaluation["required"].append("reviewer")


def _changed_type(evaluation: dict[str, Any]) -> None:
    evaluation["properties"]["scorecard_name"] = {"type": "integer"}


def test_check_refuses_a_change_that_breaks_readers_of_old_records(tmp_path: Path) -> None:
    release = Release.copy_of_the_repository(tmp_path)
    _change_the_evaluation(release, _required_field)
    (problem,) = stale_files(load_catalog_from(release.specs), release.schemas)
    assert problem.startswith("incompatible: the current schema cannot read records of ")
    assert "reviewer" in problem


def test_check_refuses_a_change_that_breaks_readers_either_way(tmp_path: Path) -> None:
    release = Release.copy_of_the_repository(tmp_path)
    _change_the_evaluation(release, _changed_type)
    problems = stale_files(load_catalog_from(release.specs), release.schemas)
    assert [p.split(":", 2)[1].strip()[:20] for p in problems] == [
        "the current schema c",
        "readers of this sche",
    ]
