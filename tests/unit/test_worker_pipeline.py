"""Routing raw records: every seed example to its typed topic, every bad input to the DLQ."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connector.avro.codec import EventCodec
from connector.avro.errors import Reason
from connector.spec import load_catalog
from connector.topics import TopicNames
from connector.worker.dead_letters import PipelineReason
from connector.worker.routing import DeadLetter, RawRecord, Router, TypedRecord
from tests.unit.test_codec import BAD_INPUTS

CATALOG = load_catalog()
EVALUATION = "quality_management.evaluation_completed"
INTERACTION = "quality_management.interaction_analysis_completed"
TOPICS = TopicNames("zoom")
NOW = 1_700_000_000.5

EXPECTED_KEYS = {
    EVALUATION: b"0e73a69f8f104d24a589fa0c615abca8",
    INTERACTION: b"X51n17BZQTqKtxwF4mmTIw",
}


@pytest.fixture(scope="module")
def codec() -> EventCodec:
    return EventCodec()


@pytest.fixture
def router(codec: EventCodec) -> Router:
    return Router(codec, TOPICS, clock=lambda: NOW)


def _record(body: bytes, **changes: Any) -> RawRecord:
    fields: dict[str, Any] = {
        "topic": "zoom.webhooks.raw",
        "partition": 2,
        "offset": 17,
        "timestamp_ms": 1_700_000_000_000,
        "key": b"evaluation_id:abc",
        "value": body,
        "headers": [
            ("x-zm-signature", b"v0=sig"),
            ("x-zm-request-timestamp", b"1700000000"),
            ("x-zm-trackingid", b"track-1"),
            ("zoom-connector-received-at", b"1700000000000"),
        ],
    }
    fields.update(changes)
    return RawRecord(**fields)


@pytest.mark.parametrize("event_type", CATALOG.event_types)
def test_every_seed_example_becomes_a_typed_record(
    router: Router, codec: EventCodec, event_type: str
) -> None:
    body = CATALOG.example_bytes(event_type)
    outcome = router.route(_record(body))
    assert isinstance(outcome, TypedRecord), outcome
    assert outcome.event_type == event_type
    assert outcome.topic == f"zoom.{event_type}"
    assert outcome.timestamp_ms == 1_700_000_000_000
    decoded_type, datum = codec.decode(outcome.value)
    assert decoded_type == event_type and datum["event"] == event_type
    headers = dict(outcome.headers)
    assert headers["zoom-event-id"] == outcome.event_id.encode()
    assert headers["x-zm-trackingid"] == b"track-1"
    assert headers["zoom-connector-received-at"] == b"1700000000000"
    assert "x-zm-signature" not in headers
    if event_type in EXPECTED_KEYS:
        assert outcome.key == EXPECTED_KEYS[event_type]
    else:  # the RA examples have empty ids: the raw key's body-hash fallback
        assert outcome.key.startswith(b"sha256:")


def test_conversation_events_are_keyed_by_the_bare_conversation_id(router: Router) -> None:
    event = CATALOG.example("revenue_accelerator.post_comment_completed")
    event["payload"]["object"]["conversation_id"] = "conv-9"
    outcome = router.route(_record(json.dumps(event).encode()))
    assert isinstance(outcome, TypedRecord) and outcome.key == b"conv-9"


def _assert_dead_letter(outcome: Any, record: RawRecord, reason: str, path: str) -> DeadLetter:
    assert isinstance(outcome, DeadLetter), outcome
    assert outcome.topic == "zoom.webhooks.dlq"
    assert outcome.key == record.key and outcome.value == record.value
    headers = dict(outcome.headers)
    assert headers["zoom-dlq-reason"] == reason.encode()
    assert headers["zoom-dlq-path"] == path.encode()
    assert headers["zoom-dlq-source-topic"] == b"zoom.webhooks.raw"
    assert headers["zoom-dlq-source-partition"] == b"2"
    assert headers["zoom-dlq-source-offset"] == b"17"
    assert headers["zoom-dlq-failed-at"] == b"1700000000500"
    assert headers["zoom-event-id"] == outcome.event_id.encode()
    assert headers["x-zm-signature"] == b"v0=sig"  # the original headers are kept
    return outcome


@pytest.mark.parametrize(
    ("case", "event", "path", "reason"), BAD_INPUTS, ids=[r[0] for r in BAD_INPUTS]
)
def test_every_bad_input_becomes_a_dead_letter(
    router: Router, case: str, event: dict[str, Any], path: str, reason: Reason
) -> None:
    record = _record(json.dumps(event).encode())
    _assert_dead_letter(router.route(record), record, reason, path)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", Reason.INVALID_JSON),
        (b"{", Reason.INVALID_JSON),
        (b"\xff\xfe", Reason.INVALID_JSON),
        (b"[]", Reason.NOT_AN_OBJECT),
        (b"42", Reason.NOT_AN_OBJECT),
    ],
)
def test_unparseable_bodies_become_dead_letters(
    router: Router, body: bytes, reason: Reason
) -> None:
    record = _record(body)
    letter = _assert_dead_letter(router.route(record), record, reason, "$")
    assert letter.event_id.startswith("raw/sha256=")


def test_missing_value_is_invalid_json(router: Router) -> None:
    record = _record(b"", value=None)
    letter = _assert_dead_letter(router.route(record), record, Reason.INVALID_JSON, "$")
    assert letter.value is None


def test_a_record_without_key_or_value_is_a_dead_letter_with_an_empty_value(
    router: Router,
) -> None:
    # Kafka's producer refuses a record with neither key nor value: it must not be dropped.
    record = _record(b"", value=None, key=None)
    letter = router.route(record)
    assert isinstance(letter, DeadLetter)
    assert letter.key is None and letter.value == b""
    assert dict(letter.headers)["zoom-dlq-reason"] == str(Reason.INVALID_JSON).encode()


def test_unknown_event_type_is_a_dead_letter(router: Router) -> None:
    record = _record(b'{"event": "webinar.started", "event_ts": 1, "payload": {}}')
    letter = _assert_dead_letter(router.route(record), record, Reason.UNKNOWN_EVENT_TYPE, "$.event")
    assert dict(letter.headers)["zoom-dlq-event-type"] == b"webinar.started"


def test_zoom_evaluation_example_labelled_interaction_is_a_dead_letter(router: Router) -> None:
    published = CATALOG.event(EVALUATION).published_example
    assert published is not None
    record = _record(published.encode())
    letter = _assert_dead_letter(
        router.route(record),
        record,
        Reason.MISSING_REQUIRED_FIELD,
        "$.payload.object.interaction_info",
    )
    assert dict(letter.headers)["zoom-dlq-event-type"] == INTERACTION.encode()


def test_an_unexpected_exception_becomes_an_internal_error_dead_letter(
    codec: EventCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(codec, "to_datum", broken)
    record = _record(CATALOG.example_bytes(EVALUATION))
    letter = _assert_dead_letter(
        Router(codec, TOPICS, clock=lambda: NOW).route(record),
        record,
        PipelineReason.INTERNAL_ERROR,
        "$",
    )
    assert b"ZeroDivisionError: a bug" in dict(letter.headers)["zoom-dlq-message"]
    assert letter.event_id.startswith(EVALUATION + "/evaluation_id=")


def test_typed_and_dead_letter_of_one_event_share_the_identity(router: Router) -> None:
    good = json.loads(CATALOG.example_bytes(EVALUATION))
    bad = dict(good, extra=1)
    typed = router.route(_record(json.dumps(good).encode()))
    letter = router.route(_record(json.dumps(bad).encode()))
    assert isinstance(typed, TypedRecord) and isinstance(letter, DeadLetter)
    assert typed.event_id == letter.event_id
