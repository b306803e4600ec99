"""The stall watch's decisions (connector.worker.stalls), on a fake clock."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from connector.worker.delivery import DeliveryCore, Plan, TopicWrite, Write
from connector.worker.patches import FaustPartitions
from connector.worker.stalls import (
    Batch,
    Batches,
    Cause,
    PartitionView,
    Stall,
    StallWatch,
    check,
    check_batches,
    connector_stacks,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def view(
    position: int | None = 10,
    highwater: int | None = 20,
    *,
    requested: bool = True,
    paused: bool = False,
    queues_full: bool = False,
    partition: int = 0,
) -> PartitionView:
    return PartitionView("raw", partition, position, highwater, requested, paused, queues_full)


def test_a_position_standing_still_with_records_waiting_is_a_stall_after_the_period() -> None:
    clock = Clock()
    watch = StallWatch(30, clock)
    assert watch.observe([view()], settled=True) == []
    clock.now += 29.9
    assert watch.observe([view()], settled=True) == []
    clock.now += 0.1
    [stall] = watch.observe([view()], settled=True)
    assert (stall.cause, stall.seconds, stall.view.partition) == (Cause.UNFETCHED, 30.0, 0)
    # reported again only after another full period
    clock.now += 29
    assert watch.observe([view()], settled=True) == []
    clock.now += 1
    assert len(watch.observe([view()], settled=True)) == 1


@pytest.mark.parametrize(
    ("kwargs", "cause"),
    [
        ({"requested": False}, Cause.DROPPED),
        ({"requested": True}, Cause.UNFETCHED),
        ({"queues_full": True}, Cause.BUSY),
        ({"queues_full": True, "requested": False}, Cause.BUSY),
        ({"position": None}, Cause.UNPOSITIONED),
        ({"position": None, "requested": False}, Cause.UNPOSITIONED),
    ],
)
def test_the_cause(kwargs: dict[str, Any], cause: Cause) -> None:
    clock = Clock()
    watch = StallWatch(5, clock)
    watch.observe([view(**kwargs)], settled=True)
    clock.now += 5
    [stall] = watch.observe([view(**kwargs)], settled=True)
    assert stall.cause is cause


@pytest.mark.parametrize(
    "still",
    [
        view(position=20, highwater=20),  # caught up
        view(position=None, highwater=0),  # no position, nothing to read either
        view(position=None, highwater=None),  # no position, log end unknown
        view(highwater=None),  # nothing fetched yet
        view(paused=True),  # paused on purpose (restoring tables)
    ],
)
def test_no_stall_without_records_waiting_or_while_paused(still: PartitionView) -> None:
    clock = Clock()
    watch = StallWatch(5, clock)
    for _ in range(5):
        assert watch.observe([still], settled=True) == []
        clock.now += 5


def test_progress_and_unsettled_moments_restart_the_clock() -> None:
    clock = Clock()
    watch = StallWatch(10, clock)
    watch.observe([view(position=10)], settled=True)
    clock.now += 9
    assert watch.observe([view(position=11)], settled=True) == []  # it moved
    clock.now += 9
    assert watch.observe([view(position=11)], settled=False) == []  # rebalancing
    clock.now += 9
    assert watch.observe([view(position=11)], settled=True) == []
    clock.now += 10
    assert len(watch.observe([view(position=11)], settled=True)) == 1


def test_partitions_are_watched_one_by_one_and_forgotten_when_gone() -> None:
    clock = Clock()
    watch = StallWatch(10, clock)
    watch.observe([view(partition=0), view(partition=1)], settled=True)
    clock.now += 10
    stalls = watch.observe([view(partition=0), view(partition=1, position=15)], settled=True)
    assert [s.view.partition for s in stalls] == [0]
    # partition 0 revoked, then assigned again: its clock starts afresh
    watch.observe([view(partition=1, position=15)], settled=True)
    clock.now += 10
    assert watch.observe([view(partition=0)], settled=True) == []


def committing(
    committed: int | None, acknowledged: int = 5, first: int | None = None, partition: int = 0
) -> PartitionView:
    """A caught-up partition (nothing waits in Kafka) with acknowledged records to commit."""
    return dataclasses.replace(
        view(position=20, highwater=20, partition=partition),
        committed=committed,
        acknowledged=acknowledged,
        acknowledged_from=first if first is not None else (committed if acknowledged else None),
    )


def test_commits_standing_still_while_records_are_acknowledged_are_reported_each_period() -> None:
    clock = Clock()
    watch = StallWatch(30, clock)
    assert watch.observe([committing(12, first=22)], settled=True) == []
    clock.now += 29.9
    assert watch.observe([committing(12, first=22)], settled=True) == []
    clock.now += 0.1
    [stall] = watch.observe([committing(12, first=22)], settled=True)
    assert (stall.cause, stall.seconds) == (Cause.UNCOMMITTED, 30.0)
    clock.now += 29
    assert watch.observe([committing(12, first=22)], settled=True) == []
    clock.now += 1
    assert len(watch.observe([committing(12, first=22)], settled=True)) == 1


@pytest.mark.parametrize(
    ("later", "settled"),
    [
        (committing(13), True),  # Faust committed meanwhile
        (committing(12, acknowledged=0), True),  # nothing waits for a commit
        (committing(12), False),  # rebalancing
    ],
)
def test_commits_that_move_or_have_nothing_to_do_restart_the_clock(
    later: PartitionView, settled: bool
) -> None:
    clock = Clock()
    watch = StallWatch(10, clock)
    watch.observe([committing(12)], settled=True)
    clock.now += 9
    assert watch.observe([later], settled=settled) == []
    clock.now += 9
    assert watch.observe([committing(later.committed)], settled=True) == []
    clock.now += 10
    [stall] = watch.observe([committing(later.committed)], settled=True)
    assert stall.cause is Cause.UNCOMMITTED


def test_a_position_stall_and_a_commit_stall_are_told_apart() -> None:
    clock = Clock()
    watch = StallWatch(10, clock)
    both = dataclasses.replace(view(), committed=10, acknowledged=3, acknowledged_from=12)
    watch.observe([both], settled=True)
    clock.now += 10
    stalls = watch.observe([both], settled=True)
    assert sorted(s.cause for s in stalls) == [Cause.UNCOMMITTED, Cause.UNFETCHED]


@pytest.mark.parametrize(
    ("seen", "committing_now", "reason"),
    [
        (committing(12, first=22), False, "offsets 12-21 were never acknowledged"),
        (committing(12, first=12), True, "a commit round is under way and has not ended"),
        (committing(12, first=13), False, "Faust has not committed them"),
    ],
)
async def test_a_commit_stall_is_logged_with_its_reason_and_counted_without_a_remedy(
    seen: PartitionView, committing_now: bool, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    class _Partitions:
        remedied: list[Stall] = []

        async def refresh(self) -> None:
            pass

        def unsettled_by(self) -> list[str]:
            return []

        def views(self) -> list[PartitionView]:
            return [seen]

        def committing(self) -> bool:
            return committing_now

        async def remedy(self, stall: Stall) -> None:
            self.remedied.append(stall)

    clock, counted = Clock(), []
    watch, partitions = StallWatch(5, clock), _Partitions()
    await check(watch, partitions, counted.append)
    clock.now += 5
    with caplog.at_level(logging.WARNING):
        await check(watch, partitions, counted.append)
    assert [s.cause for s in counted] == [Cause.UNCOMMITTED]
    assert partitions.remedied == []
    assert "partition commits stand still" in caplog.text and reason in caplog.text


def test_the_period_must_be_positive() -> None:
    with pytest.raises(ValueError):
        StallWatch(0)


async def test_connector_stacks_name_where_connector_tasks_wait() -> None:
    """A task stuck in connector code (here an aggregate write Kafka never acknowledges) is
    listed with the connector frame it waits in; a task of other code is not."""
    loop = asyncio.get_running_loop()
    unacknowledged: asyncio.Future[None] = loop.create_future()

    class Sink:
        async def send(self, write: Write) -> asyncio.Future[None]:
            return unacknowledged

    class Handler:
        def plan(self, records: Any) -> Plan:
            return Plan()

        def refused(self, write: Write, error: BaseException) -> Write | None:
            return write

    core = DeliveryCore("stuck", Handler(), Sink(), stopping=lambda: False)
    write = TopicWrite("t", b"k", b"v")

    async def agent_loop() -> None:  # not connector code: like Faust's actor around our agent
        await core.deliver([write])

    stuck = asyncio.create_task(core.deliver([write]), name="stuck-writer")
    nested = asyncio.create_task(agent_loop(), name="nested-writer")
    other = asyncio.create_task(asyncio.Event().wait(), name="other-code")
    await asyncio.sleep(0.01)
    try:
        lines = connector_stacks()
        [line] = [line for line in lines if "stuck-writer" in line]
        assert "delivery.py" in line and "deliver" in line
        assert "delivery.py:" in line and " -> awaits " in line, line
        # the connector's frames are found below a coroutine of other code, through its awaits
        [line] = [line for line in lines if "nested-writer" in line]
        assert "delivery.py" in line and "deliver" in line
        assert not any("other-code" in line for line in lines)
    finally:
        unacknowledged.set_result(None)
        await stuck
        await nested
        other.cancel()


# --- batches worked on for long ------------------------------------------------------------


def test_a_batch_worked_on_too_long_is_reported_once_per_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    batches = Batches(clock=lambda: now[0])
    seen: list[Batch] = []
    with batches.working("zoom-raw-pipeline", 7):
        now[0] += 29.9
        assert check_batches(batches, 30, seen.append) == []
        now[0] += 0.1
        with caplog.at_level(logging.WARNING, logger="connector.worker.stalls"):
            assert [b.agent for b in check_batches(batches, 30, seen.append)] == [
                "zoom-raw-pipeline"
            ]
        assert "zoom-raw-pipeline has worked on a batch of 7 record(s) for 30 s" in caplog.text
        now[0] += 10
        assert check_batches(batches, 30, seen.append) == []  # reported again only after 30 s
        now[0] += 20
        assert len(check_batches(batches, 30, seen.append)) == 1
    now[0] += 100
    assert check_batches(batches, 30, seen.append) == []  # finished: nothing open
    assert [b.size for b in seen] == [7, 7]


def test_batches_are_tracked_separately_and_closed_on_error() -> None:
    now = [0.0]
    batches = Batches(clock=lambda: now[0])
    with pytest.raises(RuntimeError), batches.working("a", 1):
        raise RuntimeError("the batch failed")
    with batches.working("b", 2):
        now[0] = 5
        with batches.working("c", 3):
            now[0] = 31
            assert [b.agent for b in batches.overdue(30)] == ["b"]
            now[0] = 36
            assert [b.agent for b in batches.overdue(30)] == ["c"]
    assert batches.overdue(0) == []


async def test_an_unpositioned_partition_is_sought_to_where_the_group_stands() -> None:
    class Consumer:
        def __init__(self) -> None:
            self.sought: list[tuple[Any, int]] = []

        def assignment(self) -> set[TP]:
            return {TP("raw", 0), TP("raw", 1)}

        async def seek(self, tp: TP, offset: int) -> None:
            self.sought.append((tp, offset))

    asked: list[list[tuple[str, int]]] = []

    async def group_offsets(partitions: Any) -> dict[tuple[str, int], int]:
        asked.append(list(partitions))
        return {("raw", 1): 7}

    consumer = Consumer()
    partitions = FaustPartitions(SimpleNamespace(consumer=consumer), None, group_offsets)
    await partitions.remedy(Stall(view(position=None, partition=1), Cause.UNPOSITIONED, 30.0))
    assert asked == [[("raw", 1)]]
    assert consumer.sought == [(TP("raw", 1), 7)]
    # where the group stands is unknown: nothing is sought
    await partitions.remedy(Stall(view(position=None, partition=0), Cause.UNPOSITIONED, 30.0))
    assert consumer.sought == [(TP("raw", 1), 7)]


def test_a_worker_unsettled_for_a_whole_period_is_reported_once_per_period() -> None:
    clock = Clock()
    watch = StallWatch(30, clock)
    assert watch.unsettled_for(True) is None
    clock.now += 29
    assert watch.unsettled_for(True) is None
    clock.now += 1
    assert watch.unsettled_for(True) == 30
    clock.now += 10
    assert watch.unsettled_for(True) is None  # again only after another period
    clock.now += 20
    assert watch.unsettled_for(True) == 60
    assert watch.unsettled_for(False) is None  # settled: the count starts again
    clock.now += 30
    assert watch.unsettled_for(True) is None


def test_what_keeps_a_worker_unsettled_is_named() -> None:
    consumer = SimpleNamespace(flow_active=False)
    app = SimpleNamespace(rebalancing=True, in_recovery=False, consumer=consumer)
    partitions = FaustPartitions(app)
    assert partitions.unsettled_by() == ["rebalancing", "flow_inactive"]
    assert not partitions.settled()
    app.rebalancing, consumer.flow_active = False, True
    assert partitions.unsettled_by() == [] and partitions.settled()
