"""``zoom-connector worker``: check the cluster, register schemas, then run the Faust worker.

Start-up fails fast, with a message saying what to do, when a topic the worker reads or writes is
missing (run ``zoom-connector topics create``) or when the schema registry refuses a schema. The
raw topic's real partition count sizes the worker's tables (Faust requires a table's changelog to
be co-partitioned with the topic that writes it). The worker then runs until SIGINT or SIGTERM,
finishing the batch in hand; its exit code is the command's.
"""

from __future__ import annotations

import logging

import faust
from confluent_kafka.admin import AdminClient

from connector.avro.codec import EventCodec, load_schemas
from connector.avro.framing import ConfluentFraming
from connector.avro.history import load_history
from connector.errors import ConfigurationError
from connector.kafka.admin import (
    TopicSpec,
    admin_client,
    create_topics,
    partition_counts,
    verify_connection,
)
from connector.settings import Settings
from connector.topics import TopicNames
from connector.worker.aggregates.rekeying import events_topic_name
from connector.worker.app import create_app

log = logging.getLogger(__name__)


def build_codec(settings: Settings) -> EventCodec:
    """The codec for typed records: Confluent framing with a registry, else single-object."""
    schemas = load_schemas()
    if not settings.schema_registry_url:
        return EventCodec(schemas, history=load_history())
    from connector.registry import register_schemas

    ids = register_schemas(settings, schemas)
    log.info("schemas registered registry=%s ids=%s", settings.schema_registry_url, ids)
    return EventCodec(schemas, framing=ConfluentFraming(ids))


def raw_partition_count(
    settings: Settings, event_types: list[str], *, admin: AdminClient | None = None
) -> int:
    """The raw topic's partition count, once every topic the worker uses is known to exist."""
    names = TopicNames(settings.topic_prefix)
    needed = [names.raw, names.dlq, *map(names.typed, event_types), names.agent_scores]
    counts = partition_counts(settings, needed, admin=admin)
    missing = [name for name in needed if counts.get(name) is None]
    if missing:
        raise ConfigurationError(
            f"missing topics on {settings.bootstrap_servers}: {', '.join(missing)};"
            " create them with `zoom-connector topics create`"
        )
    count = counts[names.raw]
    assert count is not None
    return count


def create_internal_topics(
    settings: Settings, partitions: int, *, admin: AdminClient | None = None
) -> None:
    """Create the worker's internal score-event topic, as Faust would, and wait until the broker
    lists it. Faust creates it itself and subscribes at once: a consumer whose metadata came
    before the broker listed the new topic is assigned none of its partitions, and only notices
    at its next metadata refresh (5 minutes), writing no ``agent_scores`` meanwhile."""
    name = events_topic_name(settings.worker_id)
    spec = TopicSpec(name, partitions, settings.topic_replication_factor, {})
    create_topics(settings, [spec], admin=admin)


def run_worker(settings: Settings) -> int:
    """Run the worker until stopped; returns the process exit code."""
    codec = build_codec(settings)
    verify_connection(settings)  # once: the two steps below share one admin client
    admin = admin_client(settings)
    partitions = raw_partition_count(settings, codec.event_types, admin=admin)
    create_internal_topics(settings, partitions, admin=admin)
    app = create_app(settings, codec=codec, raw_partitions=partitions)
    log.info(
        "worker starting id=%s raw_partitions=%d web_port=%d framing=%s",
        settings.worker_id,
        partitions,
        settings.worker_web_port,
        type(codec.framing).__name__,
    )
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
