"""Records handed to their stream without a task each, still interrupted by a suspended flow."""

from __future__ import annotations

import asyncio
import inspect
import re
from typing import Any

import mode
from faust.transport.consumer import Consumer as FaustConsumer

from connector.worker.patches.handover import QuickHandOver


class _Consumer(QuickHandOver, mode.Service):
    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()
        self.raced: list[int] = []

    async def _raced(self, *coros: Any, timeout: Any = None) -> Any:
        self.raced.append(len(coros))
        return await super()._raced(*coros, timeout=timeout)


async def _until(check: Any, what: str) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never: {what}")


def test_faust_still_hands_records_over_with_this_call() -> None:
    """The call the patch recognises; when Faust changes it, the patch has nothing to do."""
    source = inspect.getsource(FaustConsumer._drain_messages)
    assert re.search(
        r"wait_first\(\s*callback\(message\),\s*self\.suspend_flow\.wait\(\)\s*\)", source
    )


async def test_a_hand_over_that_completes_at_once_needs_no_race() -> None:
    consumer = _Consumer()

    async def hand_over() -> int:
        return 7

    result = await consumer.wait_first(hand_over(), consumer.suspend_flow.wait())
    assert result.results == [7] and not result.stopped
    assert consumer.raced == []


async def test_a_hand_over_that_blocks_is_raced_and_may_complete() -> None:
    consumer = _Consumer()
    space = asyncio.get_running_loop().create_future()

    async def hand_over() -> str:
        await space  # a full stream queue
        return "queued"

    waiting = asyncio.ensure_future(consumer.wait_first(hand_over(), consumer.suspend_flow.wait()))
    await _until(lambda: consumer.raced, "the race")
    space.set_result(None)
    result = await waiting
    assert result.results == ["queued"] and consumer.raced == [2]


async def test_a_suspended_flow_still_interrupts_a_blocked_hand_over() -> None:
    consumer = _Consumer()
    lock = asyncio.Lock()
    never = asyncio.get_running_loop().create_future()

    async def hand_over() -> None:
        async with lock:
            await never

    waiting = asyncio.ensure_future(consumer.wait_first(hand_over(), consumer.suspend_flow.wait()))
    await _until(lambda: consumer.raced, "the race")
    assert lock.locked()
    consumer.suspend_flow.set()  # a rebalance
    result = await waiting
    assert result.results == [True]  # the suspension won; Faust moves on
    await _until(lambda: not lock.locked(), "the hand-over cancelled and its lock released")
    assert never.cancelled()


async def test_with_the_flow_suspended_already_the_race_is_mode_s() -> None:
    consumer = _Consumer()
    consumer.suspend_flow.set()

    async def hand_over() -> int:
        return 1

    result = await consumer.wait_first(hand_over(), consumer.suspend_flow.wait())
    assert consumer.raced == [2] and True in result.results


async def test_other_waits_are_mode_s_own() -> None:
    consumer = _Consumer()
    other = asyncio.Event()
    other.set()

    async def work() -> int:
        return 3

    result = await consumer.wait_first(work(), other.wait())  # not the flow's suspension
    assert consumer.raced == [2] and 3 in result.results
    result = await consumer.wait_first(work(), timeout=1.0)
    assert consumer.raced == [2, 1] and result.results == [3]
