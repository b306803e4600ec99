"""Noticing partitions the worker owns but has stopped reading, and getting them read again.

faust-streaming can leave a partition it owns unread for good while the worker otherwise runs
normally (faust-streaming issues 629 and 471): nothing is lost, nothing is committed either, and
the partition's lag grows until someone restarts the worker. Faust's own check
(``stream_processing_timeout``) only logs, after five minutes.

:class:`StallWatch` looks at every partition of the worker's input topics (not table changelogs)
every few seconds:

* its *position* (the next offset the consumer hands to the agents) and *highwater*;
* whether Faust asks Kafka for it: Faust takes a partition out of its fetch set while an agent's
  queue is nearly full and puts it back once the queue drains, and pauses partitions while
  restoring tables;
* whether the queues of the agents reading it have room.

A partition is **stalled** when records wait in Kafka (highwater beyond the position, or records
but no position at all), its position has not moved for ``WORKER_STALL_SECONDS``, the worker is
neither rebalancing nor restoring tables, and its agents' queues have room (the agents wait for
records; they are not busy with them). Then the watch logs what it saw, counts it
(``zoom_worker_partition_stalls_total``) and acts:

* ``dropped``: Faust no longer asks for the partition: it is put back into Faust's fetch set;
* ``unfetched``: Faust asks for it but gets nothing: the consumer seeks it to its position, which
  makes aiokafka fetch it afresh;
* ``unpositioned``: the partition holds records but the consumer has no position for it (a seek
  lost at a rebalance): it is sought to where the group stands (committed offset, or the log's
  start), the same offset a restarted worker would begin at.

Both are harmless when the diagnosis is wrong (a Kafka outage looks the same from here): nothing
is acknowledged or committed by them, and a seek to the position only fetches again records no
agent has been given. A partition whose queue is full while its position stands still is a busy or
stuck agent, not a fetch stall: the watch logs it (``busy``) with the position, and does nothing.

A stuck agent with few records behind it fills no queue: the records sit in its batch, the
position is at the log's end, nothing looks stalled. So the watch also looks at the batches the
agents are working on (:class:`Batches`): one worked on for ``WORKER_STALL_SECONDS`` or longer is
logged with where the connector's tasks wait and counted (``slow_batch``); nothing is done to it
(it may be a Kafka write retried while the broker is away, which must go on).

Commits can stand still while the records are read and processed (faust-streaming commits a
partition only through a run of acknowledged offsets). A partition whose committed offset has not
moved for ``WORKER_STALL_SECONDS`` while acknowledged records wait, the worker settled, is logged
with the reason (a hole in the acknowledgements, or a commit round that does not end) and counted
(``uncommitted``); nothing is done to it. Nothing is lost, but a restart would process everything
after the committed offset again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Cause(StrEnum):
    """Why a partition's position stands still while records wait."""

    DROPPED = "dropped"
    """Faust no longer asks Kafka for the partition (not in its fetch set, not paused)."""
    UNFETCHED = "unfetched"
    """Faust asks for it, nothing arrives."""
    BUSY = "busy"
    """The agents' queues for it are full: they are slow or stuck, fetching is not the problem."""
    UNPOSITIONED = "unpositioned"
    """Records exist but the consumer has no position for the partition: nothing fetches it."""
    SLOW_BATCH = "slow_batch"
    """An agent has worked on one batch for ``stall_seconds`` or longer (:class:`Batches`)."""
    UNCOMMITTED = "uncommitted"
    """Records acknowledged, and Faust's committed offset has not moved: a hole in the
    acknowledgements, or a commit round that does not end."""


@dataclass(frozen=True)
class PartitionView:
    """One look at a partition of an input topic."""

    topic: str
    partition: int
    position: int | None
    highwater: int | None
    requested: bool
    """In Faust's fetch set (its active partitions)."""
    paused: bool
    queues_full: bool
    """An agent queue reading it is at or above its high-pressure mark."""
    committed: int | None = None
    """The offset Faust last committed, or found committed when the partition was assigned."""
    acknowledged: int = 0
    """Records acknowledged by the agents and not committed yet."""
    acknowledged_from: int | None = None
    """The lowest of those. Faust commits nothing while it is more than one past
    ``committed`` (a hole of records never acknowledged)."""

    @property
    def unpositioned(self) -> bool:
        """No position, though the partition holds records (a seek lost at a rebalance)."""
        return self.position is None and self.highwater is not None and self.highwater > 0

    @property
    def waiting(self) -> bool:
        """Records in Kafka beyond the position."""
        return (
            self.position is not None
            and self.highwater is not None
            and self.highwater > self.position
        )


@dataclass(frozen=True)
class Stall:
    view: PartitionView
    cause: Cause
    seconds: float
    """How long the position (``uncommitted``: the committed offset) has stood still."""


@dataclass
class _Since:
    value: int | None
    at: float


@dataclass
class StallWatch:
    """Decides which partitions are stalled, from successive :class:`PartitionView` s.

    ``stall_seconds``: how long a position may stand still while records wait. A partition
    reported once is reported again only after another ``stall_seconds`` without progress.
    """

    stall_seconds: float
    clock: Callable[[], float] = time.monotonic
    _since: dict[tuple[str, int], _Since] = field(default_factory=dict)
    _committed_since: dict[tuple[str, int], _Since] = field(default_factory=dict)
    _unsettled_since: float | None = None
    _unsettled_reported: float | None = None

    def __post_init__(self) -> None:
        if self.stall_seconds <= 0:
            raise ValueError("stall_seconds must be positive")

    def unsettled_for(self, unsettled: bool) -> float | None:
        """How long the worker has been unsettled, once per ``stall_seconds`` of it (else None)."""
        now = self.clock()
        if not unsettled:
            self._unsettled_since = self._unsettled_reported = None
            return None
        if self._unsettled_since is None:
            self._unsettled_since = now
        since = self._unsettled_reported or self._unsettled_since
        if now - since < self.stall_seconds:
            return None
        self._unsettled_reported = now
        return now - self._unsettled_since

    def observe(self, views: Iterable[PartitionView], settled: bool) -> list[Stall]:
        """The stalls among ``views``. ``settled``: not rebalancing or restoring tables (while
        unsettled, positions legitimately stand still: every clock starts again)."""
        now = self.clock()
        views = list(views)
        seen: dict[tuple[str, int], _Since] = {}
        stalls: list[Stall] = []
        for view in views:
            key = (view.topic, view.partition)
            if not settled or not (view.waiting or view.unpositioned) or view.paused:
                seen[key] = _Since(view.position, now)
                continue
            seen[key], seconds = self._still(self._since.get(key), view.position, now)
            if seconds is not None:
                stalls.append(Stall(view, _cause(view), seconds))
        self._since = seen
        return stalls + self._uncommitted(views, settled, now)

    def _uncommitted(
        self, views: Iterable[PartitionView], settled: bool, now: float
    ) -> list[Stall]:
        """Partitions whose committed offset stood still for a period while acknowledged
        records waited (Faust commits every few seconds while there are any)."""
        seen: dict[tuple[str, int], _Since] = {}
        stalls: list[Stall] = []
        for view in views:
            key = (view.topic, view.partition)
            if not settled or not view.acknowledged:
                continue
            seen[key], seconds = self._still(self._committed_since.get(key), view.committed, now)
            if seconds is not None:
                stalls.append(Stall(view, Cause.UNCOMMITTED, seconds))
        self._committed_since = seen
        return stalls

    def _still(
        self, since: _Since | None, value: int | None, now: float
    ) -> tuple[_Since, float | None]:
        """A value's clock at ``now``, restarted when the value moved; and, once it has stood
        still for a whole period, for how long (the clock restarts then too, so it is reported
        again only after another period)."""
        if since is None or since.value != value:
            return _Since(value, now), None
        if now - since.at >= self.stall_seconds:
            return _Since(value, now), now - since.at
        return since, None


def _cause(view: PartitionView) -> Cause:
    """Why a position stands still with records waiting."""
    if view.position is None:
        return Cause.UNPOSITIONED
    if view.queues_full:
        return Cause.BUSY
    if not view.requested:
        return Cause.DROPPED
    return Cause.UNFETCHED


@dataclass(frozen=True)
class Batch:
    """A batch an agent is working on."""

    agent: str
    size: int
    started: float
    """``time.monotonic()`` when the agent took it."""


@dataclass
class Batches:
    """The batches the agents are working on now; :meth:`working` wraps each."""

    clock: Callable[[], float] = time.monotonic
    _open: dict[int, Batch] = field(default_factory=dict)
    _reported: dict[int, float] = field(default_factory=dict)
    _tokens: Iterator[int] = field(default_factory=itertools.count)

    @contextlib.contextmanager
    def working(self, agent: str, size: int) -> Iterator[None]:
        token = next(self._tokens)
        self._open[token] = Batch(agent, size, self.clock())
        try:
            yield
        finally:
            self._open.pop(token, None)
            self._reported.pop(token, None)

    def working_on(self) -> list[Batch]:
        """The batches open now."""
        return list(self._open.values())

    def overdue(self, seconds: float) -> list[Batch]:
        """Batches worked on for ``seconds`` or longer, each once per ``seconds``."""
        now = self.clock()
        found = []
        for token, batch in self._open.items():
            since = self._reported.get(token, batch.started)
            if now - since >= seconds:
                self._reported[token] = now
                found.append(batch)
        return found


class Partitions(Protocol):
    """The worker's input partitions as the watch sees them, and the remedies
    (:class:`connector.worker.patches.FaustPartitions`)."""

    async def refresh(self) -> None: ...

    def unsettled_by(self) -> list[str]: ...

    def views(self) -> list[PartitionView]: ...

    def committing(self) -> bool: ...

    async def remedy(self, stall: Stall) -> None: ...


def check_batches(
    batches: Batches, seconds: float, on_slow: Callable[[Batch], None] = lambda batch: None
) -> list[Batch]:
    """Log (with where the tasks wait) and count the batches worked on for ``seconds``."""
    slow = batches.overdue(seconds)
    for batch in slow:
        log.warning(
            "agent %s has worked on a batch of %d record(s) for %.0f s; where the connector's"
            " tasks wait:\n%s",
            batch.agent,
            batch.size,
            batches.clock() - batch.started,
            "\n".join(connector_stacks()),
        )
        on_slow(batch)
    return slow


async def check(
    watch: StallWatch,
    partitions: Partitions,
    on_stall: Callable[[Stall], None] = lambda stall: None,
) -> Sequence[Stall]:
    """One round: look, decide, log, count (``on_stall``) and remedy. A worker unsettled for a
    whole period is logged too (the watch cannot judge its partitions meanwhile)."""
    await partitions.refresh()
    unsettled_by = partitions.unsettled_by()
    seconds = watch.unsettled_for(bool(unsettled_by))
    if seconds is not None:
        log.warning(
            "the worker has not been settled for %.0f s (%s): its partitions are not watched"
            " meanwhile",
            seconds,
            ", ".join(unsettled_by),
        )
    stalls = watch.observe(partitions.views(), not unsettled_by)
    for stall in stalls:
        view = stall.view
        if stall.cause is Cause.UNCOMMITTED:
            _report_uncommitted(stall, partitions.committing())
            on_stall(stall)
            continue
        log.warning(
            "partition stalled: topic=%s partition=%d position=%s highwater=%s still for %.0f s"
            " cause=%s requested=%s paused=%s queues_full=%s%s",
            view.topic,
            view.partition,
            view.position,
            view.highwater,
            stall.seconds,
            stall.cause,
            view.requested,
            view.paused,
            view.queues_full,
            "" if stall.cause is Cause.BUSY else "; fetching it again",
        )
        on_stall(stall)
        if stall.cause is Cause.BUSY:
            log.warning("where the connector's tasks wait:\n%s", "\n".join(connector_stacks()))
        else:
            await partitions.remedy(stall)
    return stalls


def connector_stacks(limit: int = 12) -> list[str]:
    """Where each asyncio task running connector code waits: its chain of awaits (coroutine by
    coroutine, outermost first: the connector's frames, the innermost frame whatever its module,
    and what that one awaits), or, for the running task, its stack."""
    package = str(Path(__file__).resolve().parents[1])
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:  # no running event loop
        return []
    lines = []
    for task in tasks:
        frames, awaited = _await_chain(task.get_coro(), limit)
        if len(frames) <= 1:  # running (or a plain future): the frames of its stack
            frames = task.get_stack(limit=limit)
        shown = [f for f in frames[:-1] if f.f_code.co_filename.startswith(package)]
        if not shown and not (frames and frames[-1].f_code.co_filename.startswith(package)):
            continue
        where = " -> ".join(_where(f) for f in [*shown, *frames[-1:]])
        if awaited is not None:
            where += f" -> awaits {type(awaited).__name__}"
        lines.append(f"  {task.get_name()}: {where}")
    return lines


def _await_chain(coro: Any, limit: int) -> tuple[list[Any], Any]:
    """The frames of ``coro`` and of what it awaits, in turn (outermost first), and the first
    awaited object that is not a coroutine (a future, typically), if any."""
    frames: list[Any] = []
    while coro is not None and len(frames) < 4 * limit:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            return frames, coro if frames else None
        frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames, None


def _where(frame: Any) -> str:
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno} {frame.f_code.co_name}"


def _report_uncommitted(stall: Stall, committing: bool) -> None:
    """Log a commit stall with its reason (:attr:`Cause.UNCOMMITTED`)."""
    view, first = stall.view, stall.view.acknowledged_from
    if view.committed is not None and first is not None and first > view.committed + 1:
        why = (
            f"offsets {view.committed}-{first - 1} were never acknowledged, and Faust commits"
            " nothing past them"
        )
    elif committing:
        why = "a commit round is under way and has not ended"
    else:
        why = "Faust has not committed them"
    log.warning(
        "partition commits stand still: topic=%s partition=%d committed=%s for %.0f s with %d"
        " record(s) acknowledged from offset %s: %s. Nothing is lost; a restart processes the"
        " records after the committed offset again",
        view.topic,
        view.partition,
        view.committed,
        stall.seconds,
        view.acknowledged,
        view.acknowledged_from,
        why,
    )
