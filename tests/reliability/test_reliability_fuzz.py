"""Bad input fuzzing: hypothesis drives the source and the worker with arbitrary input.

Source, in process (volume: aiohttp's test server over real HTTP on 127.0.0.1, a recording
producer that sometimes fails like Kafka): arbitrary bodies (invalid UTF-8, deep nesting, huge
numbers, duplicate keys, truncated, oversized), content types and headers, signed right or wrong.
Pass: never a 5xx but the documented 503 (and that only when the producer failed), never a
crash, nothing written unless genuinely signed, and then byte for byte; plus bytes cut off on the
wire, a chunked body over the limit and an oversized header line, each answered with a clean 4xx
(or a closed connection) and nothing written.

Source, as a process on the real broker: a smaller run; the raw topic then holds exactly the
bodies answered 200, byte for byte.

Worker, on the real broker: arbitrary raw-topic records (any key, value, headers; null values
included). Pass: the worker never crashes and every record comes out, on a typed topic or the
dead-letter topic, except the retries it drops as duplicates: count in == count out.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, ClientTimeout
from aiohttp.test_utils import TestClient, TestServer
from confluent_kafka import Producer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.avro.codec import parse_event
from connector.avro.errors import EventValidationError
from connector.settings import Settings
from connector.source import WEBHOOK_PATH
from connector.source.app import create_app
from connector.source.producer import DeliveryReport, Headers, MemoryProducer, ProduceTimeout
from connector.worker.identity import event_identity
from tests.processes import (
    Deployment,
    ProcessGroup,
    metric_total,
    read_everything,
    wait_until,
)
from tests.reliability.fuzz import FuzzRecord, FuzzRequest, raw_records, requests
from tests.reliability.workload import SECRET, Figures, OutputReader, idle, raw_http

MAX_BODY = 64 * 1024
IN_PROCESS_EXAMPLES = 1500
REAL_SOURCE_EXAMPLES = 200
WORKER_EXAMPLES = 60
DOCUMENTED = {200, 400, 401, 413, 503}


class FlakyProducer(MemoryProducer):
    """Records what the source writes; fails (as Kafka timing out) while ``failing`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers) -> DeliveryReport:
        if self.failing:
            raise ProduceTimeout("not acknowledged within 2.5 s")
        return await super().send(topic, key, value, headers)


def _expect_stored(request: FuzzRequest) -> bool:
    """Whether a request answered 200 must have been written (not a URL validation)."""
    try:
        event = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        return True
    return not (isinstance(event, dict) and event.get("event") == "endpoint.url_validation")


def check_answer(request: FuzzRequest, status: int, text: str, written: list[bytes]) -> None:
    """The pass criterion of one request: status, body, what was written."""
    assert status in DOCUMENTED, (status, text[:300], request.mode, request.body[:200])
    assert SECRET not in text
    if status != 200:
        body = json.loads(text)
        assert set(body) == {"error", "reason"}, body
    if not request.genuine or len(request.body) > MAX_BODY:
        assert status in {401, 413}, (status, text, request.mode)
    if status == 401:
        assert not request.genuine
    if status == 200:
        assert request.genuine
        assert written == ([request.body] if _expect_stored(request) else []), written
    else:
        assert written == [], (status, text)


@pytest.mark.timeout(900)
def test_source_in_process_never_fails_undocumented_nor_writes_unsigned(
    figures: Figures,
) -> None:
    producer = FlakyProducer()
    app_settings = Settings.model_validate(
        {
            "zoom_webhook_secret_token": SECRET,
            "topic_prefix": "fuzz",
            "source_max_body_bytes": MAX_BODY,
        }
    )
    loop = asyncio.new_event_loop()

    async def start() -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = TestClient(
            TestServer(create_app(app_settings, producer=producer))
        )
        await client.start_server()
        return client

    client = loop.run_until_complete(start())
    statuses: Counter[str] = Counter()

    async def post(request: FuzzRequest) -> tuple[int, str]:
        response = await client.post(WEBHOOK_PATH, data=request.body, headers=request.headers)
        return response.status, await response.text()

    @settings(
        max_examples=IN_PROCESS_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests(SECRET, MAX_BODY), kafka_fails=st.booleans())
    def one_request(request: FuzzRequest, kafka_fails: bool) -> None:
        producer.failing = kafka_fails
        before = len(producer.records)
        status, text = loop.run_until_complete(post(request))
        written = [record.value for record in producer.records[before:]]
        statuses[f"{status} {request.mode}"] += 1
        if kafka_fails and _expect_stored(request):
            assert status != 200, text
        else:
            assert status != 503, text
        check_answer(request, status, text, written)

    try:
        one_request()
        loop.run_until_complete(_wire_level_abuse(client, producer))
        assert loop.run_until_complete(client.get("/healthz")).status == 200
    finally:
        loop.run_until_complete(client.close())
        loop.close()
    figures(
        requests=sum(statuses.values()),
        by_status_and_signing=dict(sorted(statuses.items())),
        written=len(producer.records),
        unsigned_written=0,
        server_errors_other_than_503=0,
    )


async def wire_level_cases(host: str, port: int, secret: str) -> dict[str, bytes]:
    """Requests no HTTP client library sends: a body cut short of its Content-Length, a chunked
    body over the limit, an oversized header line, and a path traversal. Their answers."""
    from tests.processes import zoom_headers

    body = b'{"event": "quality_management.evaluation_completed", "payload": {}}'
    signed = zoom_headers(secret, body)
    head = "".join(f"{k}: {v}\r\n" for k, v in signed.items()).encode()
    cases = {
        "cut_short": b"POST /zoom/webhooks HTTP/1.1\r\nHost: x\r\n"
        + head
        + b"Content-Length: %d\r\n\r\n" % (len(body) + 50)
        + body,
        "chunked_over_limit": b"POST /zoom/webhooks HTTP/1.1\r\nHost: x\r\n"
        + head
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (32768, b"y" * 32768) for _ in range(MAX_BODY // 32768 + 60))
        + b"0\r\n\r\n",
        # only as far as the header too long: the server answers before reading the rest
        "oversized_header": b"POST /zoom/webhooks HTTP/1.1\r\nHost: x\r\nX-Big: "
        + b"a" * 20_000
        + b"\r\n",
        "path_traversal": b"GET /../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close"
        b"\r\n\r\n",
        "encoded_traversal": b"GET /zoom/webhooks/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x"
        b"\r\nConnection: close\r\n\r\n",
    }
    return {
        name: await raw_http(host, port, request, close_write=name == "cut_short")
        for name, request in cases.items()
    }


def check_wire_answers(answers: dict[str, bytes]) -> None:
    for name, answer in answers.items():
        status_line = answer.split(b"\r\n", 1)[0]
        if name == "cut_short" and not answer:
            continue  # the server waited for the rest, then the connection closed: nothing kept
        assert status_line[:7] == b"HTTP/1." and status_line[9:10] == b"4", (name, answer[:200])
        assert b"root:" not in answer


async def _wire_level_abuse(client: TestClient[Any, Any], producer: FlakyProducer) -> None:
    producer.failing = False
    before = len(producer.records)
    server = client.server
    answers = await wire_level_cases(str(server.host), int(server.port or 0), SECRET)
    check_wire_answers(answers)
    assert len(producer.records) == before, "a malformed request was written"


@pytest.mark.kafka
@pytest.mark.timeout(600)
def test_the_real_source_stores_exactly_the_genuine_requests(
    deployment: Deployment, processes: ProcessGroup, figures: Figures
) -> None:
    source = processes.source(SOURCE_MAX_BODY_BYTES=str(MAX_BODY))
    loop = asyncio.new_event_loop()
    session = loop.run_until_complete(_session())
    answered: list[tuple[FuzzRequest, int, str]] = []

    async def post(request: FuzzRequest) -> tuple[int, str]:
        url = source.url + WEBHOOK_PATH
        async with session.post(url, data=request.body, headers=request.headers) as response:
            return response.status, await response.text()

    @settings(
        max_examples=REAL_SOURCE_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests(SECRET, MAX_BODY))
    def one_request(request: FuzzRequest) -> None:
        status, text = loop.run_until_complete(post(request))
        source.check_alive()
        answered.append((request, status, text))
        assert status in DOCUMENTED - {503}, (status, text)
        if status == 200:
            assert request.genuine

    try:
        one_request()
        answers = loop.run_until_complete(wire_level_cases("127.0.0.1", source.port, SECRET))
        check_wire_answers(answers)
    finally:
        loop.run_until_complete(session.close())
        loop.close()
    source.check_alive()
    stored = read_everything(deployment.bootstrap, [deployment.topics.raw])
    expected = [r.body for r, status, _ in answered if status == 200 and _expect_stored(r)]
    assert Counter(m.value() for m in stored) == Counter(expected)
    assert SECRET not in source.log()
    figures(
        requests=len(answered) + len(answers),
        by_status=dict(sorted(Counter(str(s) for _, s, _ in answered).items())),
        raw_records=len(stored),
        unsigned_written=0,
    )


async def _session() -> ClientSession:
    return ClientSession(timeout=ClientTimeout(total=30))


@pytest.mark.kafka
@pytest.mark.timeout(900)
def test_the_worker_types_or_dead_letters_every_arbitrary_record(
    deployment: Deployment, processes: ProcessGroup, figures: Figures
) -> None:
    worker = processes.worker()
    producer = Producer({"bootstrap.servers": deployment.bootstrap, "acks": "all"})
    sent: dict[str, FuzzRecord] = {}

    def produce(record: FuzzRecord) -> None:
        tracking_id = f"fuzz-{len(sent)}"
        sent[tracking_id] = record
        headers = [(k, v) for k, v in record.headers if k.lower() != "x-zm-trackingid"]
        headers.append(("x-zm-trackingid", tracking_id.encode()))
        producer.produce(deployment.topics.raw, value=record.value, key=record.key, headers=headers)

    @settings(
        max_examples=WORKER_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(records=st.lists(raw_records(), min_size=1, max_size=10))
    def some_records(records: list[FuzzRecord]) -> None:
        for record in records:
            produce(record)
        assert producer.flush(30) == 0
        worker.check_alive()

    some_records()

    def dropped() -> float:
        return metric_total(worker.metrics(), "zoom_worker_dead_letters_dropped_total")

    def all_counted() -> bool:
        assert dropped() == 0, f"dead letters dropped:\n{worker.tail()}"
        return sum(worker.events_counted().values()) >= len(sent) and idle(worker)

    def state() -> str:
        return f"counted: {worker.events_counted()}\nlag: {worker.lag()}\n{worker.diagnosis()}"

    wait_until(all_counted, 180, f"the worker to count {len(sent)} records", explain=state)
    counted = worker.events_counted()
    with OutputReader(deployment) as reader:
        reader.drain()
        out: Counter[str] = Counter()
        for message in [*reader.typed, *reader.dlq]:
            tracking = dict(message.headers() or []).get("x-zm-trackingid")
            out[(tracking or b"").decode()] += 1
        typed_ids = reader.seen_ids
        reasons = Counter(
            (dict(m.headers() or []).get("zoom-dlq-reason") or b"").decode() for m in reader.dlq
        )
        typed, dead = len(reader.typed), len(reader.dlq)
    missing = [t for t in sent if out[t] == 0]
    doubled = [t for t, n in out.items() if n > 1 or t not in sent]
    # every record that did not come out is a retry of an event that did
    for tracking_id in missing:
        value = sent[tracking_id].value or b""
        try:
            identity = event_identity(parse_event(value), value)
        except EventValidationError:
            identity = event_identity(None, value)
        assert identity in typed_ids, f"{tracking_id} neither typed nor dead-lettered: {value!r}"
    figures(
        records_in=len(sent),
        typed_records=typed,
        dead_letters=dead,
        dropped_as_duplicates=len(missing),
        records_out_plus_duplicates=typed + dead + len(missing),
        dead_letter_reasons=dict(sorted(reasons.items())),
        worker_counted=counted,
    )
    assert not doubled, doubled[:10]
    assert typed + dead + len(missing) == len(sent)
    assert counted.get("duplicate", 0) == len(missing)
    assert "internal_error" not in reasons, "a record the worker could not handle (a bug)"
    worker.check_alive()
