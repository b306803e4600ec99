"""The HTTP source as an aiohttp application: ``create_app(settings, producer=...)``.

Routes:

* ``POST /zoom/webhooks``: in this order, (1) at most ``SOURCE_MAX_IN_FLIGHT`` requests are handled
  at once, beyond that 503 at once; (2) the body may not exceed ``SOURCE_MAX_BODY_BYTES`` (413,
  checked on ``Content-Length`` before reading and again while reading, chunked bodies included);
  (3) the Zoom signature and timestamp (401, see :mod:`connector.source.signature`); (4) the body
  must be a JSON object with a string ``event`` (400). Then ``endpoint.url_validation`` is answered,
  and every other event, known or not, is written byte for byte to the raw topic with Zoom's headers
  and the receive time as record headers, keyed by :func:`connector.wire.raw_record_key`.
  The answer is 200 only after the cluster acknowledged the write, 503 when it could not within
  ``SOURCE_PRODUCE_TIMEOUT_SECONDS`` (Zoom then retries). With ``SOURCE_SPOOL_DIR`` set, such a
  record is fsynced to the disk spool instead and answered 200 (``"status": "spooled"``); 503 then
  only when the spool is full (:mod:`connector.source.spooling`).
* ``GET /healthz``: 200 while the process serves. ``GET /readyz``: 200 when Kafka is reachable
  (or, with a spool, while the spool has room), else 503; with a spool the answer describes it.
  ``GET /metrics``: Prometheus text (:mod:`connector.source.metrics`).

Error answers are ``{"error": "<short text>", "reason": "<machine_readable>"}``; they never contain
a secret, and neither do logs or metrics. Each webhook request logs one ``key=value`` line:
DEBUG when stored or answered, INFO when refused (4xx), WARNING when Kafka failed (5xx).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web
from aiohttp.hdrs import TRANSFER_ENCODING

from connector.errors import ConfigurationError
from connector.settings import Settings
from connector.source import WEBHOOK_PATH
from connector.source.drainer import Drainer
from connector.source.metrics import CONTENT_TYPE, SourceMetrics
from connector.source.producer import (
    DeliveryReport,
    DurableProducer,
    KafkaDurableProducer,
    ProduceError,
)
from connector.source.signature import (
    URL_VALIDATION_EVENT,
    SignatureError,
    url_validation_response,
    verify,
)
from connector.source.spool import Spool, SpoolError
from connector.source.spooling import Spooled, SpoolingStore
from connector.topics import TopicNames
from connector.wire import (
    RECEIVED_AT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TRACKING_ID_HEADER,
    raw_record_key,
)

log = logging.getLogger(__name__)

FORWARDED_HEADERS: Final = (TIMESTAMP_HEADER, SIGNATURE_HEADER, TRACKING_ID_HEADER)
"""Zoom's request headers copied to the record, each when present."""

_RETRY_AFTER_SECONDS: Final = "1"

Clock = Callable[[], float]


@dataclass
class _RequestFacts:
    """What the one log line of a webhook request says."""

    event: str | None = None
    key: bytes | None = None
    reason: str | None = None
    size: int = 0


class WebhookReceiver:
    """The handlers of one app, with the state they share."""

    def __init__(
        self,
        settings: Settings,
        producer: DurableProducer,
        metrics: SourceMetrics,
        clock: Clock = time.time,
    ) -> None:
        secrets = settings.secret_tokens()
        if not secrets:
            raise ConfigurationError(
                "ZOOM_WEBHOOK_SECRET_TOKEN is not set: the source cannot verify Zoom's signatures"
            )
        self._secrets = secrets
        self._topic = TopicNames(settings.topic_prefix).raw
        self._window = float(settings.source_replay_window_seconds)
        self._max_body = settings.source_max_body_bytes
        self._max_in_flight = settings.source_max_in_flight
        self._in_flight = 0
        self._clock = clock
        self._requests_by_status: dict[int, Any] = {}
        self.producer = producer
        self.metrics = metrics
        self.store: SpoolingStore | None = None  # set on start-up when the spool is on

    async def handle_webhook(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        facts = _RequestFacts()
        if self._in_flight >= self._max_in_flight:
            self.metrics.overloaded.inc()
            facts.reason = "overloaded"
            response = _error(503, "too many requests in flight, retry later", "overloaded")
        else:
            self._in_flight += 1
            self.metrics.in_flight.inc()
            try:
                response = await self._receive(request, facts)
            finally:
                self._in_flight -= 1
                self.metrics.in_flight.dec()
        elapsed = time.perf_counter() - started
        counter = self._requests_by_status.get(response.status)
        if counter is None:
            counter = self.metrics.requests.labels(status=str(response.status))
            self._requests_by_status[response.status] = counter
        counter.inc()
        self.metrics.latency.observe(elapsed)
        _log_request(request, response.status, facts, elapsed)
        return response

    async def _receive(self, request: web.Request, facts: _RequestFacts) -> web.Response:
        received_at = self._clock()
        body = await self._read_body(request, facts)
        if body is None:
            facts.reason = "body_too_large"
            return _error(413, f"body larger than {self._max_body} bytes", "body_too_large")

        try:
            verified = verify(
                signature=request.headers.get(SIGNATURE_HEADER),
                timestamp=request.headers.get(TIMESTAMP_HEADER),
                body=body,
                secrets=self._secrets,
                now=received_at,
                window_seconds=self._window,
            )
        except SignatureError as exc:
            self.metrics.signature_failures.labels(reason=exc.reason).inc()
            facts.reason = exc.reason
            return _error(401, str(exc), exc.reason)
        self.metrics.timestamp_age.observe(verified.age_seconds)

        event, problem = _parse_webhook(body)
        if event is None:
            facts.reason = problem
            return _error(400, _PARSE_PROBLEMS[problem], problem)
        facts.event = event_type = event["event"]

        if event_type == URL_VALIDATION_EVENT:
            payload = event.get("payload")
            token = payload.get("plainToken") if isinstance(payload, dict) else None
            if not isinstance(token, str) or not token:
                facts.reason = "missing_plain_token"
                return _error(400, "payload.plainToken must be a string", "missing_plain_token")
            answer = url_validation_response(token, self._secrets[verified.secret_index])
            return web.Response(body=orjson.dumps(answer), content_type="application/json")

        facts.key = key = raw_record_key(event, body)
        headers = [
            (name, value.encode("utf-8", "surrogateescape"))
            for name in FORWARDED_HEADERS
            if (value := request.headers.get(name)) is not None
        ]
        headers.append((RECEIVED_AT_HEADER, str(int(received_at * 1000)).encode("ascii")))
        report: DeliveryReport | Spooled
        try:
            if self.store is not None:
                report = await self.store.store(key, body, headers, received_at)
            else:
                report = await self.producer.send(self._topic, key, body, headers)
        except ProduceError as exc:
            self.metrics.produce_errors.labels(reason=exc.reason).inc()
            facts.reason = f"{exc.reason} ({exc})"
            return _error(503, "Kafka cannot store the webhook now, retry later", exc.reason)
        except SpoolError as exc:
            self.metrics.produce_errors.labels(reason=exc.reason).inc()
            facts.reason = f"{exc.reason} ({exc})"
            return _error(
                503,
                "neither Kafka nor the spool can store the webhook now, retry later",
                exc.reason,
            )
        if isinstance(report, Spooled):
            facts.reason = f"spooled ({report.reason})"
            return web.Response(body=b'{"status":"spooled"}', content_type="application/json")
        self.metrics.stored.inc()
        stored = {
            "status": "stored",
            "topic": report.topic,
            "partition": report.partition,
            "offset": report.offset,
        }
        return web.Response(body=orjson.dumps(stored), content_type="application/json")

    async def _read_body(self, request: web.Request, facts: _RequestFacts) -> bytes | None:
        """The raw body, or ``None`` as soon as it is known to exceed the limit."""
        declared = request.content_length
        if declared is not None and declared > self._max_body:
            return None
        if declared is not None and TRANSFER_ENCODING not in request.headers:
            # A Content-Length body within the limit: the parser delivers exactly that many bytes.
            body = await request.read()
            facts.size = len(body)
            self.metrics.received_bytes.inc(facts.size)
            return body
        chunks: list[bytes] = []
        async for chunk in request.content.iter_any():
            facts.size += len(chunk)
            self.metrics.received_bytes.inc(len(chunk))
            if facts.size > self._max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def handle_healthz(self, request: web.Request) -> web.Response:
        return _json(200, {"status": "ok"})

    async def handle_readyz(self, request: web.Request) -> web.Response:
        kafka = await self.producer.is_ready()
        answer: dict[str, Any] = {"kafka": "reachable" if kafka else "unreachable"}
        ready = kafka
        if self.store is not None:
            answer["spool"] = self.store.status()
            ready = kafka or not answer["spool"]["full"]
        return _json(200 if ready else 503, answer)

    async def handle_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


RECEIVER: Final = web.AppKey("receiver", WebhookReceiver)
SETTINGS: Final = web.AppKey("settings", Settings)


def create_app(
    settings: Settings,
    producer: DurableProducer | None = None,
    *,
    clock: Clock = time.time,
) -> web.Application:
    """The source app. Without ``producer`` it writes to Kafka as ``settings`` say.

    The app starts the producer on start-up and closes (flushes) it on clean-up, whichever it is.
    Raises :class:`ConfigurationError` when no Zoom secret is configured.
    """
    receiver = WebhookReceiver(
        settings,
        producer if producer is not None else KafkaDurableProducer.from_settings(settings),
        SourceMetrics(),
        clock,
    )
    app = web.Application(client_max_size=settings.source_max_body_bytes)
    app[SETTINGS] = settings
    app[RECEIVER] = receiver
    app.cleanup_ctx.append(_producer_lifecycle)
    app.router.add_post(WEBHOOK_PATH, receiver.handle_webhook)
    app.router.add_get("/healthz", receiver.handle_healthz)
    app.router.add_get("/readyz", receiver.handle_readyz)
    app.router.add_get("/metrics", receiver.handle_metrics)
    return app


async def _producer_lifecycle(app: web.Application) -> AsyncIterator[None]:
    receiver, settings = app[RECEIVER], app[SETTINGS]
    producer = receiver.producer
    await producer.start()
    spool: Spool | None = None
    draining: asyncio.Task[None] | None = None
    if settings.source_spool_dir is not None:
        spool, draining = await _start_spool(receiver, settings)
    yield
    if draining is not None:
        draining.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await draining
    await producer.close()
    if spool is not None:
        spool.close()


async def _start_spool(
    receiver: WebhookReceiver, settings: Settings
) -> tuple[Spool, asyncio.Task[None]]:
    """Open the spool (what an earlier process left is drained first) and start its drainer."""
    assert settings.source_spool_dir is not None
    try:
        spool, found = await asyncio.to_thread(
            Spool.open,
            settings.source_spool_dir,
            settings.source_spool_max_bytes,
            settings.source_spool_segment_bytes,
        )
    except (SpoolError, OSError) as exc:
        raise ConfigurationError(f"SOURCE_SPOOL_DIR cannot be used: {exc}") from exc
    topic = TopicNames(settings.topic_prefix).raw
    drainer = Drainer(spool, receiver.producer, topic, receiver.metrics)
    for sequence, contents in found.items():
        drainer.report(sequence, contents)
    receiver.store = SpoolingStore(spool, receiver.producer, topic, receiver.metrics, drainer)
    log.info(
        "spool on dir=%s max_bytes=%d left_by_an_earlier_process records=%d bytes=%d",
        settings.source_spool_dir,
        settings.source_spool_max_bytes,
        spool.records(),
        spool.size_bytes(),
    )
    return spool, asyncio.create_task(drainer.run(), name="spool-drainer")


_PARSE_PROBLEMS: Final = {
    "invalid_json": "body is not valid JSON",
    "not_an_object": "body is not a JSON object",
    "missing_event": "body has no event field",
    "event_not_a_string": "event is not a string",
}


def _parse_webhook(body: bytes) -> tuple[dict[str, Any], str] | tuple[None, str]:
    """The body as a JSON object with a string ``event``, or ``None`` and the problem."""
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, "invalid_json"
    if not isinstance(event, dict):
        return None, "not_an_object"
    if "event" not in event:
        return None, "missing_event"
    if not isinstance(event["event"], str):
        return None, "event_not_a_string"
    return event, ""


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _error(status: int, message: str, reason: str) -> web.Response:
    response = _json(status, {"error": message, "reason": reason})
    if status == 503:
        response.headers["Retry-After"] = _RETRY_AFTER_SECONDS
    return response


def _log_request(request: web.Request, status: int, facts: _RequestFacts, elapsed: float) -> None:
    level = logging.WARNING if status >= 500 else logging.INFO if status >= 400 else logging.DEBUG
    if not log.isEnabledFor(level):
        return
    log.log(
        level,
        "webhook status=%d event=%s key=%s bytes=%d duration_ms=%.1f tracking_id=%s reason=%s",
        status,
        facts.event,
        facts.key.decode("utf-8", "replace") if facts.key is not None else None,
        facts.size,
        elapsed * 1000,
        request.headers.get(TRACKING_ID_HEADER),
        facts.reason,
    )
