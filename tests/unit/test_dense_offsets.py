"""Faust's fetch loop records no skipped offsets in the worker (:mod:`.patches.dense_offsets`).

The race: records 12 to 21 of a partition were handed over before the recovery's seek moved the
read offset back to the committed 12, so record 22 looks like a jump over 13 to 21 (Faust's
``_drain_messages`` then calls ``_add_gap(tp, 13, 22)``). Every record, 12 to 41, is processed
and acknowledged.
"""

from __future__ import annotations

from faust.types import TP

from connector.worker.patches.dense_offsets import DenseOffsets
from connector.worker.patches.fetching import FetchingTransport
from tests.faust_fakes import FaustOffsets

RAW = TP("raw", 0)
COMMITTED = 12
END = 42


class _Offsets(FaustOffsets):
    """Faust's bookkeeping of the partition (:class:`~tests.faust_fakes.FaustOffsets`)."""

    def __init__(self) -> None:
        super().__init__({RAW}, {RAW: COMMITTED})

    async def race(self) -> None:
        """The seek race, then every record acknowledged."""
        await self._add_gap(RAW, COMMITTED + 1, 22)
        self.acknowledge(RAW, *range(COMMITTED, END))

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
