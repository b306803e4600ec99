"""An agent's figures, read from its state: lifetime and the rolling windows, as plain values.

:func:`agent_scores` gives the document both outputs share: the ``agent_scores`` Avro record (as
of the agent's latest event) and the JSON answer of ``GET /agents/{agent_id}/scores`` (as of now,
or ``as_of=latest``). Every total is folded totals plus the live contributions
(:mod:`.state`); means are over the events that carry the value (an evaluation without
``evaluation_score`` counts in ``count`` but not in ``score_mean``).

Shape (``null`` where there is nothing to say; maps sorted by key)::

    {"agent_id", "key_kind": "user_id" | "agent_name", "display_name",
     "evaluations": {"as_of", "latest_event_at",
                     "lifetime" | "last_7_days" | "last_30_days": {
                         "window_start", "window_end",          # YYYY-MM-DD, null for lifetime
                         "count", "score_count", "score_mean", "score_min", "score_max",
                         "ratio_count", "ratio_mean", "by_type": {type: count},
                         "by_scorecard": {name: {"count", "score_mean", "ratio_mean"}},
                         "last_evaluation_at"}},
     "interactions": {"as_of", "latest_event_at",
                      "lifetime" | ...: {
                          "window_start", "window_end", "count", "sentiment_score_mean",
                          "engagement_score_mean", "evaluation_score_mean",
                          "silence_event_total", "crosstalk_event_total", "hold_event_total",
                          "duration_total_seconds", "by_channel": {channel: count},
                          "by_queue": {queue_id: {"queue_name", "count"}},
                          "last_interaction_at"}}}
"""

from __future__ import annotations

from typing import Any, Final

from connector.worker.aggregates.events import is_name_key
from connector.worker.aggregates.state import (
    QUEUE_LABEL,
    AgentState,
    C,
    EvaluationSection,
    InteractionSection,
    Section,
    T,
)
from connector.worker.aggregates.totals import EvaluationTotals, InteractionTotals, mean
from connector.worker.aggregates.windows import WINDOWS, Window, day_of, iso_day

KEY_KIND_USER_ID: Final = "user_id"
KEY_KIND_AGENT_NAME: Final = "agent_name"


def totals(section: Section[C, T], window: Window, as_of_day: int) -> T:
    """The section's totals over ``window`` as of ``as_of_day``."""
    result = section.kind.totals()
    live_days = section.live_days()
    span = window.span(as_of_day)
    if span is None:
        result.merge(section.folded_lifetime())
        for day_totals in live_days.values():
            result.merge(day_totals)
        return result
    first, last = span
    for days in (section.days, live_days):
        for day, day_totals in days.items():
            if first <= day <= last:
                result.merge(day_totals)
    return result


def evaluation_stats(t: EvaluationTotals, span: tuple[int, int] | None) -> dict[str, Any]:
    return {
        **_span(span),
        "count": t.count,
        "score_count": t.score_n,
        "score_mean": mean(t.score_sum, t.score_n),
        "score_min": t.score_min,
        "score_max": t.score_max,
        "ratio_count": t.ratio_n,
        "ratio_mean": mean(t.ratio_sum, t.ratio_n),
        "by_type": dict(sorted(t.by_type.items())),
        "by_scorecard": {
            name: {
                "count": card.count,
                "score_mean": mean(card.score_sum, card.score_n),
                "ratio_mean": mean(card.ratio_sum, card.ratio_n),
            }
            for name, card in sorted(t.by_scorecard.items())
        },
        "last_evaluation_at": t.last_ts,
    }


def interaction_stats(
    t: InteractionTotals, span: tuple[int, int] | None, section: InteractionSection
) -> dict[str, Any]:
    return {
        **_span(span),
        "count": t.count,
        "sentiment_score_mean": mean(t.sentiment_sum, t.sentiment_n),
        "engagement_score_mean": mean(t.engagement_sum, t.engagement_n),
        "evaluation_score_mean": mean(t.score_sum, t.score_n),
        "silence_event_total": t.silence_events,
        "crosstalk_event_total": t.crosstalk_events,
        "hold_event_total": t.hold_events,
        "duration_total_seconds": t.duration_seconds,
        "by_channel": dict(sorted(t.by_channel.items())),
        "by_queue": {
            queue: {"queue_name": section.label_of(QUEUE_LABEL + queue), "count": count}
            for queue, count in sorted(t.by_queue.items())
        },
        "last_interaction_at": t.last_ts,
    }


def _span(span: tuple[int, int] | None) -> dict[str, str | None]:
    if span is None:
        return {"window_start": None, "window_end": None}
    return {"window_start": iso_day(span[0]), "window_end": iso_day(span[1])}


def evaluation_figures(section: EvaluationSection, as_of: int | None) -> dict[str, Any] | None:
    """Lifetime and windows of an evaluation section, as of ``as_of`` (default: its latest)."""
    if section.latest is None:
        return None
    as_of = section.latest if as_of is None else as_of
    result: dict[str, Any] = {"as_of": as_of, "latest_event_at": section.latest}
    for window in WINDOWS:
        span = window.span(day_of(as_of))
        result[window.name] = evaluation_stats(totals(section, window, day_of(as_of)), span)
    return result


def interaction_figures(section: InteractionSection, as_of: int | None) -> dict[str, Any] | None:
    """Lifetime and windows of an interaction section, as of ``as_of`` (default: its latest)."""
    if section.latest is None:
        return None
    as_of = section.latest if as_of is None else as_of
    result: dict[str, Any] = {"as_of": as_of, "latest_event_at": section.latest}
    for window in WINDOWS:
        span = window.span(day_of(as_of))
        result[window.name] = interaction_stats(
            totals(section, window, day_of(as_of)), span, section
        )
    return result


def agent_scores(state: AgentState, as_of: int | None = None) -> dict[str, Any]:
    """The agent's figures (module docstring); ``as_of`` epoch ms, ``None``: its latest event."""
    return {
        "agent_id": state.agent,
        "key_kind": KEY_KIND_AGENT_NAME if is_name_key(state.agent) else KEY_KIND_USER_ID,
        "display_name": state.display_name,
        "evaluations": (
            evaluation_figures(state.evaluations, as_of) if state.evaluations else None
        ),
        "interactions": (
            interaction_figures(state.interactions, as_of) if state.interactions else None
        ),
    }
