"""How the worker's Kafka consumer fetches: the broker holds a fetch for some bytes or a few ms.

faust-streaming builds aiokafka's consumer with aiokafka's ``fetch_min_bytes=1`` and a hard-coded
``fetch_max_wait_ms=1500``. With one byte as the minimum the broker answers a fetch as soon as any
record lands in any partition the worker reads (the raw topic, the typed topics the aggregates
read, the internal score-event topic), so at a few hundred events per second the consumer thread
sends a fetch request, listing every assigned partition, for every record or two, and decodes
every answer in Python. That loop, not the records, was most of the worker's CPU at low rates:
0.37 of a core at 100 raw records/s and 0.95 at 500/s, against 0.23 and 0.61-0.65 when the
broker holds a fetch until 64 KiB or 20 ms (the worker fed at a fixed rate, its CPU read from
``/proc``; the end-to-end benchmark shows the same, README *Benchmarks*).

:class:`WorkerApp` is a ``faust.App`` whose transport builds that consumer with
``WORKER_FETCH_MIN_BYTES`` and ``WORKER_FETCH_MAX_WAIT_MS`` (:class:`Fetching`). What it costs: at
low rates a record waits up to ``WORKER_FETCH_MAX_WAIT_MS`` on each hop (raw -> typed is the one
the end-to-end latency sees), and an idle worker asks the broker every ``WORKER_FETCH_MAX_WAIT_MS``
(about 5 % of a core at 20 ms, against 1 % with Faust's 1.5 s). With a backlog nothing changes:
the bytes are there and the broker answers at once. ``WORKER_FETCH_MIN_BYTES=1`` with
``WORKER_FETCH_MAX_WAIT_MS=1500`` gives Faust's own behaviour back.

The consumer is built by overriding ``AIOKafkaConsumerThread._create_worker_consumer`` and setting
the two values on the ``AIOKafkaConsumer`` before it starts (aiokafka hands them to its fetcher in
``start()``); pinned by ``tests/unit/test_worker_fetching.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from faust.transport import by_url
from faust.transport.drivers import aiokafka as faust_aiokafka


@dataclass(frozen=True)
class Fetching:
    """What the broker waits for before it answers the worker's fetch."""

    min_bytes: int
    max_wait_ms: int

    def apply(self, consumer: AIOKafkaConsumer) -> None:
        """Set on a consumer not started yet (aiokafka reads them in ``start()``)."""
        consumer._fetch_min_bytes = self.min_bytes
        consumer._fetch_max_wait_ms = self.max_wait_ms


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        consumer: AIOKafkaConsumer = super()._create_worker_consumer(transport)
        fetching = getattr(transport, "fetching", None)
        if isinstance(fetching, Fetching):
            fetching.apply(consumer)
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
    fetching: Fetching | None = None


class WorkerApp(faust.App):
    """The worker's ``faust.App``: its Kafka consumer fetches as :class:`Fetching` says."""

    def __init__(self, id: str, *, fetching: Fetching, **options: Any) -> None:
        super().__init__(id, **options)
        self.fetching = fetching

    def _new_transport(self) -> Any:
        urls = self.conf.broker_consumer
        if by_url(urls[0]) is not faust_aiokafka.Transport:
            return super()._new_transport()  # another driver: Faust's own settings
        transport = _Transport(urls, self, loop=self.loop)
        transport.fetching = self.fetching
        return transport
