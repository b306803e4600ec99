"""Keeping a worker that was frozen from writing state it computed before it lost its partitions.

A worker process can be frozen (SIGSTOP, a VM or container pause, heavy swapping) for longer than
its consumer-group session. The group then gives its partitions to another worker, which rebuilds
the tables from their changelogs and carries on. When the frozen worker resumes it does not know
yet: it still holds records it fetched before the freeze, and for a moment it goes on processing
them with its old table state: a *zombie*. For idempotent writes (typed records, dedup marks,
re-keyed score events) that only makes at-least-once duplicates. For a table whose changelog record
is the whole state of a key (the agent score aggregates) it is corruption: the zombie's stale state
lands in the changelog after the new owner's, and whoever restores the table from the changelog
(the new owner at the next rebalance, any worker later) takes the stale state for the latest.

:class:`FreezeGuard` notices freezes of the worker's event loop with a ticker (a timer running
several times a second; a gap between two ticks longer than ``threshold`` is a freeze). After a
freeze, :meth:`FreezeGuard.may_write` makes a batch about to write wait until the group had time to
say whether the worker is still a member (``settle``: two heartbeat intervals and a margin; a worker
whose session expired is told by its first heartbeat, and Faust starts a rebalance at once). If a
rebalance has started since the freeze began, records fetched before it (their consumer generation
is not newer than the one before the freeze) may now belong to another worker: the batch must not
write, and is released with :func:`release_unwritten`, without acknowledging its offsets, so it is
processed again by whichever worker owns its partitions after the rebalance. Without a freeze
nothing changes: in a normal rebalance the worker keeps its partitions until it has rejoined, so
finishing a batch then is safe (and Faust waits for it).

``threshold`` is a third of the session timeout: heartbeats go at least every third of the session,
so a shorter freeze cannot expire the session. What remains is a freeze that starts between the
check and the moment the writes leave the process (the producer's sender task sends them at its
next turn of the event loop: well under a millisecond on an idle loop), or a group that takes
longer than ``settle`` to answer. A producer linger (``WORKER_PRODUCER_LINGER_MS``) holds every
write back for that long and widens this window accordingly, which is why it is 0 by default. A
stale state that escapes through the window is skipped wherever the table is restored, by its
stamp (:mod:`connector.worker.aggregates.stamps`).

Patch: Faust has no fencing of a zombie's writes outside its exactly-once mode, which has open bugs
(faust-streaming issues 517, 323, 440). Uses public attributes only (``rebalancing_count``,
``consumer_generation_id``, ``Message.acked``). Pinned by ``tests/unit/test_worker_fence.py`` and
``tests/reliability/test_reliability_stalled_worker.py``. Remove when the aggregates run under a
working exactly-once mode (transactions fence zombies).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True)
class Freeze:
    """The last freeze noticed: when it ended, and the group's state at the tick before it."""

    thawed_at: float
    seconds: float
    rebalances_before: int
    generation_before: int


class FreezeGuard:
    """Notices that the event loop was frozen; decides whether a batch may still write after it.

    ``rebalances()``: how many rebalances the worker has started (Faust's
    ``app.rebalancing_count``); ``generation()``: its current consumer generation
    (``app.consumer_generation_id``).
    """

    def __init__(
        self,
        threshold: float,
        settle: float,
        rebalances: Callable[[], int],
        generation: Callable[[], int],
        clock: Clock = time.monotonic,
    ) -> None:
        if threshold <= 0 or settle < 0:
            raise ValueError("threshold must be positive and settle not negative")
        self.threshold = threshold
        self.settle = settle
        self._rebalances = rebalances
        self._generation = generation
        self._clock = clock
        self._last_tick: float | None = None
        self._rebalances_at_tick = 0
        self._generation_at_tick = 0
        self.last_freeze: Freeze | None = None
        self.freezes = 0

    @classmethod
    def for_app(cls, app: Any) -> FreezeGuard:
        """The guard of a Faust app, from its session timeout and heartbeat interval."""
        session = float(app.conf.broker_session_timeout)
        heartbeat = float(app.conf.broker_heartbeat_interval)
        return cls(
            threshold=session / 3,
            settle=2 * heartbeat + 2.0,
            rebalances=lambda: int(getattr(app, "rebalancing_count", 0)),
            generation=lambda: int(getattr(app, "consumer_generation_id", 0) or 0),
        )

    @property
    def tick_interval(self) -> float:
        """How often :meth:`tick` should run."""
        return min(0.5, self.threshold / 4)

    def tick(self) -> None:
        """Run by a timer: records a freeze when the previous tick is too long ago."""
        now = self._clock()
        if self._last_tick is not None and now - self._last_tick > self.threshold:
            self.freezes += 1
            self.last_freeze = Freeze(
                thawed_at=now,
                seconds=now - self._last_tick,
                rebalances_before=self._rebalances_at_tick,
                generation_before=self._generation_at_tick,
            )
            log.warning(
                "the worker was frozen for %.1f s (longer than %.1f s): it may have lost its"
                " partitions meanwhile; state writes wait %.1f s for the group to say",
                now - self._last_tick,
                self.threshold,
                self.settle,
            )
        self._last_tick = now
        self._rebalances_at_tick = self._rebalances()
        self._generation_at_tick = self._generation()

    async def may_write(self, events: Sequence[Any]) -> bool:
        """Whether a batch of ``events`` (Faust events) may write what it computed from them.

        Waits out the ``settle`` time after a freeze first. ``False``: a rebalance started since a
        freeze, and some record was fetched before it.
        """
        self.tick()  # a freeze the timer has not noticed yet, because it has just ended
        while True:  # the timer may notice another freeze meanwhile
            freeze = self.last_freeze
            if freeze is None:
                return True
            remaining = freeze.thawed_at + self.settle - self._clock()
            if remaining <= 0:
                break
            await asyncio.sleep(remaining)
        if self._rebalances() == freeze.rebalances_before:
            return True  # still a member: nobody else wrote for our partitions
        return all(_generation_of(event) > freeze.generation_before for event in events)


def _generation_of(event: Any) -> int:
    generation = getattr(event.message, "generation_id", None)
    return generation if isinstance(generation, int) else -1


def release_unwritten(events: Sequence[Any]) -> None:
    """Let Faust stop waiting for ``events`` without acknowledging their offsets.

    A rebalance (and a shutdown) waits until every record handed to an agent is acknowledged; a
    batch that must not write is never acknowledged, so its records are marked done instead. Their
    offsets are not acknowledged, so not committed: after the rebalance they are read again.
    """
    for event in events:
        event.message.acked = True
