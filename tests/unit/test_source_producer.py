"""The asyncio wrapper around librdkafka's producer, driven by a fake client (no network)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from connector.settings import Settings
from connector.source.producer import (
    DeliveryCallback,
    DeliveryFailed,
    DeliveryReport,
    KafkaDurableProducer,
    ProduceError,
    ProducerQueueFull,
    ProduceTimeout,
    producer_config,
)


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._where = (topic, partition, offset)

    def topic(self) -> str:
        return self._where[0]

    def partition(self) -> int:
        return self._where[1]

    def offset(self) -> int:
        return self._where[2]


class FakeClient:
    """Records produce() calls; the test decides when (and whether) delivery reports come."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.pending: list[tuple[str, bytes, bytes, list[Any], DeliveryCallback]] = []
        self.produce_error: BaseException | None = None
        self.metadata_error: KafkaException | None = None
        self.metadata_calls = 0
        self.polls = 0
        self.flush_timeout: float | None = None

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        *,
        headers: list[tuple[str, str | bytes]],
        on_delivery: DeliveryCallback,
    ) -> None:
        if self.produce_error is not None:
            raise self.produce_error
        self.pending.append((topic, value, key, headers, on_delivery))

    def poll(self, timeout: float | None = None) -> int:
        self.polls += 1
        time.sleep(0.001)
        return 0

    def flush(self, timeout: float | None = None) -> int:
        self.flush_timeout = timeout
        return 0

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        self.metadata_calls += 1
        if self.metadata_error is not None:
            raise self.metadata_error
        return object()

    def deliver(self, index: int, error: KafkaError | None = None, offset: int = 0) -> None:
        """Fire one delivery report from another thread, as librdkafka's poll() does."""
        topic, _, _, _, callback = self.pending[index]
        thread = threading.Thread(target=callback, args=(error, FakeMessage(topic, 2, offset)))
        thread.start()
        thread.join()


Started = tuple[KafkaDurableProducer, FakeClient]


@pytest.fixture
async def started() -> AsyncIterator[Started]:
    clients: list[FakeClient] = []

    def factory(config: dict[str, Any]) -> FakeClient:
        clients.append(FakeClient(config))
        return clients[-1]

    producer = KafkaDurableProducer({"x": 1}, delivery_timeout=0.3, client_factory=factory)
    await producer.start()
    yield producer, clients[0]
    await producer.close()


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.002)


async def test_send_returns_where_the_record_was_stored(started: Started) -> None:
    producer, client = started
    task = asyncio.create_task(producer.send("t", b"k", b"v", [("h", b"1")]))
    await _until(lambda: len(client.pending) == 1)
    assert client.pending[0][:4] == ("t", b"v", b"k", [("h", b"1")])
    assert not task.done()
    client.deliver(0, offset=42)
    assert await task == DeliveryReport(topic="t", partition=2, offset=42)


async def test_a_delivery_error_fails_the_send(started: Started) -> None:
    producer, client = started
    task = asyncio.create_task(producer.send("t", b"k", b"v", []))
    await _until(lambda: len(client.pending) == 1)
    client.deliver(0, KafkaError(KafkaError._MSG_TIMED_OUT))
    with pytest.raises(DeliveryFailed, match="_MSG_TIMED_OUT"):
        await task


async def test_no_report_within_the_deadline_is_a_timeout(started: Started) -> None:
    producer, client = started
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    begun = time.monotonic()
    with pytest.raises(ProduceTimeout) as caught:
        await producer.send("t", b"k", b"v", [])
    assert 0.3 <= time.monotonic() - begun < 1.0
    assert caught.value.reason == "kafka_timeout"
    # librdkafka may still report later, success or failure: nobody is hurt.
    client.deliver(0)
    client.deliver(0, KafkaError(KafkaError._MSG_TIMED_OUT))
    await asyncio.sleep(0.01)
    assert errors == []


async def test_sends_share_the_client_concurrently(started: Started) -> None:
    producer, client = started
    tasks = [asyncio.create_task(producer.send("t", b"%d" % i, b"v", [])) for i in range(100)]
    # All 100 are handed to librdkafka before any is acknowledged: no serial awaiting.
    await _until(lambda: len(client.pending) == 100)
    for index in reversed(range(100)):
        client.deliver(index, offset=index)
    reports = await asyncio.gather(*tasks)
    assert [r.offset for r in reports] == list(range(100))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (BufferError("Local: Queue full"), ProducerQueueFull),
        (KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)), DeliveryFailed),
    ],
)
async def test_refusals_at_produce_time(
    started: Started, error: BaseException, expected: type[ProduceError]
) -> None:
    producer, client = started
    client.produce_error = error
    with pytest.raises(expected):
        await producer.send("t", b"k", b"v", [])


async def test_poll_thread_runs_and_close_flushes(started: Started) -> None:
    producer, client = started
    await _until(lambda: client.polls > 3)
    await producer.close()
    polls = client.polls
    await asyncio.sleep(0.02)
    assert client.polls == polls  # the poll thread stopped
    assert client.flush_timeout is not None and client.flush_timeout >= 0.3
    await producer.close()  # a second close is harmless


async def test_readiness_is_cached() -> None:
    clients: list[FakeClient] = []

    def factory(config: dict[str, Any]) -> FakeClient:
        clients.append(FakeClient(config))
        return clients[-1]

    producer = KafkaDurableProducer({}, delivery_timeout=0.3, client_factory=factory)
    await producer.start()
    try:
        assert await producer.is_ready()
        assert await producer.is_ready()
        assert clients[0].metadata_calls == 1
    finally:
        await producer.close()


async def test_unreachable_cluster_is_not_ready() -> None:
    def factory(config: dict[str, Any]) -> FakeClient:
        client = FakeClient(config)
        client.metadata_error = KafkaException(KafkaError(KafkaError._TRANSPORT))
        return client

    producer = KafkaDurableProducer({}, delivery_timeout=0.3, client_factory=factory)
    await producer.start()
    try:
        assert not await producer.is_ready()
    finally:
        await producer.close()


async def test_send_before_start_is_an_error() -> None:
    producer = KafkaDurableProducer({}, delivery_timeout=0.3, client_factory=FakeClient)
    with pytest.raises(ProduceError, match="not started"):
        await producer.send("t", b"k", b"v", [])


def test_config_is_durable_and_bounded_by_the_deadline() -> None:
    settings = Settings.model_validate(
        {
            "kafka_bootstrap_servers": "broker:9093",
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "PLAIN",
            "kafka_sasl_username": "user",
            "kafka_sasl_password": "pw",
            "source_produce_timeout_seconds": 2.5,
            "source_max_body_bytes": 1_048_576,
        }
    )
    config = producer_config(settings)
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["linger.ms"] == 5
    assert config["message.timeout.ms"] == 2500
    assert config["request.timeout.ms"] == 2500
    assert config["message.max.bytes"] > 1_048_576
    assert config["bootstrap.servers"] == "broker:9093"
    assert config["security.protocol"] == "sasl_ssl"
    assert config["sasl.username"] == "user"


async def test_a_fatal_client_error_replaces_the_client() -> None:
    clients: list[FakeClient] = []

    def factory(config: dict[str, Any]) -> FakeClient:
        clients.append(FakeClient(config))
        return clients[-1]

    producer = KafkaDurableProducer({}, delivery_timeout=0.3, client_factory=factory)
    await producer.start()
    try:
        report_error = clients[0].config["error_cb"]
        report_error(KafkaError(KafkaError._TRANSPORT))  # transient: librdkafka retries
        task = asyncio.create_task(producer.send("t", b"k", b"v", []))
        await _until(lambda: len(clients[0].pending) == 1)
        assert len(clients) == 1

        report_error(KafkaError(KafkaError._FATAL, "sequence desynchronised", fatal=True))
        second = asyncio.create_task(producer.send("t", b"k2", b"v2", []))
        await _until(lambda: len(clients) == 2 and len(clients[1].pending) == 1)
        # The old client was retired: flushed, so its pending record gets its report.
        await _until(lambda: clients[0].flush_timeout is not None)
        clients[0].deliver(0, KafkaError(KafkaError._FATAL, fatal=True))
        with pytest.raises(DeliveryFailed):
            await task
        clients[1].deliver(0, offset=7)
        assert (await second).offset == 7
    finally:
        await producer.close()
    assert clients[1].flush_timeout is not None
