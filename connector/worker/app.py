"""The Faust application of ``zoom-connector worker``: one factory, one installer per feature.

:func:`create_app` builds the ``faust.App`` from :class:`~connector.settings.Settings` (nothing is
read from the environment here) and runs each *installer* on it. An installer adds agents, tables,
timers or web views for one feature and gets the shared pieces in a :class:`WorkerContext`: the
raw topic's fan-out (:func:`install_fan_out`), the metrics view, the agent score aggregates
(:mod:`connector.worker.aggregates`), the stall watch and the commit keeper. Every agent runs on
the delivery core (:mod:`connector.worker.delivery`).

Faust settings chosen here: broker URLs and credentials from the ``KAFKA_*`` settings
(:mod:`.credentials`); app id (consumer group, prefix of internal topics) ``WORKER_ID``;
``processing_guarantee="at_least_once"`` (Faust's ``exactly_once`` has open bugs: faust-streaming
issues 517, 323, 440); producer ``acks=all``, linger ``WORKER_PRODUCER_LINGER_MS``; consumers start
at the earliest offset when their group has none, fetches held by the broker until
``WORKER_FETCH_MIN_BYTES`` or ``WORKER_FETCH_MAX_WAIT_MS`` (:mod:`.patches.fetching`); tables in
``WORKER_STORE`` with as many partitions as the raw topic (Faust requires a table's changelog to be
co-partitioned with the topic that writes it) and ``WORKER_STANDBY_REPLICAS`` standbys; raw bytes
in and out (the codec frames Avro). ``docs/architecture.md`` tells the whole design.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import faust

from connector.avro.codec import EventCodec
from connector.kafka.admin import max_record_bytes
from connector.settings import Settings
from connector.topics import TopicNames
from connector.worker import stalls
from connector.worker.aggregates.install import install_agent_scores
from connector.worker.context import Installer, WorkerContext
from connector.worker.credentials import broker_credentials, broker_urls
from connector.worker.dedup import TABLE as DEDUP_TABLE
from connector.worker.dedup import DedupIndex
from connector.worker.delivery import CoreHooks, DeliveryCore
from connector.worker.fanout import FanOut
from connector.worker.health import install_health_views
from connector.worker.lag import watch_lag
from connector.worker.metrics import CONTENT_TYPE, WorkerMetrics
from connector.worker.patches import (
    CommitKeeper,
    FaustPartitions,
    Fetching,
    LogEnds,
    Refetcher,
    WorkerApp,
    check_versions,
)
from connector.worker.routing import Router
from connector.worker.sink import FaustSink, topic_writer
from connector.worker.stalls import Batches, StallWatch

log = logging.getLogger(__name__)

PIPELINE_AGENT = "zoom-raw-pipeline"
_MAX_REQUEST_BYTES = 1024 * 1024


def default_data_dir() -> Path:
    """Where the worker keeps local state by default: ``$XDG_DATA_HOME/zoom-connector/worker``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "zoom-connector" / "worker"


def create_app(
    settings: Settings,
    *,
    codec: EventCodec | None = None,
    raw_partitions: int | None = None,
    installers: Sequence[Installer] | None = None,
) -> faust.App:
    """The worker's Faust app.

    ``codec``: how typed records are framed (default: single-object encoding; the worker passes a
    Confluent-framing codec when a registry is configured). ``raw_partitions``: the raw topic's
    partition count (default ``TOPIC_PARTITIONS``; the worker reads the real one at start-up).
    """
    check_versions()
    codec = codec or EventCodec()
    partitions = raw_partitions or settings.topic_partitions
    data_dir = Path(settings.worker_data_dir) if settings.worker_data_dir else default_data_dir()
    app = WorkerApp(
        settings.worker_id,
        fetching=Fetching(settings.worker_fetch_min_bytes, settings.worker_fetch_max_wait_ms),
        broker=broker_urls(settings),
        broker_credentials=broker_credentials(settings),
        store=settings.worker_store,
        datadir=str(data_dir),
        web_port=settings.worker_web_port,
        web_enabled=True,
        topic_partitions=partitions,
        topic_replication_factor=settings.topic_replication_factor,
        topic_disable_leader=True,
        table_standby_replicas=settings.worker_standby_replicas,
        key_serializer="raw",
        value_serializer="raw",
        processing_guarantee="at_least_once",
        producer_acks=-1,
        producer_linger=settings.worker_producer_linger_ms / 1000,
        # A dead letter carries a raw body as large as the source accepts, plus headers.
        producer_max_request_size=max(_MAX_REQUEST_BYTES, max_record_bytes(settings)),
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
    )
    context = WorkerContext(
        settings=settings,
        topics=TopicNames(settings.topic_prefix),
        codec=codec,
        metrics=WorkerMetrics(codec.event_types),
        raw_partitions=partitions,
        log_ends=LogEnds(settings.kafka_client_config(), f"{settings.worker_id}-log-ends"),
        batches=Batches(),
        refetcher=Refetcher(
            settings.kafka_client_config(), settings.worker_id, consumer=lambda: app.consumer
        ),
        sink=FaustSink(app, writer=topic_writer(settings)),
    )
    for install in INSTALLERS if installers is None else installers:
        install(app, context)
    return app


def when_revoked(app: faust.App, handler: Callable[[Iterable[Any]], None]) -> None:
    """Call ``handler`` with the partitions of each revocation (Faust's
    ``on_partitions_revoked`` signal; at every rebalance all of the worker's partitions)."""

    def receiver(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        handler(args[0] if args else kwargs.get("revoked", ()))

    app.on_partitions_revoked.connect(receiver)


def install_fan_out(app: faust.App, context: WorkerContext) -> None:
    """The raw topic's agent (:class:`~connector.worker.fanout.FanOut` on the delivery core), its
    deduplication table, the table's purge timer and the lag metric."""
    settings, topics = context.settings, context.topics
    raw_name = topics.raw
    retention_ms = settings.worker_dedup_retention_seconds * 1000
    raw = app.topic(raw_name, key_serializer="raw", value_serializer="raw")
    table = app.Table(
        DEDUP_TABLE,
        default=None,
        partitions=context.raw_partitions,
        help="event identity -> [first_seen_ms, raw partition] of events with a typed record",
        # Let compaction reclaim purged entries within about one retention period.
        extra_topic_configs={"segment.ms": str(retention_ms)},
    )
    context.sink.add_table(DEDUP_TABLE, table)
    dedup = DedupIndex(
        table.data,
        lambda partition, key: table.send_changelog(partition, key, None, value_serializer="raw"),
        retention_ms,
    )
    metrics = context.metrics
    core = DeliveryCore(
        PIPELINE_AGENT,
        FanOut(
            Router(context.codec, topics, clock=time.time),
            dedup,
            metrics,
            context.derivations,
        ),
        context.sink,
        stopping=context.stopping(app),
        refetcher=context.refetcher,
        hooks=CoreHooks(
            retried=metrics.produce_retries.inc,
            refetched=metrics.refetched.inc,
            batch_seconds=metrics.batch_duration.observe,
        ),
    )
    # Table writes wait in Faust's producer buffer, which warns and throttles the stream above
    # 100 messages; a batch writes up to one mark per record, so let it hold a batch or two.
    buffer = app.producer.buffer
    buffer.max_messages = max(buffer.max_messages, 2 * settings.worker_batch_size)

    @app.agent(raw, name=PIPELINE_AGENT)
    async def fan_out(stream: Any) -> None:
        size, within = settings.worker_batch_size, settings.worker_batch_seconds
        await core.run(stream, context.batches, size, within)

    async def purge_dedup() -> None:
        try:
            assigned = app.assignor.assigned_actives()
            active = {tp.partition for tp in assigned if tp.topic == raw_name}
            purged = dedup.purge(active)
        except Exception:
            log.exception("deduplication purge failed")
            return
        metrics.dedup_purged.inc(purged)
        metrics.dedup_entries.set(dedup.size)
        if purged:
            log.info("deduplication purge deleted=%d remaining=%d", purged, dedup.size)

    app.timer(settings.worker_dedup_purge_interval_seconds)(purge_dedup)
    when_revoked(app, lambda revoked: core.forget([(tp.topic, tp.partition) for tp in revoked]))
    watch_lag(app, raw_name, core.next_offsets, context.log_ends, metrics)


def install_stall_watch(app: faust.App, context: WorkerContext) -> None:
    """The timer that finds input partitions left unread and fetches them again
    (:mod:`.stalls`); ``WORKER_STALL_SECONDS=0`` turns it off. Also the
    read-only page ``GET /partitions`` (whether the watch is on or off)."""
    partitions = FaustPartitions(app, context.log_ends, context.refetcher.start_offsets)

    @app.page("/partitions")
    async def partitions_view(self: Any, request: Any) -> Any:
        """``GET /partitions``: what the stall watch sees, for whoever asks why a partition does
        not move (read-only): per input partition the consumer's position, where the log ends,
        whether Faust asks for it, paused, queues full, committed and acknowledged offsets;
        whether a commit round is under way; and the batches the agents work on."""
        try:
            await partitions.refresh()
            views = [dataclasses.asdict(view) for view in partitions.views()]
            unsettled_by: list[str] | None = partitions.unsettled_by()
        except Exception as exc:  # not started, rebalancing
            views, unsettled_by = [], None
            log.debug("partition views not available: %r", exc)
        return self.json(
            {
                "settled": None if unsettled_by is None else not unsettled_by,
                "unsettled_by": unsettled_by,
                "committing": partitions.committing(),
                "partitions": views,
                "batches": [dataclasses.asdict(b) for b in context.batches.working_on()],
            }
        )

    seconds = context.settings.worker_stall_seconds
    if not seconds:
        return
    watch = StallWatch(seconds)
    counter = context.metrics.partition_stalls
    skipped: list[float] = []  # when the checks failed, since the last one that did not

    async def look_for_stalls() -> None:
        slow = counter.labels(str(stalls.Cause.SLOW_BATCH))
        stalls.check_batches(context.batches, seconds, lambda batch: slow.inc())
        try:
            await stalls.check(watch, partitions, lambda s: counter.labels(str(s.cause)).inc())
        except Exception as exc:  # not started, rebalancing: look again next time
            log.debug("stall check skipped: %r", exc)
            skipped.append(time.monotonic())
            if skipped[-1] - skipped[0] >= seconds:  # failing for a whole period: say so
                log.warning("the stall watch could not look for %.0f s: %r", seconds, exc)
                skipped.clear()
        else:
            skipped.clear()

    app.timer(min(5.0, seconds / 3))(look_for_stalls)


def install_health(app: faust.App, context: WorkerContext) -> None:
    """``GET /healthz`` and ``GET /readyz`` (:mod:`.health`)."""
    install_health_views(app)


def install_metrics_view(app: faust.App, context: WorkerContext) -> None:
    """``GET /metrics``: the worker's metrics in Prometheus text format."""
    metrics = context.metrics

    @app.page("/metrics")
    async def metrics_view(self: Any, request: Any) -> Any:
        return self.bytes(metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def install_commit_keeper(app: faust.App, context: WorkerContext) -> None:
    """Offsets Faust noted as committed although Kafka refused the commit at a rebalance are
    committed again (:mod:`connector.worker.patches.commits`)."""
    keeper = CommitKeeper(app.consumer, on_retried=context.metrics.commits_retried.inc)
    keeper.install()
    when_revoked(app, keeper.forget)


INSTALLERS: list[Installer] = [
    install_fan_out,
    install_metrics_view,
    install_health,
    install_agent_scores,
    install_stall_watch,
    install_commit_keeper,
]
"""What :func:`create_app` installs, in order."""
