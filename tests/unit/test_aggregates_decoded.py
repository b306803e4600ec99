"""Agent states kept decoded between batches: used only for the value the table holds, handed
back only once a batch is stored, and bounded."""

from __future__ import annotations

import tracemalloc

import pytest

from connector.worker.aggregates.decoded import DecodedStates, estimated_size
from connector.worker.aggregates.events import Evaluation
from connector.worker.aggregates.figures import agent_scores
from connector.worker.aggregates.state import AgentState, Retention

DAY = 86_400_000
T0 = 20_000 * DAY


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
    kept = DecodedStates(3 * estimated_size(value))
    states = {key: AgentState(key.decode()) for key in (b"a", b"b", b"c", b"d")}
    for key in (b"a", b"b", b"c"):
        kept.keep(key, value, states[key])
    kept.keep(b"a", value, states[b"a"])  # used again: now the most recent
    kept.keep(b"d", value, states[b"d"])
    assert len(kept) == 3
    assert kept.estimated_bytes == 3 * estimated_size(value)
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


@pytest.mark.parametrize(("live", "copies"), [(1, 200), (40, 50), (3000, 3)])
def test_the_estimate_is_near_the_memory_a_decoded_state_takes(live: int, copies: int) -> None:
    """Measured over many copies: what one more kept state costs, not the interpreter's first
    use of the code."""
    retention = Retention(31 * DAY, 3000)
    state = AgentState("u1")
    for i in range(live):
        event = Evaluation("u1", f"e{i}", T0 + i, float(i % 50), 0.5, "MANUAL", "Care", "Ann")
        state.apply(event, retention, T0)
    stored = state.to_bytes()
    kept = []
    tracemalloc.start()
    try:
        for _ in range(copies):
            decoded = AgentState.from_bytes(stored)
            agent_scores(decoded)  # the per-day totals a kept state holds too
            kept.append(decoded)
        taken, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    each = taken / copies
    assert 0.7 * each <= estimated_size(stored) <= 1.4 * each
