"""The agent score aggregates' Prometheus metrics, in the worker's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class AggregateMetrics:
    """The aggregates' Prometheus metrics, in the worker's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.score_events = Counter(
            "zoom_worker_score_events",
            "Typed records read for the agent aggregates, by event type and how the agent was"
            " found (primary, fallback, unattributed, unreadable).",
            ["event_type", "attribution"],
            registry=registry,
        )
        self.updates = Counter(
            "zoom_worker_agent_score_updates",
            "Score events applied to agent states, by outcome (added, replaced, duplicate, stale,"
            " unreadable).",
            ["outcome"],
            registry=registry,
        )
        self.published = Counter(
            "zoom_worker_agent_scores_published",
            "Records written to the agent_scores topic.",
            registry=registry,
        )
        self.write_retries = Counter(
            "zoom_worker_agent_score_write_retries",
            "Aggregate writes (internal topic, changelog, agent_scores) retried after an error.",
            registry=registry,
        )
        self.fenced = Counter(
            "zoom_worker_agent_score_batches_fenced",
            "Aggregate batches released unwritten and unacknowledged: the worker had been frozen"
            " and the group rebalanced meanwhile (connector.worker.patches.fence).",
            registry=registry,
        )
        self.refetched = Counter(
            "zoom_worker_agent_score_records_refetched",
            "Records a stream skipped (an offset gap) that the aggregates read again from Kafka,"
            " by stage (connector.worker.patches.gaps).",
            ["stage"],
            registry=registry,
        )
        self.repaired = Counter(
            "zoom_worker_agent_score_states_repaired",
            "Agent states whose last changelog record was stale (written late by a worker that"
            " had lost the partition: connector.worker.aggregates.stamps), skipped when the"
            " table was restored and written again (changelog and agent_scores).",
            registry=registry,
        )
        self.state_bytes = Histogram(
            "zoom_worker_agent_state_bytes",
            "Size of the agent states written to the table.",
            buckets=(1e3, 4e3, 16e3, 64e3, 128e3, 256e3, 512e3, 1e6),
            registry=registry,
        )
