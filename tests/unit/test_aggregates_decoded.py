"""Agent states kept decoded between batches: used only for the value the table holds, handed
back only once a batch is stored, and bounded."""

from __future__ import annotations

from connector.worker.aggregates.decoded import DECODED_PER_STORED_BYTE, DecodedStates
from connector.worker.aggregates.state import AgentState


def test_a_state_is_used_only_for_the_value_it_stands_for() -> None:
    kept = DecodedStates(1_000_000)
    state = AgentState("a")
    kept.keep(b"a", b"v1", state)
    assert kept.take(b"a", b"v1") is state
    assert kept.take(b"a", b"v1") is None  # taken out until kept again
    kept.keep(b"a", b"v1", state)
    assert kept.take(b"a", b"v2") is None  # the table holds another value: decode it
    assert len(kept) == 0 and kept.estimated_bytes == 0


def test_the_least_recently_kept_go_first_within_the_budget() -> None:
    value = b"x" * 100
    kept = DecodedStates(3 * len(value) * DECODED_PER_STORED_BYTE)
    states = {key: AgentState(key.decode()) for key in (b"a", b"b", b"c", b"d")}
    for key in (b"a", b"b", b"c"):
        kept.keep(key, value, states[key])
    kept.keep(b"a", value, states[b"a"])  # used again: now the most recent
    kept.keep(b"d", value, states[b"d"])
    assert len(kept) == 3
    assert kept.estimated_bytes == 3 * len(value) * DECODED_PER_STORED_BYTE
    assert kept.take(b"b", value) is None
    assert [kept.take(k, value) for k in (b"a", b"c", b"d")] == [
        states[b"a"],
        states[b"c"],
        states[b"d"],
    ]


def test_no_budget_keeps_nothing() -> None:
    kept = DecodedStates(0)
    kept.keep(b"a", b"v", AgentState("a"))
    assert len(kept) == 0 and kept.take(b"a", b"v") is None
