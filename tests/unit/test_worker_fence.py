"""The freeze fence (connector.worker.patches.fence) with a fake clock, and the aggregator
behind it on the delivery core.

What it prevents, seen against a real broker (tests/reliability/test_reliability_stalled_worker.py):
a worker frozen with SIGSTOP past its session wrote its stale agent states after the worker that
took over, and the tables restored from the changelog lost events (35 of one agent's 299
evaluations).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from connector.worker.aggregates import events as score_events
from connector.worker.aggregates.aggregation import Aggregator
from connector.worker.aggregates.events import Evaluation
from connector.worker.aggregates.metrics import AggregateMetrics
from connector.worker.aggregates.record import AgentScoresCodec
from connector.worker.aggregates.state import Retention
from connector.worker.delivery import CoreHooks, DeliveryCore, StateWrite, TopicWrite, Write
from connector.worker.patches import fence as fence_module
from connector.worker.patches.fence import FreezeGuard, release_unwritten

DAY = 86_400_000
T0 = 20_000 * DAY


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.timer: Callable[[], None] = lambda: None
        self.on_sleep: Callable[[], None] = lambda: None

    def __call__(self) -> float:
        return self.now


@dataclass
class Group:
    rebalances: int = 0
    generation: int = 3


@dataclass(eq=False)
class Message:
    topic: str = "internal"
    key: bytes | None = None
    value: bytes | None = None
    partition: int = 0
    offset: int = 0
    generation_id: int | None = 3
    acked: bool = False


@dataclass(eq=False)
class Event:
    message: Message


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A fake monotonic clock; ``asyncio.sleep`` in the fence module advances it."""
    clock = Clock()

    async def sleep(seconds: float) -> None:  # the loop runs on: the ticker's timer too
        clock.on_sleep()
        end = clock.now + seconds
        while clock.now < end:
            clock.now = min(end, clock.now + 0.5)
            clock.timer()

    monkeypatch.setattr(fence_module.asyncio, "sleep", sleep)
    return clock


def guard_for(clock: Clock, group: Group) -> FreezeGuard:
    guard = FreezeGuard(
        threshold=2.0,
        settle=4.0,
        rebalances=lambda: group.rebalances,
        generation=lambda: group.generation,
        clock=clock,
    )
    clock.timer = guard.tick
    return guard


def ticking(guard: FreezeGuard, clock: Clock, seconds: float, every: float = 0.5) -> None:
    for _ in range(round(seconds / every)):
        clock.now += every
        guard.tick()


def test_for_app_derives_threshold_and_settle_from_the_session() -> None:
    class Conf:
        broker_session_timeout = 60.0
        broker_heartbeat_interval = 3.0

    class App:
        conf = Conf()
        rebalancing_count = 2
        consumer_generation_id = 7

    guard = FreezeGuard.for_app(App())
    assert (guard.threshold, guard.settle) == (20.0, 8.0)
    assert guard.tick_interval == 0.5


async def test_without_a_freeze_a_batch_writes_at_once(clock: Clock) -> None:
    group = Group()
    guard = guard_for(clock, group)
    ticking(guard, clock, 30)
    group.rebalances += 1  # an ordinary rebalance: the worker keeps its partitions until it rejoins
    before = clock.now
    assert await guard.may_write([Event(Message())])
    assert clock.now == before and guard.freezes == 0


async def test_the_first_tick_is_no_freeze(clock: Clock) -> None:
    guard = guard_for(clock, Group())
    clock.now += 100  # built long before the timers start
    guard.tick()
    assert guard.last_freeze is None


async def test_after_a_freeze_without_a_rebalance_the_batch_writes_after_settling(
    clock: Clock,
) -> None:
    guard = guard_for(clock, Group())
    ticking(guard, clock, 5)
    clock.now += 13  # SIGSTOP ... SIGCONT
    thawed = clock.now
    assert await guard.may_write([Event(Message())])
    assert clock.now == pytest.approx(thawed + guard.settle)
    assert guard.freezes == 1 and guard.last_freeze is not None
    assert guard.last_freeze.seconds == pytest.approx(13)


async def test_a_rebalance_after_a_freeze_fences_records_fetched_before_it(clock: Clock) -> None:
    group = Group(rebalances=1, generation=3)
    guard = guard_for(clock, group)
    ticking(guard, clock, 5)
    clock.now += 13
    guard.tick()  # the timer notices the freeze first, this time
    group.rebalances += 1  # the first heartbeat after the freeze: expelled, rejoining
    old = [Event(Message(generation_id=3)), Event(Message(generation_id=3))]
    assert not await guard.may_write(old)
    group.generation = 5  # rejoined: records fetched now belong to the new assignment
    assert await guard.may_write([Event(Message(generation_id=5))])
    assert not await guard.may_write([Event(Message(generation_id=5)), *old])


async def test_a_freeze_the_timer_has_not_noticed_yet_is_noticed_by_the_writer(
    clock: Clock,
) -> None:
    group = Group()
    guard = guard_for(clock, group)
    ticking(guard, clock, 5)
    clock.now += 13  # the agent runs before the timer after SIGCONT

    def heartbeat_fails() -> None:  # while the writer waits: expelled, rejoining
        group.rebalances = 1

    clock.on_sleep = heartbeat_fails
    assert not await guard.may_write([Event(Message(generation_id=3))])
    assert guard.freezes == 1


def test_release_unwritten_marks_records_done_without_acknowledging_them() -> None:
    events = [Event(Message()), Event(Message())]
    release_unwritten(events)
    assert all(event.message.acked for event in events)


# --- the aggregator behind the fence -----------------------------------------------------------


class Writes:
    def __init__(self) -> None:
        self.log: list[tuple[str, bytes]] = []

    def delivered(self, kind: str, key: bytes) -> Awaitable[Any]:
        self.log.append((kind, key))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class Store:
    def __init__(self, writes: Writes) -> None:
        self.local: dict[bytes, bytes] = {}
        self.writes = writes

    def get(self, event: Any, key: bytes) -> bytes | None:
        return self.local.get(key)

    async def send(self, write: Write) -> Awaitable[Any]:
        if isinstance(write, StateWrite):
            self.local[write.key] = write.value
            return self.writes.delivered("changelog", write.key)
        assert isinstance(write, TopicWrite) and write.key is not None
        return self.writes.delivered(write.topic, write.key)


def batch() -> list[Event]:
    evaluation = Evaluation("a", "e1", T0, 10.0, 0.1, "MANUAL", "Care", "A")
    return [Event(Message(key=b"a", value=score_events.encode(evaluation)))]


@pytest.mark.parametrize("allowed", [True, False])
async def test_the_aggregator_writes_and_acknowledges_only_what_the_fence_allows(
    allowed: bool,
) -> None:
    writes = Writes()
    store = Store(writes)
    metrics = AggregateMetrics(CollectorRegistry())
    acked: list[Any] = []

    async def fence(events: Any) -> bool:
        return allowed

    async def ack(event: Any) -> None:
        acked.append(event)

    handler = Aggregator(
        store,
        "agent-scores",
        "agent_scores",
        AgentScoresCodec(),
        Retention(31 * DAY, 3000),
        metrics,
    )
    hooks = CoreHooks(fenced=lambda count: metrics.fenced.inc())
    aggregator = DeliveryCore(
        "aggregate", handler, store, stopping=lambda: False, fence=fence, hooks=hooks
    )
    events = batch()
    await aggregator.process(events, ack)
    if allowed:
        assert writes.log == [("changelog", b"a"), ("agent_scores", b"a")]
        assert acked == events and not events[0].message.acked
        assert metrics.fenced._value.get() == 0
    else:
        assert writes.log == [] and store.local == {} and acked == []
        assert events[0].message.acked  # released, so a rebalance does not wait for it
        assert metrics.fenced._value.get() == 1
