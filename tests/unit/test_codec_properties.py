"""Property: any event the schema accepts survives JSON -> Avro -> JSON unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.avro.codec import EventCodec
from connector.avro.convert import INT_RANGE, LONG_RANGE

CODEC = EventCodec()


def values_of(avro_type: Any) -> st.SearchStrategy[Any]:
    """JSON values that fit an Avro type of the generated schemas."""
    if isinstance(avro_type, list):
        (inner,) = [t for t in avro_type if t != "null"]
        return st.none() | values_of(inner)
    if isinstance(avro_type, str):
        return {
            "string": st.text(max_size=20),
            "boolean": st.booleans(),
            "int": st.integers(*INT_RANGE),
            "long": st.integers(*LONG_RANGE),
            "double": st.floats(allow_nan=False, allow_infinity=False),
        }[avro_type]
    kind = avro_type["type"]
    if kind == "enum":
        return st.sampled_from(avro_type["symbols"])
    if kind == "array":
        return st.lists(values_of(avro_type["items"]), max_size=3)
    if kind == "record":
        required = {}
        optional = {}
        for field in avro_type["fields"]:
            if isinstance(field["type"], list):
                optional[field["name"]] = values_of(field["type"])
            else:
                required[field["name"]] = values_of(field["type"])
        return st.fixed_dictionaries(required, optional=optional)
    return values_of(kind)


def _with_nulls(value: Any, avro_type: Any) -> Any:
    """What the decoder gives back: absent optional fields as null."""
    if isinstance(avro_type, list):
        (inner,) = [t for t in avro_type if t != "null"]
        return None if value is None else _with_nulls(value, inner)
    if isinstance(avro_type, dict) and avro_type["type"] == "record":
        return {
            f["name"]: _with_nulls(value.get(f["name"]), f["type"]) for f in avro_type["fields"]
        }
    if isinstance(avro_type, dict) and avro_type["type"] == "array":
        return [_with_nulls(v, avro_type["items"]) for v in value]
    if avro_type == "double":
        return float(value)
    return value


@pytest.mark.parametrize("event_type", CODEC.event_types)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_accepted_event_round_trips(event_type: str, data: st.DataObject) -> None:
    schema = CODEC.schema(event_type)
    event = data.draw(values_of(schema))
    event["event"] = event_type
    body = json.dumps(event).encode()
    chosen, framed = CODEC.encode(body)
    decoded_type, datum = CODEC.decode(framed)
    assert chosen == decoded_type == event_type
    assert datum == _with_nulls(event, schema)
