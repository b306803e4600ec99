"""The HTTP source's Prometheus metrics, in a registry of their own per app instance.

A private :class:`~prometheus_client.CollectorRegistry` (not the process-global one) lets tests
build several apps in one process. ``GET /metrics`` renders :meth:`SourceMetrics.render`.

``zoom_source_accepted_timestamp_age_seconds`` is the receive time minus ``x-zm-request-timestamp``
of every request whose signature and timestamp were accepted; negative ages mean the sender's clock
is ahead. Together with ``zoom_source_signature_failures_total{reason="stale_timestamp"}`` (which
only counts requests correctly signed with one of our secrets) it shows whether Zoom's retries carry
their original timestamp, and so whether ``SOURCE_REPLAY_WINDOW_SECONDS`` needs widening.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from connector.source.signature import FAILURE_REASONS
from connector.source.spool import DAMAGE_REASONS

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 3.0, 5.0,
)  # fmt: skip
_AGE_BUCKETS: Final = (
    -60.0, -5.0, 0.0, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
)  # fmt: skip


class SourceMetrics:
    """Counters and histograms of one source app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "zoom_source_requests",
            "Webhook requests answered, by HTTP status.",
            ["status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "zoom_source_request_duration_seconds",
            "Time from receiving a webhook request to answering it.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.received_bytes = Counter(
            "zoom_source_received_bytes",
            "Webhook body bytes read.",
            registry=self.registry,
        )
        self.stored = Counter(
            "zoom_source_stored_records",
            "Webhooks durably stored on the raw topic.",
            registry=self.registry,
        )
        self.produce_errors = Counter(
            "zoom_source_produce_errors",
            "Webhooks not stored because Kafka could not take them, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.signature_failures = Counter(
            "zoom_source_signature_failures",
            "Webhook requests refused with 401, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.timestamp_age = Histogram(
            "zoom_source_accepted_timestamp_age_seconds",
            "Receive time minus x-zm-request-timestamp of accepted requests.",
            buckets=_AGE_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "zoom_source_in_flight_requests",
            "Webhook requests being handled now.",
            registry=self.registry,
        )
        self.overloaded = Counter(
            "zoom_source_overload_rejections",
            "Webhook requests refused with 503 because SOURCE_MAX_IN_FLIGHT were being handled.",
            registry=self.registry,
        )
        self.spooled = Counter(
            "zoom_source_spooled",
            "Webhooks written to the disk spool (answered 200 before Kafka stored them).",
            registry=self.registry,
        )
        self.spool_drained = Counter(
            "zoom_source_spool_drained",
            "Spooled records sent from the disk spool to Kafka and acknowledged.",
            registry=self.registry,
        )
        self.spool_bytes = Gauge(
            "zoom_source_spool_bytes",
            "Bytes of the disk spool's segment files (counted against SOURCE_SPOOL_MAX_BYTES).",
            registry=self.registry,
        )
        self.spool_records = Gauge(
            "zoom_source_spool_records",
            "Records in the disk spool not yet acknowledged by Kafka.",
            registry=self.registry,
        )
        self.spool_oldest_age = Gauge(
            "zoom_source_spool_oldest_age_seconds",
            "How long the oldest record in the disk spool has waited for Kafka; 0 when empty.",
            registry=self.registry,
        )
        self.spool_damaged = Counter(
            "zoom_source_spool_damaged",
            "Damaged stretches found in spool segments (torn tail, bad checksum), by reason.",
            ["reason"],
            registry=self.registry,
        )
        for reason in FAILURE_REASONS:
            self.signature_failures.labels(reason=reason)
        for reason in DAMAGE_REASONS:
            self.spool_damaged.labels(reason=reason)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
