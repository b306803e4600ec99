"""One agent's aggregate state, and the update that keeps it exact under at-least-once delivery.

The state of an agent is one value (one table entry, so one changelog record: an update is
atomic). It has a *section* per kind of score event (evaluations, interaction analyses), each
holding:

* ``live``: the contribution of every *replaceable* event, by event id (``evaluation_id`` or
  ``interaction_id``): its ``event_ts``, the numbers it adds, and when it was applied;
* ``lifetime``: totals of the contributions *folded* out of ``live`` (no longer replaceable);
* ``days``: the same folded totals per UTC day, for the :data:`~.windows.KEPT_DAYS` days up to
  the agent's latest event day (older days are dropped; they can be in no window);
* ``latest``: the agent's latest ``event_ts`` in the section (its event-time clock);
* ``labels``: display names (the agent's, the queues'), the one with the newest ``event_ts`` wins.

Figures are read as folded totals plus the live contributions (:mod:`.figures`). Min and max need
no multiset: a folded contribution is never taken out again, so plain min/max of the folded part
stay right, and the replaceable part is kept whole.

**The update** (:meth:`Section.apply`), for an event with id ``i`` and time ``t``:

* ``i`` is live with a time ``>= t``: nothing changes (a duplicate has the same ``t``, an older
  version a smaller one);
* else the event's contribution becomes ``live[i]``, replacing any earlier version;
* then the contributions applied more than ``replaceable_ms`` ago (wall clock; default 31 days +
  2 hours) are folded, and, beyond ``max_replaceable`` live ones (default 3000), those with the
  oldest ``event_ts``.

Replaying events already applied is therefore a no-op, whatever the cause (Zoom's retries, the
re-keying stage writing a record twice, a worker restarted before its offsets were committed), and
the state is the function of the distinct latest versions, whatever their order, as long as every
version of an event arrives while its predecessor is still live. A version arriving after its
predecessor was folded cannot take the old numbers out again: it counts as a new event. That is
the price of a bounded state, and why the horizon is in wall-clock time rather than event time: in
a backlog (a worker catching up, a replay from the typed topics) partitions are read at different
speeds, so an agent's event time can run weeks ahead of a partition still being read; measured in
processing time, nothing is folded while a backlog is read, and in steady state (events processed
as they happen) the two clocks agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar

import orjson

from connector.errors import ConnectorError
from connector.worker.aggregates.events import Evaluation, InteractionAnalysis, ScoreEvent
from connector.worker.aggregates.stamps import state_bytes
from connector.worker.aggregates.totals import (
    EvaluationContribution,
    EvaluationTotals,
    InteractionContribution,
    InteractionTotals,
)
from connector.worker.aggregates.windows import day_of, oldest_kept_day

STATE_VERSION: Final = 1

DISPLAY_NAME: Final = "display_name"
QUEUE_LABEL: Final = "queue:"


class StateError(ConnectorError):
    """A stored state that cannot be read."""


class Outcome(StrEnum):
    """What an event did to a state."""

    ADDED = "added"
    REPLACED = "replaced"
    DUPLICATE = "duplicate"
    STALE = "stale"

    @property
    def changed(self) -> bool:
        return self in (Outcome.ADDED, Outcome.REPLACED)


@dataclass(frozen=True)
class Retention:
    """How long, and how many, contributions stay replaceable per agent and section."""

    replaceable_ms: int
    max_replaceable: int

    def __post_init__(self) -> None:
        if self.replaceable_ms <= 0 or self.max_replaceable <= 0:
            raise ValueError("the replaceable retention and count must be positive")


# --- sections --------------------------------------------------------------------------------

C = TypeVar("C", EvaluationContribution, InteractionContribution)
T = TypeVar("T", EvaluationTotals, InteractionTotals)


@dataclass(frozen=True)
class Kind(Generic[C, T]):
    """How one kind of score event is stored and totalled."""

    name: str
    totals: Callable[[], T]
    add: Callable[[T, C], None]
    totals_from_json: Callable[[Any], T]
    contribution_from_json: Callable[[Any], C]


def _evaluation_contribution(data: Any) -> EvaluationContribution:
    ts, score, ratio, evaluation_type, scorecard = data
    return (ts, score, ratio, evaluation_type, scorecard)


def _interaction_contribution(data: Any) -> InteractionContribution:
    ts, sentiment, engagement, score, silence, crosstalk, hold, duration, channel, queue = data
    return (ts, sentiment, engagement, score, silence, crosstalk, hold, duration, channel, queue)


EVALUATIONS: Final[Kind[EvaluationContribution, EvaluationTotals]] = Kind(
    "evaluations",
    EvaluationTotals,
    EvaluationTotals.add,
    EvaluationTotals.from_json,
    _evaluation_contribution,
)
INTERACTIONS: Final[Kind[InteractionContribution, InteractionTotals]] = Kind(
    "interactions",
    InteractionTotals,
    InteractionTotals.add,
    InteractionTotals.from_json,
    _interaction_contribution,
)


@dataclass
class Section(Generic[C, T]):
    """The state of one kind of score event of one agent (see the module docstring)."""

    kind: Kind[C, T]
    latest: int | None = None
    lifetime: T | None = None
    days: dict[int, T] = field(default_factory=dict)
    live: dict[str, C] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    """Event id -> when its live version was applied (wall clock, epoch ms)."""
    labels: dict[str, tuple[int, str]] = field(default_factory=dict)
    _oldest_applied: int | None = field(default=None, repr=False, compare=False)
    """A lower bound of the oldest ``applied`` time (saves a scan per event)."""
    _live_days: dict[int, T] | None = field(default=None, repr=False, compare=False)
    """The live contributions totalled per day (:meth:`live_days`); ``None``: not built."""

    def apply(self, event_id: str, contribution: C, retention: Retention, now_ms: int) -> Outcome:
        """Apply one version of an event at wall-clock time ``now_ms`` (module docstring)."""
        ts = contribution[0]
        current = self.live.get(event_id)
        if current is not None and current[0] >= ts:
            return Outcome.DUPLICATE if current[0] == ts else Outcome.STALE
        self.live[event_id] = contribution
        self.applied[event_id] = now_ms
        if current is not None:
            self._live_days = None  # totals cannot take a contribution out again
        elif self._live_days is not None:
            self._add_live_day(self._live_days, contribution)
        if self._oldest_applied is None or now_ms < self._oldest_applied:
            self._oldest_applied = now_ms
        if self.latest is None or ts > self.latest:
            self.latest = ts
            floor = oldest_kept_day(day_of(ts))
            for day in [d for d in self.days if d < floor]:
                del self.days[day]
        self._fold_expired(retention, now_ms)
        return Outcome.REPLACED if current is not None else Outcome.ADDED

    def label(self, key: str, ts: int, value: str | None) -> None:
        """Remember ``value`` for ``key`` unless a label from a newer event is known."""
        if value is None:
            return
        known = self.labels.get(key)
        if known is None or (ts, value) > known:
            self.labels[key] = (ts, value)

    def label_of(self, key: str) -> str | None:
        known = self.labels.get(key)
        return known[1] if known is not None else None

    def folded_lifetime(self) -> T:
        return self.lifetime if self.lifetime is not None else self.kind.totals()

    def live_days(self) -> Mapping[int, T]:
        """The live contributions totalled per day (of their ``event_ts``), for the figures.

        Kept while the section only gains events, so an agent's figures cost a merge per day
        rather than an addition per live event; built again after a replacement or a fold.
        Derived: never stored. The caller must not change the totals."""
        if self._live_days is None:
            days: dict[int, T] = {}
            for contribution in self.live.values():
                self._add_live_day(days, contribution)
            self._live_days = days
        return self._live_days

    def _add_live_day(self, days: dict[int, T], contribution: C) -> None:
        day = day_of(contribution[0])
        totals = days.get(day)
        if totals is None:
            totals = days[day] = self.kind.totals()
        self.kind.add(totals, contribution)

    def _fold_expired(self, retention: Retention, now_ms: int) -> None:
        horizon = now_ms - retention.replaceable_ms
        if (
            self._oldest_applied is not None
            and self._oldest_applied >= horizon
            and len(self.live) <= retention.max_replaceable
        ):
            return
        for event_id in [i for i, at in self.applied.items() if at < horizon]:
            self._fold(event_id)
        excess = len(self.live) - retention.max_replaceable
        if excess > 0:
            oldest = sorted(self.live, key=lambda i: (self.live[i][0], i))[:excess]
            for event_id in oldest:
                self._fold(event_id)
        self._oldest_applied = min(self.applied.values(), default=None)

    def _fold(self, event_id: str) -> None:
        assert self.latest is not None
        contribution = self.live.pop(event_id)
        del self.applied[event_id]
        self._live_days = None
        if self.lifetime is None:
            self.lifetime = self.kind.totals()
        self.kind.add(self.lifetime, contribution)
        day = day_of(contribution[0])
        if day >= oldest_kept_day(day_of(self.latest)):
            totals = self.days.get(day)
            if totals is None:
                totals = self.days[day] = self.kind.totals()
            self.kind.add(totals, contribution)

    def to_json(self) -> dict[str, Any]:
        entries: dict[str, list[Any]] = {}
        for event_id in self.live:
            entries[event_id] = [self.applied[event_id]]
            entries[event_id].extend(self.live[event_id])
        return {
            "latest": self.latest,
            "lifetime": self.lifetime.to_json() if self.lifetime is not None else None,
            "days": {str(day): totals.to_json() for day, totals in sorted(self.days.items())},
            "live": entries,
            "labels": {k: list(v) for k, v in self.labels.items()},
        }

    @classmethod
    def from_json(cls, kind: Kind[C, T], data: Mapping[str, Any]) -> Section[C, T]:
        live = {i: kind.contribution_from_json(c[1:]) for i, c in data["live"].items()}
        applied = {i: int(c[0]) for i, c in data["live"].items()}
        lifetime = data["lifetime"]
        return cls(
            kind=kind,
            latest=data["latest"],
            lifetime=kind.totals_from_json(lifetime) if lifetime is not None else None,
            days={int(d): kind.totals_from_json(t) for d, t in data["days"].items()},
            live=live,
            applied=applied,
            labels={k: (v[0], v[1]) for k, v in data["labels"].items()},
            _oldest_applied=min(applied.values(), default=None),
        )


EvaluationSection = Section[EvaluationContribution, EvaluationTotals]
InteractionSection = Section[InteractionContribution, InteractionTotals]


# --- the agent -------------------------------------------------------------------------------


@dataclass
class AgentState:
    """Everything known about one agent (one table value)."""

    agent: str
    evaluations: EvaluationSection | None = None
    interactions: InteractionSection | None = None

    def apply(self, event: ScoreEvent, retention: Retention, now_ms: int) -> Outcome:
        """Apply one score event of this agent at wall-clock time ``now_ms``."""
        if event.agent != self.agent:
            raise ValueError(f"event of agent {event.agent!r} applied to {self.agent!r}")
        if isinstance(event, Evaluation):
            if self.evaluations is None:
                self.evaluations = Section(EVALUATIONS)
            outcome = self.evaluations.apply(
                event.evaluation_id, evaluation_contribution(event), retention, now_ms
            )
            if outcome.changed:
                self.evaluations.label(DISPLAY_NAME, event.event_ts, event.display_name)
            return outcome
        if self.interactions is None:
            self.interactions = Section(INTERACTIONS)
        outcome = self.interactions.apply(
            event.interaction_id, interaction_contribution(event), retention, now_ms
        )
        if outcome.changed and event.queue_id is not None:
            self.interactions.label(QUEUE_LABEL + event.queue_id, event.event_ts, event.queue_name)
        return outcome

    @property
    def display_name(self) -> str | None:
        return self.evaluations.label_of(DISPLAY_NAME) if self.evaluations else None

    @property
    def live_count(self) -> int:
        return sum(len(s.live) for s in (self.evaluations, self.interactions) if s is not None)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "v": STATE_VERSION,
                "agent": self.agent,
                "evaluations": self.evaluations.to_json() if self.evaluations else None,
                "interactions": self.interactions.to_json() if self.interactions else None,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> AgentState:
        """The state in a stored value, stamped (:mod:`.stamps`) or not."""
        try:
            body = orjson.loads(state_bytes(data))
            if not isinstance(body, dict) or body.get("v") != STATE_VERSION:
                raise StateError(f"not a version {STATE_VERSION} agent state")
            evaluations, interactions = body["evaluations"], body["interactions"]
            return cls(
                agent=body["agent"],
                evaluations=(
                    Section.from_json(EVALUATIONS, evaluations) if evaluations is not None else None
                ),
                interactions=(
                    Section.from_json(INTERACTIONS, interactions)
                    if interactions is not None
                    else None
                ),
            )
        except StateError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise StateError(f"unreadable agent state: {exc}") from exc


def evaluation_contribution(event: Evaluation) -> EvaluationContribution:
    return (event.event_ts, event.score, event.ratio, event.evaluation_type, event.scorecard)


def interaction_contribution(event: InteractionAnalysis) -> InteractionContribution:
    return (
        event.event_ts,
        event.sentiment,
        event.engagement,
        event.score,
        event.silence_events,
        event.crosstalk_events,
        event.hold_events,
        event.duration_seconds,
        event.channel,
        event.queue_id,
    )
