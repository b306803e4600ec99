"""Aggregation: score events applied to the agents' states, one whole-state write per agent.

The handler (:class:`Aggregator`, run by the delivery core behind the freeze fence) reads a batch
of the internal score-event topic, applies each event to its agent's state (:mod:`.state`: an
event it already holds is ignored, so a batch processed again changes nothing) and returns, per
agent the batch touched, **one table entry with the agent's whole state** (stamped:
:mod:`.stamps`) and one ``agent_scores`` record. Every touched agent is written, also when nothing
changed, so a batch replayed after a crash between the two writes repairs whichever was lost.
States stay decoded between batches while the table holds what they stand for (:mod:`.decoded`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

from connector.worker.aggregates.decoded import DecodedStates
from connector.worker.aggregates.events import ScoreEventError, decode
from connector.worker.aggregates.figures import agent_scores
from connector.worker.aggregates.metrics import AggregateMetrics
from connector.worker.aggregates.record import AgentScoresCodec
from connector.worker.aggregates.stamps import Stamp, generation_of, next_stamp, stamp_of, stamped
from connector.worker.aggregates.state import AgentState, Retention
from connector.worker.delivery import Plan, StateWrite, TopicWrite, Write
from connector.worker.patches import processing

log = logging.getLogger(__name__)


class StateReader:
    """Reads the agents' stored states from the table's local store."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, record: Any, key: bytes) -> bytes | None:
        """The state stored for ``key``, read in ``record``'s partition (RocksDB keeps one
        database per partition)."""
        with processing(record):
            value: bytes | None = self._table.data.get(key)
        return value

    def held(self, key: bytes) -> bytes | None:
        """The state held for ``key``, whichever partition's store has it."""
        value: bytes | None = self._table.data.get(key)
        return value


class Reader(Protocol):
    def get(self, record: Any, key: bytes) -> bytes | None: ...


class Aggregator:
    """:class:`~connector.worker.delivery.Handler`: score events -> agent states ->
    ``agent_scores`` (module docstring)."""

    def __init__(
        self,
        reader: Reader,
        table: str,
        output: str,
        codec: AgentScoresCodec,
        retention: Retention,
        metrics: AggregateMetrics,
        *,
        clock: Callable[[], float] = time.time,
        stored: Callable[[Sequence[bytes]], None] = lambda keys: None,
        decoded: DecodedStates | None = None,
    ) -> None:
        """``table``: the table's name; ``output``: the ``agent_scores`` topic; ``stored``: told
        which agents were written once Kafka stored them (the repairs forget them); ``decoded``:
        where states stay decoded between batches (none: decoded at every batch)."""
        self._reader = reader
        self._table = table
        self._output = output
        self._codec = codec
        self._retention = retention
        self._metrics = metrics
        self._clock = clock
        self._on_stored = stored
        self._decoded = decoded if decoded is not None else DecodedStates(0)

    def plan(self, records: Sequence[Any]) -> Plan:
        states: dict[bytes, AgentState] = {}
        held: dict[bytes, Stamp | None] = {}
        last_event: dict[bytes, Any] = {}
        now_ms = round(self._clock() * 1000)
        for event in records:
            message = event.message
            key: bytes | None = message.key
            try:
                score_event = decode(message.value or b"")
                if key is None or score_event.agent.encode() != key:
                    raise ScoreEventError(f"record key {key!r} is not the event's agent")
            except ScoreEventError as exc:
                log.error(
                    "internal score event unreadable, skipped partition=%d offset=%d: %s",
                    message.partition,
                    message.offset,
                    exc,
                )
                self._metrics.updates.labels("unreadable").inc()
                continue
            state = states.get(key)
            if state is None:
                state = states[key] = self._state(event, key, score_event.agent, held)
            outcome = state.apply(score_event, self._retention, now_ms)
            self._metrics.updates.labels(str(outcome)).inc()
            last_event[key] = event
        generation = generation_of(records)
        writes: list[Write] = []
        written: list[tuple[bytes, bytes, AgentState]] = []
        for key, state in states.items():
            # last_event[key] is the agent's record with the highest offset (records come in
            # offset order, records read again included): the state holds every event up to it.
            last = last_event[key]
            stamp = next_stamp(held[key], generation, (last.message.offset,))
            value = stamped(stamp, state.to_bytes())
            self._metrics.state_bytes.observe(len(value))
            writes.append(StateWrite(self._table, last.message.partition, key, value, last))
            writes.append(TopicWrite(self._output, key, self._codec.encode(agent_scores(state))))
            written.append((key, value, state))
        return Plan(writes, partial(self._stored, written))

    def refused(self, write: Write, error: BaseException) -> Write | None:
        return write  # a state is never given up: retried until Kafka takes it

    def _state(
        self, record: Any, key: bytes, agent: str, held: dict[bytes, Stamp | None]
    ) -> AgentState:
        """The agent's state as the table holds it (kept decoded, else decoded; new if none);
        notes its stamp in ``held``."""
        stored = self._reader.get(record, key)
        held[key] = stamp_of(stored)
        if stored is None:
            return AgentState(agent)
        return self._decoded.take(key, stored) or AgentState.from_bytes(stored)

    def _stored(self, written: Sequence[tuple[bytes, bytes, AgentState]], stored_at: float) -> None:
        for key, value, state in written:
            self._decoded.keep(key, value, state)
        self._metrics.published.inc(len(written))
        self._on_stored([key for key, _, _ in written])
