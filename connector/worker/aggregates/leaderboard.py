"""The leaderboard query, ``GET /agents?metric=...&window=...&limit=...&as_of=...``: pure parts.

Parameters (every one optional; anything else is refused, so a typo cannot go unnoticed):

* ``metric``: ``<section>.<figure>`` (:data:`METRICS`), default ``evaluations.ratio_mean`` (the
  score comparable across scorecards);
* ``window``: ``lifetime``, ``last_7_days`` (or ``7d``), ``last_30_days`` (or ``30d``), default
  ``last_30_days``;
* ``limit``: how many agents at the top and at the bottom, 1 to :data:`MAX_LIMIT`, default 10;
* ``as_of``: ``now`` (windows end today, UTC; default) or ``latest`` (each agent's windows end on
  the day of its latest event, as on the ``agent_scores`` topic);
* ``min_count``: rank only agents with at least this many events in the window (default 1), so
  that one lucky evaluation does not top the board.

Agents without a value for the metric in the window (no events, or none carrying the figure) are
not ranked. Ties are broken by agent id. Every worker ranks the agents of the partitions it owns
(:func:`rank`); the worker that was asked merges the partial answers (:func:`merge`), which is
exact because the global top ``n`` is among the union of every part's top ``n``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from connector.errors import ConnectorError
from connector.worker.aggregates.figures import evaluation_stats, interaction_stats, totals
from connector.worker.aggregates.state import AgentState
from connector.worker.aggregates.windows import (
    LAST_7_DAYS,
    LAST_30_DAYS,
    WINDOWS_BY_NAME,
    Window,
    day_of,
)

SECTIONS: Final = ("evaluations", "interactions")
METRICS: Final = (
    "evaluations.count",
    "evaluations.score_mean",
    "evaluations.score_min",
    "evaluations.score_max",
    "evaluations.ratio_mean",
    "interactions.count",
    "interactions.sentiment_score_mean",
    "interactions.engagement_score_mean",
    "interactions.evaluation_score_mean",
    "interactions.silence_event_total",
    "interactions.crosstalk_event_total",
    "interactions.hold_event_total",
    "interactions.duration_total_seconds",
)
WINDOW_ALIASES: Final = {"7d": LAST_7_DAYS.name, "30d": LAST_30_DAYS.name}
AS_OF: Final = ("now", "latest")
PARAMETERS: Final = ("metric", "window", "limit", "as_of", "min_count")
DEFAULT_METRIC: Final = "evaluations.ratio_mean"
DEFAULT_WINDOW: Final = LAST_30_DAYS.name
DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 100


class InvalidQuery(ConnectorError):
    """A query parameter the API does not accept; the message says which and what is allowed."""


@dataclass(frozen=True)
class LeaderboardQuery:
    metric: str
    window: Window
    limit: int
    as_of: str
    min_count: int = 1

    @property
    def section(self) -> str:
        return self.metric.split(".", 1)[0]

    @property
    def figure(self) -> str:
        return self.metric.split(".", 1)[1]

    def describe(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "window": self.window.name,
            "limit": self.limit,
            "as_of": self.as_of,
            "min_count": self.min_count,
        }


def parse_query(params: Mapping[str, str]) -> LeaderboardQuery:
    """The query of a request's parameters, or :class:`InvalidQuery`."""
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise InvalidQuery(
            f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(PARAMETERS)}"
        )
    metric = params.get("metric", DEFAULT_METRIC)
    if metric not in METRICS:
        raise InvalidQuery(f"metric {metric!r} is not one of {', '.join(METRICS)}")
    window_name = params.get("window", DEFAULT_WINDOW)
    window = WINDOWS_BY_NAME.get(WINDOW_ALIASES.get(window_name, window_name))
    if window is None:
        known = [*WINDOWS_BY_NAME, *WINDOW_ALIASES]
        raise InvalidQuery(f"window {window_name!r} is not one of {', '.join(known)}")
    raw_limit = params.get("limit", str(DEFAULT_LIMIT))
    if not (raw_limit.isascii() and raw_limit.isdigit() and 1 <= int(raw_limit) <= MAX_LIMIT):
        raise InvalidQuery(f"limit {raw_limit!r} is not a whole number from 1 to {MAX_LIMIT}")
    raw_min = params.get("min_count", "1")
    if not (raw_min.isascii() and raw_min.isdigit() and int(raw_min) >= 1):
        raise InvalidQuery(f"min_count {raw_min!r} is not a whole number of at least 1")
    as_of = parse_as_of(params.get("as_of", "now"))
    return LeaderboardQuery(metric, window, int(raw_limit), as_of, int(raw_min))


def parse_as_of(value: str) -> str:
    if value not in AS_OF:
        raise InvalidQuery(f"as_of {value!r} is not one of {', '.join(AS_OF)}")
    return value


@dataclass(frozen=True)
class Entry:
    """One ranked agent."""

    value: float
    agent_id: str
    display_name: str | None
    count: int

    def to_json(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "display_name": self.display_name,
            "value": self.value,
            "count": self.count,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entry:
        return cls(data["value"], data["agent_id"], data.get("display_name"), data["count"])


def entry_of(state: AgentState, query: LeaderboardQuery, now_ms: int) -> Entry | None:
    """The agent's value for the query, ``None`` when it has none."""
    if query.section == "evaluations":
        section: Any = state.evaluations
    else:
        section = state.interactions
    if section is None or section.latest is None:
        return None
    as_of_day = day_of(section.latest if query.as_of == "latest" else now_ms)
    window_totals = totals(section, query.window, as_of_day)
    span = query.window.span(as_of_day)
    if query.section == "evaluations":
        stats = evaluation_stats(window_totals, span)
    else:
        stats = interaction_stats(window_totals, span, section)
    value = stats[query.figure]
    if value is None or stats["count"] < query.min_count:
        return None
    return Entry(value, state.agent, state.display_name, stats["count"])


@dataclass(frozen=True)
class Ranking:
    """The top and bottom agents of some partitions."""

    top: list[Entry]
    bottom: list[Entry]
    ranked: int

    def to_json(self) -> dict[str, Any]:
        return {
            "agents_ranked": self.ranked,
            "top": [e.to_json() for e in self.top],
            "bottom": [e.to_json() for e in self.bottom],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Ranking:
        return cls(
            [Entry.from_json(e) for e in data["top"]],
            [Entry.from_json(e) for e in data["bottom"]],
            int(data["agents_ranked"]),
        )


def rank(entries: Iterable[Entry], limit: int) -> Ranking:
    """The ``limit`` highest and lowest entries (ties: by agent id)."""
    ranked = list(entries)
    top = sorted(ranked, key=lambda e: (-e.value, e.agent_id))[:limit]
    bottom = sorted(ranked, key=lambda e: (e.value, e.agent_id))[:limit]
    return Ranking(top, bottom, len(ranked))


def merge(parts: Iterable[Ranking], limit: int) -> Ranking:
    """One ranking of the partial rankings of disjoint sets of agents."""
    parts = list(parts)
    candidates = {e.agent_id: e for part in parts for e in (*part.top, *part.bottom)}
    merged = rank(candidates.values(), limit)
    return Ranking(merged.top, merged.bottom, sum(part.ranked for part in parts))
