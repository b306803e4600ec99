"""Faust's fetch loop records no skipped offsets in the worker (:mod:`.patches.dense_offsets`).

The race: records 12 to 21 of a partition were handed over before the recovery's seek moved the
read offset back to the committed 12, so record 22 looks like a jump over 13 to 21 (Faust's
``_drain_messages`` then calls ``_add_gap(tp, 13, 22)``). Every record, 12 to 41, is processed
and acknowledged.
"""

from __future__ import annotations

from collections import defaultdict

from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP
from intervaltree import IntervalTree

from connector.worker.patches.dense_offsets import DenseOffsets
from connector.worker.patches.fetching import FetchingTransport

RAW = TP("raw", 0)
COMMITTED = 12
END = 42


class _Offsets:
    """faust-streaming's bookkeeping of a partition's commits (``_new_offset``, its commit check
    and ``_add_gap``) on the state it keeps per partition."""

    _new_offset = FaustConsumer._new_offset
    _should_commit = FaustConsumer._should_commit
    _add_gap = FaustConsumer._add_gap

    def __init__(self) -> None:
        self._committed_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._committed_offset[RAW] = COMMITTED
        self._acked: defaultdict[TP, list[int]] = defaultdict(list)
        self._acked_index: defaultdict[TP, set[int]] = defaultdict(set)
        self._gap: defaultdict[TP, IntervalTree] = defaultdict(IntervalTree)

    async def race(self) -> None:
        """The seek race, then every record acknowledged (as ``Consumer.ack`` records them)."""
        await self._add_gap(RAW, COMMITTED + 1, 22)
        self._acked[RAW].extend(range(COMMITTED, END))
        self._acked_index[RAW].update(range(COMMITTED, END))

    def commit_rounds(self, rounds: int) -> list[int]:
        """The offsets Faust's commit rounds would commit, each round as ``_commit_tps`` does."""
        committed = []
        for _ in range(rounds):
            offset = self._new_offset(RAW)
            if offset is not None and self._should_commit(RAW, offset):
                self._committed_offset[RAW] = offset
                committed.append(offset)
        return committed


class _WorkerOffsets(DenseOffsets, _Offsets):
    """The same bookkeeping with the worker's consumer mixin in front."""


async def test_faust_commits_crawl_after_a_gap_over_delivered_records() -> None:
    """The pinned behaviour: the offsets of the gap enter the acknowledged list a second time and
    each commit round passes one or two of them (fails the day faust-streaming lists each offset
    once; the patch may go then)."""
    faust = _Offsets()
    await faust.race()
    rounds = faust.commit_rounds(5)
    assert rounds[:5] == [14, 15, 16, 17, 18], rounds
    assert faust._committed_offset[RAW] < END


async def test_the_worker_commits_every_processed_record_in_one_round() -> None:
    worker = _WorkerOffsets()
    await worker.race()
    assert not worker._gap[RAW]
    assert worker.commit_rounds(2) == [END]


def test_the_worker_consumer_takes_no_offsets_as_skipped() -> None:
    assert FetchingTransport.Consumer._add_gap is DenseOffsets._add_gap
