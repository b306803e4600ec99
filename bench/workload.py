"""The events the bench sends: every event type in a realistic mix, a few % bad, some retries.

Each event is built from the spec's example for its type (``load_catalog().example``) with fresh
ids, so no two events share an identity (the worker would drop the second as a retry), a current
``event_ts``, and an agent drawn from a pool of ``agents`` (the score aggregates key their table by
agent: evaluations by ``agent_info.agent_user_id``, interaction analyses by ``name:<agent name>``;
the pool is split between the two, so it is exactly the number of keys the table can hold).

Bad events are JSON objects with a string ``event``, so the source accepts them (200) and the
worker dead-letters them; they use four of the codec's reasons. A retry repeats the body of an
earlier good event (as Zoom does when a 200 came too late); the worker writes no typed record for
it. Generation is deterministic for a seed and cheap (about 10 µs per event).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import orjson

from connector.spec import load_catalog
from connector.wire import raw_record_key
from connector.worker.routing import typed_record_key

QM: Final = "quality_management"
RA: Final = "revenue_accelerator"
EVALUATION: Final = f"{QM}.evaluation_completed"
INTERACTION: Final = f"{QM}.interaction_analysis_completed"

# Share of each type among good events: Quality Management (one per evaluated or analysed
# interaction) dominates, then conversation analyses and comments; playlist edits are rarer.
MIX: Final[dict[str, float]] = {
    EVALUATION: 0.25,
    INTERACTION: 0.25,
    f"{RA}.conversation_analysis_completed": 0.15,
    f"{RA}.post_comment_completed": 0.10,
    f"{RA}.conversation_crm_associations_changed": 0.05,
    f"{RA}.playlist_create": 0.05,
    f"{RA}.playlist_add_moment": 0.07,
    f"{RA}.playlist_remove_moment": 0.04,
    f"{RA}.playlist_delete": 0.04,
}
BAD_KINDS: Final = (
    "unknown_enum_symbol",
    "missing_required_field",
    "wrong_type",
    "unknown_event_type",
)
DEFAULT_BAD_SHARE: Final = 0.03
DEFAULT_RETRY_SHARE: Final = 0.02

GOOD: Final = "good"
BAD: Final = "bad"
RETRY: Final = "retry"


@dataclass(frozen=True, slots=True)
class Event:
    """One webhook body and what the pipeline should make of it."""

    index: int
    kind: str
    """``good`` (a typed record), ``bad`` (a dead letter) or ``retry`` (nothing: a duplicate)."""
    event_type: str
    body: bytes
    raw_key: bytes
    typed_key: bytes | None
    """The key of its typed record (``good`` only)."""


class Workload:
    """A deterministic stream of events; ``run_id`` keeps ids unique across runs and datasets."""

    def __init__(
        self,
        *,
        run_id: str,
        agents: int = 1000,
        bad_share: float = DEFAULT_BAD_SHARE,
        retry_share: float = DEFAULT_RETRY_SHARE,
        seed: int = 7,
        base_ts_ms: int | None = None,
    ) -> None:
        if agents < 2:
            raise ValueError("the agent pool needs at least 2 agents (user ids and names)")
        catalog = load_catalog()
        self._templates = {t: orjson.dumps(catalog.example(t)) for t in MIX}
        self._types = list(MIX)
        self._weights = [MIX[t] for t in self._types]
        self._run_id = run_id
        self.agents = agents
        self._bad_share = bad_share
        self._retry_share = retry_share
        self._random = random.Random(seed)
        # Events happened just now, one millisecond apart.
        self._base_ts = base_ts_ms if base_ts_ms is not None else int(time.time() * 1000)
        self._recent_good: list[Event] = []
        self._next = 0

    # --- agents ---------------------------------------------------------------------------

    @property
    def user_agents(self) -> int:
        """How many agents have a user id (evaluations); the rest are known by name."""
        return (self.agents + 1) // 2

    def user_id(self, n: int) -> str:
        return f"agent-{n:07d}"

    def agent_name(self, n: int) -> str:
        return f"Agent {n:07d}"

    # --- events ---------------------------------------------------------------------------

    def events(self, count: int) -> Iterator[Event]:
        """The next ``count`` events of the mix."""
        for _ in range(count):
            yield self._one()

    def seed_agents(self) -> Iterator[Event]:
        """One good score event per agent of the pool, so the aggregates' table holds them all."""
        for n in range(self.user_agents):
            yield self._good(EVALUATION, agent=n)
        for n in range(self.agents - self.user_agents):
            yield self._good(INTERACTION, agent=n)

    def _one(self) -> Event:
        roll = self._random.random()
        if roll < self._bad_share:
            return self._bad(self._random.choice(BAD_KINDS))
        if roll < self._bad_share + self._retry_share and self._recent_good:
            original = self._random.choice(self._recent_good)
            index = self._take_index()
            return Event(index, RETRY, original.event_type, original.body, original.raw_key, None)
        event_type = self._random.choices(self._types, self._weights)[0]
        event = self._good(event_type)
        if len(self._recent_good) < 1000:
            self._recent_good.append(event)
        else:
            self._recent_good[self._random.randrange(1000)] = event
        return event

    def _take_index(self) -> int:
        index = self._next
        self._next += 1
        return index

    def _good(self, event_type: str, agent: int | None = None) -> Event:
        index = self._take_index()
        body = self._fill(event_type, index, agent)
        data = orjson.dumps(body)
        return Event(
            index,
            GOOD,
            event_type,
            data,
            raw_record_key(body, data),
            typed_record_key(body, data),
        )

    def _bad(self, kind: str) -> Event:
        index = self._take_index()
        if kind == "unknown_enum_symbol":
            event_type = EVALUATION
            body = self._fill(event_type, index, None)
            body["payload"]["object"]["evaluation_type"] = "SEMI"
        elif kind == "missing_required_field":
            event_type = INTERACTION
            body = self._fill(event_type, index, None)
            del body["payload"]["object"]["interaction_info"]
        elif kind == "wrong_type":
            event_type = f"{RA}.conversation_analysis_completed"
            body = self._fill(event_type, index, None)
            body["event_ts"] = str(body["event_ts"])
        else:
            event_type = f"{RA}.conversation_analysis_completed"
            body = self._fill(event_type, index, None)
            body["event"] = f"{RA}.some_future_event"
        data = orjson.dumps(body)
        return Event(index, BAD, body["event"], data, raw_record_key(body, data), None)

    def _fill(self, event_type: str, index: int, agent: int | None) -> dict[str, Any]:
        body: dict[str, Any] = orjson.loads(self._templates[event_type])
        uid = f"{self._run_id}-{index:09d}"
        body["event_ts"] = self._base_ts + index
        payload = body["payload"]
        payload["account_id"] = "bench-account"
        obj = payload["object"]
        rnd = self._random
        if event_type == EVALUATION:
            n = agent if agent is not None else rnd.randrange(self.user_agents)
            score = rnd.randint(0, 50)
            obj["evaluation_id"] = f"ev-{uid}"
            obj["interaction_id"] = f"in-{uid}"
            obj["agent_info"]["agent_user_id"] = self.user_id(n)
            obj["agent_info"]["display_name"] = self.agent_name(n)
            obj["evaluation_score"] = score
            obj["evaluation_score_ratio"] = score / 50
        elif event_type == INTERACTION:
            names = self.agents - self.user_agents
            n = agent if agent is not None else rnd.randrange(names)
            obj["interaction_info"]["interaction_id"] = f"in-{uid}"
            obj["interaction_info"]["agent_name"] = self.agent_name(n)
            obj["engagement_id"] = f"en-{uid}"
            score = round(rnd.uniform(0, 100), 2)
            obj["summary"] = {
                "evaluation_score": score,
                "sentiment_score": round(rnd.uniform(0, 100), 2),
                "engagement_score": round(rnd.uniform(0, 100), 2),
            }
        elif event_type == f"{RA}.conversation_crm_associations_changed":
            for item in obj:
                item["conversation_id"] = f"cv-{uid}"
        else:
            if "conversation_id" in obj:
                obj["conversation_id"] = f"cv-{uid}"
            if "host_id" in obj:
                obj["host_id"] = "bench-host"
            if "comment_id" in obj:
                obj["comment_id"] = f"cm-{uid}"
                obj["text"] = "Looks good; follow up on pricing next week."
            if "playlist_id" in obj:
                obj["playlist_id"] = f"pl-{uid}"
                obj["playlist_name"] = "Best discovery calls"
            if "moment_id" in obj:
                obj["moment_id"] = f"mo-{uid}"
            for field in ("create_time", "update_time", "delete_time"):
                if field in obj:
                    obj[field] = body["event_ts"]
        return body


def expected_outputs(events: Iterable[Event]) -> int:
    """Records the worker writes for ``events`` (typed + dead letters; retries write nothing)."""
    return sum(1 for e in events if e.kind != RETRY)
