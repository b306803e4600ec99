"""The bench's workload (bench/workload.py) is what it says: the pipeline types good events, dead-
letters bad ones, and drops retries; ids are unique; the agent pool is exact."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.workload import BAD, GOOD, MIX, RETRY, Workload, expected_outputs
from connector.avro.codec import EventCodec
from connector.avro.errors import CodecError, EventValidationError
from connector.worker.identity import event_identity

CODEC = EventCodec()


def _accepted(body: bytes) -> bool:
    try:
        CODEC.encode(body)
    except (EventValidationError, CodecError):
        return False
    return True


def test_every_kind_does_what_its_label_says() -> None:
    events = list(Workload(run_id="t", agents=50, seed=1).events(3000))
    kinds = Counter(e.kind for e in events)
    assert kinds[GOOD] > 2700 and 40 < kinds[BAD] < 160 and 20 < kinds[RETRY] < 110
    for event in events:
        assert _accepted(event.body) == (event.kind != BAD), event
    assert expected_outputs(events) == kinds[GOOD] + kinds[BAD]


def test_every_type_appears_and_good_events_have_distinct_identities() -> None:
    events = list(Workload(run_id="t", agents=50, seed=2).events(3000))
    good = [e for e in events if e.kind == GOOD]
    assert {e.event_type for e in good} == set(MIX)
    import orjson

    identities = {event_identity(orjson.loads(e.body), e.body) for e in good}
    assert len(identities) == len(good)
    assert len({e.typed_key for e in good}) == len(good)


def test_a_retry_repeats_an_earlier_good_body() -> None:
    events = list(Workload(run_id="t", agents=50, seed=3).events(2000))
    earlier: set[bytes] = set()
    for event in events:
        if event.kind == RETRY:
            assert event.body in earlier
        elif event.kind == GOOD:
            earlier.add(event.body)


@pytest.mark.parametrize("agents", [2, 7, 100])
def test_seeding_puts_exactly_the_pool_in_the_table(agents: int) -> None:
    workload = Workload(run_id="s", agents=agents)
    seed = list(workload.seed_agents())
    assert len(seed) == agents
    assert all(e.kind == GOOD and _accepted(e.body) for e in seed)
    import orjson

    from connector.worker.aggregates.events import from_typed

    keys = set()
    for event in seed:
        _, datum = CODEC.decode(CODEC.encode(event.body)[1])
        score, _ = from_typed(event.event_type, datum)
        assert score is not None
        keys.add(score.agent)
        assert orjson.loads(event.body)["event"] == event.event_type
    assert len(keys) == agents


def test_the_same_seed_gives_the_same_events() -> None:
    first = [e.body for e in Workload(run_id="r", seed=9, base_ts_ms=1).events(200)]
    again = [e.body for e in Workload(run_id="r", seed=9, base_ts_ms=1).events(200)]
    assert first == again
