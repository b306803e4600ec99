"""Which events already have their typed record: one typed record per event despite Zoom's retries.

State: a Faust table (``dedup``), event identity -> ``[first_seen_ms, partition]``, where
``first_seen_ms`` is the timestamp of the raw record that produced the typed record (when the source
received it) and ``partition`` the raw partition it came from.

* Locality: every retry of an event has the same body, so the same raw key, so the same raw
  partition. Faust writes a table's changelog to the partition of the event being processed
  (``Collection.partition_for_key``: ``current_event().message.partition``), and the changelog has
  as many partitions as the raw topic, so the entry for an event always lives with the raw partition
  that sees its retries, also after a rebalance or a restart (Faust restores the table from the
  changelog before the agent runs).
* Retention, measured in raw record time, not wall-clock time: an entry counts while the retry's
  record is at most ``WORKER_DEDUP_RETENTION_SECONDS`` (default 2 h; Zoom's last retry comes about
  90 minutes after the first attempt) younger than the first; a timer deletes entries older than
  that relative to the newest record seen on their partition (the partition's stream time), writing
  a tombstone to the (compacted) changelog. Stream time rather than wall-clock time, so a worker
  catching up on a backlog after an outage does not forget events whose retries are still in the
  backlog; and a partition without traffic keeps its few entries until traffic resumes.
* Only a typed record marks an event seen, and only once Kafka acknowledged it:
  :meth:`DedupIndex.mark` gives the entry as a write that follows the typed record's
  (:class:`~connector.worker.delivery.Plan`), stored locally and in the changelog by the sink
  before the raw record is acknowledged. A dead-lettered event is not marked: once its cause is
  fixed, replaying it must produce the typed record.

Why not a windowed table: a retry 90 minutes later falls in a later tumbling window, so a lookup
would have to probe every window of the retention; hopping windows would write every entry once per
window step. A plain table plus a purge timer writes each entry twice (set, tombstone).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, MutableMapping
from typing import Any, Final

from connector.worker.delivery import StateWrite

log = logging.getLogger(__name__)

TABLE: Final = "dedup"
"""The Faust table's name (its changelog: ``<WORKER_ID>-dedup-changelog``)."""

Tombstone = Callable[[int, str], object]
"""Writes a deletion of ``key`` to the changelog partition ``partition``."""


class DedupIndex:
    """First-seen markers of events, with a bounded retention.

    ``local`` is the Faust table's local store (``table.data``): read here directly (while the
    raw record is the current event, see :func:`connector.worker.patches.processing`; the table's
    own ``get`` adds only a monitor count and a ``KeyError`` per new event), purged without a
    changelog record per key read. Its entries come from :meth:`mark`, and the sink stores and
    writes them; ``tombstone`` deletes a key from the changelog.
    """

    def __init__(
        self,
        local: MutableMapping[str, Any],
        tombstone: Tombstone,
        retention_ms: int,
    ) -> None:
        if retention_ms <= 0:
            raise ValueError("the deduplication retention must be positive")
        self._local = local
        self._tombstone = tombstone
        self.retention_ms = retention_ms
        self._stream_time: dict[int, int] = {}
        self.size = 0
        """How many entries the last :meth:`purge` left."""

    def observe(self, partition: int, timestamp_ms: int | None) -> None:
        """Advance ``partition``'s stream time to a record's timestamp."""
        if timestamp_ms is not None and timestamp_ms > self._stream_time.get(partition, -1):
            self._stream_time[partition] = timestamp_ms

    def is_duplicate(self, event_id: str, timestamp_ms: int | None) -> bool:
        """Whether ``event_id`` had its typed record written within the retention."""
        first_seen = _first_seen(self._local.get(event_id))
        return first_seen is not None and self.within_retention(first_seen, timestamp_ms)

    def within_retention(self, first_seen_ms: int | None, timestamp_ms: int | None) -> bool:
        """Whether a record at ``timestamp_ms`` repeats one at ``first_seen_ms`` (unknown: yes)."""
        if first_seen_ms is None or timestamp_ms is None:
            return True
        return timestamp_ms - first_seen_ms <= self.retention_ms

    def mark(
        self, event_id: str, partition: int, timestamp_ms: int | None, record: Any
    ) -> StateWrite:
        """The entry marking ``event_id`` seen, to write once its typed record is stored;
        ``record``: the raw record (Faust event) it comes from."""
        first_seen = timestamp_ms if timestamp_ms is not None else self._stream_time.get(partition)
        entry = [first_seen if first_seen is not None else 0, partition]
        return StateWrite(TABLE, partition, event_id, entry, record)

    def purge(self, active_partitions: Collection[int] | None = None) -> int:
        """Delete entries past the retention on their partition; returns how many.

        ``active_partitions``: the raw partitions this worker owns now (``None``: all it has seen).
        Entries of other partitions are left to their owner.
        """
        expired: list[tuple[str, int]] = []
        kept = 0
        for key, value in list(self._local.items()):
            entry = _entry(value)
            if entry is None:
                log.warning("dropping malformed deduplication entry key=%r value=%r", key, value)
                self._local.pop(key, None)
                continue
            first_seen, partition = entry
            stream_time = self._stream_time.get(partition)
            if (
                (active_partitions is None or partition in active_partitions)
                and stream_time is not None
                and stream_time - first_seen > self.retention_ms
            ):
                expired.append((key, partition))
            else:
                kept += 1
        for key, partition in expired:
            self._tombstone(partition, key)
            self._local.pop(key, None)
        self.size = kept
        return len(expired)


def _entry(value: Any) -> tuple[int, int] | None:
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    return None


def _first_seen(value: Any) -> int | None:
    entry = _entry(value)
    return None if entry is None else entry[0]
