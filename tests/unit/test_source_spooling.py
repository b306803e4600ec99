"""The source app with the spool on, over aiohttp's test client and a producer that can be down.

Kafka down: webhooks are answered 200 "spooled" and counted; Kafka back: the drainer sends them in
the order they came, the spool empties and webhooks go to Kafka directly again. The spool full:
503 ``spool_full``; ``/readyz`` says so. A spool left by an earlier app is drained at start-up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from connector.settings import Settings
from connector.source import WEBHOOK_PATH
from connector.source.app import RECEIVER, create_app
from connector.source.producer import DeliveryReport, Headers, MemoryProducer, ProduceTimeout
from connector.source.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, compute_signature
from connector.source.spool import Spool, SpooledRecord
from tests.processes import metric_total, parse_metrics

SECRET = "secretValueTest"


class SwitchableProducer(MemoryProducer):
    """A :class:`MemoryProducer` that times out every send while :attr:`down`."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers) -> DeliveryReport:
        if self.down:
            await asyncio.sleep(0.01)
            raise ProduceTimeout("not acknowledged within 0.01 s")
        return await super().send(topic, key, value, headers)

    async def is_ready(self) -> bool:
        return not self.down


def _body(n: int) -> bytes:
    return orjson.dumps(
        {
            "event": "quality_management.evaluation_completed",
            "payload": {"object": {"evaluation_id": f"E{n}"}},
        }
    )


def _signed(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: compute_signature(SECRET.encode(), timestamp, body),
        "content-type": "application/json",
    }


MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[MakeClient]:
    clients: list[TestClient[Any, Any]] = []

    async def make(producer: MemoryProducer, **overrides: Any) -> TestClient[Any, Any]:
        values: dict[str, Any] = {
            "zoom_webhook_secret_token": SECRET,
            "topic_prefix": "test",
            "source_spool_dir": str(tmp_path / "spool"),
            **overrides,
        }
        app = create_app(Settings.model_validate(values), producer=producer)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def _post(client: TestClient[Any, Any], n: int) -> tuple[int, Any]:
    body = _body(n)
    response = await client.post(WEBHOOK_PATH, data=body, headers=_signed(body))
    return response.status, await response.json()


async def _metrics(client: TestClient[Any, Any]) -> Any:
    return parse_metrics(await (await client.get("/metrics")).text())


async def _spool_records(client: TestClient[Any, Any], expected: int) -> bool:
    return metric_total(await _metrics(client), "zoom_source_spool_records") == expected


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_spooled_while_down_and_drained_in_order_when_back(make_client: MakeClient) -> None:
    producer = SwitchableProducer()
    client = await make_client(producer)
    assert (await _post(client, 0))[0] == 200  # Kafka up: stored directly
    producer.down = True
    answers = await asyncio.gather(*(_post(client, n) for n in range(1, 41)))
    assert {status for status, _ in answers} == {200}
    assert {answer["status"] for _, answer in answers} == {"spooled"}
    metrics = await _metrics(client)
    assert metric_total(metrics, "zoom_source_spooled_total") == 40
    assert metric_total(metrics, "zoom_source_spool_records") == 40
    assert metric_total(metrics, "zoom_source_spool_bytes") > 0
    ready = await client.get("/readyz")
    assert ready.status == 200  # the spool has room
    assert (await ready.json())["spool"]["records"] == 40

    producer.down = False

    async def drained() -> bool:
        return metric_total(await _metrics(client), "zoom_source_spool_records") == 0

    await _until(drained, "the spool to drain")
    metrics = await _metrics(client)
    assert metric_total(metrics, "zoom_source_spool_drained_total") == 40
    assert metric_total(metrics, "zoom_source_spool_oldest_age_seconds") == 0
    # The 40 in the order they were spooled (one group commit or several: arrival order).
    stored = [orjson.loads(r.value)["payload"]["object"]["evaluation_id"] for r in producer.records]
    assert stored[0] == "E0" and sorted(stored[1:]) == sorted(f"E{n}" for n in range(1, 41))
    assert len(stored) == 41
    status, answer = await _post(client, 99)
    assert status == 200 and answer["status"] == "stored"  # directly again


async def test_spool_full_answers_503(make_client: MakeClient) -> None:
    producer = SwitchableProducer()
    producer.down = True
    frame = 250  # about one record's frame
    client = await make_client(producer, source_spool_max_bytes=5 * frame)
    statuses = [(await _post(client, n))[0] for n in range(12)]
    assert statuses.count(200) >= 4 and statuses.count(503) >= 1
    assert statuses == sorted(statuses)  # 200s until full, then 503s
    status, answer = await _post(client, 50)
    assert status == 503 and answer["reason"] == "spool_full"
    ready = await client.get("/readyz")
    assert ready.status == 503 and (await ready.json())["spool"]["full"] is True

    producer.down = False

    async def drained() -> bool:
        return len(producer.records) == statuses.count(200)

    await _until(drained, "the spool to drain")
    await _until(lambda: _spool_records(client, 0), "the spool to be empty")
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["spool"]["full"] is False
    assert (await _post(client, 51))[0] == 200


async def test_a_spool_left_behind_is_drained_at_start(make_client: MakeClient) -> None:
    first_producer = SwitchableProducer()
    first_producer.down = True
    first = await make_client(first_producer)
    for n in range(5):
        assert (await _post(first, n))[0] == 200
    await first.close()
    assert first_producer.records == []

    second_producer = SwitchableProducer()
    second = await make_client(second_producer)
    store = second.app[RECEIVER].store
    assert store is not None

    async def drained() -> bool:
        return store.spool.records() == 0 and len(second_producer.records) == 5

    await _until(drained, "the earlier process's spool to drain")
    stored = [
        orjson.loads(r.value)["payload"]["object"]["evaluation_id"] for r in second_producer.records
    ]
    assert stored == [f"E{n}" for n in range(5)]


async def test_records_an_earlier_process_sent_are_not_sent_again(
    make_client: MakeClient, tmp_path: Path
) -> None:
    spool, _ = Spool.open(tmp_path / "spool", max_bytes=10**6)
    spool.append([SpooledRecord(b"k", _body(n), (), n) for n in range(10)])
    spool.seal_active()
    (sequence,) = spool.sealed()
    spool.drained_up_to(sequence, 4)
    spool.close()

    producer = SwitchableProducer()
    client = await make_client(producer)
    await _until(lambda: _spool_records(client, 0), "the spool to drain")
    await _until(lambda: _metrics_equal(client, "zoom_source_spool_drained_total", 6), "6 sent")
    stored = [orjson.loads(r.value)["payload"]["object"]["evaluation_id"] for r in producer.records]
    assert stored == [f"E{n}" for n in range(4, 10)]


async def _metrics_equal(client: TestClient[Any, Any], name: str, value: float) -> bool:
    return metric_total(await _metrics(client), name) == value


class FlakyProducer(MemoryProducer):
    """Times out every send while :attr:`down`, then the first attempt of every third body."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.attempts: list[bytes] = []

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers) -> DeliveryReport:
        if self.down:
            raise ProduceTimeout("not acknowledged")
        self.attempts.append(value)
        if self.attempts.count(value) == 1 and orjson.loads(value)["n"] % 3 == 0:
            raise ProduceTimeout("not acknowledged")
        return await super().send(topic, key, value, headers)

    async def is_ready(self) -> bool:
        return not self.down


async def test_failed_drain_sends_are_retried_until_acknowledged(make_client: MakeClient) -> None:
    producer = FlakyProducer()
    client = await make_client(producer)
    bodies = [orjson.dumps({"event": "x.y", "n": n}) for n in range(30)]
    for body in bodies:
        response = await client.post(WEBHOOK_PATH, data=body, headers=_signed(body))
        assert response.status == 200
    producer.down = False
    await _until(lambda: _spool_records(client, 0), "the spool to drain", timeout=20)
    assert sorted(r.value for r in producer.records) == sorted(bodies)  # each exactly once
    assert await _metrics_equal(client, "zoom_source_spool_drained_total", 30)
    assert len(producer.attempts) == 40  # the 10 refused sent again
