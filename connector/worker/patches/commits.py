"""Offset commits Faust counts as made although Kafka refused them, made again.

faust-streaming notes an offset as committed when it *asked* for the commit, whatever Kafka
answered: ``Consumer._commit_offsets`` updates ``_committed_offset`` even when its aiokafka driver
returned ``False`` (the commit refused because the group rebalanced meanwhile), and it only ever
commits an offset beyond the one it noted. A quiet partition's committed offset then stays behind
for as long as the worker runs, and its tail is processed again after every restart.

:class:`CommitKeeper` wraps the consumer's ``_commit_offsets`` (it notes the offsets of a commit
that returned ``False`` while Faust noted them as committed: *owed*) and ``commit`` (after each of
Faust's commit rounds it commits the owed offsets again, holding Faust's commit lock). An owed
offset is dropped when its partition is revoked or Faust's note moved on. Committing an owed
offset is always safe: Faust computed it from acknowledged records and flushed their writes first;
at worst the group's offset moves back and records are processed again, never lost. Each offset
committed again is logged and counted (``zoom_worker_commits_retried_total``).

Patch: no upstream issue found; the behaviour is ``Consumer._commit_offsets`` in faust-streaming
0.15.3. Private names: ``_commit_offsets``, ``_committed_offset``, ``_commit``, ``_commit_fut``.
Pinned by ``tests/unit/test_commits.py`` (Faust's own ``_commit_offsets`` against a refusing
driver) and ``tests/integration/test_commits_kafka.py`` (a refused commit against the real broker,
with a control). Remove when Faust keeps offsets whose commit Kafka refused as not committed.
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
