"""The stall watch's eyes and hands on Faust's consumer: partition views and remedies.

:class:`FaustPartitions` reads Faust's and aiokafka's bookkeeping to tell, per input partition,
the consumer's position, whether Faust asks Kafka for it, whether it is paused, whether its
agents' queues are full and how far its commits have come, and applies the remedies the watch
decides on (:mod:`connector.worker.stalls`): put a dropped partition back into Faust's fetch set,
seek an unfetched or unpositioned one.

Patch: faust-streaming issues 629 and 471 (a partition the worker owns left unread for good).
Private names: ``Consumer._active_partitions``, ``_paused_partitions``, ``_buffered_partitions``,
``_committed_offset``, ``_acked``, ``_commit_fut``, ``_thread._ensure_consumer()``, aiokafka's
``_fetcher._subscriptions``, the conductor's ``_tp_index``. Pinned by
``tests/unit/test_stalls.py`` (the views of a real Faust app's consumer),
``tests/integration/test_stalls_kafka.py`` and ``tests/integration/test_gap_commits_kafka.py`` (the
commit bookkeeping). Remove when Faust keeps fetching every assigned partition (the watch then only
reports).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import TopicPartition

from connector.worker.patches.log_ends import LogEnds, furthest
from connector.worker.stalls import Cause, PartitionView, Stall

GroupOffsets = Callable[[Sequence[tuple[str, int]]], Awaitable[dict[tuple[str, int], int]]]
"""Where the worker's group stands on partitions: committed offset, or the log's start
(:meth:`connector.worker.patches.gaps.Refetcher.start_offsets`)."""


class FaustPartitions:
    """:class:`PartitionView` s of a Faust app's consumer, and the remedies.

    Reads Faust's and aiokafka's bookkeeping (``Consumer._active_partitions``,
    ``_paused_partitions``, ``_buffered_partitions``, the conductor's map of partitions to
    channels, aiokafka's partition states): these are private, and checked against the pinned
    faust-streaming and aiokafka versions by the tests of this module.
    """

    def __init__(
        self,
        app: Any,
        log_ends: LogEnds | None = None,
        group_offsets: GroupOffsets | None = None,
    ) -> None:
        self._app = app
        self._log_ends = log_ends
        self._group_offsets = group_offsets

    async def refresh(self) -> None:
        """Ask the broker where the input partitions end (see :class:`LogEnds`): the consumer's
        own high watermark stands still while it does not fetch a partition, and a stall would
        then look like a partition with nothing waiting."""
        if self._log_ends is not None:
            await self._log_ends.refresh((tp.topic, tp.partition) for tp in self._inputs())

    def _inputs(self) -> list[Any]:
        changelogs = set(self._app.tables.changelog_topics)
        return [tp for tp in self._app.consumer.assignment() if tp.topic not in changelogs]

    def settled(self) -> bool:
        return not self.unsettled_by()

    def unsettled_by(self) -> list[str]:
        """What keeps the worker from being settled: ``rebalancing``, ``in_recovery`` (restoring
        tables), ``flow_inactive`` (Faust's consumer flow stopped); empty when settled."""
        app = self._app
        reasons = []
        if getattr(app, "rebalancing", False):
            reasons.append("rebalancing")
        if getattr(app, "in_recovery", False):
            reasons.append("in_recovery")
        if not getattr(app.consumer, "flow_active", True):
            reasons.append("flow_inactive")
        return reasons

    def views(self) -> list[PartitionView]:
        consumer = self._app.consumer
        active = consumer._active_partitions
        paused = consumer._paused_partitions
        channels_of = self._app.topics._tp_index
        ends = self._log_ends.latest if self._log_ends is not None else {}
        views = []
        for tp in self._inputs():
            queues = [channel.queue for channel in channels_of.get(tp, ())]
            state = _state(consumer, tp)
            acked = consumer._acked.get(tp, ())
            views.append(
                PartitionView(
                    topic=tp.topic,
                    partition=tp.partition,
                    position=_position(state),
                    highwater=furthest(consumer.highwater(tp), ends.get((tp.topic, tp.partition))),
                    requested=active is None or tp in active,
                    paused=tp in paused or bool(getattr(state, "paused", False)),
                    queues_full=any(q.qsize() >= q.pressure_high_size for q in queues),
                    committed=_int_or_none(consumer._committed_offset.get(tp)),
                    acknowledged=len(acked),
                    acknowledged_from=min(acked) if acked else None,
                )
            )
        return views

    def committing(self) -> bool:
        """A commit round of Faust's consumer is under way (one that never ends stops every
        later round: nothing is committed any more)."""
        running = self._app.consumer._commit_fut
        return running is not None and not running.done()

    async def remedy(self, stall: Stall) -> None:
        consumer = self._app.consumer
        view = stall.view
        tp = next(
            tp
            for tp in consumer.assignment()
            if tp.topic == view.topic and tp.partition == view.partition
        )
        if stall.cause is Cause.DROPPED:
            consumer._buffered_partitions.discard(tp)
            if consumer._active_partitions is not None:
                consumer._active_partitions.add(tp)
        elif stall.cause is Cause.UNFETCHED and view.position is not None:
            await consumer.seek(tp, view.position)
        elif stall.cause is Cause.UNPOSITIONED and self._group_offsets is not None:
            stands = await self._group_offsets([(view.topic, view.partition)])
            offset = stands.get((view.topic, view.partition))
            if offset is not None:
                await consumer.seek(tp, offset)


def _state(consumer: Any, tp: Any) -> Any:
    """aiokafka's state of ``tp`` (read without a call into the consumer's thread), or None."""
    aiokafka_consumer = consumer._thread._ensure_consumer()
    assignment = aiokafka_consumer._fetcher._subscriptions.subscription.assignment
    if assignment is None:
        return None
    return assignment.state_value(TopicPartition(tp.topic, tp.partition))


def _position(state: Any) -> int | None:
    if state is None or not state.has_valid_position:
        return None
    return _int_or_none(state.position)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None
