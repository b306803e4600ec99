"""A Kafka producer for asyncio that reports a write only once the cluster has durably stored it.

:class:`KafkaDurableProducer` wraps confluent-kafka's ``Producer`` (librdkafka) configured as an
idempotent producer with ``acks=all``. Each :meth:`~KafkaDurableProducer.send` hands the record to
librdkafka and awaits an asyncio future that the delivery callback resolves from a background
thread that calls ``poll()``. Many requests share the producer concurrently; librdkafka batches them
(``linger.ms``) and reports a whole batch in one ``poll()``, so the callbacks queue their outcomes
and wake the event loop once per burst (one ``call_soon_threadsafe``), not once per record.

Deadline: ``send`` waits at most ``delivery_timeout`` seconds (one timer for all pending sends:
their deadlines expire in the order they were sent), and librdkafka is told to give up on
the message after the same time (``message.timeout.ms`` = ``request.timeout.ms`` = the deadline).
librdkafka checks message timeouts about once a second and cannot take back a request already on
the wire, so a message whose ``send`` timed out may *rarely* still be stored a moment later. The
source then answered 503, Zoom retries, and the raw topic holds the event twice: harmless, since the
pipeline deduplicates by event. The reverse never happens: ``send`` returns only after the broker
acknowledged the write to all in-sync replicas.

While the cluster cannot be reached the source keeps serving (answering 503) and says so with a
line naming what to check; that line, librdkafka's reconnect failures and failed readiness checks
are coalesced (:mod:`connector.kafka.coalescing_log`): each is written once, then as a count every
30 s for as long as it lasts.

Errors are :class:`ProduceError` subclasses with a machine-readable :attr:`ProduceError.reason`.
Unit tests substitute anything satisfying the :class:`DurableProducer` protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from connector.errors import ConnectorError
from connector.kafka.coalescing_log import CoalescingLog
from connector.kafka.polling import ClientErrors, PolledClient
from connector.kafka.refusals import client_creation_error
from connector.settings import Settings

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]

_METADATA_TIMEOUT_SECONDS: Final = 1.0
_READINESS_TTL_SECONDS: Final = 2.0
# Room for the record headers on top of the largest body the source accepts.
_RECORD_OVERHEAD_BYTES: Final = 64 * 1024


class ProduceError(ConnectorError):
    """A record was not (or not known to be) stored; :attr:`reason` is machine-readable."""

    reason = "kafka_error"


class ProduceTimeout(ProduceError):
    """The cluster did not acknowledge the record within the deadline."""

    reason = "kafka_timeout"


class ProducerQueueFull(ProduceError):
    """librdkafka's local queue is full: the cluster is slower than the incoming webhooks."""

    reason = "kafka_queue_full"


class DeliveryFailed(ProduceError):
    """librdkafka or the broker reported an error for the record."""

    reason = "kafka_error"


@dataclass(frozen=True)
class DeliveryReport:
    """Where the cluster stored a record."""

    topic: str
    partition: int
    offset: int


class DurableProducer(Protocol):
    """What the HTTP source needs from a producer; the app starts and closes it."""

    async def start(self) -> None: ...

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers) -> DeliveryReport:
        """Store one record; return once acknowledged, or raise :class:`ProduceError`."""
        ...

    async def is_ready(self) -> bool:
        """Whether the cluster is reachable now (may be cached for a moment)."""
        ...

    async def close(self) -> None:
        """Deliver what is pending (bounded by the deadline), then release the client."""
        ...


def producer_config(settings: Settings) -> dict[str, Any]:
    """librdkafka settings for the source: the cluster's, plus durability and the deadline."""
    deadline_ms = max(1, round(settings.source_produce_timeout_seconds * 1000))
    return {
        **settings.kafka_client_config(),
        "client.id": "zoom-connector-source",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": deadline_ms,
        "request.timeout.ms": deadline_ms,
        "message.max.bytes": settings.source_max_body_bytes + _RECORD_OVERHEAD_BYTES,
        # Find a broker that came back quickly (librdkafka's default backs off up to 10 s).
        "reconnect.backoff.max.ms": 1000,
    }


DeliveryCallback = Callable[[KafkaError | None, Message], None]


class KafkaClient(Protocol):
    """The part of confluent-kafka's ``Producer`` used here (a seam for unit tests)."""

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        *,
        headers: list[tuple[str, str | bytes]],
        on_delivery: DeliveryCallback,
    ) -> None: ...

    def poll(self, timeout: float | None = None) -> int: ...

    def flush(self, timeout: float | None = None) -> int: ...

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...


def _confluent_client(config: dict[str, Any]) -> KafkaClient:
    return Producer(config)


class KafkaDurableProducer:
    """:class:`DurableProducer` on confluent-kafka, driven from the running asyncio loop.

    A fatal librdkafka error (rare for an idempotent producer: the broker lost track of its
    sequence numbers) leaves a client unusable; the next :meth:`send` then replaces it with a new
    one, so the source recovers without a restart.
    """

    def __init__(
        self,
        config: dict[str, Any],
        *,
        delivery_timeout: float,
        client_factory: Callable[[dict[str, Any]], KafkaClient] = _confluent_client,
    ) -> None:
        self._config = config
        self._delivery_timeout = delivery_timeout
        self._client_factory = client_factory
        self._current: PolledClient | None = None
        self._retiring: set[asyncio.Future[int]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handoff: _Handoff | None = None
        self._deadlines: _Deadlines | None = None
        self._ready_lock = asyncio.Lock()
        self._ready_checked_at = -_READINESS_TTL_SECONDS
        self._ready = False
        self._log = CoalescingLog(log)
        self._errors = ClientErrors(config, self._log, "webhooks are answered 503")
        self._librdkafka_log = CoalescingLog(logging.getLogger("connector.source.librdkafka"))

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaDurableProducer:
        return cls(
            producer_config(settings), delivery_timeout=settings.source_produce_timeout_seconds
        )

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._handoff = _Handoff(self._loop)
        self._deadlines = _Deadlines(self._loop, self._delivery_timeout)
        self._current = self._new_client()

    def _new_client(self) -> PolledClient:
        try:
            client = self._client_factory(
                {**self._config, "error_cb": self._errors, "logger": self._librdkafka_log}
            )
        except KafkaException as exc:
            raise client_creation_error(self._config, exc) from exc
        return PolledClient(client, "kafka-source-poll")

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers) -> DeliveryReport:
        client, loop = self._started()
        future: asyncio.Future[DeliveryReport] = loop.create_future()
        wire_headers: list[tuple[str, str | bytes]] = list(headers)
        try:
            client.produce(
                topic,
                value=value,
                key=key,
                headers=wire_headers,
                on_delivery=partial(self._on_delivery, self._handoff, future),
            )
        except BufferError as exc:
            raise ProducerQueueFull("the producer's local queue is full") from exc
        except KafkaException as exc:
            raise DeliveryFailed(f"Kafka refused the record: {exc.args[0]}") from exc
        assert self._deadlines is not None
        # Past the deadline the future fails with ProduceTimeout; a late delivery report then
        # finds it done.
        self._deadlines.add(future)
        return await future

    async def is_ready(self) -> bool:
        client, _ = self._started()
        async with self._ready_lock:
            now = time.monotonic()
            if now - self._ready_checked_at >= _READINESS_TTL_SECONDS:
                try:
                    await asyncio.to_thread(client.list_topics, timeout=_METADATA_TIMEOUT_SECONDS)
                    self._ready = True
                except KafkaException as exc:
                    self._log.warning("kafka readiness check failed error=%s", exc.args[0])
                    self._ready = False
                self._ready_checked_at = time.monotonic()
            return self._ready

    async def close(self) -> None:
        current, self._current = self._current, None
        if current is not None:
            pending = await asyncio.to_thread(current.close, self._delivery_timeout + 2.0)
            if pending:
                log.warning("kafka producer closed with undelivered records count=%d", pending)
        self._log.flush()
        self._librdkafka_log.flush()
        if self._retiring:
            await asyncio.gather(*self._retiring)

    def _started(self) -> tuple[KafkaClient, asyncio.AbstractEventLoop]:
        if self._current is None or self._loop is None:
            raise ProduceError("the producer is not started")
        if self._errors.fatal is not None:
            self._replace_client()
        assert self._current is not None
        return self._current.client, self._loop

    def _replace_client(self) -> None:
        log.error("kafka producer replaced after a fatal error error=%s", self._errors.fatal)
        self._errors.fatal = None
        old, self._current = self._current, self._new_client()
        if old is not None and self._loop is not None:
            # The old client fails its pending records (their senders get 503); off the loop.
            retiring = self._loop.run_in_executor(None, old.close, 1.0)
            self._retiring.add(retiring)
            retiring.add_done_callback(self._retiring.discard)

    @staticmethod
    def _on_delivery(
        handoff: _Handoff | None,
        future: asyncio.Future[DeliveryReport],
        error: KafkaError | None,
        message: Message,
    ) -> None:
        # Runs on the poll thread (or in flush()); hand the outcome to the loop's thread.
        assert handoff is not None
        if error is not None:
            outcome: DeliveryReport | ProduceError = DeliveryFailed(
                f"delivery failed: {error.name()}: {error.str()}"
            )
        else:
            outcome = DeliveryReport(
                topic=message.topic() or "",
                partition=_int_or(message.partition(), -1),
                offset=_int_or(message.offset(), -1),
            )
        handoff.put(future, outcome)


_Outcome = tuple["asyncio.Future[DeliveryReport]", "DeliveryReport | ProduceError"]


class _Handoff:
    """Delivery outcomes from librdkafka's threads to the event loop, settled in bursts.

    :meth:`put` may run on any thread. The first outcome of a burst schedules one call on the loop,
    which settles every outcome queued by the time it runs.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._queued: list[_Outcome] = []
        self._scheduled = False

    def put(
        self, future: asyncio.Future[DeliveryReport], outcome: DeliveryReport | ProduceError
    ) -> None:
        with self._lock:
            self._queued.append((future, outcome))
            if self._scheduled:
                return
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._settle_queued)

    def _settle_queued(self) -> None:
        with self._lock:
            queued, self._queued = self._queued, []
            self._scheduled = False
        for future, outcome in queued:
            _settle(future, outcome)


class _Deadlines:
    """Fails the futures still pending ``timeout`` seconds after they were added, with one timer.

    Every future gets the same timeout, so deadlines expire in the order the futures were added:
    a queue, and a timer for its head only (settled futures are dropped from the head as it
    goes), instead of a timer per send.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self._queue: deque[tuple[float, asyncio.Future[DeliveryReport]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, future: asyncio.Future[DeliveryReport]) -> None:
        queue = self._queue
        while queue and queue[0][1].done():
            queue.popleft()
        queue.append((self._loop.time() + self._timeout, future))
        if self._timer is None:
            self._timer = self._loop.call_at(queue[0][0], self._expire)

    def _expire(self) -> None:
        self._timer = None
        queue, now = self._queue, self._loop.time()
        while queue and (queue[0][1].done() or queue[0][0] <= now):
            _, future = queue.popleft()
            if not future.done():
                future.set_exception(ProduceTimeout(f"not acknowledged within {self._timeout:g} s"))
        if queue:
            self._timer = self._loop.call_at(queue[0][0], self._expire)


def _settle(future: asyncio.Future[DeliveryReport], outcome: DeliveryReport | ProduceError) -> None:
    if future.done():
        return
    if isinstance(outcome, ProduceError):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _int_or(value: int | None, default: int) -> int:
    return default if value is None else value


@dataclass(frozen=True)
class StoredRecord:
    """One record as :class:`MemoryProducer` kept it."""

    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


class MemoryProducer:
    """:class:`DurableProducer` that keeps records in a list: for tests, benchmarks and demos."""

    def __init__(self) -> None:
        self.records: list[StoredRecord] = []
        self.ready = True
        self.started = False
        self.closed = False

    async def start(self) -> None:
        self.started = True

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers) -> DeliveryReport:
        self.records.append(StoredRecord(topic, key, value, tuple(headers)))
        return DeliveryReport(topic=topic, partition=0, offset=len(self.records) - 1)

    async def is_ready(self) -> bool:
        return self.ready

    async def close(self) -> None:
        self.closed = True
