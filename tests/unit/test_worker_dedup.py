"""The deduplication index: retries recognised within the retention, purged after it."""

from __future__ import annotations

from typing import Any

import pytest

from connector.worker.dedup import TABLE, DedupIndex

HOUR_MS = 3600 * 1000


class _Changelog:
    def __init__(self) -> None:
        self.tombstones: list[tuple[int, str]] = []

    def __call__(self, partition: int, key: str) -> None:
        self.tombstones.append((partition, key))


def _index(retention_ms: int = 2 * HOUR_MS) -> tuple[DedupIndex, dict[str, Any], _Changelog]:
    store: dict[str, Any] = {}
    changelog = _Changelog()
    return DedupIndex(store, changelog, retention_ms), store, changelog


def _remember(
    index: DedupIndex, store: dict[str, Any], event_id: str, partition: int, at: int | None
) -> None:
    """What the sink does with a mark once the event's typed record is stored."""
    mark = index.mark(event_id, partition, at, record=None)
    assert (mark.table, mark.partition) == (TABLE, partition)
    store[mark.key] = mark.value


def test_a_remembered_event_is_a_duplicate_within_the_retention() -> None:
    index, store, _ = _index()
    assert not index.is_duplicate("e1", 1_000)
    _remember(index, store, "e1", 4, 1_000)
    assert store["e1"] == [1_000, 4]
    assert index.is_duplicate("e1", 1_000 + 90 * 60 * 1000)  # Zoom's last retry, 90 min later
    assert index.is_duplicate("e1", 1_000 + 2 * HOUR_MS)
    assert not index.is_duplicate("e1", 1_000 + 2 * HOUR_MS + 1)
    assert not index.is_duplicate("e2", 1_000)


def test_a_mark_without_a_timestamp_takes_the_partitions_stream_time() -> None:
    index, store, _ = _index()
    index.observe(2, 5_000)
    assert index.mark("e1", 2, None, record=None).value == [5_000, 2]
    assert index.mark("e2", 3, None, record=None).value == [0, 3]  # nothing seen there yet
    assert not store  # a mark is only a write: the sink stores it


def test_purge_uses_each_partitions_stream_time() -> None:
    index, store, changelog = _index()
    index.observe(0, 0)
    _remember(index, store, "old-0", 0, 0)
    _remember(index, store, "new-0", 0, HOUR_MS)
    index.observe(1, 0)
    _remember(index, store, "old-1", 1, 0)
    # partition 0 moves on 2 h + 1 ms, partition 1 (a backlog, or quiet) does not
    index.observe(0, 2 * HOUR_MS + 1)
    assert index.purge() == 1
    assert changelog.tombstones == [(0, "old-0")]
    assert set(store) == {"new-0", "old-1"}
    assert index.size == 2
    # stream time never goes back
    index.observe(0, 5)
    assert index.purge() == 0


def test_purge_leaves_partitions_owned_elsewhere() -> None:
    index, store, changelog = _index()
    _remember(index, store, "a", 3, 0)
    index.observe(3, 10 * HOUR_MS)
    assert index.purge(active_partitions={0, 1}) == 0
    assert index.purge(active_partitions={3}) == 1
    assert changelog.tombstones == [(3, "a")] and not store


def test_malformed_entries_are_dropped_locally() -> None:
    index, store, changelog = _index()
    store["bad"] = "not an entry"
    assert not index.is_duplicate("bad", 0)
    index.purge()
    assert "bad" not in store and changelog.tombstones == []


def test_retention_must_be_positive() -> None:
    with pytest.raises(ValueError):
        DedupIndex({}, lambda p, k: None, 0)
