"""The raw topic's handler (FanOut) on the delivery core: write, retry, dead-letter, deduplicate,
then acknowledge; and the handler alone, without Kafka."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from connector.avro.codec import EventCodec
from connector.spec import load_catalog
from connector.topics import TopicNames
from connector.wire import Headers
from connector.worker.dedup import DedupIndex
from connector.worker.delivery import (
    CoreHooks,
    DeliveryAborted,
    DeliveryCore,
    Fetcher,
    StateWrite,
    TopicWrite,
    Write,
)
from connector.worker.fanout import FanOut
from connector.worker.metrics import WorkerMetrics
from connector.worker.patches import Gap, Record, processing
from connector.worker.routing import Router
from tests.faust_fakes import FakeEvent, FakeMessage

CATALOG = load_catalog()
EVALUATION = "quality_management.evaluation_completed"
TOPICS = TopicNames("zoom")
CODEC = EventCodec()
T_RAW = 1_700_000_000.0
"""When the raw records were written (seconds)."""


def _event(partition: int, offset: int, value: bytes, timestamp: float = T_RAW) -> FakeEvent:
    """A record of the raw topic."""
    message = FakeMessage(
        topic=TOPICS.raw, partition=partition, offset=offset, value=value, timestamp=timestamp
    )
    return FakeEvent(message)


@dataclass
class _Sent:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None


class _Sender:
    """Records sends; ``fail(sent, attempt)`` may return an exception to fail the delivery with."""

    def __init__(self, fail: Callable[[_Sent, int], BaseException | None] | None = None) -> None:
        self.store: dict[str, Any] = {}
        """The dedup table's local store: the sink stores the marks there."""
        self.sent: list[_Sent] = []
        self.delivered: list[_Sent] = []
        self._fail = fail or (lambda sent, attempt: None)
        self._attempts: dict[tuple[str, bytes | None], int] = {}

    async def send(self, write: Write) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if isinstance(write, StateWrite):  # a dedup mark
            self.store[write.key] = write.value
            future.set_result(None)
            return future
        topic, value = write.topic, write.value
        sent = _Sent(topic, write.key, value, write.headers, write.timestamp_ms)
        self.sent.append(sent)
        attempt = self._attempts.get((topic, value), 0)
        self._attempts[(topic, value)] = attempt + 1
        error = self._fail(sent, attempt)
        if error is None:
            self.delivered.append(sent)
            future.set_result("metadata")
        else:
            future.set_exception(error)
        return future


class _Acks:
    def __init__(self, sender: _Sender) -> None:
        self.acked: list[FakeEvent] = []
        self.delivered_when_acked: list[int] = []
        self._sender = sender

    async def __call__(self, event: FakeEvent) -> None:
        self.acked.append(event)
        self.delivered_when_acked.append(len(self._sender.delivered))


def _core(
    sender: _Sender,
    store: dict[str, Any],
    metrics: WorkerMetrics,
    *,
    stopping: Callable[[], bool] = lambda: False,
    refetcher: Fetcher | None = None,
) -> DeliveryCore:
    sender.store = store
    dedup = DedupIndex(store, lambda p, k: None, 2 * 3600 * 1000)
    router = Router(CODEC, TOPICS, clock=lambda: 1_700_000_001.0)
    hooks = CoreHooks(retried=metrics.produce_retries.inc, refetched=metrics.refetched.inc)
    return DeliveryCore(
        "fan-out",
        FanOut(router, dedup, metrics),
        sender,
        stopping=stopping,
        refetcher=refetcher,
        hooks=hooks,
        clock=lambda: 1e9,
    )


def _agent(
    sender: _Sender, *, stopping: Callable[[], bool] = lambda: False
) -> tuple[DeliveryCore, dict[str, Any], WorkerMetrics]:
    store: dict[str, Any] = {}
    metrics = WorkerMetrics(CODEC.event_types)
    return _core(sender, store, metrics, stopping=stopping), store, metrics


def _events(*bodies: bytes, partition: int = 0, first_offset: int = 0) -> list[FakeEvent]:
    return [_event(partition, first_offset + i, body) for i, body in enumerate(bodies)]


def _evaluation(event_ts: int = 1626230691572) -> bytes:
    event = copy.deepcopy(CATALOG.example(EVALUATION))
    event["event_ts"] = event_ts
    return json.dumps(event).encode()


def _count(
    metrics: WorkerMetrics, outcome: str, reason: str = "", event_type: str = EVALUATION
) -> float:
    value = metrics.registry.get_sample_value(
        "zoom_worker_events_total",
        {"event_type": event_type, "outcome": outcome, "reason": reason},
    )
    return value or 0.0


async def test_batch_is_acknowledged_only_after_every_write_is_delivered() -> None:
    sender = _Sender()
    acks = _Acks(sender)
    agent, store, metrics = _agent(sender)
    events = _events(_evaluation(1), b"{", _evaluation(2))
    await agent.process(events, acks)
    assert [s.topic for s in sender.sent] == [
        f"zoom.{EVALUATION}",
        "zoom.webhooks.dlq",
        f"zoom.{EVALUATION}",
    ]
    assert acks.acked == events
    assert acks.delivered_when_acked == [3, 3, 3]
    assert len(store) == 2  # both typed events remembered; the dead letter is not
    assert sender.sent[0].timestamp_ms == 1_700_000_000_000
    assert agent.next_offsets == {(TOPICS.raw, 0): 3}
    assert _count(metrics, "typed") == 2
    assert _count(metrics, "dlq", "invalid_json", "unknown") == 1


async def test_retries_of_one_event_produce_one_typed_record() -> None:
    sender = _Sender()
    acks = _Acks(sender)
    agent, _, metrics = _agent(sender)
    body = _evaluation()
    # in one batch, and in a later batch
    await agent.process(_events(body, body), acks)
    await agent.process(_events(body, first_offset=2), acks)
    assert len(sender.sent) == 1
    assert len(acks.acked) == 3
    assert _count(metrics, "duplicate") == 2 and _count(metrics, "typed") == 1


async def test_the_same_body_beyond_the_retention_is_written_again_even_in_one_batch() -> None:
    sender = _Sender()
    agent, store, _ = _agent(sender)
    body = _evaluation()
    late = 1_700_000_000.0 + 2 * 3600 + 1  # seconds: 2 h + 1 s after the first
    events = [_event(0, 0, body), _event(0, 1, body, timestamp=late)]
    await agent.process(events, _Acks(sender))
    assert len(sender.sent) == 2
    assert list(store.values()) == [[round(late * 1000), 0]]


async def test_a_rescore_is_written_again() -> None:
    sender = _Sender()
    agent, _, _ = _agent(sender)
    await agent.process(_events(_evaluation(1), _evaluation(2)), _Acks(sender))
    assert len(sender.sent) == 2


async def test_retriable_failures_are_retried_until_delivered() -> None:
    def flaky(sent: _Sent, attempt: int) -> BaseException | None:
        return KafkaTimeoutError() if attempt < 2 else None

    sender = _Sender(flaky)
    acks = _Acks(sender)
    agent, store, metrics = _agent(sender)
    await agent.process(_events(_evaluation()), acks)
    assert len(sender.sent) == 3 and len(sender.delivered) == 1
    assert acks.delivered_when_acked == [1]
    assert len(store) == 1
    assert metrics.registry.get_sample_value("zoom_worker_produce_retries_total") == 2


async def test_a_record_kafka_refuses_becomes_a_dead_letter() -> None:
    def too_large(sent: _Sent, attempt: int) -> BaseException | None:
        return MessageSizeTooLargeError() if sent.topic != "zoom.webhooks.dlq" else None

    sender = _Sender(too_large)
    acks = _Acks(sender)
    agent, store, metrics = _agent(sender)
    await agent.process(_events(_evaluation()), acks)
    assert [s.topic for s in sender.delivered] == ["zoom.webhooks.dlq"]
    headers = dict(sender.delivered[0].headers)
    assert headers["zoom-dlq-reason"] == b"produce_failed"
    assert headers["zoom-dlq-event-type"] == EVALUATION.encode()
    assert len(acks.acked) == 1 and not store
    assert _count(metrics, "dlq", "produce_failed") == 1


async def test_a_dead_letter_kafka_refuses_is_dropped_not_blocking() -> None:
    sender = _Sender(lambda sent, attempt: MessageSizeTooLargeError())
    acks = _Acks(sender)
    agent, _, metrics = _agent(sender)
    await agent.process(_events(b"not json"), acks)
    assert len(acks.acked) == 1
    assert metrics.registry.get_sample_value("zoom_worker_dead_letters_dropped_total") == 1


async def test_stopping_while_writes_fail_leaves_the_batch_unacknowledged() -> None:
    sender = _Sender(lambda sent, attempt: KafkaTimeoutError())
    acks = _Acks(sender)
    agent, store, _ = _agent(sender, stopping=lambda: True)
    with pytest.raises(DeliveryAborted):
        await agent.process(_events(_evaluation()), acks)
    assert acks.acked == [] and not store


async def test_metrics_render_as_prometheus_text() -> None:
    sender = _Sender()
    agent, _, metrics = _agent(sender)
    await agent.process(_events(_evaluation(), b"[]"), _Acks(sender))
    metrics.watch_lag(lambda: {0: 5})
    text = metrics.render().decode()
    assert (
        'zoom_worker_events_total{event_type="quality_management.evaluation_completed",'
        'outcome="typed",reason=""} 1.0'
    ) in text
    assert (
        'zoom_worker_events_total{event_type="unknown",outcome="dlq",reason="not_an_object"}'
        in (text)
    )
    assert 'zoom_worker_consumer_lag{partition="0"} 5.0' in text
    assert "zoom_worker_event_latency_seconds_bucket" in text


def test_processing_makes_the_event_faust_current() -> None:
    event = _event(3, 0, b"")
    assert faust.current_event() is None
    with processing(event):
        assert faust.current_event() is event
    assert faust.current_event() is None


class _Fetcher:
    """Serves the records of a gap from a list, as Kafka would, and records the gaps asked."""

    def __init__(self, log: list[bytes]) -> None:
        self._log = log
        self.gaps: list[Gap] = []

    async def fetch(self, gap: Gap) -> list[Record]:
        self.gaps.append(gap)
        return [
            Record(gap.topic, gap.partition, offset, b"k", self._log[offset], timestamp=1.7e9)
            for offset in range(gap.start, gap.end)
        ]

    async def start_offsets(self, partitions: Any) -> dict[tuple[str, int], int]:
        return {}  # the group's position unknown: only jumps count

    async def processed(self, records: Any) -> None:
        return None


async def test_records_the_stream_skipped_are_read_again_and_written_before_the_ack() -> None:
    # faust-streaming's rebalance race: offsets 2-4 acknowledged by Faust without reaching us.
    log = [_evaluation(ts) for ts in range(1, 8)]
    sender = _Sender()
    acks = _Acks(sender)
    fetcher = _Fetcher(log)
    metrics = WorkerMetrics(CODEC.event_types)
    store: dict[str, Any] = {}
    agent = _core(sender, store, metrics, refetcher=fetcher)
    first = _events(*log[:2])
    await agent.process(first, acks)
    later = _events(*log[5:], first_offset=5)
    await agent.process(later, acks)

    assert fetcher.gaps == [Gap("zoom.webhooks.raw", 0, 2, 5)]
    assert len(sender.delivered) == 7  # every record of the partition, the skipped ones too
    assert acks.acked == first + later  # only Faust's own events are acknowledged
    assert acks.delivered_when_acked[-2:] == [7, 7]
    assert metrics.registry.get_sample_value("zoom_worker_raw_records_refetched_total") == 3
    assert agent.next_offsets == {(TOPICS.raw, 0): 7}


async def test_no_refetch_without_a_jump_in_offsets() -> None:
    sender = _Sender()
    fetcher = _Fetcher([])
    agent = _core(sender, {}, WorkerMetrics(CODEC.event_types), refetcher=fetcher)
    await agent.process(_events(_evaluation(1), _evaluation(2)), _Acks(sender))
    await agent.process(_events(_evaluation(3), first_offset=2), _Acks(sender))
    await agent.process(_events(_evaluation(4), partition=1, first_offset=40), _Acks(sender))
    assert fetcher.gaps == []
    assert len(sender.delivered) == 4


def test_the_handler_plans_writes_without_io() -> None:
    store: dict[str, Any] = {}
    metrics = WorkerMetrics(CODEC.event_types)
    dedup = DedupIndex(store, lambda p, k: None, 2 * 3600 * 1000)
    handler = FanOut(Router(CODEC, TOPICS, clock=lambda: 1_700_000_001.0), dedup, metrics)
    body = _evaluation()
    plan = handler.plan(_events(body, b"{", body))
    assert [w.topic for w in plan.writes if isinstance(w, TopicWrite)] == [
        f"zoom.{EVALUATION}",
        "zoom.webhooks.dlq",
    ]
    assert not store and _count(metrics, "typed") == 0  # nothing remembered or counted yet
    marks = plan.stored(1_700_000_000.5)
    assert marks and [(m.table, m.value) for m in marks] == [("dedup", [1_700_000_000_000, 0])]
    assert isinstance(marks[0], StateWrite) and not store  # the sink stores the marks
    assert _count(metrics, "typed") == 1 and _count(metrics, "duplicate") == 1
