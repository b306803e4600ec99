"""The leaderboard: parameters (good and bad), ranking, merging partial rankings."""

from __future__ import annotations

import random

import pytest

from connector.worker.aggregates.events import Evaluation, InteractionAnalysis
from connector.worker.aggregates.leaderboard import (
    MAX_LIMIT,
    Entry,
    InvalidQuery,
    LeaderboardQuery,
    Ranking,
    entry_of,
    merge,
    parse_query,
    rank,
)
from connector.worker.aggregates.state import AgentState, Retention
from connector.worker.aggregates.windows import LAST_7_DAYS, LAST_30_DAYS, LIFETIME

DAY = 86_400_000
T0 = 20_000 * DAY
RETENTION = Retention(31 * DAY, 3000)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, LeaderboardQuery("evaluations.ratio_mean", LAST_30_DAYS, 10, "now")),
        (
            {"metric": "evaluations.score_max", "window": "7d", "limit": "3", "as_of": "latest"},
            LeaderboardQuery("evaluations.score_max", LAST_7_DAYS, 3, "latest"),
        ),
        (
            {"metric": "interactions.hold_event_total", "window": "lifetime", "limit": "100"},
            LeaderboardQuery("interactions.hold_event_total", LIFETIME, 100, "now"),
        ),
        (
            {"min_count": "5"},
            LeaderboardQuery("evaluations.ratio_mean", LAST_30_DAYS, 10, "now", 5),
        ),
        (
            {"window": "last_7_days"},
            LeaderboardQuery("evaluations.ratio_mean", LAST_7_DAYS, 10, "now"),
        ),
    ],
)
def test_good_parameters(params: dict[str, str], expected: LeaderboardQuery) -> None:
    assert parse_query(params) == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"metric": "score"}, "metric 'score' is not one of evaluations.count, "),
        ({"metric": "evaluations.by_type"}, "metric 'evaluations.by_type' is not one of"),
        (
            {"window": "1d"},
            "window '1d' is not one of lifetime, last_7_days, last_30_days, 7d, 30d",
        ),
        ({"limit": "0"}, f"limit '0' is not a whole number from 1 to {MAX_LIMIT}"),
        ({"limit": "101"}, "limit '101' is not a whole number"),
        ({"limit": "ten"}, "limit 'ten' is not a whole number"),
        ({"limit": "-3"}, "limit '-3' is not a whole number"),
        ({"limit": "٣"}, "is not a whole number"),
        ({"as_of": "yesterday"}, "as_of 'yesterday' is not one of now, latest"),
        ({"min_count": "0"}, "min_count '0' is not a whole number of at least 1"),
        ({"min_count": "x"}, "min_count 'x' is not a whole number"),
        ({"metrc": "x", "lmit": "2"}, "unknown parameter(s) lmit, metrc; known: metric, window"),
    ],
)
def test_bad_parameters(params: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidQuery) as error:
        parse_query(params)
    assert message in str(error.value)


def _agent(agent: str, scores: list[tuple[int, float | None]]) -> AgentState:
    state = AgentState(agent)
    for number, (ts, score) in enumerate(scores):
        state.apply(
            Evaluation(agent, f"{agent}-{number}", ts, score, None, None, None, agent.upper()),
            RETENTION,
            0,
        )
    return state


def test_entries_per_window_and_as_of() -> None:
    state = _agent("a", [(T0 - 20 * DAY, 10.0), (T0, 30.0)])
    now = T0 + 3 * DAY
    query = parse_query({"metric": "evaluations.score_mean", "window": "7d", "limit": "5"})
    assert entry_of(state, query, now) == Entry(30.0, "a", "A", 1)
    latest = parse_query({"metric": "evaluations.score_mean", "window": "7d", "as_of": "latest"})
    assert entry_of(state, latest, T0 + 100 * DAY) == Entry(30.0, "a", "A", 1)
    # as of now, 100 days on, nothing is in the window: not ranked
    assert entry_of(state, query, T0 + 100 * DAY) is None
    lifetime = parse_query({"metric": "evaluations.count", "window": "lifetime"})
    assert entry_of(state, lifetime, now) == Entry(2, "a", "A", 2)
    # no interactions: not ranked for an interaction metric
    assert entry_of(state, parse_query({"metric": "interactions.count"}), now) is None
    # fewer events in the window than min_count: not ranked
    lifetime_3 = parse_query(
        {"metric": "evaluations.count", "window": "lifetime", "min_count": "3"}
    )
    assert entry_of(state, lifetime_3, now) is None
    # no scores: not ranked for a score metric
    unscored = _agent("u", [(T0, None)])
    assert entry_of(unscored, query, now) is None


def test_interaction_entries() -> None:
    state = AgentState("name:x")
    state.apply(
        InteractionAnalysis("name:x", "i", T0, 1.0, 2.0, 3.0, 4, 5, 6, 7, None, None), RETENTION, 0
    )
    query = parse_query({"metric": "interactions.crosstalk_event_total", "window": "30d"})
    assert entry_of(state, query, T0) == Entry(5, "name:x", None, 1)


def test_rank_top_and_bottom_with_ties_by_agent_id() -> None:
    entries = [Entry(v, a, None, 1) for a, v in [("c", 2.0), ("a", 2.0), ("b", 5.0), ("d", 1.0)]]
    ranking = rank(entries, 2)
    assert [e.agent_id for e in ranking.top] == ["b", "a"]
    assert [e.agent_id for e in ranking.bottom] == ["d", "a"]
    assert ranking.ranked == 4
    assert Ranking.from_json(ranking.to_json()) == ranking


def test_merging_partial_rankings_equals_ranking_everything() -> None:
    rng = random.Random(11)
    entries = [
        Entry(rng.choice([1.0, 2.0, rng.random()]), f"agent-{i}", None, 1) for i in range(200)
    ]
    parts = [entries[i::3] for i in range(3)]
    for limit in (1, 5, 50, 100):
        merged = merge([rank(part, limit) for part in parts], limit)
        assert merged == rank(entries, limit)
