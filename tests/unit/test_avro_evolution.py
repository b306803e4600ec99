"""Removed enum symbols: found in schema pairs, and refused by ``schemas check`` (the history)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connector.avro.codec import load_schemas
from connector.avro.evolution import removed_enum_symbols
from connector.avro.history import history_problems, record_released

EVALUATION = "quality_management.evaluation_completed"


def _enum(name: str, *symbols: str, **extra: Any) -> dict[str, Any]:
    return {"type": "enum", "name": name, "symbols": list(symbols), **extra}


def _record(name: str, *fields: tuple[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "record",
        "name": name,
        "fields": [{"name": n, "type": t} for n, t in fields],
        **extra,
    }


@pytest.mark.parametrize(
    ("old", "new", "removed"),
    [
        pytest.param(
            _record("R", ("e", _enum("E", "A", "B", "UNKNOWN"))),
            _record("R", ("e", _enum("E", "A", "B", "C", "UNKNOWN"))),
            {},
            id="symbol-added",
        ),
        pytest.param(
            _record("R", ("e", _enum("E", "A", "B", "UNKNOWN")), namespace="ns"),
            _record("R", ("e", _enum("E", "A", "UNKNOWN")), namespace="ns"),
            {"ns.E": ["B"]},
            id="symbol-removed-namespace-inherited",
        ),
        pytest.param(
            _record("R", ("e", ["null", _enum("x.E", "A", "B")])),
            _record("R", ("e", ["null", _enum("x.E", "B2", "A")])),
            {"x.E": ["B"]},
            id="symbol-renamed-in-union-full-name",
        ),
        pytest.param(
            _record("R", ("l", {"type": "array", "items": _enum("E", "A", "B")})),
            _record("R", ("l", {"type": "map", "values": _enum("E", "A")})),
            {"E": ["B"]},
            id="array-to-map",
        ),
        pytest.param(
            _record("R", ("e", _enum("E", "A", "B"))),
            _record("R", ("f", _enum("F", "A"))),
            {},
            id="enum-replaced-by-another-name",
        ),
        pytest.param(
            _record("R", ("o", _record("Inner", ("e", _enum("E", "A", "B")), namespace="in"))),
            _record("R", ("o", _record("Inner", ("e", _enum("E", "B")), namespace="in"))),
            {"in.E": ["A"]},
            id="nested-record-namespace",
        ),
    ],
)
def test_removed_enum_symbols(old: Any, new: Any, removed: dict[str, list[str]]) -> None:
    assert removed_enum_symbols(old, new) == removed


def test_schemas_check_refuses_a_symbol_removed_since_a_release(tmp_path: Path) -> None:
    released = load_schemas()[EVALUATION]
    record_released(tmp_path, {EVALUATION: json.dumps(released).encode()})
    shrunk = json.loads(json.dumps(released).replace('"AUTOMATED", ', ""))
    assert shrunk != released
    problems = history_problems(tmp_path, {EVALUATION: json.dumps(shrunk).encode()})
    removed = [p for p in problems if p.startswith("removed enum symbols")]
    assert len(removed) == 1 and "AUTOMATED" in removed[0] and EVALUATION in removed[0]
    # a symbol added is fine
    grown = json.loads(json.dumps(released).replace('"AUTOMATED", ', '"AUTOMATED", "PEER", '))
    problems = history_problems(tmp_path, {EVALUATION: json.dumps(grown).encode()})
    assert not [p for p in problems if p.startswith("removed enum symbols")]


def test_the_committed_schemas_remove_nothing_from_themselves() -> None:
    for schema in load_schemas().values():
        assert removed_enum_symbols(schema, schema) == {}
