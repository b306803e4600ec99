"""Commits Kafka refused while Faust noted them as made (connector.worker.patches.commits).

The fake consumer runs faust-streaming's own ``Consumer._commit_offsets`` (the pinned version's
code, where the refused commit is noted as made); only the driver's ``_commit`` (Kafka's answer)
and Faust's commit round are stood in for.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP

from connector.worker.patches.commits import CommitKeeper

RAW0 = TP("raw", 0)
RAW1 = TP("raw", 1)


class _Log(logging.LoggerAdapter[logging.Logger]):
    def dev(self, *args: Any, **kwargs: Any) -> None:
        self.debug(*args, **kwargs)


class FakeConsumer:
    """Faust's consumer as the keeper sees it; ``kafka`` holds the group's committed offsets."""

    _commit_offsets = FaustConsumer._commit_offsets

    def __init__(self, assigned: set[TP]) -> None:
        self.assigned = set(assigned)
        self.kafka: dict[TP, int] = {}
        self.refuse = False  # Kafka refuses commits (the group is rebalancing)
        self.pending: dict[TP, int] = {}  # offsets acknowledged since the last round
        self.in_transaction = False
        self.log = _Log(logging.getLogger("fake-consumer"), {})
        self._committed_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._commit_fut: asyncio.Future[None] | None = None
        self.calls: list[dict[TP, int]] = []

        async def flush() -> None:
            return None

        self.app = SimpleNamespace(
            producer=SimpleNamespace(flush=flush),
            tables=SimpleNamespace(on_commit=lambda offsets: None),
            monitor=SimpleNamespace(on_tp_commit=lambda offsets: None),
        )

    def assignment(self) -> set[TP]:
        return self.assigned

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        self.calls.append(dict(offsets))
        if self.refuse:
            return False
        self.kafka.update({tp: o for tp, o in offsets.items() if tp in self.assigned})
        return True

    async def commit(self, *args: Any, **kwargs: Any) -> bool:
        """Faust's round: commit what was acknowledged since the last one, if anything."""
        due = {
            tp: offset
            for tp, offset in self.pending.items()
            if (noted := self._committed_offset[tp]) is None or offset > noted
        }
        self.pending.clear()
        if not due:
            return False
        done: bool = await self._commit_offsets(due)
        return done


def keeper_for(consumer: FakeConsumer) -> tuple[CommitKeeper, list[int]]:
    retried: list[int] = []
    keeper = CommitKeeper(consumer, retried.append)
    keeper.install()
    return keeper, retried


async def test_faust_notes_a_refused_commit_as_made() -> None:
    """The pinned faust-streaming's behaviour the keeper exists for: if this starts failing,
    Faust fixed it and the keeper can go."""
    consumer = FakeConsumer({RAW0})
    consumer.refuse = True
    assert await consumer._commit_offsets({RAW0: 42}) is False
    assert consumer._committed_offset[RAW0] == 42
    assert consumer.kafka == {}


async def test_without_the_keeper_the_refused_offset_is_never_asked_again() -> None:
    consumer = FakeConsumer({RAW0})
    consumer.refuse, consumer.pending = True, {RAW0: 42}
    await consumer.commit()
    consumer.refuse = False
    for _ in range(3):  # later rounds, no new record on the partition
        await consumer.commit()
    assert consumer.kafka == {}  # the group stays behind for good


async def test_the_keeper_commits_a_refused_offset_again_at_the_next_round() -> None:
    consumer = FakeConsumer({RAW0, RAW1})
    keeper, retried = keeper_for(consumer)
    consumer.pending = {RAW0: 42, RAW1: 7}
    consumer.refuse = True
    assert await consumer.commit() is False
    assert keeper.owed == {RAW0: 42, RAW1: 7}
    assert consumer.kafka == {}
    consumer.refuse = False
    await consumer.commit()  # nothing new acknowledged: only the owed offsets
    assert consumer.kafka == {RAW0: 42, RAW1: 7}
    assert keeper.owed == {}
    assert retried == [2]
    await consumer.commit()
    assert retried == [2]  # nothing owed any more, nothing committed again


async def test_owed_offsets_refused_again_stay_owed() -> None:
    consumer = FakeConsumer({RAW0})
    keeper, retried = keeper_for(consumer)
    consumer.pending, consumer.refuse = {RAW0: 42}, True
    await consumer.commit()
    await consumer.commit()
    assert keeper.owed == {RAW0: 42}
    assert retried == []
    consumer.refuse = False
    await consumer.commit()
    assert consumer.kafka == {RAW0: 42}


async def test_a_revoked_partition_is_forgotten() -> None:
    consumer = FakeConsumer({RAW0})
    keeper, _ = keeper_for(consumer)
    consumer.pending, consumer.refuse = {RAW0: 42}, True
    await consumer.commit()
    keeper.forget([RAW0])
    consumer.refuse = False
    await consumer.commit()
    assert keeper.owed == {}
    assert consumer.kafka == {}


async def test_a_partition_no_longer_assigned_is_not_committed() -> None:
    consumer = FakeConsumer({RAW0})
    keeper_for(consumer)
    consumer.pending, consumer.refuse = {RAW0: 42}, True
    await consumer.commit()
    calls = len(consumer.calls)
    consumer.assigned = set()
    consumer.refuse = False
    await consumer.commit()
    assert len(consumer.calls) == calls
    assert consumer.kafka == {}


async def test_an_offset_faust_moved_past_is_dropped() -> None:
    """A rebalance resets Faust's note to the group's offset, and a later commit moves it on:
    either way the owed offset is no longer Faust's note and is not committed again."""
    consumer = FakeConsumer({RAW0})
    keeper, retried = keeper_for(consumer)
    consumer.pending, consumer.refuse = {RAW0: 42}, True
    await consumer.commit()
    consumer.refuse = False
    consumer.pending = {RAW0: 50}
    await consumer.commit()
    assert consumer.kafka == {RAW0: 50}
    assert keeper.owed == {}
    assert retried == []


async def test_the_retry_waits_for_a_commit_of_fausts_under_way() -> None:
    consumer = FakeConsumer({RAW0})
    keeper, _ = keeper_for(consumer)
    consumer.pending, consumer.refuse = {RAW0: 42}, True
    await consumer.commit()
    consumer.refuse = False
    held: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    consumer._commit_fut = held  # Faust commits now
    retry = asyncio.create_task(keeper.retry())
    await asyncio.sleep(0.01)
    assert not retry.done()
    assert consumer.kafka == {}
    consumer._commit_fut = None  # as Faust's commit does when it ends
    held.set_result(None)
    assert await asyncio.wait_for(retry, 1) == 1
    assert consumer.kafka == {RAW0: 42}
    assert consumer._commit_fut is None  # the lock is released


@pytest.mark.parametrize("refuse", [False, True])
async def test_the_lock_is_released_whatever_kafka_answers(refuse: bool) -> None:
    consumer = FakeConsumer({RAW0})
    keeper, _ = keeper_for(consumer)
    consumer.pending, consumer.refuse = {RAW0: 42}, True
    await consumer.commit()
    consumer.refuse = refuse
    await keeper.retry()
    assert consumer._commit_fut is None


async def test_a_failing_retry_never_fails_fausts_commit_round() -> None:
    consumer = FakeConsumer({RAW0})
    keeper, _ = keeper_for(consumer)
    consumer.pending, consumer.refuse = {RAW0: 42}, True
    await consumer.commit()

    def not_started() -> set[TP]:
        raise RuntimeError("consumer not started")

    consumer.assignment = not_started  # type: ignore[method-assign]
    assert await consumer.commit() is False  # Faust's own answer (nothing new), no exception
    assert keeper.owed == {RAW0: 42}
