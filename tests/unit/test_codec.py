"""The event codec: every seed example round-trips, bad inputs fail with path and reason."""

from __future__ import annotations

import copy
import io
import json
import struct
from typing import Any

import fastavro
import pytest

from connector.avro.codec import EventCodec, parse_event
from connector.avro.errors import CodecError, EventValidationError, Reason, UnknownEventTypeError
from connector.avro.framing import ConfluentFraming, SingleObjectFraming, crc64_avro
from connector.spec import load_catalog

CATALOG = load_catalog()
EVENT_TYPES = CATALOG.event_types
EVALUATION = "quality_management.evaluation_completed"
INTERACTION = "quality_management.interaction_analysis_completed"
CRM = "revenue_accelerator.conversation_crm_associations_changed"


@pytest.fixture(scope="module")
def codec() -> EventCodec:
    return EventCodec()


def test_there_are_nine_event_types(codec: EventCodec) -> None:
    assert codec.event_types == EVENT_TYPES and len(EVENT_TYPES) == 9


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_seed_example_round_trips(codec: EventCodec, event_type: str) -> None:
    example = CATALOG.example(event_type)
    chosen, data = codec.encode(json.dumps(example).encode())
    assert chosen == event_type
    decoded_type, datum = codec.decode(data)
    assert decoded_type == event_type
    # decode -> encode -> decode is stable
    assert codec.decode(codec.encode_datum(event_type, datum)) == (event_type, datum)
    # every value of the example survives (absent optional fields decode as null)
    assert _without_nulls(datum) == example


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_encoded_record_validates_with_fastavro(codec: EventCodec, event_type: str) -> None:
    _, datum = codec.to_datum(CATALOG.example(event_type))
    assert fastavro.validation.validate(datum, codec.schema(event_type), raise_errors=True)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def test_decoded_timestamps_are_epoch_millis(codec: EventCodec) -> None:
    _, data = codec.encode(CATALOG.example_bytes(EVALUATION))
    _, datum = codec.decode(data)
    assert datum["event_ts"] == 1626230691572
    # a consumer reading the committed .avsc with fastavro gets a datetime for the same bytes
    body = data[10:]
    typed = fastavro.schemaless_reader(
        io.BytesIO(body), fastavro.parse_schema(codec.schema(EVALUATION)), None
    )
    assert int(typed["event_ts"].timestamp() * 1000) == 1626230691572


# --- the seeds' quirks -------------------------------------------------------------------------


def test_evaluation_example_as_published_is_refused_by_its_own_name(codec: EventCodec) -> None:
    """Zoom's slip: the evaluation example says interaction_analysis_completed."""
    published = CATALOG.event(EVALUATION).published_example
    assert published is not None
    with pytest.raises(EventValidationError) as info:
        codec.encode(published.encode())
    assert info.value.path == "$.payload.object.interaction_info"
    assert info.value.reason is Reason.MISSING_REQUIRED_FIELD
    # checked against the schema it was written for, it fits
    chosen, _ = codec.encode(published.encode(), event_type=EVALUATION)
    assert chosen == EVALUATION


@pytest.mark.parametrize("event_type", [t for t in EVENT_TYPES if t.startswith("revenue_")])
def test_placeholder_examples_have_no_event_name(codec: EventCodec, event_type: str) -> None:
    published = CATALOG.event(event_type).published_example
    assert published is not None and json.loads(published)["event"] == ""
    with pytest.raises(EventValidationError) as info:
        codec.encode(published.encode())
    assert (info.value.path, info.value.reason) == ("$.event", Reason.MISSING_EVENT)
    assert codec.encode(published.encode(), event_type=event_type)[0] == event_type


def test_both_agent_ids_of_the_evaluation_example_are_kept(codec: EventCodec) -> None:
    _, datum = codec.decode(codec.encode(CATALOG.example_bytes(EVALUATION))[1])
    obj = datum["payload"]["object"]
    assert obj["agent_user_id"] == "ZWR1C1FB695C654A829FE56553A709E8EBB"
    assert obj["agent_info"]["agent_user_id"] == "httgPnTgTxq0d65-alfYVw"


def test_crm_changes_are_an_array_of_records(codec: EventCodec) -> None:
    _, datum = codec.decode(codec.encode(CATALOG.example_bytes(CRM))[1])
    change = datum["payload"]["object"][0]
    assert change["new_associations"][0]["deal_id"] == "006aa00000JkrXiAAR"
    assert change["old_associations"][0]["lead_id"] == "006aa00000LmrAxiRj"


# --- bad inputs --------------------------------------------------------------------------------


def _evaluation(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(CATALOG.example(EVALUATION))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = event
        for part in parents:
            node = node[part]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return event


_DELETE = object()

BAD_INPUTS = [
    # (case, body, path, reason)
    (
        "missing required field",
        _evaluation(payload__object__evaluation_id=_DELETE),
        "$.payload.object.evaluation_id",
        Reason.MISSING_REQUIRED_FIELD,
    ),
    (
        "missing required top-level",
        _evaluation(event_ts=_DELETE),
        "$.event_ts",
        Reason.MISSING_REQUIRED_FIELD,
    ),
    (
        "null in required field",
        _evaluation(payload__account_id=None),
        "$.payload.account_id",
        Reason.WRONG_TYPE,
    ),
    (
        "wrong type: string for number",
        _evaluation(payload__object__evaluation_score="10"),
        "$.payload.object.evaluation_score",
        Reason.WRONG_TYPE,
    ),
    (
        "wrong type: number for string",
        _evaluation(payload__object__evaluation_id=7),
        "$.payload.object.evaluation_id",
        Reason.WRONG_TYPE,
    ),
    ("wrong type: bool for long", _evaluation(event_ts=True), "$.event_ts", Reason.WRONG_TYPE),
    ("wrong type: fractional long", _evaluation(event_ts=1.5), "$.event_ts", Reason.WRONG_TYPE),
    ("long out of range", _evaluation(event_ts=2**63), "$.event_ts", Reason.OUT_OF_RANGE),
    (
        "double out of range",
        _evaluation(payload__object__evaluation_score=10**400),
        "$.payload.object.evaluation_score",
        Reason.OUT_OF_RANGE,
    ),
    (
        "unknown enum symbol",
        _evaluation(payload__object__evaluation_type="SEMI_AUTOMATED"),
        "$.payload.object.evaluation_type",
        Reason.UNKNOWN_ENUM_SYMBOL,
    ),
    (
        "enum symbol of wrong case",
        _evaluation(payload__object__evaluation_type="manual"),
        "$.payload.object.evaluation_type",
        Reason.UNKNOWN_ENUM_SYMBOL,
    ),
    (
        "extra field (additionalProperties false)",
        _evaluation(payload__object__mood="good"),
        "$.payload.object.mood",
        Reason.UNEXPECTED_FIELD,
    ),
    ("extra top-level field", _evaluation(extra=1), "$.extra", Reason.UNEXPECTED_FIELD),
    (
        "wrong nesting: object expected",
        _evaluation(payload__object__agent_info="Ashlee"),
        "$.payload.object.agent_info",
        Reason.NOT_AN_OBJECT,
    ),
    (
        "wrong nesting: array expected",
        _evaluation(payload__object__evaluators_info={"a": 1}),
        "$.payload.object.evaluators_info",
        Reason.WRONG_TYPE,
    ),
    (
        "bad array item",
        _evaluation(payload__object__evaluators_info=[{}, {"display_name": 3}]),
        "$.payload.object.evaluators_info[1].display_name",
        Reason.WRONG_TYPE,
    ),
    ("non-object payload", _evaluation(payload=[1, 2]), "$.payload", Reason.NOT_AN_OBJECT),
    (
        "wrong event name",
        _evaluation(event="quality_management.evaluation_started"),
        "$.event",
        Reason.UNKNOWN_EVENT_TYPE,
    ),
    ("no event name", _evaluation(event=_DELETE), "$.event", Reason.MISSING_EVENT),
    ("event name not a string", _evaluation(event=["x"]), "$.event", Reason.MISSING_EVENT),
]


@pytest.mark.parametrize(
    ("case", "event", "path", "reason"), BAD_INPUTS, ids=[r[0] for r in BAD_INPUTS]
)
def test_bad_input_names_path_and_reason(
    codec: EventCodec, case: str, event: dict[str, Any], path: str, reason: Reason
) -> None:
    with pytest.raises(EventValidationError) as info:
        codec.encode(json.dumps(event).encode())
    assert (info.value.path, info.value.reason) == (path, reason), case
    assert path in str(info.value)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", Reason.INVALID_JSON),
        (b"{", Reason.INVALID_JSON),
        (b"\xff\xfe", Reason.INVALID_JSON),
        (b"[]", Reason.NOT_AN_OBJECT),
        (b"NaN", Reason.INVALID_JSON),
        (b"42", Reason.NOT_AN_OBJECT),
    ],
)
def test_unparseable_bodies(body: bytes, reason: Reason) -> None:
    with pytest.raises(EventValidationError) as info:
        parse_event(body)
    assert (info.value.path, info.value.reason) == ("$", reason)


def test_unknown_event_type_is_its_own_error(codec: EventCodec) -> None:
    with pytest.raises(UnknownEventTypeError) as info:
        codec.encode(b'{"event": "webinar.started", "payload": {}}')
    assert info.value.event_type == "webinar.started"


def test_extra_fields_are_dropped_where_the_spec_allows_them(codec: EventCodec) -> None:
    event = CATALOG.example("revenue_accelerator.playlist_create")
    event["payload"]["object"]["color"] = "red"
    _, datum = codec.decode(codec.encode(json.dumps(event).encode())[1])
    assert "color" not in datum["payload"]["object"]


def test_integral_float_is_accepted_for_integer(codec: EventCodec) -> None:
    _, datum = codec.decode(
        codec.encode(json.dumps(_evaluation(event_ts=1626230691572.0)).encode())[1]
    )
    assert datum["event_ts"] == 1626230691572 and isinstance(datum["event_ts"], int)


# --- framing -----------------------------------------------------------------------------------


def test_single_object_header_is_magic_and_canonical_fingerprint(codec: EventCodec) -> None:
    _, data = codec.encode(CATALOG.example_bytes(EVALUATION))
    canonical = codec.canonical_forms()[EVALUATION]
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == struct.pack("<Q", crc64_avro(canonical.encode()))
    assert data[2:10] == bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))


def test_crc64_avro_of_empty_input_is_the_seed() -> None:
    assert crc64_avro(b"") == 0xC15D213AA4D7A795


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xc3\x01" + b"\x00" * 8 + b"x", Reason.UNKNOWN_SCHEMA),
        (b"\x00\x00", Reason.MALFORMED_RECORD),
        (b"", Reason.MALFORMED_RECORD),
    ],
)
def test_unframing_errors(codec: EventCodec, data: bytes, reason: Reason) -> None:
    with pytest.raises(CodecError) as info:
        codec.decode(data)
    assert info.value.reason is reason


def test_truncated_body_is_a_codec_error(codec: EventCodec) -> None:
    _, data = codec.encode(CATALOG.example_bytes(EVALUATION))
    with pytest.raises(CodecError) as info:
        codec.decode(data[:20])
    assert info.value.reason is Reason.MALFORMED_RECORD


def test_confluent_framing_round_trip() -> None:
    ids = {t: 100 + i for i, t in enumerate(EVENT_TYPES)}
    codec = EventCodec(framing=ConfluentFraming(ids))
    _, data = codec.encode(CATALOG.example_bytes(CRM))
    assert data[0] == 0 and struct.unpack(">I", data[1:5])[0] == ids[CRM]
    assert codec.decode(data)[0] == CRM
    with pytest.raises(CodecError):
        codec.decode(b"\x00\x00\x00\x00\x01rest")


def test_single_object_framing_rejects_confluent_bytes() -> None:
    framing = SingleObjectFraming({"a.b": '"string"'})
    with pytest.raises(CodecError):
        framing.unframe(b"\x00\x00\x00\x00\x01" + b"\x00" * 8)


def test_schemas_are_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = fastavro.parse_schema

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(fastavro, "parse_schema", counting)
    codec = EventCodec()
    after_start = calls
    body = CATALOG.example_bytes(EVALUATION)
    for _ in range(50):
        codec.decode(codec.encode(body)[1])
    assert after_start > 0 and calls == after_start


def test_lone_surrogate_is_refused_with_a_reason(codec: EventCodec) -> None:
    body = json.dumps(_evaluation(payload__account_id="\ud800")).encode()
    with pytest.raises(EventValidationError) as info:
        codec.encode(body)
    assert info.value.reason in (Reason.INVALID_JSON, Reason.INVALID_STRING)


def test_deeply_nested_body_is_refused_not_crashing(codec: EventCodec) -> None:
    body = (
        b'{"event": "quality_management.evaluation_completed", "x": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}"
    )
    with pytest.raises(EventValidationError) as info:
        codec.encode(body)
    assert info.value.reason in (
        Reason.INVALID_JSON,
        Reason.UNEXPECTED_FIELD,
        Reason.MISSING_REQUIRED_FIELD,
    )
