"""Records a Faust stream skipped, found by their offsets, read again from Kafka and registered.

At a rebalance faust-streaming 0.15.3 can acknowledge records its stream never delivered: records
fetched under the previous consumer generation are skipped *and acknowledged*, and the copies
fetched again after the seek are not delivered either; a partition that moves before the group's
first commit loses the records fetched while the generation changed. The offset is then committed
past them, which breaks at-least-once.

The connector's topics are neither compacted nor transactional, so offsets are dense: a jump in
the offsets a stream delivers for a partition (within a generation, or into the next one for a
partition kept) is a lost record, and so is a first delivered offset past where the group stands
(its committed offset, or the log's start). :class:`OffsetGaps` finds both; :class:`Refetcher`
reads the missing offsets with a plain consumer (no group membership, nothing committed);
:func:`refill` puts them in front of the batch; after the batch is acknowledged :func:`settle`
registers them with Faust's consumer (:func:`acknowledge`), without which Faust would never commit
the partition past them. Processing is idempotent, so a record that was only late does no harm.

Patch: faust-streaming PR 223 (records of an older consumer generation are skipped and
acknowledged) and issue 312 (commits across a gap in acknowledgements). Private names:
``Consumer._acked``, ``_acked_index``, ``_committed_offset`` (:func:`acknowledge`). Pinned by
``tests/unit/test_gaps.py``, ``tests/integration/test_gap_commits_kafka.py`` (an injected skip,
with a control that shows the commits stall without :func:`acknowledge`) and the kill/rebalance
reliability tests. Remove when faust-streaming delivers, or stops acknowledging, the records it
skips at a rebalance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, TopicPartition
from faust.types import TP

log = logging.getLogger(__name__)

_POLL_SECONDS: Final = 0.5
_REFETCH_TIMEOUT_SECONDS: Final = 30.0


@dataclass(frozen=True)
class Gap:
    """Offsets ``start`` to ``end - 1`` of a partition that a stream never delivered."""

    topic: str
    partition: int
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Start:
    """The first offset a stream delivered for a partition it did not have before."""

    topic: str
    partition: int
    offset: int


class OffsetGaps:
    """Tracks, per topic partition, the next offset a stream should deliver, and reports the
    ranges it skipped.

    After :meth:`observe`, :attr:`started` lists the partitions that call began a new count for
    (first seen, seen again after a longer absence, or read again from the committed offset in
    the next generation): whether records before their first offset were skipped is for the
    group's committed offset to say (:func:`refill`).
    """

    def __init__(self) -> None:
        self._next: dict[tuple[str, int], tuple[Any, int]] = {}
        self.started: list[Start] = []

    def observe(self, messages: Iterable[Any]) -> list[Gap]:
        """The gaps before ``messages`` (Faust messages: ``topic``, ``partition``, ``offset``,
        ``generation_id``), which then count as delivered.

        A jump counts within a consumer generation, and from one generation to the next: a
        partition kept across a rebalance resumes at its committed offset, which is past the last
        record delivered only if records were acknowledged undelivered (what Faust does to the
        records it fetched under the old generation). After a longer absence (another worker may
        have had the partition meanwhile), or when the next generation starts lower than
        expected (reading again from the committed offset), the first offset starts a new count.
        Within a generation an offset lower than expected (a seek back) is not a gap.
        """
        gaps: list[Gap] = []
        self.started = []
        ordered = sorted(messages, key=lambda m: (m.topic, m.partition, m.offset))
        for message in ordered:
            key = (message.topic, message.partition)
            generation = getattr(message, "generation_id", None)
            known = self._next.get(key)
            offset: int = message.offset
            if known is not None and _consecutive(known[0], generation):
                if generation != known[0] and offset < known[1]:
                    # the next generation reads the partition again from the group's committed
                    # offset: a new count, whose start the committed offset checks (Faust may
                    # have left out records after it again, and must be told of them)
                    self.started.append(Start(message.topic, message.partition, offset))
                else:
                    if offset > known[1]:
                        gaps.append(Gap(message.topic, message.partition, known[1], offset))
                    offset = max(offset, known[1] - 1)
            else:
                self.started.append(Start(message.topic, message.partition, offset))
            self._next[key] = (generation, offset + 1)
        return gaps


def _consecutive(before: Any, now: Any) -> bool:
    """Whether generation ``now`` is ``before`` or the one right after it."""
    if isinstance(before, int) and isinstance(now, int):
        return now in (before, before + 1)
    return bool(before == now)


@dataclass(frozen=True)
class Record:
    """A record read again: what a Faust message carries that the agents use."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    generation_id: Any = None
    timestamp: float | None = None
    """Seconds since the epoch, as Faust gives it."""
    headers: list[tuple[str, bytes]] | None = None


@dataclass(frozen=True)
class RefetchedEvent:
    """A refetched record where the agents expect a Faust event (never acknowledged)."""

    message: Record


class Fetcher(Protocol):
    """Reads the records of a gap again."""

    async def fetch(self, gap: Gap) -> list[Record]: ...

    async def start_offsets(
        self, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        """Where the worker's group stands on each (topic, partition): its committed offset, or
        the log's start when it has none (partitions it cannot tell are left out)."""
        ...

    async def processed(self, records: Sequence[Record]) -> None:
        """``records`` (read again) were processed: the offset commits may pass them."""
        ...


class Refetcher:
    """Reads ranges of offsets again with a plain consumer (librdkafka, the cluster's security
    settings), in a thread: gaps are rare, a blocking read is simplest."""

    def __init__(
        self,
        client_config: Mapping[str, Any],
        group_id: str,
        timeout: float = _REFETCH_TIMEOUT_SECONDS,
        consumer: Callable[[], Any] | None = None,
    ) -> None:
        """``client_config``: librdkafka's settings of the cluster; ``group_id``: the worker's
        consumer group (``WORKER_ID``); ``consumer``: the Faust consumer whose commits must pass
        the records read again."""
        self._consumer = consumer
        self._config = {
            **client_config,
            # required by librdkafka; never joined (assign, not subscribe), never committed to
            "group.id": f"{group_id}-refetch",
            "enable.auto.commit": "false",
            "enable.partition.eof": "true",
            "auto.offset.reset": "earliest",
        }
        self._timeout = timeout
        # librdkafka's calls take their own timeouts, but a client can still block past them (on
        # close, say); the agent waits at most this long for a whole read.
        self._bound = timeout * 1.5
        # the worker's own consumer group (Faust's app id), only asked for its committed offsets
        self._group_config = {**self._config, "group.id": group_id}

    async def fetch(self, gap: Gap) -> list[Record]:
        """The records of ``gap`` that could be read (none when the read did not end in time)."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._fetch, gap), self._bound)
        except TimeoutError:
            log.error(
                "refetching %s did not end within %.0f s; going on without it", gap, self._bound
            )
            return []

    async def start_offsets(
        self, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        """Where the group stands (see :class:`Fetcher`); empty when Kafka did not say in time:
        the check is a safety net, an agent never waits on it for good."""
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self._start_offsets, partitions), self._bound
            )
        except TimeoutError:
            log.warning(
                "where the group stands on %s was not read within %.0f s; going on without"
                " the start check",
                list(partitions),
                self._bound,
            )
            return {}

    async def processed(self, records: Sequence[Record]) -> None:
        """Tell Faust's consumer that ``records`` were processed (see :func:`acknowledge`)."""
        if self._consumer is not None and records:
            await acknowledge(self._consumer(), records)

    def _start_offsets(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        consumer = Consumer(self._group_config)  # never subscribes, never commits
        starts: dict[tuple[str, int], int] = {}
        try:
            asked = [TopicPartition(topic, partition) for topic, partition in partitions]
            for tp in consumer.committed(asked, timeout=self._timeout):
                if tp.error is not None:
                    log.warning("committed offset of %s[%d]: %s", tp.topic, tp.partition, tp.error)
                    continue
                low, _ = consumer.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), timeout=self._timeout
                )
                committed = tp.offset if tp.offset is not None and tp.offset >= 0 else low
                starts[(tp.topic, tp.partition)] = max(committed, low)
        except Exception as exc:  # the gap check is a safety net: never fail a batch for it
            log.warning("where the group stands could not be read: %r", exc)
        finally:
            consumer.close()
        return starts

    def _fetch(self, gap: Gap) -> list[Record]:
        consumer = Consumer(self._config)
        records: list[Record] = []
        try:
            consumer.assign([TopicPartition(gap.topic, gap.partition, gap.start)])
            deadline = time.monotonic() + self._timeout
            while time.monotonic() < deadline:
                message = consumer.poll(_POLL_SECONDS)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        break
                    log.warning("refetching %s: %s", gap, error)
                    continue
                offset = message.offset()
                if offset is None or offset >= gap.end:
                    break
                if offset >= gap.start:
                    records.append(_record(gap, offset, message))
                if offset == gap.end - 1:
                    break
        finally:
            consumer.close()
        return records


def _record(gap: Gap, offset: int, message: Any) -> Record:
    kind, timestamp_ms = message.timestamp()
    return Record(
        gap.topic,
        gap.partition,
        offset,
        message.key(),
        message.value(),
        timestamp=timestamp_ms / 1000 if kind != TIMESTAMP_NOT_AVAILABLE else None,
        headers=[(k, v if v is not None else b"") for k, v in (message.headers() or ())],
    )


async def refill(events: Sequence[Any], gaps: OffsetGaps, refetcher: Fetcher | None) -> list[Any]:
    """``events`` with, in front, the records the stream skipped before them (read again)."""
    found = gaps.observe(event.message for event in events)
    if refetcher is None:
        return list(events)
    if gaps.started:
        stands = await refetcher.start_offsets([(s.topic, s.partition) for s in gaps.started])
        for start in gaps.started:
            expected = stands.get((start.topic, start.partition))
            if expected is not None and expected < start.offset:
                found.append(Gap(start.topic, start.partition, expected, start.offset))
    if not found:
        return list(events)
    refetched: list[Any] = []
    for gap in found:
        records = await refetcher.fetch(gap)
        log.error(
            "the stream skipped %d record(s) of %s[%d] at offsets %d-%d (faust-streaming"
            " rebalance race); read %d of them again from Kafka",
            len(gap),
            gap.topic,
            gap.partition,
            gap.start,
            gap.end - 1,
            len(records),
        )
        refetched += [RefetchedEvent(record) for record in records]
    return [*refetched, *events]


async def settle(received: Sequence[Any], refetcher: Fetcher | None) -> None:
    """After a batch from :func:`refill` was processed and acknowledged: its records read again
    were processed too (:meth:`Fetcher.processed`)."""
    if refetcher is not None:
        await refetcher.processed([e.message for e in received if isinstance(e, RefetchedEvent)])


async def acknowledge(consumer: Any, records: Sequence[Record]) -> None:
    """Let the offset commits of Faust's ``consumer`` pass ``records``, read again and processed.

    faust-streaming 0.15.3 commits a partition through the offsets its streams acknowledged
    (``Consumer._new_offset``): from the group's committed offset on, up to the first offset not
    acknowledged, and not at all while the lowest acknowledged offset is more than one past the
    committed one. Records it never delivered (the records before a taken-over partition's first
    delivered offset) leave that hole for good: the partition's committed offset stands still
    however many records are processed after it, and every restart or rebalance processes them
    all again. Records read again are registered once processed, as ``Consumer.ack`` registers a
    record a stream acknowledged: each offset once (an offset listed twice holds the commits back,
    see :mod:`.dense_offsets`), none below the committed offset, and only on partitions still
    assigned (a partition gone meanwhile is committed by its new owner).
    """
    assigned = consumer.assignment()
    for record in records:
        tp = TP(record.topic, record.partition)
        if tp not in assigned:
            continue
        committed = consumer._committed_offset.get(tp)
        if committed is not None and record.offset < committed:
            continue
        registered = consumer._acked_index[tp]
        if record.offset not in registered:
            registered.add(record.offset)
            consumer._acked[tp].append(record.offset)
