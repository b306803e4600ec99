"""Per-agent state and figures: arithmetic, event-time windows, re-scores, duplicates, bounds.

Expected figures come from :func:`reference`, a plain recomputation over the distinct latest
versions written for these tests (it shares no code with the aggregates).
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.worker.aggregates.events import Evaluation, InteractionAnalysis
from connector.worker.aggregates.figures import agent_scores
from connector.worker.aggregates.state import AgentState, Outcome, Retention, StateError
from connector.worker.aggregates.windows import DAY_MS, KEPT_DAYS

AGENT = "httgPnTgTxq0d65-alfYVw"
DAY = DAY_MS
HOUR = 3_600_000
T0 = 20_000 * DAY  # 2024-10-04T00:00:00Z, a day boundary
LONG = Retention(replaceable_ms=10_000 * DAY, max_replaceable=1_000_000)
DEFAULT = Retention(replaceable_ms=31 * DAY + 2 * HOUR, max_replaceable=3000)
NOW = T0 + 2 * DAY  # wall-clock time of single applications


def evaluation(
    eid: str,
    ts: int,
    score: float | None = 10.0,
    ratio: float | None = 0.5,
    kind: str | None = "MANUAL",
    card: str | None = "Care",
    agent: str = AGENT,
    name: str | None = "Ashlee York",
) -> Evaluation:
    return Evaluation(agent, eid, ts, score, ratio, kind, card, name)


def interaction(
    iid: str,
    ts: int,
    sentiment: float | None = 50.0,
    engagement: float | None = 60.0,
    score: float | None = 70.0,
    silence: int = 1,
    crosstalk: int = 2,
    hold: int = 3,
    duration: int = 100,
    channel: str | None = "AUDIO",
    queue: str | None = "q1",
    queue_name: str | None = "Sales",
) -> InteractionAnalysis:
    return InteractionAnalysis(
        "name:Admin3",
        iid,
        ts,
        sentiment,
        engagement,
        score,
        silence,
        crosstalk,
        hold,
        duration,
        channel,
        queue,
        queue_name,
    )


def apply_all(
    events: Iterable[Evaluation | InteractionAnalysis],
    retention: Retention = LONG,
    now: int | None = None,
) -> AgentState:
    """Apply ``events`` in order, each at wall-clock time ``now`` (default: its own event_ts,
    as when events are processed as they happen)."""
    events = list(events)
    state = AgentState(events[0].agent)
    for event in events:
        state.apply(event, retention, event.event_ts if now is None else now)
    return state


# --- an independent reference ----------------------------------------------------------------


def latest_versions(events: Iterable[Any]) -> list[Any]:
    """The newest version of every event id (ties: the first one seen)."""
    newest: dict[str, Any] = {}
    for event in events:
        if event.id not in newest or event.event_ts > newest[event.id].event_ts:
            newest[event.id] = event
    return list(newest.values())


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def reference_evaluations(events: Sequence[Evaluation], first: int | None, last: int | None) -> Any:
    chosen = [
        e
        for e in events
        if first is None or (last is not None and first <= e.event_ts // DAY <= last)
    ]
    scores = [e.score for e in chosen if e.score is not None]
    ratios = [e.ratio for e in chosen if e.ratio is not None]
    cards: dict[str, list[Evaluation]] = {}
    for e in chosen:
        cards.setdefault(e.scorecard or "-", []).append(e)
    return {
        "count": len(chosen),
        "score_count": len(scores),
        "score_mean": _mean(scores),
        "score_min": min(scores, default=None),
        "score_max": max(scores, default=None),
        "ratio_count": len(ratios),
        "ratio_mean": _mean(ratios),
        "by_type": dict(Counter(e.evaluation_type or "-" for e in chosen)),
        "by_scorecard": {
            name: {
                "count": len(es),
                "score_mean": _mean([e.score for e in es if e.score is not None]),
                "ratio_mean": _mean([e.ratio for e in es if e.ratio is not None]),
            }
            for name, es in cards.items()
        },
        "last_evaluation_at": max((e.event_ts for e in chosen), default=None),
    }


def reference_interactions(
    events: Sequence[InteractionAnalysis], first: int | None, last: int | None
) -> Any:
    chosen = [
        e
        for e in events
        if first is None or (last is not None and first <= e.event_ts // DAY <= last)
    ]
    return {
        "count": len(chosen),
        "sentiment_score_mean": _mean([e.sentiment for e in chosen if e.sentiment is not None]),
        "engagement_score_mean": _mean([e.engagement for e in chosen if e.engagement is not None]),
        "evaluation_score_mean": _mean([e.score for e in chosen if e.score is not None]),
        "silence_event_total": sum(e.silence_events for e in chosen),
        "crosstalk_event_total": sum(e.crosstalk_events for e in chosen),
        "hold_event_total": sum(e.hold_events for e in chosen),
        "duration_total_seconds": sum(e.duration_seconds for e in chosen),
        "by_channel": dict(Counter(e.channel or "-" for e in chosen)),
        "by_queue_counts": dict(Counter(e.queue_id or "-" for e in chosen)),
        "last_interaction_at": max((e.event_ts for e in chosen), default=None),
    }


WINDOW_DAYS = {"lifetime": None, "last_7_days": 7, "last_30_days": 30}


def expected_figures(events: Sequence[Any], as_of_day: int) -> dict[str, Any]:
    latest = latest_versions(events)
    result = {}
    for name, days in WINDOW_DAYS.items():
        first = None if days is None else as_of_day - days + 1
        if isinstance(latest[0], Evaluation):
            result[name] = reference_evaluations(latest, first, as_of_day)
        else:
            result[name] = reference_interactions(latest, first, as_of_day)
    return result


def comparable(stats: dict[str, Any]) -> dict[str, Any]:
    """The figures without the window's dates, by_queue as plain counts."""
    out = {k: v for k, v in stats.items() if k not in ("window_start", "window_end")}
    if "by_queue" in out:
        out["by_queue_counts"] = {q: v["count"] for q, v in out.pop("by_queue").items()}
    return out


def assert_close(actual: Any, expected: Any, path: str = "$") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not a dict"
        assert sorted(actual) == sorted(expected), f"{path}: keys {sorted(actual)}"
        for key in expected:
            assert_close(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, float) and not isinstance(actual, bool):
        assert isinstance(actual, float), f"{path}: {actual!r} != {expected!r}"
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9), (
            f"{path}: {actual!r} != {expected!r}"
        )
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def check_against_reference(state: AgentState, events: Sequence[Any], as_of: int | None) -> None:
    document = agent_scores(state, as_of)
    section = document["evaluations" if isinstance(events[0], Evaluation) else "interactions"]
    assert section is not None
    latest_ts = max(e.event_ts for e in events)
    as_of_day = (latest_ts if as_of is None else as_of) // DAY
    expected = expected_figures(events, as_of_day)
    for name in WINDOW_DAYS:
        assert_close(comparable(section[name]), expected[name], name)


# --- arithmetic --------------------------------------------------------------------------------


def test_evaluation_figures() -> None:
    events = [
        evaluation("a", T0 + HOUR, score=10, ratio=0.2, kind="AUTOMATED", card="Care"),
        evaluation("b", T0 + 2 * HOUR, score=40, ratio=0.8, kind="MANUAL", card="Care"),
        evaluation("c", T0 + 3 * HOUR, score=5, ratio=None, kind="MANUAL", card="Sales"),
        evaluation("d", T0 + 4 * HOUR, score=None, ratio=1.0, kind=None, card=None),
    ]
    state = apply_all(events)
    lifetime = agent_scores(state)["evaluations"]["lifetime"]
    assert lifetime == {
        "window_start": None,
        "window_end": None,
        "count": 4,
        "score_count": 3,
        "score_mean": pytest.approx(55 / 3),
        "score_min": 5.0,
        "score_max": 40.0,
        "ratio_count": 3,
        "ratio_mean": pytest.approx(2.0 / 3),
        "by_type": {"-": 1, "AUTOMATED": 1, "MANUAL": 2},
        "by_scorecard": {
            "-": {"count": 1, "score_mean": None, "ratio_mean": 1.0},
            "Care": {"count": 2, "score_mean": 25.0, "ratio_mean": pytest.approx(0.5)},
            "Sales": {"count": 1, "score_mean": 5.0, "ratio_mean": None},
        },
        "last_evaluation_at": T0 + 4 * HOUR,
    }
    check_against_reference(state, events, None)
    document = agent_scores(state)
    assert document["agent_id"] == AGENT and document["key_kind"] == "user_id"
    assert document["display_name"] == "Ashlee York"
    assert document["interactions"] is None


def test_interaction_figures() -> None:
    events = [
        interaction("i1", T0 + HOUR, sentiment=40, channel="AUDIO", queue="q1"),
        interaction("i2", T0 + 2 * HOUR, sentiment=None, silence=5, channel="SMS", queue="q1"),
        interaction("i3", T0 + 3 * HOUR, engagement=None, channel=None, queue=None, duration=7),
    ]
    state = apply_all(events)
    document = agent_scores(state)
    assert document["key_kind"] == "agent_name" and document["evaluations"] is None
    lifetime = document["interactions"]["lifetime"]
    assert lifetime["count"] == 3
    assert lifetime["sentiment_score_mean"] == pytest.approx(45.0)
    assert lifetime["engagement_score_mean"] == pytest.approx(60.0)
    assert lifetime["silence_event_total"] == 1 + 5 + 1
    assert lifetime["hold_event_total"] == 9
    assert lifetime["duration_total_seconds"] == 207
    assert lifetime["by_channel"] == {"-": 1, "AUDIO": 1, "SMS": 1}
    assert lifetime["by_queue"] == {
        "-": {"queue_name": None, "count": 1},
        "q1": {"queue_name": "Sales", "count": 2},
    }
    check_against_reference(state, events, None)


def test_the_newest_label_wins_whatever_the_order() -> None:
    older = interaction("i1", T0, queue_name="Old name")
    newer = interaction("i2", T0 + HOUR, queue_name="New name")
    for events in ([older, newer], [newer, older]):
        state = apply_all(events)
        lifetime = agent_scores(state)["interactions"]["lifetime"]
        assert lifetime["by_queue"]["q1"]["queue_name"] == "New name"
    renamed = [evaluation("a", T0, name="Ashlee"), evaluation("b", T0 - DAY, name="Old")]
    assert apply_all(renamed).display_name == "Ashlee"


# --- windows -----------------------------------------------------------------------------------


def test_windows_are_whole_utc_days_up_to_the_latest_event_day() -> None:
    latest = T0 + 23 * HOUR  # day D = T0's day
    events = [
        evaluation("latest", latest, score=1),
        evaluation("d-6-start", T0 - 6 * DAY, score=2),  # first instant of the 7-day window
        evaluation("d-7-end", T0 - 6 * DAY - 1, score=4),  # last instant before it
        evaluation("d-29-start", T0 - 29 * DAY, score=8),
        evaluation("d-30-end", T0 - 29 * DAY - 1, score=16),
    ]
    state = apply_all(events)
    figures = agent_scores(state)["evaluations"]
    assert figures["as_of"] == latest
    assert (figures["last_7_days"]["window_start"], figures["last_7_days"]["window_end"]) == (
        "2024-09-28",
        "2024-10-04",
    )
    assert figures["last_7_days"]["count"] == 2 and figures["last_7_days"]["score_max"] == 2
    assert figures["last_30_days"]["count"] == 4 and figures["last_30_days"]["score_max"] == 8
    assert figures["last_30_days"]["window_start"] == "2024-09-05"
    assert figures["lifetime"]["count"] == 5
    check_against_reference(state, events, None)


def test_windows_hop_daily_with_the_as_of_day() -> None:
    events = [evaluation(f"e{d}", T0 - d * DAY + HOUR, score=d) for d in range(40)]
    state = apply_all(events, DEFAULT)
    for shift in range(0, 12):
        as_of = T0 + shift * DAY + 5 * HOUR
        figures = agent_scores(state, as_of)["evaluations"]
        assert figures["last_7_days"]["count"] == max(0, 7 - shift)
        assert figures["last_30_days"]["count"] == 30 - shift
        assert figures["lifetime"]["count"] == 40
        check_against_reference(state, events, as_of)


def test_late_events_land_in_their_own_day() -> None:
    on_time = [evaluation(f"e{d}", T0 - d * DAY, score=50) for d in range(10)]
    late = evaluation("late", T0 - 3 * DAY + 90 * 60_000, score=0)  # 90 min late, arrives last
    state = apply_all([*on_time, late], DEFAULT)
    figures = agent_scores(state)["evaluations"]
    assert figures["last_7_days"]["count"] == 8
    assert figures["last_7_days"]["score_min"] == 0
    check_against_reference(state, [*on_time, late], None)


def test_an_event_older_than_every_kept_day_counts_in_lifetime_only() -> None:
    recent = evaluation("recent", T0, score=50)
    ancient = evaluation("ancient", T0 - 90 * DAY, score=1)
    state = apply_all([recent, ancient], DEFAULT, now=NOW)
    figures = agent_scores(state)["evaluations"]
    assert figures["lifetime"]["count"] == 2 and figures["lifetime"]["score_min"] == 1
    assert figures["last_30_days"]["count"] == 1 and figures["last_30_days"]["score_min"] == 50
    # folded a month later: into lifetime, into no day
    state.apply(evaluation("later", T0 + DAY, score=60), DEFAULT, NOW + 32 * DAY)
    section = state.evaluations
    assert section is not None and set(section.live) == {"later"}
    assert sorted(section.days) == [T0 // DAY]
    figures = agent_scores(state)["evaluations"]
    assert figures["lifetime"]["count"] == 3 and figures["lifetime"]["score_min"] == 1
    assert figures["last_30_days"]["count"] == 2 and figures["last_30_days"]["score_min"] == 50


# --- re-scores and duplicates ------------------------------------------------------------------


def test_a_rescore_replaces_the_earlier_version() -> None:
    state = AgentState(AGENT)
    first = evaluation("a", T0, score=10, ratio=0.1, kind="AUTOMATED")
    other = evaluation("b", T0 + HOUR, score=30, ratio=0.3)
    rescore = evaluation("a", T0 + 5 * DAY, score=90, ratio=0.9, kind="MANUAL")
    assert state.apply(first, DEFAULT, NOW) is Outcome.ADDED
    assert state.apply(other, DEFAULT, NOW) is Outcome.ADDED
    assert state.apply(rescore, DEFAULT, NOW) is Outcome.REPLACED
    lifetime = agent_scores(state)["evaluations"]["lifetime"]
    assert lifetime["count"] == 2
    assert lifetime["score_mean"] == pytest.approx(60.0)
    assert (lifetime["score_min"], lifetime["score_max"]) == (30.0, 90.0)  # the old min is gone
    assert lifetime["by_type"] == {"MANUAL": 2}
    check_against_reference(state, [first, other, rescore], None)


def test_a_rescore_moves_the_evaluation_to_its_new_day() -> None:
    first = evaluation("a", T0 - 20 * DAY, score=10)
    rescore = evaluation("a", T0, score=20)
    state = apply_all([first, rescore], DEFAULT)
    figures = agent_scores(state)["evaluations"]
    assert figures["last_7_days"]["count"] == 1
    assert figures["last_30_days"]["count"] == 1 and figures["last_30_days"]["score_max"] == 20


def test_an_older_version_arriving_later_is_ignored() -> None:
    newer = evaluation("a", T0 + DAY, score=80)
    older = evaluation("a", T0, score=20)
    state = AgentState(AGENT)
    state.apply(newer, DEFAULT, NOW)
    before = state.to_bytes()
    assert state.apply(older, DEFAULT, NOW) is Outcome.STALE
    assert state.to_bytes() == before
    assert agent_scores(state)["evaluations"]["lifetime"]["score_mean"] == 80


def test_a_duplicate_changes_nothing() -> None:
    event = evaluation("a", T0, score=10)
    state = AgentState(AGENT)
    assert state.apply(event, DEFAULT, NOW) is Outcome.ADDED
    before = state.to_bytes()
    # a duplicate is the same id and event_ts, even if some field differed
    assert state.apply(evaluation("a", T0, score=99), DEFAULT, NOW) is Outcome.DUPLICATE
    assert state.apply(event, DEFAULT, NOW) is Outcome.DUPLICATE
    assert state.to_bytes() == before


def test_min_and_max_follow_replacements_of_the_extremes() -> None:
    events = [evaluation(str(i), T0 + i, score=float(i)) for i in range(1, 6)]
    state = apply_all(events, DEFAULT)
    state.apply(evaluation("1", T0 + DAY, score=3.0), DEFAULT, NOW)  # the min becomes 2
    state.apply(evaluation("5", T0 + DAY, score=4.5), DEFAULT, NOW)  # the max becomes 4.5
    lifetime = agent_scores(state)["evaluations"]["lifetime"]
    assert (lifetime["score_min"], lifetime["score_max"]) == (2.0, 4.5)


def test_replaying_everything_again_is_a_no_op() -> None:
    rng = random.Random(7)
    events = [
        evaluation(f"e{rng.randrange(40)}", T0 + rng.randrange(60) * HOUR, score=rng.random())
        for _ in range(200)
    ]
    state = apply_all(events, DEFAULT)
    snapshot = state.to_bytes()
    for event in events:
        state.apply(event, DEFAULT, NOW)
    assert state.to_bytes() == snapshot


# --- bounds ------------------------------------------------------------------------------------


def test_old_contributions_are_folded_and_days_pruned() -> None:
    events = [evaluation(f"e{d}", T0 + d * DAY, score=d) for d in range(100)]
    state = apply_all(events, DEFAULT)
    section = state.evaluations
    assert section is not None
    assert len(section.live) == 32  # 31 days + 2 h behind the latest (day 99): days 68..99
    assert len(section.days) <= KEPT_DAYS
    check_against_reference(state, events, None)


def test_a_rescore_after_folding_counts_as_a_new_evaluation() -> None:
    """The documented limit of a bounded state: the folded version cannot be taken out."""
    first = evaluation("a", T0, score=10)
    later = evaluation("b", T0 + 40 * DAY, score=50)
    late_rescore = evaluation("a", T0 + 41 * DAY, score=20)
    state = apply_all([first, later, late_rescore], DEFAULT)
    lifetime = agent_scores(state)["evaluations"]["lifetime"]
    assert lifetime["count"] == 3
    last_7 = agent_scores(state)["evaluations"]["last_7_days"]
    assert last_7["count"] == 2  # windows stay right: the folded version is out of them


def test_nothing_is_folded_while_a_backlog_is_read() -> None:
    """A backlog read at once: event time runs far ahead of some partitions, wall clock does not."""
    rng = random.Random(5)
    events = [evaluation(f"e{i}", T0 - rng.randrange(90) * DAY, score=i) for i in range(300)]
    rescores = [evaluation(e.id, e.event_ts + HOUR, score=-1.0) for e in events[::7]]
    ahead = sorted(events, key=lambda e: -e.event_ts)  # the newest first: the worst order
    state = apply_all([*ahead, *rescores, *events[::5]], DEFAULT, now=NOW)
    section = state.evaluations
    assert section is not None and len(section.live) == 300 and section.lifetime is None
    check_against_reference(state, [*events, *rescores], None)


def test_contributions_fold_by_wall_clock_age() -> None:
    state = AgentState(AGENT)
    state.apply(evaluation("a", T0, score=10), DEFAULT, NOW)
    state.apply(evaluation("b", T0, score=20), DEFAULT, NOW + 31 * DAY)
    section = state.evaluations
    assert section is not None and set(section.live) == {"a", "b"}
    state.apply(evaluation("c", T0, score=30), DEFAULT, NOW + 31 * DAY + 3 * HOUR)
    assert set(section.live) == {"b", "c"}
    assert section.lifetime is not None and section.lifetime.count == 1
    assert agent_scores(state)["evaluations"]["lifetime"]["score_mean"] == 20.0


def test_the_count_cap_keeps_windows_exact() -> None:
    rng = random.Random(3)
    events = [
        evaluation(
            f"e{i}",
            T0 - rng.randrange(45 * 24) * HOUR,
            score=rng.choice([None, rng.uniform(0, 100)]),
            kind=rng.choice(["MANUAL", "AUTOMATED", None]),
            card=rng.choice(["Care", "Sales", None]),
        )
        for i in range(300)
    ]
    state = apply_all(events, Retention(31 * DAY + 2 * HOUR, max_replaceable=7))
    section = state.evaluations
    assert section is not None and len(section.live) == 7
    check_against_reference(state, events, None)
    check_against_reference(state, events, T0 + 3 * DAY)


def test_state_survives_serialisation() -> None:
    retention = Retention(31 * DAY + 2 * HOUR, max_replaceable=60)
    events = [evaluation(f"e{i}", T0 + i * 7 * HOUR, score=i) for i in range(150)]  # 43 days
    state = apply_all(events, retention)
    section = state.evaluations
    assert section is not None and section.lifetime is not None and section.days  # some folded
    restored = AgentState.from_bytes(state.to_bytes())
    assert restored == state
    for event in events[-60:]:  # still replaceable
        assert restored.apply(event, retention, NOW) is Outcome.DUPLICATE
    later = evaluation("e0", T0 + 1000 * HOUR, score=1)
    assert (
        restored.apply(later, retention, NOW) is state.apply(later, retention, NOW) is Outcome.ADDED
    )
    assert restored.to_bytes() == state.to_bytes()


@pytest.mark.parametrize("data", [b"", b"[]", b'{"v": 99}', b'{"v": 1, "agent": "a"}'])
def test_unreadable_states_are_errors(data: bytes) -> None:
    with pytest.raises(StateError):
        AgentState.from_bytes(data)


def test_an_event_of_another_agent_is_refused() -> None:
    with pytest.raises(ValueError):
        AgentState("someone-else").apply(evaluation("a", T0), DEFAULT, NOW)


# --- order does not matter ---------------------------------------------------------------------

versions = st.lists(
    st.tuples(
        st.integers(0, 25),  # evaluation number
        st.integers(0, 50 * 24),  # hours before T0
        st.one_of(st.none(), st.floats(0, 100, allow_nan=False)),
        st.sampled_from(["MANUAL", "AUTOMATED", None]),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(versions=versions, seed=st.integers(0, 2**32), duplicates=st.integers(0, 20))
def test_any_order_with_duplicates_gives_the_figures_of_the_latest_versions(
    versions: list[tuple[int, int, float | None, str | None]], seed: int, duplicates: int
) -> None:
    events = [
        evaluation(f"e{n}", T0 - hours * HOUR, score=score, kind=kind)
        for n, hours, score, kind in versions
    ]
    # every version of an evaluation has its own event_ts (a duplicate repeats one whole)
    unique: dict[tuple[str, int], Evaluation] = {(e.id, e.event_ts): e for e in events}
    events = list(unique.values())
    rng = random.Random(seed)
    delivered = events + [rng.choice(events) for _ in range(duplicates)]
    rng.shuffle(delivered)
    state = apply_all(delivered, LONG)
    check_against_reference(state, events, None)
    check_against_reference(state, events, T0 + 2 * DAY)
    again = apply_all(sorted(delivered, key=lambda e: e.event_ts), LONG)
    assert_close(agent_scores(again), agent_scores(state))


# --- per-day totals kept while events are applied ---------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    versions=versions,
    seed=st.integers(0, 2**32),
    cap=st.integers(1, 30),
    step_hours=st.integers(0, 24 * 40),
)
def test_figures_kept_across_events_equal_figures_built_afresh(
    versions: list[tuple[int, int, float | None, str | None]], seed: int, cap: int, step_hours: int
) -> None:
    """Figures read after every event (the per-day totals kept and updated: adds, re-scores,
    folds by age and by count) equal those of the same state decoded afresh."""
    rng = random.Random(seed)
    retention = Retention(31 * DAY + 2 * HOUR, max_replaceable=cap)
    state = AgentState(AGENT)
    now = NOW
    for n, hours, score, kind in versions:
        state.apply(evaluation(f"e{n}", T0 - hours * HOUR, score=score, kind=kind), retention, now)
        now += rng.randrange(step_hours + 1) * HOUR // max(len(versions), 1)
        section = state.evaluations
        assert section is not None
        afresh = AgentState.from_bytes(state.to_bytes())
        assert afresh.evaluations is not None
        assert section.live_days() == afresh.evaluations.live_days()
        for as_of in (None, now):
            assert_close(agent_scores(state, as_of), agent_scores(afresh, as_of))
