"""Event identity: a retry is the same event, a re-score is a new one."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from connector.avro.codec import parse_event
from connector.spec import load_catalog
from connector.wire import EVENT_PATHS
from connector.worker.identity import event_identity

CATALOG = load_catalog()
IDENTITY_FIELDS = {t: paths.identity for t, paths in EVENT_PATHS.items() if paths.identity}
EVALUATION = "quality_management.evaluation_completed"
INTERACTION = "quality_management.interaction_analysis_completed"
CRM = "revenue_accelerator.conversation_crm_associations_changed"


def _identity(event: dict[str, Any]) -> str:
    body = json.dumps(event).encode()
    return event_identity(parse_event(body), body)


def _with_ids(event_type: str) -> dict[str, Any]:
    """The catalog example with every identifying id filled in (the RA examples leave them "")."""
    event = copy.deepcopy(CATALOG.example(event_type))
    event["event_ts"] = 1700000000123
    for path in IDENTITY_FIELDS.get(event_type, ()):
        node = event["payload"]["object"]
        for name in path[:-1]:
            node = node[name]
        node[path[-1]] = f"{path[-1]}-1"
    return event


def test_evaluation_identity_is_type_id_and_event_ts() -> None:
    assert _identity(CATALOG.example(EVALUATION)) == (
        "quality_management.evaluation_completed/evaluation_id=0e73a69f8f104d24a589fa0c615abca8"
        "/event_ts=1626230691572"
    )


def test_interaction_identity_uses_the_nested_interaction_id() -> None:
    assert _identity(CATALOG.example(INTERACTION)) == (
        f"{INTERACTION}/interaction_id=X51n17BZQTqKtxwF4mmTIw/event_ts=1626230691572"
    )


@pytest.mark.parametrize("event_type", sorted(IDENTITY_FIELDS))
def test_same_body_resent_is_the_same_event(event_type: str) -> None:
    event = _with_ids(event_type)
    first = json.dumps(event).encode()
    # a retry: same content, possibly serialised with other spacing and key order
    again = json.dumps(event, indent=2, sort_keys=True).encode()
    assert event_identity(parse_event(first), first) == event_identity(parse_event(again), again)
    assert "/event_ts=1700000000123" in _identity(event)


def test_rescored_evaluation_is_a_new_event() -> None:
    first = CATALOG.example(EVALUATION)
    rescored = copy.deepcopy(first)
    rescored["event_ts"] += 60_000
    rescored["payload"]["object"]["evaluation_score"] = 40
    assert _identity(first) != _identity(rescored)


def test_two_moments_added_in_one_millisecond_are_two_events() -> None:
    event = _with_ids("revenue_accelerator.playlist_add_moment")
    other = copy.deepcopy(event)
    other["payload"]["object"]["moment_id"] = "moment_id-2"
    assert _identity(event) != _identity(other)


def test_event_types_without_ids_fall_back_to_the_canonical_json_hash() -> None:
    crm = CATALOG.example(CRM)
    identity = _identity(crm)
    assert identity.startswith(f"{CRM}/sha256=") and len(identity.split("=")[1]) == 64
    changed = copy.deepcopy(crm)
    changed["payload"]["object"][0]["new_associations"][0]["deal_id"] = "other"
    assert _identity(changed) != identity
    assert _identity(copy.deepcopy(crm)) == identity


@pytest.mark.parametrize("event_type", sorted(IDENTITY_FIELDS))
def test_empty_ids_fall_back_to_the_hash(event_type: str) -> None:
    event = _with_ids(event_type)
    path = IDENTITY_FIELDS[event_type][0]
    node = event["payload"]["object"]
    for name in path[:-1]:
        node = node[name]
    node[path[-1]] = ""
    assert "/sha256=" in _identity(event)


def test_missing_event_ts_falls_back_to_the_hash() -> None:
    event = copy.deepcopy(CATALOG.example(EVALUATION))
    del event["event_ts"]
    assert _identity(event).startswith(f"{EVALUATION}/sha256=")


def test_unknown_event_and_non_json() -> None:
    assert _identity({"event": "webinar.started", "payload": {}}).startswith(
        "webinar.started/sha256="
    )
    assert _identity({"payload": {}}).startswith("-/sha256=")
    assert event_identity(None, b"not json").startswith("raw/sha256=")
    assert event_identity(None, b"a") != event_identity(None, b"b")


def test_separators_inside_ids_cannot_collide() -> None:
    a = _with_ids("revenue_accelerator.playlist_add_moment")
    b = copy.deepcopy(a)
    a["payload"]["object"]["playlist_id"] = "p/moment_id=x"
    a["payload"]["object"]["moment_id"] = "y"
    b["payload"]["object"]["playlist_id"] = "p"
    b["payload"]["object"]["moment_id"] = "x/moment_id=y"
    assert _identity(a) != _identity(b)
    assert "playlist_id=p%2Fmoment_id%3Dx/" in _identity(a)
