"""Where each partition's log ends, asked of the broker rather than of the consumer.

The worker's consumer (aiokafka, under Faust) knows a partition's high watermark only from its
own fetch responses: a partition it has stopped fetching keeps the figure of its last fetch for
good. The lag metric and the stall watch (:mod:`connector.worker.stalls`) read that figure, so a
partition left unfetched looked caught up (lag 0, nothing waiting) while records waited in Kafka.
:class:`LogEnds` asks the broker (ListOffsets, through librdkafka, with the cluster's security
settings) and keeps the answers in :attr:`LogEnds.latest`.

Patch: compensates for aiokafka's high watermark going stale for a partition Faust stopped fetching
(faust-streaming issues 629 and 471). No private names. Pinned by
``tests/integration/test_log_ends_kafka.py``. Remove with :mod:`.partitions`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from typing import Any, Final

from confluent_kafka import Consumer, TopicPartition

log = logging.getLogger(__name__)

_TIMEOUT_SECONDS: Final = 5.0

Partition = tuple[str, int]


class LogEnds:
    """The broker's high watermark of partitions; one librdkafka client, used from a thread.

    ``client_config``: librdkafka settings for the cluster (``Settings.kafka_client_config()``).
    The client never joins a group and never commits; its ``group.id`` is only there because
    librdkafka's consumer requires one.
    """

    def __init__(self, client_config: dict[str, str], group_id: str) -> None:
        self._config: dict[str, Any] = {
            **client_config,
            "group.id": group_id,
            "enable.auto.commit": "false",
        }
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()
        self.latest: dict[Partition, int] = {}
        """(topic, partition) -> high watermark, from the last :meth:`refresh` that got one."""

    async def refresh(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """Ask the broker where ``partitions`` end; the answers (partitions it could not tell
        are left out, and keep their earlier figure in :attr:`latest`)."""
        asked = sorted(set(partitions))
        if not asked:
            return {}
        ends = await asyncio.to_thread(self._ask, asked)
        self.latest.update(ends)
        return ends

    def _ask(self, partitions: list[Partition]) -> dict[Partition, int]:
        ends: dict[Partition, int] = {}
        if not self._lock.acquire(blocking=False):  # an earlier question is still out: skip
            return ends
        try:
            if self._consumer is None:
                self._consumer = Consumer(self._config)
            for topic, partition in partitions:
                try:
                    _, high = self._consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=_TIMEOUT_SECONDS, cached=False
                    )
                except Exception as exc:  # the broker is away, a partition moving: ask again later
                    log.debug("log end of %s[%d] not read: %r", topic, partition, exc)
                    break  # the others would most likely time out as well
                if isinstance(high, int) and high >= 0:
                    ends[(topic, partition)] = high
        finally:
            self._lock.release()
        return ends

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None


def furthest(*offsets: object) -> int | None:
    """The largest of ``offsets`` that are known (ints; None and anything else are unknown)."""
    known = [offset for offset in offsets if isinstance(offset, int)]
    return max(known) if known else None
