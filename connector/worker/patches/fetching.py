"""How the worker's Kafka consumer fetches: the broker holds a fetch for some bytes or a few ms.

faust-streaming builds aiokafka's consumer with ``fetch_min_bytes=1`` and a hard-coded
``fetch_max_wait_ms=1500``: the broker answers a fetch as soon as any record lands in any partition
the worker reads, so at a few hundred events per second the consumer thread sends and decodes a
fetch for every record or two (most of the worker's CPU at low rates: ``docs/benchmarks.md``).

:class:`FetchingTransport` (the transport of :class:`~.worker_app.WorkerApp`) builds that
consumer with ``WORKER_FETCH_MIN_BYTES`` and ``WORKER_FETCH_MAX_WAIT_MS`` (:class:`Fetching`).
The price: at low rates a record waits up to ``WORKER_FETCH_MAX_WAIT_MS`` on each hop, and an
idle worker asks the broker that often. ``1`` and ``1500`` give Faust's own behaviour back.

Patch: no upstream issue found; faust-streaming 0.15.3 hard-codes the values in its aiokafka
driver. Private names: ``AIOKafkaConsumerThread._create_worker_consumer``, ``App._new_transport``,
aiokafka's ``_fetch_min_bytes``/``_fetch_max_wait_ms`` (set before ``start()`` hands them to the
fetcher). Pinned by ``tests/unit/test_worker_fetching.py``. Remove when Faust exposes the
consumer's fetch settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from connector.worker.patches.dense_offsets import DenseOffsets
from connector.worker.patches.handover import QuickHandOver


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


class _Consumer(DenseOffsets, QuickHandOver, faust_aiokafka.Consumer):
    """The worker's consumer: :class:`Fetching`, records handed over without a task each
    (:mod:`.handover`), and no offsets taken as skipped (:mod:`.dense_offsets`)."""

    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class FetchingTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport whose consumer fetches as :attr:`fetching` says."""

    Consumer = _Consumer
    fetching: Fetching | None = None
