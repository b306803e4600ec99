"""Old and new records, old and new readers, through Kafka, with no schema registry.

Records written under the released schema, then the spec gains an enum symbol and a field and is
regenerated, then records are written under the new schema. ``examples/consume_typed.py`` (the
downstream reader, using no code of the connector) reads both from the topic, once with the new
reader schema and once with the old one; the connector's own codec reads both too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connector.paths import REPO_DIR
from tests import kafka_helpers
from tests.evolution import EVENT_TYPE, NEW_FIELD, NEW_SYMBOL, Release, new_event

pytestmark = pytest.mark.kafka

EXAMPLE = REPO_DIR / "examples" / "consume_typed.py"


def _read_with_the_example(
    bootstrap: str, prefix: str, schemas: Path, reader: Path | None
) -> tuple[list[dict[str, Any]], str]:
    command = [sys.executable, str(EXAMPLE), EVENT_TYPE, "--from-beginning", "--max", "2"]
    command += ["--schemas", str(schemas)]
    if reader is not None:
        command += ["--reader-schema", str(reader)]
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "TOPIC_PREFIX": prefix}
    env.pop("SCHEMA_REGISTRY_URL", None)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line)["event"] for line in result.stdout.splitlines()], result.stderr


def test_old_and_new_records_read_with_old_and_new_readers(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    release = Release.copy_of_the_repository(tmp_path)
    old_reader = tmp_path / "old-reader.avsc"
    shutil.copyfile(release.schemas / f"{EVENT_TYPE}.avsc", old_reader)
    prefix = unique_name("evolution")
    topic = kafka_helpers.create_topic(kafka_bootstrap, f"{prefix}.{EVENT_TYPE}")

    old_event = release.example()
    _, old_record = release.codec().encode(json.dumps(old_event).encode())
    kafka_helpers.produce(kafka_bootstrap, topic, [old_record])
    assert release.add_a_symbol_and_a_field()  # `schemas generate` after the spec change
    new_codec = release.codec()
    _, new_record = new_codec.encode(json.dumps(new_event(old_event)).encode())
    kafka_helpers.produce(kafka_bootstrap, topic, [new_record])

    old_type = old_event["payload"]["object"]["evaluation_type"]
    # The new reader: the old record gets the new field's default.
    (old, new), stderr = _read_with_the_example(kafka_bootstrap, prefix, release.schemas, None)
    assert f"reading {topic} from KAFKA_BOOTSTRAP_SERVERS={kafka_bootstrap}" in stderr
    assert (old["payload"]["object"]["evaluation_type"], old["payload"]["object"][NEW_FIELD]) == (
        old_type,
        None,
    )
    assert new["payload"]["object"]["evaluation_type"] == NEW_SYMBOL
    assert new["payload"]["object"][NEW_FIELD] == "second opinion"
    # The old reader: the new symbol reads as UNKNOWN, the new field is not there.
    (old, new), _ = _read_with_the_example(kafka_bootstrap, prefix, release.schemas, old_reader)
    assert old["payload"]["object"]["evaluation_type"] == old_type
    assert new["payload"]["object"]["evaluation_type"] == "UNKNOWN"
    assert NEW_FIELD not in old["payload"]["object"] and NEW_FIELD not in new["payload"]["object"]
    assert (
        new["payload"]["object"]["evaluation_id"] == old_event["payload"]["object"]["evaluation_id"]
    )
    # The connector's own codec (the worker's aggregates read typed topics with it).
    records = kafka_helpers.consume_all(kafka_bootstrap, topic, 2, timeout=30)
    decoded = [new_codec.decode(r.value())[1]["payload"]["object"] for r in records]
    assert [(d["evaluation_type"], d[NEW_FIELD]) for d in decoded] == [
        (old_type, None),
        (NEW_SYMBOL, "second opinion"),
    ]
