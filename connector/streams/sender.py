"""How the pipeline writes typed records and dead letters: librdkafka (confluent-kafka), not Faust.

Faust writes through aiokafka, whose producer is pure Python: per record it builds a Faust message,
runs sensors, appends to aiokafka's accumulator, and later encodes and sends the batch, all on the
worker's event loop. Profiles of the worker draining a backlog put about a fifth of its CPU there.
:class:`KafkaSender` hands each record to librdkafka instead (a C call; batching, encoding and the
network are on librdkafka's own threads), and resolves an asyncio future from the delivery report,
so the agent's guarantee is unchanged: it awaits every future of a batch before acknowledging the
batch's raw records (:mod:`connector.streams.agent`).

Settings, chosen to match what Faust's producer did: ``acks=all``; the records' keys partitioned
with murmur2 like Kafka's Java client and aiokafka (``partitioner=murmur2_random``), so every key
stays in the partition it had; requests as large as the largest dead letter; and idempotence, so
librdkafka's own retries neither duplicate nor reorder records. ``linger.ms`` is small: the agent
writes a whole batch at once, then waits for it.

Errors reach the agent as aiokafka's exception types, which it already sorts: a record too large or
corrupt (the record's fault: a typed record becomes a dead letter) or any other Kafka error
(retried with backoff). A fatal error of the idempotent producer (the broker lost track of its
sequence numbers) fails what is pending as retriable, and the next write gets a new producer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Any, Final

from aiokafka.errors import (
    CorruptRecordException,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from confluent_kafka import KafkaError as LibrdkafkaError
from confluent_kafka import KafkaException, Message, Producer

from connector.kafka.admin import max_record_bytes
from connector.settings import Settings
from connector.source.producer import DeliveryHandoff, KafkaClient, PolledClient
from connector.streams.dead_letters import Headers

log = logging.getLogger(__name__)

LINGER_MS: Final = 2
_MIN_REQUEST_BYTES: Final = 1024 * 1024
_CLOSE_SECONDS: Final = 5.0

_RECORD_FAULTS: Final[dict[int, type[KafkaError]]] = {
    LibrdkafkaError.MSG_SIZE_TOO_LARGE: MessageSizeTooLargeError,
    LibrdkafkaError.INVALID_MSG_SIZE: CorruptRecordException,
    LibrdkafkaError.INVALID_MSG: CorruptRecordException,
    LibrdkafkaError.INVALID_RECORD: CorruptRecordException,
    LibrdkafkaError.RECORD_LIST_TOO_LARGE: RecordListTooLargeError,
}


def sender_config(settings: Settings) -> dict[str, Any]:
    """librdkafka settings of the pipeline's writes: the cluster's, plus the ones above."""
    return {
        **settings.kafka_client_config(),
        "client.id": f"{settings.worker_id}-pipeline",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": LINGER_MS,
        "partitioner": "murmur2_random",
        "message.max.bytes": max(_MIN_REQUEST_BYTES, max_record_bytes(settings)),
    }


def kafka_error(error: LibrdkafkaError) -> KafkaError:
    """librdkafka's error as the aiokafka exception the agent sorts by."""
    kind = _RECORD_FAULTS.get(error.code())
    if kind is not None:
        return kind(f"{error.name()}: {error.str()}")
    if error.code() == LibrdkafkaError._MSG_TIMED_OUT:
        return KafkaTimeoutError(f"{error.name()}: {error.str()}")
    return KafkaError(f"{error.name()}: {error.str()}")


def _confluent_client(config: dict[str, Any]) -> KafkaClient:
    return Producer(config, logger=logging.getLogger("connector.streams.librdkafka"))


class KafkaSender:
    """:class:`~connector.streams.agent.Sender` on librdkafka; started by its first write."""

    def __init__(
        self,
        config: dict[str, Any],
        client_factory: Callable[[dict[str, Any]], KafkaClient] = _confluent_client,
    ) -> None:
        self._config = config
        self._client_factory = client_factory
        self._current: PolledClient | None = None
        self._handoff: DeliveryHandoff | None = None
        self._fatal: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaSender:
        return cls(sender_config(settings))

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        timestamp_ms: int | None,
    ) -> asyncio.Future[Any]:
        client, handoff = self._client()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            client.produce(
                topic,
                value=value,
                key=key,
                headers=[(k, v) for k, v in headers],
                timestamp=timestamp_ms or 0,
                on_delivery=partial(_on_delivery, handoff, future),
            )
        except BufferError as exc:  # librdkafka's queue is full: the agent backs off and retries
            raise KafkaTimeoutError(f"the producer's local queue is full: {exc}") from exc
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, LibrdkafkaError):
                raise kafka_error(error) from exc
            raise KafkaError(str(exc)) from exc
        return future

    def close(self) -> None:
        """Deliver what is pending (a few seconds at most), then release the producer."""
        current, self._current = self._current, None
        if current is not None:
            pending = current.close(_CLOSE_SECONDS)
            if pending:
                log.warning("pipeline producer closed with undelivered records count=%d", pending)

    def _client(self) -> tuple[KafkaClient, DeliveryHandoff]:
        if self._fatal is not None and self._current is not None:
            log.error("pipeline producer replaced after a fatal error error=%s", self._fatal)
            self._fatal = None
            old, self._current = self._current, None
            # Its pending records fail (retriable) when it is flushed; off the event loop.
            asyncio.get_running_loop().run_in_executor(None, old.close, 1.0)
        if self._current is None:
            self._handoff = DeliveryHandoff(asyncio.get_running_loop())
            client = self._client_factory({**self._config, "error_cb": self._on_client_error})
            self._current = PolledClient(client)
        assert self._handoff is not None
        return self._current.client, self._handoff

    def _on_client_error(self, error: LibrdkafkaError) -> None:
        # On librdkafka's thread; it retries transport errors itself and logs them.
        if error.fatal():
            log.error("pipeline producer fatal error code=%s %s", error.name(), error.str())
            self._fatal = f"{error.name()}: {error.str()}"
        else:
            log.debug("pipeline producer error code=%s %s", error.name(), error.str())


def _on_delivery(
    handoff: DeliveryHandoff,
    future: asyncio.Future[Any],
    error: LibrdkafkaError | None,
    message: Message,
) -> None:
    # On librdkafka's poll thread (or in flush()).
    handoff.put(future, kafka_error(error) if error is not None else message.offset())
