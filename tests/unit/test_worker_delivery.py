"""The delivery core alone, with a handler and a sink of the test's own: the order of writes and
acknowledgements, the one retry policy, refused records, the fence, stopping, and the driver's
errors that refuse a record (connector.worker.patches.refusals)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, NotLeaderForPartitionError
from confluent_kafka import KafkaError

from connector.kafka.batch_writer import WriteError, WriteTimeout
from connector.worker.delivery import (
    CoreHooks,
    DeliveryAborted,
    DeliveryCore,
    Plan,
    RetryPolicy,
    TopicWrite,
    Write,
)
from connector.worker.patches import refuses_record
from tests.faust_fakes import FakeEvent, FakeMessage


def _events(n: int, partition: int = 0, first: int = 0) -> list[FakeEvent]:
    return [
        FakeEvent(FakeMessage(topic="in", partition=partition, offset=first + i, value=b"%d" % i))
        for i in range(n)
    ]


@dataclass
class _Echo:
    """Writes each record's value to ``out``; a refused write becomes ``instead(write)``."""

    instead: Callable[[Write], Write | None] = lambda write: write
    refusals: list[tuple[Write, BaseException]] = field(default_factory=list)
    stored_at: list[float] = field(default_factory=list)

    def plan(self, records: Any) -> Plan:
        writes: list[Write] = [TopicWrite("out", b"k", r.message.value) for r in records]
        return Plan(writes, self.stored_at.append)

    def refused(self, write: Write, error: BaseException) -> Write | None:
        self.refusals.append((write, error))
        return self.instead(write)


@dataclass
class _Sink:
    """Acknowledges a write unless ``fail(write, attempt)`` gives an error to fail it with."""

    fail: Callable[[TopicWrite, int], BaseException | None] = lambda write, attempt: None
    sent: list[TopicWrite] = field(default_factory=list)
    stored: list[TopicWrite] = field(default_factory=list)
    attempts: dict[bytes | None, int] = field(default_factory=dict)

    async def send(self, write: Write) -> Awaitable[Any]:
        assert isinstance(write, TopicWrite)
        self.sent.append(write)
        attempt = self.attempts[write.value] = self.attempts.get(write.value, -1) + 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        error = self.fail(write, attempt)
        if error is None:
            self.stored.append(write)
            future.set_result(None)
        else:
            future.set_exception(error)
        return future


@dataclass
class _Acks:
    sink: _Sink
    acked: list[Any] = field(default_factory=list)
    stored_when_acked: list[int] = field(default_factory=list)

    async def __call__(self, event: Any) -> None:
        self.acked.append(event)
        self.stored_when_acked.append(len(self.sink.stored))


def _core(handler: _Echo, sink: _Sink, **options: Any) -> DeliveryCore:
    fast = RetryPolicy(first_backoff=0.001, max_backoff=0.004)
    return DeliveryCore("test", handler, sink, stopping=lambda: False, retry=fast, **options)


def test_the_retry_policy_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(first_backoff=0.2, max_backoff=1.0)
    assert list(itertools.islice(policy.backoffs(), 5)) == [0.2, 0.4, 0.8, 1.0, 1.0]


async def test_records_are_acknowledged_only_after_every_write_is_stored() -> None:
    handler, sink = _Echo(), _Sink()
    acks = _Acks(sink)
    core = _core(handler, sink, clock=lambda: 42.0)
    events = _events(3)
    await core.process(events, acks)
    assert [w.value for w in sink.stored] == [b"0", b"1", b"2"]
    assert acks.acked == events and acks.stored_when_acked == [3, 3, 3]
    assert handler.stored_at == [42.0]
    assert core.next_offsets == {("in", 0): 3}
    core.forget([("in", 0)])
    assert core.next_offsets == {}


async def test_the_writes_that_follow_a_batch_are_stored_before_it_is_acknowledged() -> None:
    """What ``stored`` returns (the dedup marks) is written after the batch's writes, with the
    same retries, and before any record is acknowledged."""

    class _Marking(_Echo):
        def plan(self, records: Any) -> Plan:
            writes: list[Write] = [TopicWrite("out", b"k", r.message.value) for r in records]
            return Plan(writes, lambda at: [TopicWrite("marks", b"k", b"mark")])

    sink = _Sink(
        fail=lambda write, attempt: (
            TimeoutError() if write.topic == "marks" and attempt == 0 else None
        )
    )
    acks = _Acks(sink)
    await _core(_Marking(), sink).process(_events(2), acks)
    assert [(w.topic, w.value) for w in sink.sent] == [
        ("out", b"0"),
        ("out", b"1"),
        ("marks", b"mark"),
        ("marks", b"mark"),  # retried
    ]
    assert acks.stored_when_acked == [3, 3]


async def test_retriable_failures_are_retried_under_the_policy() -> None:
    retried: list[int] = []
    sink = _Sink(lambda write, attempt: KafkaTimeoutError() if attempt < 2 else None)
    acks = _Acks(sink)
    core = _core(_Echo(), sink, hooks=CoreHooks(retried=retried.append))
    await core.process(_events(2), acks)
    assert len(sink.sent) == 6 and len(sink.stored) == 2
    assert retried == [2, 2]
    assert acks.stored_when_acked == [2, 2]


async def test_a_refused_record_goes_back_to_the_handler() -> None:
    def too_large(write: TopicWrite, attempt: int) -> BaseException | None:
        return MessageSizeTooLargeError() if write.topic == "out" else None

    handler = _Echo(instead=lambda write: TopicWrite("dlq", b"k", b"instead"))
    sink = _Sink(too_large)
    retried: list[int] = []
    await _core(handler, sink, hooks=CoreHooks(retried=retried.append)).process(
        _events(1), _Acks(sink)
    )
    assert [(w.topic, w.value) for w in sink.stored] == [("dlq", b"instead")]
    assert isinstance(handler.refusals[0][1], MessageSizeTooLargeError)
    assert retried == []  # another record, written at once: not a retry


async def test_a_refused_record_given_up_is_not_written() -> None:
    sink = _Sink(lambda write, attempt: MessageSizeTooLargeError())
    acks = _Acks(sink)
    await _core(_Echo(instead=lambda write: None), sink).process(_events(2), acks)
    assert sink.stored == [] and len(sink.sent) == 2
    assert len(acks.acked) == 2  # given up by the handler: the batch goes on


async def test_a_refused_record_the_handler_keeps_is_retried() -> None:
    sink = _Sink(lambda write, attempt: MessageSizeTooLargeError() if attempt < 1 else None)
    await _core(_Echo(), sink).process(_events(1), _Acks(sink))
    assert len(sink.sent) == 2 and len(sink.stored) == 1


async def test_stopping_while_writes_fail_leaves_the_batch_unacknowledged() -> None:
    sink = _Sink(lambda write, attempt: NotLeaderForPartitionError())
    acks = _Acks(sink)
    core = DeliveryCore("test", _Echo(), sink, stopping=lambda: True)
    with pytest.raises(DeliveryAborted):
        await core.process(_events(2), acks)
    assert acks.acked == [] and core.next_offsets == {}


async def test_a_cancelled_write_aborts_the_batch() -> None:
    sink = _Sink(lambda write, attempt: asyncio.CancelledError())
    acks = _Acks(sink)
    with pytest.raises(DeliveryAborted):
        await _core(_Echo(), sink).process(_events(1), acks)
    assert acks.acked == []


async def test_a_fenced_batch_is_released_unwritten_and_unacknowledged() -> None:
    fenced: list[int] = []

    async def fence(events: Any) -> bool:
        return False

    sink = _Sink()
    acks = _Acks(sink)
    handler = _Echo()
    core = _core(handler, sink, fence=fence, hooks=CoreHooks(fenced=fenced.append))
    events = _events(2)
    await core.process(events, acks)
    assert sink.sent == [] and acks.acked == [] and handler.stored_at == []
    assert all(event.message.acked for event in events)  # released: a rebalance need not wait
    assert fenced == [2]


async def test_a_writer_holding_the_lock_keeps_batches_waiting() -> None:
    sink = _Sink()
    acks = _Acks(sink)
    core = _core(_Echo(), sink)
    async with core.writing:
        batch = asyncio.create_task(core.process(_events(1), acks))
        await asyncio.sleep(0.01)
        assert sink.sent == [] and not batch.done()
    await batch
    assert len(acks.acked) == 1


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (MessageSizeTooLargeError(), True),
        (ValueError("larger than max_request_size"), True),
        (KafkaTimeoutError(), False),
        (NotLeaderForPartitionError(), False),
        (WriteError("too large", KafkaError.MSG_SIZE_TOO_LARGE), True),
        (WriteError("invalid", KafkaError.INVALID_RECORD), True),
        (WriteError("the producer's local queue is full"), False),
        (WriteError("not leader", KafkaError.NOT_LEADER_FOR_PARTITION), False),
        (WriteTimeout("not acknowledged within 30 s"), False),
    ],
)
def test_which_errors_refuse_the_record(error: BaseException, refused: bool) -> None:
    assert refuses_record(error) is refused
