"""The compiled Avro writers write the bytes fastavro writes, for every schema the connector
writes, and refuse what they do not support."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.avro.codec import EventCodec
from connector.avro.convert import LONG_RANGE
from connector.avro.writer import compile_writer, encode_long
from connector.spec import load_catalog
from connector.worker.aggregates.events import Evaluation, InteractionAnalysis
from connector.worker.aggregates.figures import agent_scores
from connector.worker.aggregates.record import load_schema
from connector.worker.aggregates.state import AgentState, Retention
from tests.unit.test_codec_properties import values_of

CODEC = EventCodec()
DAY = 86_400_000


def fastavro_bytes(schema: Any, datum: Any) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), datum, strict=True)
    return buffer.getvalue()


@pytest.mark.parametrize("event_type", CODEC.event_types)
def test_the_spec_examples_are_written_as_fastavro_writes_them(event_type: str) -> None:
    event = dict(load_catalog().example(event_type), event=event_type)
    _, datum = CODEC.to_datum(event)
    schema = CODEC.schema(event_type)
    assert compile_writer(schema)(datum) == fastavro_bytes(schema, datum)


@pytest.mark.parametrize("event_type", CODEC.event_types)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_accepted_event_is_written_as_fastavro_writes_it(
    event_type: str, data: st.DataObject
) -> None:
    schema = CODEC.schema(event_type)
    event = data.draw(values_of(schema))
    _, datum = CODEC.to_datum(event, event_type)
    assert compile_writer(schema)(datum) == fastavro_bytes(schema, datum)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), events=st.integers(1, 40))
def test_agent_scores_are_written_as_fastavro_writes_them(seed: int, events: int) -> None:
    rng = random.Random(seed)
    retention = Retention(31 * DAY, 3000)
    now = 20_000 * DAY
    user, named = AgentState("u1"), AgentState("name:Ann")
    for i in range(events):
        ts = now - rng.randrange(60) * DAY
        maybe = lambda value: rng.choice([None, value])  # noqa: E731
        user.apply(
            Evaluation(
                "u1",
                f"e{rng.randrange(30)}",
                ts,
                maybe(rng.uniform(-5, 100)),
                maybe(rng.random()),
                maybe(rng.choice(["MANUAL", "AUTOMATED"])),
                maybe(rng.choice(["Care", "Sales", "Zoë"])),
                maybe("Ann"),
            ),
            retention,
            now,
        )
        named.apply(
            InteractionAnalysis(
                "name:Ann",
                f"i{i}",
                ts,
                maybe(rng.uniform(0, 100)),
                maybe(rng.uniform(0, 100)),
                maybe(rng.uniform(0, 100)),
                rng.randrange(10),
                rng.randrange(10),
                rng.randrange(10),
                rng.randrange(10**6),
                maybe(rng.choice(["AUDIO", "CHAT"])),
                maybe(f"q{rng.randrange(3)}"),
                maybe("Sales"),
            ),
            retention,
            now,
        )
    schema = load_schema()
    for state in (user, named, AgentState("u2")):
        document = agent_scores(state)
        assert compile_writer(schema)(document) == fastavro_bytes(schema, document)


@pytest.mark.parametrize(
    "value", [0, 1, -1, 63, -64, 64, -65, 2**31, -(2**31) - 1, LONG_RANGE[0], LONG_RANGE[1]]
)
def test_longs_are_zigzag_varints(value: int) -> None:
    assert encode_long(value) == fastavro_bytes("long", value)


def test_maps_arrays_enums_and_named_references() -> None:
    schema = json.loads(
        """{"type": "record", "name": "R", "namespace": "n", "fields": [
            {"name": "m", "type": {"type": "map", "values": "long"}},
            {"name": "a", "type": {"type": "array", "items": "double"}},
            {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["X", "Y"]}},
            {"name": "again", "type": ["null", "E"]},
            {"name": "f", "type": "float"}, {"name": "b", "type": "boolean"},
            {"name": "raw", "type": "bytes"},
            {"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"""
    )
    write = compile_writer(schema)
    for datum in (
        {"m": {}, "a": [], "e": "X", "again": None, "f": 0.5, "b": False, "raw": b"", "t": 0},
        {
            "m": {"k": 1, "ü": -300},
            "a": [1.5, -2.0],
            "e": "Y",
            "again": "X",
            "f": -1.25,
            "b": True,
            "raw": b"\x00\xff",
            "t": 1_733_000_000_000,
        },
    ):
        assert write(datum) == fastavro_bytes(schema, datum)


def test_what_is_not_supported_is_refused_when_compiling() -> None:
    with pytest.raises(ValueError, match="unions"):
        compile_writer(
            {"type": "record", "name": "R", "fields": [{"name": "u", "type": ["string", "long"]}]}
        )
    with pytest.raises(ValueError, match="unknown named type"):
        compile_writer({"type": "record", "name": "R", "fields": [{"name": "u", "type": "Nope"}]})


def test_a_datum_of_the_wrong_shape_raises_instead_of_writing() -> None:
    write = compile_writer(
        {
            "type": "record",
            "name": "R",
            "fields": [
                {"name": "n", "type": "long"},
                {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["X"]}},
            ],
        }
    )
    with pytest.raises(TypeError):
        write({"n": "1", "e": "X"})
    with pytest.raises(TypeError):
        write({"n": True, "e": "X"})
    with pytest.raises(KeyError):
        write({"n": 1, "e": "Z"})
    with pytest.raises(KeyError):
        write({"e": "X"})
