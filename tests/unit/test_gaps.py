"""Offset gaps in what a stream delivers, and the records read again to fill them."""

from __future__ import annotations

import time
from typing import Any

import pytest
from faust.types import TP

from connector.worker.patches.gaps import (
    Gap,
    OffsetGaps,
    Record,
    RefetchedEvent,
    Refetcher,
    Start,
    acknowledge,
    refill,
    settle,
)
from tests.faust_fakes import FakeEvent, FakeMessage, FaustOffsets


def _event(
    partition: int, offset: int, generation_id: int | None = 1, topic: str = "t"
) -> FakeEvent:
    message = FakeMessage(
        partition=partition, offset=offset, generation_id=generation_id, topic=topic
    )
    return FakeEvent(message)


def _events(*offsets: int, partition: int = 0, generation: int | None = 1) -> list[FakeEvent]:
    return [_event(partition, o, generation) for o in offsets]


def _observe(gaps: OffsetGaps, events: list[FakeEvent]) -> list[Gap]:
    return gaps.observe(e.message for e in events)


def test_dense_offsets_have_no_gap() -> None:
    gaps = OffsetGaps()
    assert _observe(gaps, _events(5, 6, 7)) == []
    assert _observe(gaps, _events(8, 9)) == []


def test_a_jump_within_a_generation_is_a_gap() -> None:
    gaps = OffsetGaps()
    assert _observe(gaps, _events(10, 11, 12)) == []
    assert _observe(gaps, _events(13, 15, 16)) == [Gap("t", 0, 14, 15)]
    assert _observe(gaps, _events(20)) == [Gap("t", 0, 17, 20)]
    assert len(Gap("t", 0, 17, 20)) == 3


def test_partitions_and_topics_are_counted_apart_and_order_inside_a_batch_does_not_matter() -> None:
    gaps = OffsetGaps()
    first = _events(3, 1, 2) + _events(7, partition=1)
    assert _observe(gaps, first) == []
    later = _events(4, partition=0) + _events(9, partition=1)
    later += [_event(1, 100, topic="other")]
    assert _observe(gaps, later) == [Gap("t", 1, 8, 9)]


def test_a_partition_kept_into_the_next_generation_must_resume_where_it_stopped() -> None:
    gaps = OffsetGaps()
    _observe(gaps, _events(10, 11, generation=4))
    # Faust acknowledged 12..134 undelivered; the new generation starts at the committed 135
    assert _observe(gaps, _events(135, 136, generation=5)) == [Gap("t", 0, 12, 135)]


def test_after_a_longer_absence_the_count_starts_again() -> None:
    gaps = OffsetGaps()
    _observe(gaps, _events(10, 11, generation=4))
    # generation 5 may have given the partition to another worker
    assert _observe(gaps, _events(500, generation=6)) == []
    assert _observe(gaps, _events(501, 503, generation=6)) == [Gap("t", 0, 502, 503)]


def test_reading_again_in_the_next_generation_starts_a_new_count() -> None:
    """After a rebalance the kept partition is read again from the committed offset; what Faust
    leaves out after it is for the committed offset to show (refill), as at a takeover."""
    gaps = OffsetGaps()
    _observe(gaps, _events(10, 11, 12, generation=4))
    assert _observe(gaps, _events(8, 9, generation=5)) == [] and gaps.started == [Start("t", 0, 8)]
    assert _observe(gaps, _events(11, generation=5)) == [Gap("t", 0, 10, 11)]
    assert gaps.started == []


def test_a_seek_back_is_not_a_gap() -> None:
    gaps = OffsetGaps()
    _observe(gaps, _events(10, 11, 12))
    assert _observe(gaps, _events(5, 6)) == []
    assert _observe(gaps, _events(13)) == []


class _Refetcher:
    def __init__(self, stands: dict[tuple[str, int], int] | None = None) -> None:
        self.asked: list[Gap] = []
        self.stands = stands or {}
        self.stands_asked: list[list[tuple[str, int]]] = []
        self.processed_records: list[Record] = []

    async def fetch(self, gap: Gap) -> list[Record]:
        self.asked.append(gap)
        return [
            Record(gap.topic, gap.partition, o, b"k", b"v%d" % o) for o in range(gap.start, gap.end)
        ]

    async def start_offsets(self, partitions: Any) -> dict[tuple[str, int], int]:
        self.stands_asked.append(list(partitions))
        return {p: self.stands[p] for p in partitions if p in self.stands}

    async def processed(self, records: Any) -> None:
        self.processed_records.extend(records)


async def test_refill_puts_the_missing_records_in_front() -> None:
    gaps, refetcher = OffsetGaps(), _Refetcher()
    first = _events(1, 2)
    assert await refill(first, gaps, refetcher) == first
    batch = _events(5, 6)
    received: list[Any] = await refill(batch, gaps, refetcher)
    assert refetcher.asked == [Gap("t", 0, 3, 5)]
    assert [type(e) for e in received[:2]] == [RefetchedEvent, RefetchedEvent]
    assert [e.message.offset for e in received] == [3, 4, 5, 6]
    assert received[2:] == batch
    assert received[0].message.value == b"v3"


async def test_without_a_refetcher_gaps_are_only_tracked() -> None:
    gaps = OffsetGaps()
    await refill(_events(1), gaps, None)
    batch = _events(4)
    assert await refill(batch, gaps, None) == batch


def test_a_partition_seen_for_the_first_time_or_after_an_absence_starts_a_count() -> None:
    gaps = OffsetGaps()
    _observe(gaps, _events(10, 11))
    assert [(s.topic, s.partition, s.offset) for s in gaps.started] == [("t", 0, 10)]
    _observe(gaps, _events(12))
    assert gaps.started == []


async def test_a_new_owner_beginning_past_the_groups_position_reads_the_records_between() -> None:
    # the group stands at offset 3 (committed, or the log's start): the stream began at 7
    refetcher = _Refetcher(stands={("t", 0): 3})
    batch = _events(7, 8)
    received: list[Any] = await refill(batch, OffsetGaps(), refetcher)
    assert refetcher.asked == [Gap("t", 0, 3, 7)]
    assert [e.message.offset for e in received] == [3, 4, 5, 6, 7, 8]


async def test_a_new_owner_beginning_where_the_group_stands_reads_nothing_again() -> None:
    refetcher = _Refetcher(stands={("t", 0): 7})
    gaps = OffsetGaps()
    batch = _events(7, 8)
    assert await refill(batch, gaps, refetcher) == batch
    assert refetcher.asked == []
    # the group is asked once per new start, not per batch
    assert await refill(_events(9), gaps, refetcher) is not None
    assert refetcher.stands_asked == [[("t", 0)]]


class _HungRefetcher(Refetcher):
    """A Refetcher whose librdkafka calls never return in time (a client blocking past its own
    timeouts, as on close)."""

    def _start_offsets(self, partitions: Any) -> dict[tuple[str, int], int]:
        time.sleep(2)
        return {("raw", 0): 3}

    def _fetch(self, gap: Gap) -> list[Record]:
        time.sleep(2)
        return [Record("raw", 0, 0, None, b"late")]


async def test_an_agent_never_waits_for_good_on_a_refetch(caplog: pytest.LogCaptureFixture) -> None:
    refetcher = _HungRefetcher({"bootstrap.servers": "localhost:9092"}, "w", timeout=0.2)
    started = time.monotonic()
    assert await refetcher.start_offsets([("raw", 0)]) == {}
    assert await refetcher.fetch(Gap("raw", 0, 0, 1)) == []
    assert time.monotonic() - started < 1.5
    assert "was not read within 0 s; going on without the start check" in caplog.text
    assert "did not end within 0 s; going on without it" in caplog.text


# --- the offset commits pass the records read again -------------------------------------------


TAKEN = TP("raw", 1)


async def test_faust_never_commits_past_records_it_did_not_deliver() -> None:
    """The pinned behaviour: a taken-over partition's commits stand still for good (fails the day
    faust-streaming changes it, and the acknowledgement below may be dropped)."""
    faust = FaustOffsets({TAKEN}, {TAKEN: 192})  # the group's committed offset
    faust.acknowledge(TAKEN, *range(204, 230))  # the stream delivered 204 on; 192-203 read again
    assert faust._new_offset(TAKEN) is None
    faust.acknowledge(TAKEN, *range(230, 260))
    assert faust._new_offset(TAKEN) is None


async def test_records_read_again_and_processed_let_the_commits_pass() -> None:
    faust = FaustOffsets({TAKEN}, {TAKEN: 192})
    faust.acknowledge(TAKEN, *range(204, 230))
    again = [Record("raw", 1, o, b"k", b"v") for o in (*range(192, 200), *range(200, 204))]
    await acknowledge(faust, again)
    assert faust._new_offset(TAKEN) == 230  # the next commit: everything processed


async def test_only_assigned_partitions_and_whole_ranges_are_acknowledged() -> None:
    kept, gone = TP("raw", 0), TP("raw", 2)
    faust = FaustOffsets({kept}, {kept: 10, gone: 10})
    faust.acknowledge(kept, 14, 15, 16)
    await acknowledge(faust, [Record("raw", 0, o, None, None) for o in (10, 11, 13, 12)])
    await acknowledge(faust, [Record("raw", 2, o, None, None) for o in (10, 11)])
    assert gone not in faust._acked  # its new owner commits it
    assert faust._new_offset(kept) == 17


async def test_records_read_again_and_delivered_too_are_registered_once() -> None:
    """A record read again that the stream also delivers (it was only late) is listed once:
    Faust's next commit passes everything at once."""
    faust = FaustOffsets({TAKEN}, {TAKEN: 192})
    faust.acknowledge(TAKEN, *range(196, 230))  # the stream delivered 196 on, late
    await acknowledge(faust, [Record("raw", 1, o, None, None) for o in range(192, 204)])
    faust.acknowledge(TAKEN, *range(200, 204))  # delivered once more after a seek
    assert sorted(faust._acked[TAKEN]) == list(range(192, 230))
    assert faust._new_offset(TAKEN) == 230


async def test_records_below_the_committed_offset_are_not_registered() -> None:
    faust = FaustOffsets({TAKEN}, {TAKEN: 200})
    await acknowledge(faust, [Record("raw", 1, o, None, None) for o in range(196, 204)])
    assert sorted(faust._acked[TAKEN]) == list(range(200, 204))
    assert faust._new_offset(TAKEN) == 204


async def test_a_refilled_batch_reports_its_records_read_again_once_processed() -> None:
    gaps, refetcher = OffsetGaps(), _Refetcher()
    await refill(_events(1, 2), gaps, refetcher)
    received = await refill(_events(5, 6), gaps, refetcher)
    await settle(received, refetcher)
    assert [r.offset for r in refetcher.processed_records] == [3, 4]
    await settle(await refill(_events(7), gaps, refetcher), refetcher)  # nothing read again
    assert [r.offset for r in refetcher.processed_records] == [3, 4]
