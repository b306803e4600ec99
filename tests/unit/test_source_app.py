"""The source app over aiohttp's test client, with an in-memory producer instead of Kafka."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from connector.errors import ConfigurationError
from connector.settings import Settings
from connector.source import WEBHOOK_PATH
from connector.source.app import RECEIVER, create_app
from connector.source.producer import (
    DeliveryFailed,
    DeliveryReport,
    Headers,
    MemoryProducer,
    ProduceError,
    ProducerQueueFull,
    ProduceTimeout,
)
from connector.source.signature import compute_signature
from connector.wire import (
    RECEIVED_AT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TRACKING_ID_HEADER,
    raw_record_key,
)

SECRET = "secretValueTest"
SECOND_SECRET = "rotatedSecretValue"
BODY = (
    b'{"event":"quality_management.evaluation_completed",'
    b'"payload":{"object":{"evaluation_id":"E1"}}}'
)

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"zoom_webhook_secret_token": SECRET, "topic_prefix": "test"}
    values.update(overrides)
    return Settings.model_validate(values)


def _signed(body: bytes, *, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: compute_signature(secret.encode(), timestamp, body),
        "content-type": "application/json",
    }


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[TestClient[Any, Any]] = []

    async def make(producer: Any = None, **overrides: Any) -> TestClient[Any, Any]:
        app = create_app(_settings(**overrides), producer=producer or MemoryProducer())
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def _post(client: TestClient[Any, Any], body: bytes, **headers: str) -> ClientResponse:
    return await client.post(WEBHOOK_PATH, data=body, headers=headers or _signed(body))


def _producer(client: TestClient[Any, Any]) -> Any:
    return client.app[RECEIVER].producer


async def _metrics(client: TestClient[Any, Any]) -> str:
    return await (await client.get("/metrics")).text()


def _sample(metrics: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", metrics, re.MULTILINE)
    assert match is not None, name
    return float(match.group(1))


# --- the happy path ---------------------------------------------------------------------------


async def test_signed_event_is_stored_byte_for_byte_with_headers(make_client: MakeClient) -> None:
    producer = MemoryProducer()
    client = await make_client(producer)
    body = (
        b'{ "event" : "quality_management.evaluation_completed",\n "payload": {"object":\n'
        b' {"evaluation_id": "E1", "n": "\xc3\xbc"}}}  '
    )
    headers = _signed(body) | {TRACKING_ID_HEADER: "track-1"}
    before = int(time.time() * 1000)
    response = await client.post(WEBHOOK_PATH, data=body, headers=headers)
    after = int(time.time() * 1000)

    assert response.status == 200
    assert await response.json() == {
        "status": "stored",
        "topic": "test.webhooks.raw",
        "partition": 0,
        "offset": 0,
    }
    (record,) = producer.records
    assert record.topic == "test.webhooks.raw"
    assert record.value == body
    assert record.key == b"evaluation_id:E1" == raw_record_key(orjson.loads(body), body)
    got = dict(record.headers)
    assert got[TIMESTAMP_HEADER] == headers[TIMESTAMP_HEADER].encode()
    assert got[SIGNATURE_HEADER] == headers[SIGNATURE_HEADER].encode()
    assert got[TRACKING_ID_HEADER] == b"track-1"
    assert before <= int(got[RECEIVED_AT_HEADER]) <= after
    assert [name for name, _ in record.headers] == [
        TIMESTAMP_HEADER,
        SIGNATURE_HEADER,
        TRACKING_ID_HEADER,
        RECEIVED_AT_HEADER,
    ]


async def test_tracking_id_header_is_optional(make_client: MakeClient) -> None:
    producer = MemoryProducer()
    client = await make_client(producer)
    assert (await _post(client, BODY)).status == 200
    assert TRACKING_ID_HEADER not in dict(producer.records[0].headers)


async def test_unknown_event_types_are_kept(make_client: MakeClient) -> None:
    producer = MemoryProducer()
    client = await make_client(producer)
    body = b'{"event":"meeting.started","payload":{}}'
    assert (await _post(client, body)).status == 200
    assert producer.records[0].value == body
    assert producer.records[0].key.startswith(b"sha256:")


async def test_any_secret_of_the_list_is_accepted(make_client: MakeClient) -> None:
    producer = MemoryProducer()
    client = await make_client(producer, zoom_webhook_secret_token=f"{SECRET}, {SECOND_SECRET}")
    assert (await _post(client, BODY, **_signed(BODY, secret=SECOND_SECRET))).status == 200
    assert (await _post(client, BODY, **_signed(BODY, secret=SECRET))).status == 200
    assert len(producer.records) == 2


async def test_millisecond_timestamps_are_accepted(make_client: MakeClient) -> None:
    client = await make_client()
    ms = str(int(time.time() * 1000))
    headers = {TIMESTAMP_HEADER: ms, SIGNATURE_HEADER: compute_signature(SECRET.encode(), ms, BODY)}
    assert (await _post(client, BODY, **headers)).status == 200


# --- URL validation ---------------------------------------------------------------------------

VALIDATION = (
    b'{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},'
    b'"event_ts":1654503849680,"event":"endpoint.url_validation"}'
)
ENCRYPTED = "70c1f2e2e6ca2d39297490d1f9142c7d701415ea8e6151f6562a08fa657a40ff"


async def test_url_validation_is_answered_and_not_stored(make_client: MakeClient) -> None:
    producer = MemoryProducer()
    client = await make_client(producer)
    response = await _post(client, VALIDATION)
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": ENCRYPTED,
    }
    assert producer.records == []


async def test_url_validation_answers_with_the_secret_that_signed(make_client: MakeClient) -> None:
    client = await make_client(zoom_webhook_secret_token=f"{SECOND_SECRET},{SECRET}")
    response = await _post(client, VALIDATION, **_signed(VALIDATION, secret=SECRET))
    assert (await response.json())["encryptedToken"] == ENCRYPTED
    response = await _post(client, VALIDATION, **_signed(VALIDATION, secret=SECOND_SECRET))
    assert (await response.json())["encryptedToken"] != ENCRYPTED


async def test_url_validation_requires_a_signature(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.post(WEBHOOK_PATH, data=VALIDATION)
    assert response.status == 401
    assert "encryptedToken" not in await response.text()


@pytest.mark.parametrize(
    "body",
    [
        b'{"event":"endpoint.url_validation"}',
        b'{"event":"endpoint.url_validation","payload":{}}',
        b'{"event":"endpoint.url_validation","payload":{"plainToken":7}}',
        b'{"event":"endpoint.url_validation","payload":{"plainToken":""}}',
        b'{"event":"endpoint.url_validation","payload":"x"}',
    ],
)
async def test_url_validation_without_a_token_is_400(make_client: MakeClient, body: bytes) -> None:
    producer = MemoryProducer()
    client = await make_client(producer)
    response = await _post(client, body)
    assert response.status == 400
    assert (await response.json())["reason"] == "missing_plain_token"
    assert producer.records == []


# --- refused requests -------------------------------------------------------------------------


def _tampered() -> dict[str, str]:
    return _signed(BODY.replace(b"E1", b"E2"))


@pytest.mark.parametrize(
    ("case", "headers", "reason"),
    [
        ("tampered body", _tampered, "signature_mismatch"),
        ("wrong secret", lambda: _signed(BODY, secret="not-the-secret"), "signature_mismatch"),
        ("no headers", lambda: {}, "missing_signature"),
        (
            "no timestamp",
            lambda: {SIGNATURE_HEADER: _signed(BODY)[SIGNATURE_HEADER]},
            "missing_timestamp",
        ),
        ("no signature", lambda: {TIMESTAMP_HEADER: str(int(time.time()))}, "missing_signature"),
        ("stale", lambda: _signed(BODY, at=time.time() - 301), "stale_timestamp"),
        ("future", lambda: _signed(BODY, at=time.time() + 301), "future_timestamp"),
        (
            "non-numeric timestamp",
            lambda: {
                TIMESTAMP_HEADER: "soon",
                SIGNATURE_HEADER: compute_signature(SECRET.encode(), "soon", BODY),
            },
            "bad_timestamp",
        ),
    ],
)
async def test_bad_signatures_are_401_and_nothing_is_written(
    make_client: MakeClient, case: str, headers: Callable[[], dict[str, str]], reason: str
) -> None:
    producer = MemoryProducer()
    client = await make_client(producer)
    response = await client.post(WEBHOOK_PATH, data=BODY, headers=headers())
    assert response.status == 401, case
    answer = await response.json()
    assert answer["reason"] == reason
    assert set(answer) == {"error", "reason"}
    assert producer.records == []
    assert f'zoom_source_signature_failures_total{{reason="{reason}"}} 1.0' in await _metrics(
        client
    )


async def test_replay_window_is_configurable(make_client: MakeClient) -> None:
    client = await make_client(source_replay_window_seconds=3600)
    assert (await _post(client, BODY, **_signed(BODY, at=time.time() - 3000))).status == 200
    assert (await _post(client, BODY, **_signed(BODY, at=time.time() - 3700))).status == 401


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "invalid_json"),
        (b"", "invalid_json"),
        (b'{"event": "x"', "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b'[{"event": "x"}]', "not_an_object"),
        (b'"event"', "not_an_object"),
        (b"null", "not_an_object"),
        (b'{"payload": {}}', "missing_event"),
        (b'{"event": 7}', "event_not_a_string"),
        (b'{"event": null}', "event_not_a_string"),
        (b'{"event": {"name": "x"}}', "event_not_a_string"),
    ],
)
async def test_malformed_bodies_are_400(make_client: MakeClient, body: bytes, reason: str) -> None:
    producer = MemoryProducer()
    client = await make_client(producer)
    response = await _post(client, body)
    assert response.status == 400
    answer = await response.json()
    assert answer["reason"] == reason
    assert isinstance(answer["error"], str) and answer["error"]
    assert producer.records == []


async def test_malformed_and_unsigned_is_401_not_400(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.post(WEBHOOK_PATH, data=b"not json")
    assert response.status == 401


def _padded(size: int) -> bytes:
    head, tail = b'{"event":"x","pad":"', b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


async def test_body_of_exactly_the_limit_is_accepted(make_client: MakeClient) -> None:
    producer = MemoryProducer()
    client = await make_client(producer, source_max_body_bytes=1000)
    body = _padded(1000)
    assert len(body) == 1000
    assert (await _post(client, body)).status == 200
    assert producer.records[0].value == body


async def test_oversize_body_with_content_length_is_413(make_client: MakeClient) -> None:
    producer = MemoryProducer()
    client = await make_client(producer, source_max_body_bytes=1000)
    body = _padded(1001)
    response = await _post(client, body)
    assert response.status == 413
    assert (await response.json())["reason"] == "body_too_large"
    assert producer.records == []
    # Refused on the declared length, before the body was read.
    assert "zoom_source_received_bytes_total 0.0" in await _metrics(client)


async def test_oversize_chunked_body_is_413(make_client: MakeClient) -> None:
    producer = MemoryProducer()
    client = await make_client(producer, source_max_body_bytes=1000)
    body = _padded(5000)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 100):
            await asyncio.sleep(0)
            yield body[start : start + 100]

    response = await client.post(WEBHOOK_PATH, data=chunks(), headers=_signed(body))
    assert response.status == 413
    assert (await response.json())["reason"] == "body_too_large"
    assert producer.records == []
    # Reading stopped soon after the limit, not at the end of the body.
    assert 1000 < _sample(await _metrics(client), "zoom_source_received_bytes_total") < len(body)


async def test_small_chunked_body_is_accepted(make_client: MakeClient) -> None:
    producer = MemoryProducer()
    client = await make_client(producer)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(BODY), 7):
            yield BODY[start : start + 7]

    response = await client.post(WEBHOOK_PATH, data=chunks(), headers=_signed(BODY))
    assert response.status == 200
    assert producer.records[0].value == BODY


# --- Kafka trouble, overload, concurrency -----------------------------------------------------


class FailingProducer(MemoryProducer):
    def __init__(self, error: ProduceError) -> None:
        super().__init__()
        self.error = error

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers) -> DeliveryReport:
        raise self.error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ProduceTimeout("not acknowledged within 2.5 s"), "kafka_timeout"),
        (ProducerQueueFull("queue full"), "kafka_queue_full"),
        (DeliveryFailed("delivery failed: _MSG_TIMED_OUT"), "kafka_error"),
    ],
)
async def test_kafka_failures_are_503(
    make_client: MakeClient, error: ProduceError, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(FailingProducer(error))
    with caplog.at_level(logging.WARNING, logger="connector.source"):
        response = await _post(client, BODY)
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert (await response.json())["reason"] == reason
    assert f'zoom_source_produce_errors_total{{reason="{reason}"}} 1.0' in await _metrics(client)
    assert any(
        "status=503" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records
    )


class GatedProducer(MemoryProducer):
    """Holds every send until the gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers) -> DeliveryReport:
        self.waiting += 1
        await self.gate.wait()
        return await super().send(topic, key, value, headers)


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_overload_is_refused_fast(make_client: MakeClient) -> None:
    producer = GatedProducer()
    client = await make_client(producer, source_max_in_flight=3)
    held = [asyncio.create_task(_post(client, BODY)) for _ in range(3)]
    await _until(lambda: producer.waiting == 3)

    started = time.monotonic()
    refused = await _post(client, BODY)
    assert refused.status == 503
    assert time.monotonic() - started < 0.5
    assert (await refused.json())["reason"] == "overloaded"
    assert "zoom_source_overload_rejections_total 1.0" in await _metrics(client)
    assert "zoom_source_in_flight_requests 3.0" in await _metrics(client)

    producer.gate.set()
    assert [r.status for r in await asyncio.gather(*held)] == [200, 200, 200]
    assert len(producer.records) == 3
    # Capacity is given back: the next request is accepted.
    assert (await _post(client, BODY)).status == 200


class SlowProducer(MemoryProducer):
    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers) -> DeliveryReport:
        await asyncio.sleep(0.05)
        return await super().send(topic, key, value, headers)


async def test_many_concurrent_requests_are_all_answered_correctly(make_client: MakeClient) -> None:
    producer = SlowProducer()
    client = await make_client(producer)
    template = (
        b'{"event":"revenue_accelerator.playlist_create",'
        b'"payload":{"object":{"playlist_id":"P%d"}}}'
    )
    bodies = [template % i for i in range(200)]
    responses = await asyncio.gather(*(_post(client, body) for body in bodies))
    assert [r.status for r in responses] == [200] * 200
    assert sorted(r.value for r in producer.records) == sorted(bodies)
    for record in producer.records:
        assert record.key == raw_record_key(orjson.loads(record.value), record.value)
    offsets = sorted([(await r.json())["offset"] for r in responses])
    assert offsets == list(range(200))


# --- health, readiness, metrics, lifecycle, secrecy -------------------------------------------


async def test_healthz_and_readyz(make_client: MakeClient) -> None:
    producer = MemoryProducer()
    client = await make_client(producer)
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert await ready.json() == {"kafka": "reachable"}
    producer.ready = False
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/healthz")).status == 200


async def test_metrics_count_requests_bytes_and_timestamp_age(make_client: MakeClient) -> None:
    client = await make_client()
    await _post(client, BODY, **_signed(BODY, at=time.time() - 100))
    await _post(client, b"[]")
    await client.post(WEBHOOK_PATH, data=BODY)
    response = await client.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert 'zoom_source_requests_total{status="200"} 1.0' in text
    assert 'zoom_source_requests_total{status="400"} 1.0' in text
    assert 'zoom_source_requests_total{status="401"} 1.0' in text
    assert f"zoom_source_received_bytes_total {float(2 * len(BODY) + 2)}" in text
    assert "zoom_source_request_duration_seconds_count 3.0" in text
    assert "zoom_source_stored_records_total 1.0" in text
    # The accepted ages: ~100 s and ~0 s.
    assert 'zoom_source_accepted_timestamp_age_seconds_bucket{le="60.0"} 1.0' in text
    assert 'zoom_source_accepted_timestamp_age_seconds_bucket{le="120.0"} 2.0' in text


async def test_apps_have_separate_registries(make_client: MakeClient) -> None:
    first = await make_client()
    second = await make_client()
    await _post(first, BODY)
    assert 'zoom_source_requests_total{status="200"} 1.0' in await _metrics(first)
    assert 'zoom_source_requests_total{status="200"}' not in await _metrics(second)


async def test_producer_is_started_and_closed_with_the_app() -> None:
    producer = MemoryProducer()
    client: TestClient[Any, Any] = TestClient(
        TestServer(create_app(_settings(), producer=producer))
    )
    assert not producer.started
    await client.start_server()
    assert producer.started and not producer.closed
    await client.close()
    assert producer.closed


def test_no_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ZOOM_WEBHOOK_SECRET_TOKEN"):
        create_app(_settings(zoom_webhook_secret_token=""), producer=MemoryProducer())


async def test_the_secret_never_leaks(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = [SECRET, SECOND_SECRET]
    client = await make_client(
        FailingProducer(ProduceTimeout("late")), zoom_webhook_secret_token=",".join(secrets)
    )
    answers: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for body, headers in [
            (BODY, _signed(BODY)),
            (BODY, _signed(BODY, secret="wrong")),
            (BODY, _signed(BODY, at=time.time() - 1000)),
            (VALIDATION, _signed(VALIDATION, secret=SECOND_SECRET)),
            (b"[]", _signed(b"[]")),
            (b'{"event":"x"}', {}),
        ]:
            response = await client.post(WEBHOOK_PATH, data=body, headers=headers)
            answers.append(await response.text())
        answers.append(await (await client.get("/readyz")).text())
        metrics = await _metrics(client)
    logged = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "status=503" in logged and "status=401" in logged  # the requests were logged
    for secret in secrets:
        assert secret not in logged
        assert secret not in metrics
        assert all(secret not in answer for answer in answers)
    assert ENCRYPTED not in logged
