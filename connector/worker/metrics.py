"""The worker's Prometheus metrics, served at ``GET /metrics`` on ``WORKER_WEB_PORT``.

One registry per worker (not the process-global default), so tests can build several apps in one
process. Metrics:

* ``zoom_worker_events_total{event_type, outcome, reason}``: raw records by outcome ``typed``,
  ``dlq`` (``reason`` = the dead-letter reason) or ``duplicate`` (a retry dropped); ``event_type``
  is the body's event type, or ``unknown`` for one outside the catalog (bounded label values).
* ``zoom_worker_event_latency_seconds{outcome}``: from the raw record's timestamp (the source
  received the webhook) to Kafka acknowledging the typed record or dead letter: the delay a
  downstream consumer sees, consumer lag included.
* ``zoom_worker_batch_duration_seconds``: routing plus writing one batch taken from the raw topic.
* ``zoom_worker_produce_retries_total``: writes retried after a retriable Kafka error.
* ``zoom_worker_dead_letters_dropped_total``: dead letters Kafka refused for good (e.g. too large);
  logged with their raw coordinates.
* ``zoom_worker_commits_retried_total``: offset commits Kafka refused at a rebalance while Faust
  noted them as made, committed again (:mod:`connector.worker.patches.commits`).
* ``zoom_worker_dedup_entries`` / ``zoom_worker_dedup_purged_total``: the deduplication table.
* ``zoom_worker_consumer_lag{partition}``: raw records not yet processed, per raw partition this
  worker owns: where the partition's log ends minus the next offset to process (before the first
  record, the consumer's position). Measured every 2 s; the log's end is asked of the broker
  (:mod:`.patches.log_ends`, one ListOffsets request per partition), not read from the
  consumer's fetch state, which stands still for a partition the consumer stopped fetching.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
UNKNOWN_EVENT_TYPE: Final = "unknown"

LagSource = Callable[[], Mapping[int, int]]

_LATENCY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
_BATCH_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _LagCollector(Collector):
    def __init__(self, source: LagSource) -> None:
        self._source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "zoom_worker_consumer_lag",
            "Raw records not yet processed, per raw partition (high watermark - next offset).",
            labels=["partition"],
        )
        for partition, lag in sorted(self._source().items()):
            family.add_metric([str(partition)], lag)
        yield family


class WorkerMetrics:
    """The worker's counters and histograms, in their own registry."""

    def __init__(self, event_types: Collection[str]) -> None:
        self._event_types = frozenset(event_types)
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter(
            "zoom_worker_events",
            "Raw records processed, by event type and outcome (typed, dlq, duplicate).",
            ["event_type", "outcome", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "zoom_worker_event_latency_seconds",
            "From the raw record's timestamp to the output record acknowledged by Kafka.",
            ["outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_duration = Histogram(
            "zoom_worker_batch_duration_seconds",
            "Time to route and write one batch of raw records.",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.produce_retries = Counter(
            "zoom_worker_produce_retries",
            "Writes retried after a retriable Kafka error.",
            registry=self.registry,
        )
        self.dead_letters_dropped = Counter(
            "zoom_worker_dead_letters_dropped",
            "Dead letters Kafka refused for good (logged with their raw coordinates).",
            registry=self.registry,
        )
        self.partition_stalls = Counter(
            "zoom_worker_partition_stalls",
            "Input partitions found with records waiting and a position standing still for"
            " WORKER_STALL_SECONDS, by cause (dropped, unfetched, unpositioned: fetched again;"
            " busy: the agents"
            " are slow or stuck), agent batches worked on that long (slow_batch), and"
            " partitions whose committed offset stood still that long while acknowledged"
            " records waited (uncommitted) (connector.worker.stalls).",
            ["cause"],
            registry=self.registry,
        )
        self.refetched = Counter(
            "zoom_worker_raw_records_refetched",
            "Raw records the Faust stream skipped at a rebalance, read again from Kafka"
            " (connector.worker.patches.gaps).",
            registry=self.registry,
        )
        self.commits_retried = Counter(
            "zoom_worker_commits_retried",
            "Offset commits Kafka refused at a rebalance while Faust noted them as made,"
            " committed again (connector.worker.patches.commits).",
            registry=self.registry,
        )
        self.dedup_entries = Gauge(
            "zoom_worker_dedup_entries",
            "Entries in the deduplication table after the last purge.",
            registry=self.registry,
        )
        self.dedup_purged = Counter(
            "zoom_worker_dedup_purged",
            "Deduplication entries deleted after their retention.",
            registry=self.registry,
        )

    def event_type_label(self, event_type: str | None) -> str:
        return event_type if event_type in self._event_types else UNKNOWN_EVENT_TYPE

    def count(self, event_type: str | None, outcome: str, reason: str = "") -> None:
        self.events.labels(self.event_type_label(event_type), outcome, reason).inc()

    def watch_lag(self, source: LagSource) -> None:
        """Report ``source()`` (raw partition -> lag) as ``zoom_worker_consumer_lag``."""
        self.registry.register(_LagCollector(source))

    def render(self) -> bytes:
        return generate_latest(self.registry)
