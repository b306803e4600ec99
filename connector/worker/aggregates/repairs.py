"""Repairs: held agent states written again where a stale changelog record was skipped.

A table restore skips a stale state record (written late by a worker that lost the partition while
frozen: :mod:`.stamps`, :class:`~connector.worker.patches.StampedTable`). If that record was its
key's last, every later restore would meet it again, and ``agent_scores`` most likely holds the
stale worker's figures too. The owner of the key's partition therefore writes the state it holds
again, to the changelog (making it the key's last record once more) and to ``agent_scores``, on a
timer, under the delivery core's write lock and fence.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from connector.worker.aggregates.figures import agent_scores
from connector.worker.aggregates.metrics import AggregateMetrics
from connector.worker.aggregates.queries import ScoresQueries, Unavailable
from connector.worker.aggregates.record import AgentScoresCodec
from connector.worker.aggregates.state import AgentState
from connector.worker.delivery import DeliveryCore, Fence, StateWrite, TopicWrite, Write

log = logging.getLogger(__name__)


class Repairs(Protocol):
    """Keys whose held state must be written again."""

    def pending(self) -> dict[bytes, int]:
        """Key -> table partition, for keys of partitions this worker owns now."""
        ...

    def done(self, keys: Sequence[bytes]) -> None: ...


@dataclass
class TableRepairs:
    """The stale keys a :class:`~connector.worker.patches.StampedTable` skipped records of, on
    partitions this worker owns."""

    table: Any
    queries: ScoresQueries

    def pending(self) -> dict[bytes, int]:
        stale: dict[bytes, int] = self.table.stale_keys
        if not stale:
            return {}
        try:
            self.queries.check_ready()
        except Unavailable:
            return {}  # the owned partitions are not settled yet
        owned = self.queries.local_partitions()
        # A standby skipped the record: it repairs once the partition is its own (its restore
        # then starts past the record). A partition neither here nor standing by: its owner
        # restored it, met the record and repairs it.
        kept = owned | self.queries.standby_partitions()
        for key in [k for k, p in stale.items() if p not in kept]:
            del stale[key]
        return {k: p for k, p in stale.items() if p in owned}

    def done(self, keys: Sequence[bytes]) -> None:
        self.table.repaired(keys)


class Held(Protocol):
    def held(self, key: bytes) -> bytes | None: ...


class Repairer:
    """Writes the pending repairs through the aggregating agent's delivery core."""

    def __init__(
        self,
        core: DeliveryCore,
        repairs: Repairs,
        states: Held,
        table: str,
        output: str,
        codec: AgentScoresCodec,
        metrics: AggregateMetrics,
        fence: Fence | None = None,
    ) -> None:
        self._core = core
        self._repairs = repairs
        self._states = states
        self._table = table
        self._output = output
        self._codec = codec
        self._metrics = metrics
        self._fence = fence

    async def repair(self) -> None:
        """Write the held states of the pending keys again (changelog and ``agent_scores``)."""
        if not self._repairs.pending():
            return
        async with self._core.writing:
            if self._fence is not None and not await self._fence(()):
                return
            pending = self._repairs.pending()
            writes: list[Write] = []
            for key, partition in pending.items():
                value = self._states.held(key)
                if value is None:
                    continue
                record = self._codec.encode(agent_scores(AgentState.from_bytes(value)))
                writes.append(StateWrite(self._table, partition, key, value))
                writes.append(TopicWrite(self._output, key, record))
            await self._core.deliver(writes)
            self._repairs.done(list(pending))
            repaired = len(writes) // 2
            self._metrics.repaired.inc(repaired)
            log.warning(
                "agent states whose last changelog record was stale (written late by a worker"
                " that had lost the partition) written again count=%d agents=%s",
                repaired,
                sorted(k.decode(errors="replace") for k in pending)[:10],
            )
