"""Faust's fetcher hands each record to its stream without four asyncio tasks per record.

faust-streaming's ``Consumer._drain_messages`` awaits ``wait_first(callback(message),
suspend_flow.wait())`` for every record it fetched: ``mode``'s ``wait_first`` wraps both, and the
service's stopped and crashed events, in tasks and runs ``asyncio.wait`` on them, so a suspension
of the flow (a rebalance) can interrupt a hand-over that waits on a full stream queue. That costs
about a fifth of the worker's CPU (``docs/benchmarks.md``), though the hand-over almost always
completes at once.

:class:`QuickHandOver` (a mixin of the worker's consumer) runs the hand-over's first step itself.
If it completes, that is the result, with no task. If it blocks, the rest of it is raced against
the suspension exactly as before (:func:`_resumed` carries it on in a task), so a rebalance still
interrupts it. Any other ``wait_first`` is mode's own.

Patch: no upstream issue found; faust-streaming 0.15.3, ``transport/consumer.py``. Private names:
the call's shape (a coroutine, then ``suspend_flow.wait()``), and asyncio's
``Future._asyncio_future_blocking`` (the flag a task clears). Pinned by
``tests/unit/test_worker_handover.py``. Remove when Faust hands records over without a task each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Final

from mode.services import WaitResults

_EVENT_WAIT: Final = asyncio.Event.wait.__code__


class QuickHandOver:
    """Mixin for a Faust consumer (module docstring)."""

    suspend_flow: asyncio.Event

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        if not self._is_hand_over(coros, timeout):
            return await self._raced(*coros, timeout=timeout)
        hand_over, suspension = coros
        suspension.close()  # never started: a fresh one is made if it is needed
        if self.suspend_flow.is_set():
            return await self._raced(hand_over, self.suspend_flow.wait())
        try:
            waiting_on = hand_over.send(None)
        except StopIteration as done:
            return WaitResults([hand_over], [done.value], False)
        return await self._raced(_resumed(hand_over, waiting_on), self.suspend_flow.wait())

    async def _raced(self, *coros: Any, timeout: Any = None) -> WaitResults:
        """mode's own ``wait_first``."""
        results: WaitResults = await super().wait_first(*coros, timeout=timeout)  # type: ignore[misc]
        return results

    def _is_hand_over(self, coros: tuple[Any, ...], timeout: Any) -> bool:
        if timeout is not None or len(coros) != 2:
            return False
        first, second = coros
        return (
            asyncio.iscoroutine(first)
            and getattr(second, "cr_code", None) is _EVENT_WAIT
            and second.cr_frame is not None
            and second.cr_frame.f_locals.get("self") is self.suspend_flow
        )


async def _resumed(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    """Carry on ``coro``, which has run up to awaiting ``waiting_on`` (a future, or ``None`` for
    a bare yield), as a task would; a cancellation is thrown into it, so it cleans up."""
    while True:
        try:
            if waiting_on is None:
                await asyncio.sleep(0)
            else:
                # What a task does with the future a coroutine yields: clear the flag the
                # future set for it (awaiting a future that still has it set is refused).
                waiting_on._asyncio_future_blocking = False
                await waiting_on
        except BaseException as exc:  # cancelled, or the future failed: coro sees it
            try:
                waiting_on = coro.throw(exc)
            except StopIteration as done:
                return done.value
            continue
        try:
            waiting_on = coro.send(None)
        except StopIteration as done:
            return done.value
