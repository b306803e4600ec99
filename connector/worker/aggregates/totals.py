"""Running totals of an agent's evaluations and interaction analyses: what a day, a window or a
lifetime adds up to, and the contribution one event makes to them (:mod:`.state` keeps them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

MISSING: Final = "-"
"""The group of an event whose evaluation type, scorecard, channel or queue is not given."""


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _last(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _add_counts(into: dict[str, int], other: Mapping[str, int]) -> None:
    for key, count in other.items():
        into[key] = into.get(key, 0) + count


@dataclass(slots=True)
class ScorecardTotals:
    count: int = 0
    score_n: int = 0
    score_sum: float = 0.0
    ratio_n: int = 0
    ratio_sum: float = 0.0

    def merge(self, other: ScorecardTotals) -> None:
        self.count += other.count
        self.score_n += other.score_n
        self.score_sum += other.score_sum
        self.ratio_n += other.ratio_n
        self.ratio_sum += other.ratio_sum


EvaluationContribution = tuple[int, float | None, float | None, str | None, str | None]
"""``(event_ts, score, ratio, evaluation_type, scorecard)``."""


@dataclass(slots=True)
class EvaluationTotals:
    """Sums, counts and extremes of evaluations."""

    count: int = 0
    score_n: int = 0
    score_sum: float = 0.0
    score_min: float | None = None
    score_max: float | None = None
    ratio_n: int = 0
    ratio_sum: float = 0.0
    by_type: dict[str, int] = field(default_factory=dict)
    by_scorecard: dict[str, ScorecardTotals] = field(default_factory=dict)
    last_ts: int | None = None

    def add(self, c: EvaluationContribution) -> None:
        ts, score, ratio, evaluation_type, scorecard = c
        self.count += 1
        name = scorecard or MISSING
        card = self.by_scorecard.get(name)
        if card is None:
            card = self.by_scorecard[name] = ScorecardTotals()
        card.count += 1
        if score is not None:
            self.score_n += 1
            self.score_sum += score
            self.score_min = _min(self.score_min, score)
            self.score_max = _max(self.score_max, score)
            card.score_n += 1
            card.score_sum += score
        if ratio is not None:
            self.ratio_n += 1
            self.ratio_sum += ratio
            card.ratio_n += 1
            card.ratio_sum += ratio
        kind = evaluation_type or MISSING
        self.by_type[kind] = self.by_type.get(kind, 0) + 1
        self.last_ts = _last(self.last_ts, ts)

    def merge(self, other: EvaluationTotals) -> None:
        self.count += other.count
        self.score_n += other.score_n
        self.score_sum += other.score_sum
        self.score_min = _min(self.score_min, other.score_min)
        self.score_max = _max(self.score_max, other.score_max)
        self.ratio_n += other.ratio_n
        self.ratio_sum += other.ratio_sum
        _add_counts(self.by_type, other.by_type)
        for name, card in other.by_scorecard.items():
            mine = self.by_scorecard.get(name)
            if mine is None:
                mine = self.by_scorecard[name] = ScorecardTotals()
            mine.merge(card)
        self.last_ts = _last(self.last_ts, other.last_ts)

    def to_json(self) -> list[Any]:
        return [
            self.count,
            self.score_n,
            self.score_sum,
            self.score_min,
            self.score_max,
            self.ratio_n,
            self.ratio_sum,
            self.by_type,
            {
                k: [c.count, c.score_n, c.score_sum, c.ratio_n, c.ratio_sum]
                for k, c in self.by_scorecard.items()
            },
            self.last_ts,
        ]

    @classmethod
    def from_json(cls, data: Any) -> EvaluationTotals:
        count, score_n, score_sum, lo, hi, ratio_n, ratio_sum, by_type, cards, last = data
        return cls(
            count,
            score_n,
            score_sum,
            lo,
            hi,
            ratio_n,
            ratio_sum,
            dict(by_type),
            {k: ScorecardTotals(*v) for k, v in cards.items()},
            last,
        )


InteractionContribution = tuple[
    int, float | None, float | None, float | None, int, int, int, int, str | None, str | None
]
"""``(event_ts, sentiment, engagement, score, silence, crosstalk, hold, duration, channel,
queue_id)``."""


@dataclass(slots=True)
class InteractionTotals:
    """Sums and counts of interaction analyses."""

    count: int = 0
    sentiment_n: int = 0
    sentiment_sum: float = 0.0
    engagement_n: int = 0
    engagement_sum: float = 0.0
    score_n: int = 0
    score_sum: float = 0.0
    silence_events: int = 0
    crosstalk_events: int = 0
    hold_events: int = 0
    duration_seconds: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    by_queue: dict[str, int] = field(default_factory=dict)
    last_ts: int | None = None

    def add(self, c: InteractionContribution) -> None:
        ts, sentiment, engagement, score, silence, crosstalk, hold, duration, channel, queue = c
        self.count += 1
        if sentiment is not None:
            self.sentiment_n += 1
            self.sentiment_sum += sentiment
        if engagement is not None:
            self.engagement_n += 1
            self.engagement_sum += engagement
        if score is not None:
            self.score_n += 1
            self.score_sum += score
        self.silence_events += silence
        self.crosstalk_events += crosstalk
        self.hold_events += hold
        self.duration_seconds += duration
        channel = channel or MISSING
        self.by_channel[channel] = self.by_channel.get(channel, 0) + 1
        queue = queue or MISSING
        self.by_queue[queue] = self.by_queue.get(queue, 0) + 1
        self.last_ts = _last(self.last_ts, ts)

    def merge(self, other: InteractionTotals) -> None:
        self.count += other.count
        self.sentiment_n += other.sentiment_n
        self.sentiment_sum += other.sentiment_sum
        self.engagement_n += other.engagement_n
        self.engagement_sum += other.engagement_sum
        self.score_n += other.score_n
        self.score_sum += other.score_sum
        self.silence_events += other.silence_events
        self.crosstalk_events += other.crosstalk_events
        self.hold_events += other.hold_events
        self.duration_seconds += other.duration_seconds
        _add_counts(self.by_channel, other.by_channel)
        _add_counts(self.by_queue, other.by_queue)
        self.last_ts = _last(self.last_ts, other.last_ts)

    def to_json(self) -> list[Any]:
        return [
            self.count,
            self.sentiment_n,
            self.sentiment_sum,
            self.engagement_n,
            self.engagement_sum,
            self.score_n,
            self.score_sum,
            self.silence_events,
            self.crosstalk_events,
            self.hold_events,
            self.duration_seconds,
            self.by_channel,
            self.by_queue,
            self.last_ts,
        ]

    @classmethod
    def from_json(cls, data: Any) -> InteractionTotals:
        (
            count,
            sentiment_n,
            sentiment_sum,
            engagement_n,
            engagement_sum,
            score_n,
            score_sum,
            silence,
            crosstalk,
            hold,
            duration,
            by_channel,
            by_queue,
            last,
        ) = data
        return cls(
            count,
            sentiment_n,
            sentiment_sum,
            engagement_n,
            engagement_sum,
            score_n,
            score_sum,
            silence,
            crosstalk,
            hold,
            duration,
            dict(by_channel),
            dict(by_queue),
            last,
        )


def mean(total: float, count: int) -> float | None:
    """``total / count``, ``None`` for no values."""
    return total / count if count else None
