"""Faust's fetch loop records no skipped offsets: the connector's offsets are dense.

faust-streaming 0.15.3's ``Consumer._drain_messages`` takes a jump from its read offset to the
next record it hands over as offsets that will never come (transaction markers, compaction). It
records them with ``_add_gap``, and ``_new_offset`` merges them into the acknowledged offsets at
the next commit. At the end of a recovery, ``perform_seek`` waits on the consumer thread while
the fetch loop runs. It then moves the read offset back to the committed offset *after* records
fetched from there were already handed over. The next record looks like a jump over records
that were delivered, and their offsets enter the acknowledged list twice. ``_new_offset`` commits
only the first run of consecutive numbers, so the commit then moves by one or two offsets per
commit round (2.8 s): a partition with a few hundred records stays behind for many minutes, and
the list grows. Records that were in fact never delivered would be committed unprocessed.

The connector's topics are neither compacted nor transactional, so their offsets are dense and
a jump is never an offset that will not come. :class:`DenseOffsets` (a mixin of the worker's
consumer) records no such gap. Records a stream really skipped are found and read again by
:mod:`.gaps`, which registers them as acknowledged once processed.

Patch: robinhood/faust issues 559 and 625 (duplicate offsets in ``_acked`` after the read offset
is reset: commits stand still), faust-streaming issue 216 (recovery fetches before it seeks).
Private name: ``Consumer._add_gap``. Pinned by ``tests/unit/test_dense_offsets.py`` (Faust's own
``_new_offset`` on a gap over acknowledged offsets; the worker's consumer records none) and
``tests/integration/test_gap_commits_kafka.py`` (the partitions without the injected fault are
committed to their end). Remove when Faust no longer records gaps over offsets it delivered;
needed as long as no connector topic is written in transactions.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class DenseOffsets:
    """Mixin for a Faust consumer (module docstring)."""

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        log.debug(
            "%s[%d]: offsets %d-%d look skipped to Faust's fetch loop; not marked as committable",
            tp.topic,
            tp.partition,
            offset_from,
            offset_to,
        )
