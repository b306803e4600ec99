"""Score events: what the aggregates take from a typed record, and which agent it counts for.

Two event types feed the aggregates:

* ``quality_management.evaluation_completed`` becomes an :class:`Evaluation`, identified by
  ``payload.object.evaluation_id``; a re-score is the same id with a newer ``event_ts``.
* ``quality_management.interaction_analysis_completed`` becomes an :class:`InteractionAnalysis`,
  identified by ``payload.object.interaction_info.interaction_id``; a re-analysis is the same id
  with a newer ``event_ts``.

**The agent of an evaluation.** Zoom's example carries two different ids:
``payload.object.agent_info.agent_user_id`` (``httgPnTgTxq0d65-alfYVw``, described as "the agent's
user ID") and ``payload.object.agent_user_id`` (``ZWR1C1FB...``, "the agent's ID", equal to the
example's ``evaluator_user_id``). The aggregates use ``agent_info.agent_user_id``: it has the
format of Zoom user ids everywhere else in Zoom's API (22 characters of base64url, like
``evaluators_info[].evaluator_user_id``), it comes with the agent's ``display_name``, and the
top-level id cannot tell agent from evaluator in the example. When ``agent_info.agent_user_id`` is
missing or empty, the top-level ``agent_user_id`` is used (``fallback``); when both are missing
the evaluation is not attributed to anyone (counted in the worker's metrics, never in a table).

**The agent of an interaction analysis.** The spec gives only ``interaction_info.agent_name``, a
display name, not a user id, so interaction figures live under their own key ``name:<agent
name>``, a namespace apart from user ids (which never contain ``:``). The two are not merged: a
display name is neither unique nor stable, and Zoom's examples show no link between them
(``Admin3`` in one, ``Ashlee York`` in the other).

Events travel from the typed topics to the aggregating agent through an internal topic keyed by
agent (:func:`encode` / :func:`decode`: compact JSON, versioned), so every agent's state lives in
exactly one partition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import orjson

from connector.errors import ConnectorError
from connector.wire import EVENT_PATHS, QM, value_at

EVALUATION_COMPLETED: Final = f"{QM}.evaluation_completed"
INTERACTION_ANALYSIS_COMPLETED: Final = f"{QM}.interaction_analysis_completed"
EVENT_TYPES: Final = (EVALUATION_COMPLETED, INTERACTION_ANALYSIS_COMPLETED)
_EVALUATION_ID: Final = EVENT_PATHS[EVALUATION_COMPLETED].key
_INTERACTION_ID: Final = EVENT_PATHS[INTERACTION_ANALYSIS_COMPLETED].key

AGENT_NAME_PREFIX: Final = "name:"
"""Key prefix of agents known only by name (interaction analyses)."""

WIRE_VERSION: Final = 1


class Attribution(StrEnum):
    """How an event's agent was found."""

    PRIMARY = "primary"
    FALLBACK = "fallback"
    UNATTRIBUTED = "unattributed"


class ScoreEventError(ConnectorError):
    """A typed record or an internal record that cannot be read as a score event."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One version of a completed evaluation."""

    agent: str
    evaluation_id: str
    event_ts: int
    score: float | None
    ratio: float | None
    evaluation_type: str | None
    scorecard: str | None
    display_name: str | None = None

    @property
    def id(self) -> str:
        return self.evaluation_id


@dataclass(frozen=True, slots=True)
class InteractionAnalysis:
    """One version of a completed interaction analysis."""

    agent: str
    interaction_id: str
    event_ts: int
    sentiment: float | None
    engagement: float | None
    score: float | None
    silence_events: int
    crosstalk_events: int
    hold_events: int
    duration_seconds: int
    channel: str | None
    queue_id: str | None
    queue_name: str | None = None

    @property
    def id(self) -> str:
        return self.interaction_id


ScoreEvent = Evaluation | InteractionAnalysis


def agent_name_key(name: str) -> str:
    """The key of an agent known by display name only."""
    return f"{AGENT_NAME_PREFIX}{name}"


def is_name_key(agent: str) -> bool:
    return agent.startswith(AGENT_NAME_PREFIX)


def evaluation_agent(obj: Mapping[str, Any]) -> tuple[str | None, Attribution]:
    """The agent id of an evaluation's ``payload.object``, and how it was found."""
    info = obj.get("agent_info")
    primary = _text(info.get("agent_user_id")) if isinstance(info, Mapping) else None
    if primary is not None:
        return primary, Attribution.PRIMARY
    fallback = _text(obj.get("agent_user_id"))
    if fallback is not None:
        return fallback, Attribution.FALLBACK
    return None, Attribution.UNATTRIBUTED


def from_typed(event_type: str, datum: Mapping[str, Any]) -> tuple[ScoreEvent | None, Attribution]:
    """A decoded typed record (``EventCodec.decode``) as a score event, and its attribution.

    ``None`` with :attr:`Attribution.UNATTRIBUTED` when no agent can be named. Raises
    :class:`ScoreEventError` for an event type the aggregates do not read.
    """
    event_ts = datum.get("event_ts")
    payload = datum.get("payload")
    obj = payload.get("object") if isinstance(payload, Mapping) else None
    if not isinstance(event_ts, int) or not isinstance(obj, Mapping):
        raise ScoreEventError(f"{event_type}: no event_ts or payload.object")
    if event_type == EVALUATION_COMPLETED:
        return _evaluation(obj, event_ts)
    if event_type == INTERACTION_ANALYSIS_COMPLETED:
        return _interaction(obj, event_ts)
    raise ScoreEventError(f"the aggregates do not read {event_type}")


def _evaluation(obj: Mapping[str, Any], event_ts: int) -> tuple[Evaluation | None, Attribution]:
    agent, attribution = evaluation_agent(obj)
    evaluation_id = _text(value_at(obj, _EVALUATION_ID))
    if agent is None or evaluation_id is None:
        return None, Attribution.UNATTRIBUTED
    info = obj.get("agent_info")
    return (
        Evaluation(
            agent=agent,
            evaluation_id=evaluation_id,
            event_ts=event_ts,
            score=_number(obj.get("evaluation_score")),
            ratio=_number(obj.get("evaluation_score_ratio")),
            evaluation_type=_text(obj.get("evaluation_type")),
            scorecard=_text(obj.get("scorecard_name")),
            display_name=_text(info.get("display_name")) if isinstance(info, Mapping) else None,
        ),
        attribution,
    )


def _interaction(
    obj: Mapping[str, Any], event_ts: int
) -> tuple[InteractionAnalysis | None, Attribution]:
    info = obj.get("interaction_info")
    info = info if isinstance(info, Mapping) else {}
    name = _text(info.get("agent_name"))
    interaction_id = _text(value_at(obj, _INTERACTION_ID))
    if name is None or interaction_id is None:
        return None, Attribution.UNATTRIBUTED
    summary = obj.get("summary")
    summary = summary if isinstance(summary, Mapping) else {}
    return (
        InteractionAnalysis(
            agent=agent_name_key(name),
            interaction_id=interaction_id,
            event_ts=event_ts,
            sentiment=_number(summary.get("sentiment_score")),
            engagement=_number(summary.get("engagement_score")),
            score=_number(summary.get("evaluation_score")),
            silence_events=_count(obj.get("silence_event_count")),
            crosstalk_events=_count(obj.get("crosstalk_event_count")),
            hold_events=_count(obj.get("hold_event_count")),
            duration_seconds=_count(obj.get("duration")),
            channel=_text(info.get("channel_type")),
            queue_id=_text(obj.get("queue_id")),
            queue_name=_text(obj.get("queue_name")),
        ),
        Attribution.PRIMARY,
    )


# --- the internal topic's wire format ------------------------------------------------------


def encode(event: ScoreEvent) -> bytes:
    """A score event as the value of an internal re-keying record (key: ``event.agent``)."""
    if isinstance(event, Evaluation):
        body: list[Any] = [
            "e",
            event.agent,
            event.evaluation_id,
            event.event_ts,
            event.score,
            event.ratio,
            event.evaluation_type,
            event.scorecard,
            event.display_name,
        ]
    else:
        body = [
            "i",
            event.agent,
            event.interaction_id,
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
            event.queue_name,
        ]
    return orjson.dumps([WIRE_VERSION, *body])


def decode(data: bytes) -> ScoreEvent:
    """The score event of an internal record; :class:`ScoreEventError` when it is not one."""
    try:
        body = orjson.loads(data)
        if not isinstance(body, list) or body[:1] != [WIRE_VERSION]:
            raise ScoreEventError(f"not a version {WIRE_VERSION} score event")
        kind, *fields = body[1:]
        if kind == "e":
            agent, eid, ts, score, ratio, etype, card, display = fields
            event: ScoreEvent = Evaluation(
                agent, eid, ts, _float(score), _float(ratio), etype, card, display
            )
        elif kind == "i":
            agent, iid, ts, sent, eng, score, sil, cross, hold, dur, chan, qid, qname = fields
            event = InteractionAnalysis(
                agent,
                iid,
                ts,
                _float(sent),
                _float(eng),
                _float(score),
                sil,
                cross,
                hold,
                dur,
                chan,
                qid,
                qname,
            )
        else:
            raise ScoreEventError(f"unknown score event kind {kind!r}")
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise ScoreEventError(f"unreadable score event: {exc}") from exc
    if not isinstance(event.agent, str) or not isinstance(event.id, str):
        raise ScoreEventError("a score event needs string agent and id")
    if not isinstance(event.event_ts, int) or isinstance(event.event_ts, bool):
        raise ScoreEventError("a score event needs an integer event_ts")
    return event


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
