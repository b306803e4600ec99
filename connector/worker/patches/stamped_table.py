"""A Faust table of stamped agent states that skips stale changelog records when it applies them.

The aggregates stamp every state they write (:mod:`connector.worker.aggregates.stamps`); a restore
must not take a stale record (written late by a worker that lost the partition while frozen) for
the key's state. Faust offers no hook between reading a changelog batch and applying it, so
:class:`StampedTable` overrides ``Table.apply_changelog_batch``.

Patch: no upstream issue (Faust has no fencing of zombie table writes; its exactly-once mode, which
would fence them, has open bugs: faust-streaming issues 517, 323, 440). Pinned by
``tests/unit/test_aggregates_stamps.py`` (Faust's real memory table) and
``tests/integration/test_stale_states_kafka.py``. Remove when Faust fences a zombie's table writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import faust

from connector.worker.aggregates.stamps import Stamp, current_records
from connector.worker.patches.current_event import processing

log = logging.getLogger(__name__)


class StampedTable(faust.Table[Any, Any]):
    """A Faust table of stamped states that skips stale changelog records when it applies them.

    A restore over states the table already holds (Faust reads a memory table's changelog from
    the start again at a rebalance) skips the key's older records as well, until it meets the
    record of the state held: only a key whose *last* record applied was skipped has a stale
    last record. Those wait in :attr:`stale_keys` until the owner has written their held state
    again (:meth:`repaired`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stale_keys: dict[Any, int] = {}
        """Key -> its table partition, for keys whose last changelog record applied was stale."""

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        kept = current_records(batch, self._held, self._skip, self._current)
        super().apply_changelog_batch(kept)

    def _held(self, event: Any) -> bytes | None:
        # the record's partition is the key's (a RocksDB store reads that partition's database)
        with processing(event):
            value: bytes | None = self.data.get(event.key)
        return value

    def _current(self, event: Any) -> None:
        self.stale_keys.pop(event.key, None)

    def _skip(self, event: Any, stamp: Stamp, held: Stamp) -> None:
        message = event.message
        log.debug(
            "agent state record older than the state held, skipped partition=%d offset=%d"
            " stamp=%s held=%s",
            message.partition,
            message.offset,
            stamp,
            held,
        )
        self.stale_keys[event.key] = message.partition

    def repaired(self, keys: Sequence[Any]) -> None:
        for key in keys:
            self.stale_keys.pop(key, None)
