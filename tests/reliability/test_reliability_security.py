"""Security: nobody unsigned gets in, replays are refused, the secret never shows, no write path.

One deployment for the module: ``zoom-connector source`` and ``zoom-connector worker`` as
processes on the shared broker, both at ``LOG_LEVEL=DEBUG`` with the Zoom secret in their
environment, their stdout and stderr captured.

* Unsigned or wrongly signed requests (no signature, no timestamp, another secret, a signature
  over other bytes or another timestamp, a truncated or re-cased signature, an unsigned URL
  validation challenge): 401, and none of them is on the raw topic.
* Replays outside the replay window (a request signed 305 s, a day, or 305 s in the future
  from now, correctly): 401, counted as ``stale_timestamp`` / ``future_timestamp``, not stored.
  A replay *within* the window is accepted and made one typed record by the worker's dedup.
* The secret never appears in the processes' output, in ``/metrics``, in any answer (error bodies
  and the URL validation answer included), nor in any record the connector wrote.
* The worker's HTTP API has no write path: POST, PUT, PATCH, DELETE on every route: 404 or 405.
* Path traversal (plain and percent-encoded) and an oversized header get a clean 4xx from both
  processes, which keep serving.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from connector.source import WEBHOOK_PATH
from connector.source.signature import compute_signature
from connector.wire import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests import kafka_helpers
from tests.processes import (
    CATALOG,
    Deployment,
    ProcessGroup,
    SourceProcess,
    WorkerProcess,
    metric_total,
    read_everything,
    wait_until,
    zoom_headers,
)
from tests.reliability.workload import EVALUATION, SECRET, Figures, raw_http

pytestmark = pytest.mark.kafka

OTHER_SECRET = "not-the-secret-token"


@dataclass
class Stack:
    deployment: Deployment
    source: SourceProcess
    worker: WorkerProcess
    answers: list[str] = field(default_factory=list)
    """Every answer body the tests received, for the secret check."""

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        response = httpx.post(self.source.url + WEBHOOK_PATH, content=body, headers=headers)
        self.answers.append(response.text)
        return response


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    deployment = Deployment(
        kafka_bootstrap,
        kafka_helpers.unique_name("sec", "security"),
        tmp_path_factory.mktemp("security"),
        extra_env={"LOG_LEVEL": "DEBUG", "ZOOM_WEBHOOK_SECRET_TOKEN": SECRET},
    )
    deployment.create_topics()
    processes = ProcessGroup(deployment, SECRET)
    try:
        source = processes.source()
        worker = processes.worker()
        wait_until(lambda: worker.lag(), 90, "the worker to own its partitions")
        yield Stack(deployment, source, worker)
    finally:
        processes.stop_all()


def marked(marker: str) -> bytes:
    """A valid evaluation whose id is ``marker`` (so it can be looked for on the topics)."""
    event = copy.deepcopy(CATALOG.example(EVALUATION))
    event["event"] = EVALUATION
    event["event_ts"] = int(time.time() * 1000)
    event["payload"]["object"]["evaluation_id"] = marker
    return json.dumps(event).encode()


def forged_requests(prefix: str) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Requests that must not get in, by what is wrong with them."""
    now = str(int(time.time()))
    cases: dict[str, tuple[bytes, dict[str, str]]] = {}

    def case(name: str, headers: dict[str, str], body: bytes | None = None) -> None:
        cases[name] = (body if body is not None else marked(f"{prefix}-{name}"), headers)

    def signed(body: bytes, secret: str = SECRET, timestamp: str = now) -> dict[str, str]:
        return {
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: compute_signature(secret.encode(), timestamp, body),
        }

    body = marked(f"{prefix}-no-signature")
    case("no-signature", {TIMESTAMP_HEADER: now}, body)
    body = marked(f"{prefix}-no-timestamp")
    case("no-timestamp", {SIGNATURE_HEADER: signed(body)[SIGNATURE_HEADER]}, body)
    body = marked(f"{prefix}-other-secret")
    case("other-secret", signed(body, OTHER_SECRET), body)
    body = marked(f"{prefix}-other-body")
    case("other-body", signed(body + b" "), body)
    body = marked(f"{prefix}-other-timestamp")
    case("other-timestamp", {**signed(body), TIMESTAMP_HEADER: str(int(now) - 1)}, body)
    body = marked(f"{prefix}-truncated-signature")
    case(
        "truncated-signature",
        {**signed(body), SIGNATURE_HEADER: signed(body)[SIGNATURE_HEADER][:-2]},
        body,
    )
    body = marked(f"{prefix}-upper-case-signature")
    case(
        "upper-case-signature",
        {**signed(body), SIGNATURE_HEADER: signed(body)[SIGNATURE_HEADER].upper()},
        body,
    )
    body = marked(f"{prefix}-empty-signature")
    case("empty-signature", {**signed(body), SIGNATURE_HEADER: ""}, body)
    body = marked(f"{prefix}-secret-as-signature")
    case("secret-as-signature", {**signed(body), SIGNATURE_HEADER: f"v0={SECRET}"}, body)
    challenge = json.dumps(
        {"event": "endpoint.url_validation", "payload": {"plainToken": f"{prefix}-oracle"}}
    ).encode()
    case("unsigned-url-validation", {}, challenge)
    case("url-validation-other-secret", signed(challenge, OTHER_SECRET), challenge)
    return cases


def test_unsigned_or_wrongly_signed_requests_never_reach_kafka(
    stack: Stack, figures: Figures
) -> None:
    prefix = f"forged-{time.monotonic_ns()}"
    cases = forged_requests(prefix)
    statuses = {
        name: stack.post(body, headers).status_code for name, (body, headers) in cases.items()
    }
    genuine = marked(f"{prefix}-genuine")
    assert stack.post(genuine, zoom_headers(SECRET, genuine)).status_code == 200

    stored = [
        m.value() or b""
        for m in read_everything(stack.deployment.bootstrap, [stack.deployment.topics.raw])
    ]
    leaked = [name for name in cases if any(f"{prefix}-{name}".encode() in v for v in stored)]
    figures(
        forged_requests=len(cases),
        answers=statuses,
        forged_on_the_raw_topic=len(leaked),
        genuine_on_the_raw_topic=sum(genuine == v for v in stored),
    )
    assert set(statuses.values()) == {401}, statuses
    assert not leaked, leaked
    assert any(genuine == v for v in stored)


def test_replays_outside_the_window_are_refused(stack: Stack, figures: Figures) -> None:
    prefix = f"replay-{time.monotonic_ns()}"
    before = stack.source.metrics()
    # Offsets from the moment each request is signed; 5 s past the 300 s window, because the
    # timestamp travels in whole seconds and the request takes a moment to arrive (at 301 s a
    # request signed "ahead" was once accepted: 299.x s ahead by the time it was checked).
    old = {"305 s old": -305.0, "a day old": -86_400.0, "305 s ahead": 305.0}
    statuses = {}
    for name, offset in old.items():
        body = marked(f"{prefix}-{name.replace(' ', '-')}")
        headers = zoom_headers(SECRET, body, at=time.time() + offset)
        statuses[name] = stack.post(body, headers).status_code
    # A captured request replayed within the window: accepted, and one event downstream.
    body = marked(f"{prefix}-within")
    headers = zoom_headers(SECRET, body)
    within = [stack.post(body, headers).status_code for _ in range(3)]
    after = stack.source.metrics()

    def failures(reason: str) -> float:
        name = "zoom_source_signature_failures_total"
        return metric_total(after, name, reason=reason) - metric_total(before, name, reason=reason)

    stored = read_everything(stack.deployment.bootstrap, [stack.deployment.topics.raw])
    replayed_stored = [m for m in stored if prefix.encode() in (m.value() or b"")]
    typed_topic = stack.deployment.topics.typed(EVALUATION)

    def typed_copies() -> int:
        records = read_everything(stack.deployment.bootstrap, [typed_topic])
        return sum(f"{prefix}-within".encode() in (m.value() or b"") for m in records)

    wait_until(typed_copies, 90, "the replayed event's typed record")
    wait_until(lambda: set(stack.worker.lag().values()) == {0.0}, 90, "the worker to catch up")
    figures(
        replays_outside_the_window=statuses,
        stale_timestamp_counted=failures("stale_timestamp"),
        future_timestamp_counted=failures("future_timestamp"),
        replays_within_the_window=within,
        raw_records_of_the_replays=len(replayed_stored),
        typed_records_of_the_replays=typed_copies(),
    )
    assert set(statuses.values()) == {401}, statuses
    assert failures("stale_timestamp") == 2 and failures("future_timestamp") == 1
    assert within == [200, 200, 200]
    assert len(replayed_stored) == 3  # only the three within the window
    assert typed_copies() == 1


def test_the_worker_api_has_no_write_path(stack: Stack, figures: Figures) -> None:
    paths = [
        "/",
        "/metrics",
        "/partitions",
        "/agents",
        "/agents/someone/scores",
        "/router/",
        "/table/",
        f"/table/{stack.deployment.worker_id}-dedup/",
        "/table/dedup/",
        "/table/agent-scores/someone/",
        "/stats/",
        "/graph/",
    ]
    answers: dict[str, int] = {}
    for path in paths:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = httpx.request(method, stack.worker.url + path, content=b"{}", timeout=10)
            stack.answers.append(response.text)
            answers[f"{method} {path}"] = response.status_code
    source_answers = {}
    for method, path in [("GET", WEBHOOK_PATH), ("PUT", WEBHOOK_PATH), ("DELETE", WEBHOOK_PATH)]:
        response = httpx.request(method, stack.source.url + path, timeout=10)
        source_answers[f"{method} {path}"] = response.status_code
    figures(
        worker_write_attempts=len(answers),
        worker_answers=dict(Counter(str(status) for status in answers.values())),
        source_answers=source_answers,
    )
    assert set(answers.values()) <= {404, 405}, answers
    assert set(source_answers.values()) == {405}, source_answers
    stack.worker.check_alive()


def test_path_traversal_and_oversized_headers_get_a_clean_4xx(
    stack: Stack, figures: Figures
) -> None:
    requests = {
        "traversal": b"GET /../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n"
        b"Connection: close\r\n\r\n",
        "encoded traversal": b"GET /%2e%2e/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n"
        b"Connection: close\r\n\r\n",
        "encoded slash traversal": b"GET /table/..%2f..%2f..%2fetc%2fpasswd/ HTTP/1.1\r\n"
        b"Host: x\r\nConnection: close\r\n\r\n",
        "oversized header": b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: "
        + b"a" * 20_000
        + b"\r\n",
        "oversized request line": b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n",
    }

    async def ask(port: int) -> dict[str, bytes]:
        return {
            name: await raw_http("127.0.0.1", port, request, close_write=False)
            for name, request in requests.items()
        }

    answers = {
        process: asyncio.run(ask(port))
        for process, port in (("source", stack.source.port), ("worker", stack.worker.port))
    }
    status_lines = {
        process: {name: answer.split(b"\r\n", 1)[0].decode() for name, answer in by_name.items()}
        for process, by_name in answers.items()
    }
    figures(answers=status_lines)
    for by_name in answers.values():
        for name, answer in by_name.items():
            status = answer.split(b"\r\n", 1)[0]
            assert status[:7] == b"HTTP/1." and status[9:10] == b"4", (name, answer[:200])
            assert b"root:" not in answer
    stack.source.check_alive()
    stack.worker.check_alive()
    assert httpx.get(stack.source.url + "/healthz").status_code == 200
    assert httpx.get(stack.worker.url + "/metrics").status_code == 200


def test_the_secret_never_appears_in_output(stack: Stack, figures: Figures) -> None:
    """Runs last in this module: it reads everything the others made the processes say."""
    # a few more answers: each kind of error, and the URL validation answer
    challenge = b'{"event":"endpoint.url_validation","payload":{"plainToken":"tok"}}'
    validation = stack.post(challenge, zoom_headers(SECRET, challenge))
    assert validation.status_code == 200 and set(validation.json()) == {
        "plainToken",
        "encryptedToken",
    }
    for body, headers in [
        (b"[]", zoom_headers(SECRET, b"[]")),
        (b"{}", zoom_headers(OTHER_SECRET, b"{}")),
        (b"x" * 600_000, zoom_headers(SECRET, b"x")),
    ]:
        stack.post(body, headers)
    pages = {
        "source /metrics": httpx.get(stack.source.url + "/metrics").text,
        "source /readyz": httpx.get(stack.source.url + "/readyz").text,
        "worker /metrics": httpx.get(stack.worker.url + "/metrics").text,
        "worker /": httpx.get(stack.worker.url + "/").text,
        "worker /router/": httpx.get(stack.worker.url + "/router/").text,
    }
    topics = [
        stack.deployment.topics.raw,
        stack.deployment.topics.dlq,
        *stack.deployment.typed_topics(),
    ]
    records = read_everything(stack.deployment.bootstrap, topics)
    secret = SECRET.encode()
    in_records = [
        m.topic()
        for m in records
        if secret in (m.value() or b"")
        or any(secret in (v or b"") or SECRET in k for k, v in (m.headers() or []))
    ]
    logs = {"source": stack.source.log(), "worker": stack.worker.log()}
    figures(
        source_log_bytes=len(logs["source"]),
        worker_log_bytes=len(logs["worker"]),
        answers_checked=len(stack.answers),
        pages_checked=len(pages),
        records_checked=len(records),
        secret_found=0,
    )
    assert logs["source"].count("webhook status=") > 10  # DEBUG logging was on
    for name, text in [*logs.items(), *pages.items()]:
        assert SECRET not in text, f"the secret appears in {name}"
    assert not [a for a in stack.answers if SECRET in a], "the secret appears in an answer"
    assert not in_records, f"the secret appears in records of {in_records}"
