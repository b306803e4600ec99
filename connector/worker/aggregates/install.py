"""The agent score aggregates in the worker: the score events, an agent on the delivery core, a
table, the query API, the repair timer.

Flow::

    raw agent (fanout.FanOut), for each new evaluation or interaction analysis, beside its typed
    record and acknowledged with it (rekeying.ScoreEvents, a derivation):
        -> <WORKER_ID>-agent-score-events  (internal; key: agent id; partition: murmur2(key))
        -> agent zoom-agent-scores (aggregation.Aggregator, behind the freeze fence):
           table agent-scores (key: agent id, value: the agent's stamped state)
        -> <prefix>.agent_scores  (compacted; key: agent id; value: AgentScores, Avro)

The aggregating agent runs on :class:`~connector.worker.delivery.DeliveryCore`: a batch's records
are acknowledged only once Kafka stored everything written for them, and every step is idempotent
(``docs/guarantees.md``). Its writes are whole states, so it is fenced
(:class:`~connector.worker.patches.FreezeGuard`) and its table skips stale records on restore
(:class:`~connector.worker.patches.StampedTable`, repaired by :mod:`.repairs`).
"""

from __future__ import annotations

import logging
from typing import Any, Final

import faust

from connector.worker.aggregates.aggregation import Aggregator, StateReader
from connector.worker.aggregates.decoded import DecodedStates
from connector.worker.aggregates.metrics import AggregateMetrics
from connector.worker.aggregates.queries import ScoresQueries, install_scores_views
from connector.worker.aggregates.record import codec_for
from connector.worker.aggregates.rekeying import ScoreEvents, events_topic_name
from connector.worker.aggregates.repairs import Repairer, TableRepairs
from connector.worker.aggregates.state import Retention
from connector.worker.aggregates.windows import DAY_MS
from connector.worker.context import WorkerContext
from connector.worker.delivery import CoreHooks, DeliveryAborted, DeliveryCore
from connector.worker.patches import FreezeGuard, StampedTable

log = logging.getLogger(__name__)

AGGREGATE_AGENT: Final = "zoom-agent-scores"
TABLE: Final = "agent-scores"
_REPAIR_INTERVAL_SECONDS: Final = 1.0


def retention_for(
    rescore_days: int, dedup_retention_seconds: int, max_replaceable: int
) -> Retention:
    """How long an agent's state keeps events replaceable by a re-score."""
    return Retention(
        replaceable_ms=rescore_days * DAY_MS + dedup_retention_seconds * 1000,
        max_replaceable=max_replaceable,
    )


def install_agent_scores(app: faust.App, context: WorkerContext) -> None:
    """The score events (a derivation of the raw agent), the aggregating agent and its table,
    the repairs, the query API."""
    settings, topics = context.settings, context.topics
    partitions = context.raw_partitions
    metrics = AggregateMetrics(context.metrics.registry)
    sink = context.sink

    by_agent = app.topic(
        events_topic_name(settings.worker_id),
        partitions=partitions,
        internal=True,
        key_serializer="raw",
        value_serializer="raw",
    )
    sink.declare(by_agent)
    table = StampedTable(
        app,
        name=TABLE,
        default=None,
        beacon=app.tables.beacon,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        help="agent id -> the agent's score aggregates (connector.worker.aggregates.state,"
        " stamped: connector.worker.aggregates.stamps)",
    )
    app.tables.add(table)
    sink.add_table(TABLE, table)
    queries = ScoresQueries(app, table, partitions)
    repairs = TableRepairs(table, queries)
    states = StateReader(table)
    scores_codec = codec_for(settings)

    guard = FreezeGuard.for_app(app)

    async def notice_freezes() -> None:
        guard.tick()

    app.timer(guard.tick_interval)(notice_freezes)

    context.derivations.append(ScoreEvents(by_agent.get_topic_name(), partitions, metrics))
    retention = retention_for(
        settings.worker_scores_rescore_days,
        settings.worker_dedup_retention_seconds,
        settings.worker_scores_max_replaceable,
    )
    aggregating = DeliveryCore(
        AGGREGATE_AGENT,
        Aggregator(
            states,
            TABLE,
            topics.agent_scores,
            scores_codec,
            retention,
            metrics,
            stored=repairs.done,
            decoded=DecodedStates(settings.worker_scores_cache_mb * 1024**2),
        ),
        sink,
        stopping=context.stopping(app),
        refetcher=context.refetcher,
        fence=guard.may_write,
        hooks=CoreHooks(
            retried=metrics.write_retries.inc,
            refetched=metrics.refetched.labels("aggregate").inc,
            fenced=lambda count: metrics.fenced.inc(),
        ),
    )
    repairer = Repairer(
        aggregating,
        repairs,
        states,
        TABLE,
        topics.agent_scores,
        scores_codec,
        metrics,
        guard.may_write,
    )

    async def repair_stale_states() -> None:
        try:
            await repairer.repair()
        except DeliveryAborted as exc:  # stopping: the next owner's restore finds them again
            log.warning("stale agent states not written again: %s", exc)
        except Exception:  # a bug: an exception would end the timer task for good
            log.exception("writing stale agent states again failed; retried at the next tick")

    app.timer(_REPAIR_INTERVAL_SECONDS)(repair_stale_states)
    size, within = settings.worker_batch_size, settings.worker_batch_seconds

    @app.agent(by_agent, name=AGGREGATE_AGENT)
    async def aggregate(stream: Any) -> None:
        await aggregating.run(stream, context.batches, size, within, fill=True)

    install_scores_views(app, queries)
