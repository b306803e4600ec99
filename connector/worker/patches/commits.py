"""Offset commits Faust counts as made although Kafka refused them, made again.

faust-streaming notes an offset as committed when it *asked* for the commit, whatever Kafka
answered: ``Consumer._commit_offsets`` updates its ``_committed_offset`` after the commit call
even when that call returned ``False``, which is what its aiokafka driver returns when the commit
was refused because the group rebalanced meanwhile (``CommitFailedError``: rebalance in
progress, illegal generation, unknown member). Its list of acknowledged offsets was emptied for
that commit already, and it only commits an offset beyond the one it noted: so it never asks
again. A rebalance clears the note and reads the group's committed offset anew, but a commit that
was under way across the rebalance lands its note *after* that (the likeliest cause of a CI
failure, where a worker's last commit coincided with another worker rejoining). If no later
record comes on the partition, the group's committed offset stays behind for as long as the
worker runs, and also after it stops gracefully (Faust's final commit has nothing new to
commit). Nothing is lost: the next owner processes the tail again, and the deduplication table
drops it, but the re-read grows with the tail and happens at every restart.

:class:`CommitKeeper` wraps two methods of the Faust consumer: ``_commit_offsets`` (it notes the
offsets of a commit that returned ``False`` while Faust noted them as committed: *owed*) and
``commit`` (after each of Faust's commit rounds, every ``broker_commit_interval`` and when the
worker stops, it commits the owed offsets again). An owed offset is dropped when its partition
is revoked (the next owner starts at the group's committed offset, and Faust forgets its note) or
when Faust's note moved on (a later commit). The commit is made while Faust's commit lock is
held (the future Faust's ``commit`` waits on), so it never overtakes a later commit of Faust's.
Committing an owed offset is always safe: Faust computed it from records it had processed and
acknowledged, and flushed their writes first; a commit made while the group rebalances is
refused by Kafka (stale generation) and tried again at the next round. At worst (the partition
went to another worker that committed further, and came back, all while a commit was under way)
the group's offset moves back and records are processed again: at-least-once, never a loss.

Each offset committed again is logged and counted (``zoom_worker_commits_retried_total``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)


class CommitKeeper:
    """Keeps what Faust noted as committed and what the group has in step (see the module).

    ``consumer``: Faust's consumer (``app.consumer``); ``on_retried``: called with how many
    offsets a retry committed.
    """

    def __init__(
        self, consumer: Any, on_retried: Callable[[int], None] = lambda count: None
    ) -> None:
        self._consumer = consumer
        self._on_retried = on_retried
        self.owed: dict[Any, int] = {}
        """Partition -> offset Faust noted as committed although the commit failed."""

    def install(self) -> None:
        """Wrap the consumer's ``_commit_offsets`` and ``commit`` (instance attributes)."""
        consumer = self._consumer
        commit_offsets = consumer._commit_offsets
        commit = consumer.commit

        async def _commit_offsets(offsets: Mapping[Any, int], *args: Any, **kwargs: Any) -> bool:
            done: bool = await commit_offsets(offsets, *args, **kwargs)
            if not done:
                self.note_failed(offsets)
            return done

        async def _commit(*args: Any, **kwargs: Any) -> bool:
            done: bool = await commit(*args, **kwargs)
            if self.owed:
                try:
                    await self.retry()
                except Exception as exc:  # never fail Faust's commit round over a retry
                    log.warning("owed offset commits not retried: %r", exc)
            return done

        consumer._commit_offsets = _commit_offsets
        consumer.commit = _commit

    def note_failed(self, offsets: Mapping[Any, int]) -> None:
        """A commit of ``offsets`` returned ``False``: owe those Faust noted as committed."""
        noted = self._consumer._committed_offset
        for tp, offset in offsets.items():
            if noted.get(tp) == offset:
                self.owed[tp] = offset

    def forget(self, revoked: Iterable[Any]) -> None:
        """Partitions taken away: their next owner starts at the group's committed offset."""
        for tp in revoked:
            self.owed.pop(tp, None)

    async def retry(self) -> int:
        """Commit the owed offsets still owned and still noted; how many were committed."""
        consumer = self._consumer
        async with _faust_commit_lock(consumer):
            assigned = consumer.assignment()
            noted = consumer._committed_offset
            for tp in [tp for tp, offset in self.owed.items() if noted.get(tp) != offset]:
                del self.owed[tp]  # Faust's note moved on: a later commit, or a rebalance
            due = {tp: offset for tp, offset in self.owed.items() if tp in assigned}
            if not due:
                return 0
            if not await consumer._commit(due):
                log.info("owed offset commits refused again, will retry: %s", _show(due))
                return 0
        for tp, offset in due.items():
            if self.owed.get(tp) == offset:
                del self.owed[tp]
        log.warning(
            "committed again offsets Kafka had refused at a rebalance (Faust noted them as"
            " committed and would not ask again): %s",
            _show(due),
        )
        self._on_retried(len(due))
        return len(due)


class _faust_commit_lock:
    """Faust's commit lock: ``Consumer.commit`` sets ``_commit_fut`` while it commits, and any
    other caller waits for that future and then skips its round. Held the same way here."""

    def __init__(self, consumer: Any) -> None:
        self._consumer = consumer
        self._future: asyncio.Future[None] | None = None

    async def __aenter__(self) -> None:
        consumer = self._consumer
        while (held := consumer._commit_fut) is not None and not held.done():
            try:
                await asyncio.shield(held)
            except asyncio.CancelledError:
                if not held.cancelled():  # this task was cancelled, not Faust's commit
                    raise
        self._future = asyncio.get_running_loop().create_future()
        consumer._commit_fut = self._future

    async def __aexit__(self, *exc_info: object) -> None:
        future, self._future = self._future, None
        if self._consumer._commit_fut is future:
            self._consumer._commit_fut = None
        if future is not None and not future.done():
            future.set_result(None)


def _show(offsets: Mapping[Any, int]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in offsets.items())
