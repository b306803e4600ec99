"""Durable writes of a whole batch of records with librdkafka, awaited once per batch.

:meth:`BatchWriter.write` hands every record of a batch to a confluent-kafka ``Producer``
(idempotent, ``acks=all``) and returns, once librdkafka reported each of them, one outcome per
record: the offset it was stored at (-1 if librdkafka did not say), or a :class:`WriteError`.
The delivery reports arrive on a thread that polls the client; they are counted there, and the
event loop is woken once, when the last one came. No asyncio future, timer or callback exists
per record: that per-record bookkeeping cost as much as aiokafka's own send
(``docs/benchmarks.md``).

The broker refuses a partition's whole record batch when one record in it is larger than the
topic takes, so a record refused in a batch is written again alone: only a record refused alone
is reported refused (:attr:`WriteError.refused`), and the others of its batch are stored.

A batch that is not fully reported within ``deadline`` seconds ends with the records still
unreported marked :class:`WriteTimeout` (librdkafka is told to give up on them after the same
time; one already on the wire may still be stored, which an at-least-once writer tolerates). A
fatal client error (rare for an idempotent producer) replaces the client at the next write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from connector.kafka.coalescing_log import CoalescingLog
from connector.kafka.polling import ClientErrors, PolledClient
from connector.kafka.refusals import client_creation_error

log = logging.getLogger(__name__)

RECORD_REFUSALS: Final = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_RECORD,
        KafkaError._INVALID_ARG,
    }
)
"""librdkafka's codes for a record the cluster (or the client) will never take as it is."""


class WriteError(Exception):
    """A record was not (or not known to be) stored."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code

    @property
    def refused(self) -> bool:
        """Whether the error is about the record itself (too large, malformed): writing the
        same bytes again cannot succeed."""
        return self.code in RECORD_REFUSALS


class WriteTimeout(WriteError):
    """Not reported within the deadline."""


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """One record to write; ``partition``/``timestamp_ms`` ``None``: the partitioner's, now."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()
    partition: int | None = None
    timestamp_ms: int | None = None


class _Reports:
    """The delivery reports of one batch, counted on the poll thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.outcomes: list[WriteError | int] = [-1] * size
        self.reported = [False] * size
        self._loop = loop
        self._waiting = size
        self._lock = threading.Lock()
        self.done = loop.create_future()
        self.closed = False

    def report(self, index: int, error: KafkaError | None, message: Message | None = None) -> None:
        with self._lock:
            if self.closed or self.reported[index]:
                return
            self.reported[index] = True
            if error is not None:
                text = f"delivery failed: {error.name()}: {error.str()}"
                self.outcomes[index] = WriteError(text, error.code())
            elif message is not None:
                offset = message.offset()
                self.outcomes[index] = -1 if offset is None else offset
            self._waiting -= 1
            if self._waiting:
                return
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self._loop.call_soon_threadsafe(_resolve, self.done)

    def refuse(self, index: int, error: WriteError) -> None:
        """A record librdkafka did not take (from the loop's thread, before it waits)."""
        with self._lock:
            self.reported[index] = True
            self.outcomes[index] = error
            self._waiting -= 1
            last = self._waiting == 0
        if last:
            _resolve(self.done)

    def close(self, deadline: float) -> list[WriteError | int]:
        with self._lock:
            self.closed = True
            for index, reported in enumerate(self.reported):
                if not reported:
                    self.outcomes[index] = WriteTimeout(f"not acknowledged within {deadline:g} s")
        return self.outcomes


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class BatchWriter:
    """Writes batches of records durably (module docstring); one per process is enough."""

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        deadline: float,
        name: str,
        meanwhile: str,
    ) -> None:
        """``config``: librdkafka's (the cluster's and the durability settings); ``name``: the
        poll thread's and librdkafka's logger suffix; ``meanwhile``: what the log lines about a
        refusing or unreachable cluster say happens in the meantime."""
        self._config = dict(config)
        self._deadline = deadline
        self._name = name
        self._current: PolledClient | None = None
        self._log = CoalescingLog(log)
        self._errors = ClientErrors(self._config, self._log, meanwhile)
        self._librdkafka_log = CoalescingLog(logging.getLogger(f"connector.{name}.librdkafka"))

    async def write(self, records: Sequence[OutgoingRecord]) -> list[WriteError | int]:
        """Each record's outcome, in order, once librdkafka reported all (or the deadline): the
        offset it was stored at, or why it was not."""
        if not records:
            return []
        client = self._client()
        reports = _Reports(asyncio.get_running_loop(), len(records))
        produce = client.produce
        for index, record in enumerate(records):
            try:
                produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers),
                    on_delivery=partial(reports.report, index),
                    partition=-1 if record.partition is None else record.partition,
                    timestamp=record.timestamp_ms or 0,  # 0: now
                )
            except BufferError:
                reports.refuse(index, WriteError("the producer's local queue is full"))
            except KafkaException as exc:
                error = exc.args[0]
                code = error.code() if isinstance(error, KafkaError) else None
                reports.refuse(index, WriteError(f"Kafka refused the record: {error}", code))
        with contextlib.suppress(TimeoutError):  # the records unreported by then: WriteTimeout
            await asyncio.wait_for(asyncio.shield(reports.done), self._deadline)
        outcomes = reports.close(self._deadline)
        if len(records) > 1:
            # The broker refuses a partition's whole record batch when one record is too large:
            # a record is known refused only once it was refused alone.
            for index, outcome in enumerate(outcomes):
                if isinstance(outcome, WriteError) and outcome.refused:
                    (outcomes[index],) = await self.write([records[index]])
        return outcomes

    async def close(self) -> None:
        """Deliver what is pending (bounded by the deadline), then release the client."""
        current, self._current = self._current, None
        if current is not None:
            pending = await asyncio.to_thread(current.close, self._deadline)
            if pending:
                log.warning(
                    "%s: writer closed with undelivered records count=%d", self._name, pending
                )
        self._log.flush()
        self._librdkafka_log.flush()

    def _client(self) -> Producer:
        if self._current is not None and self._errors.fatal is not None:
            log.error(
                "%s: kafka writer replaced after a fatal error error=%s",
                self._name,
                self._errors.fatal,
            )
            old, self._current = self._current, None
            threading.Thread(target=old.close, args=(1.0,), daemon=True).start()
        self._errors.fatal = None
        if self._current is None:
            config = {**self._config, "error_cb": self._errors, "logger": self._librdkafka_log}
            try:
                client = Producer(config)
            except KafkaException as exc:
                raise client_creation_error(self._config, exc) from exc
            self._current = PolledClient(client, f"kafka-{self._name}-poll")
        current: Producer = self._current.client
        return current
