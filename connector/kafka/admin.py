"""``zoom-connector topics create``: every topic the connector uses, created idempotently.

Topics, for ``TOPIC_PREFIX`` (default ``zoom``), each with ``TOPIC_PARTITIONS`` partitions and
``TOPIC_REPLICATION_FACTOR`` replicas:

=====================================  ===================================================
topic                                  configuration
=====================================  ===================================================
``zoom.webhooks.raw``                  ``retention.ms`` = ``RAW_RETENTION_MS``
``zoom.<event type>`` (one per type)   ``retention.ms`` = ``TYPED_RETENTION_MS``
``zoom.webhooks.dlq``                  ``retention.ms`` = ``DLQ_RETENTION_MS``
``zoom.agent_scores``                  ``cleanup.policy=compact`` (latest aggregates per agent)
=====================================  ===================================================

The raw and dead-letter topics also allow records as large as the largest body the source accepts
(``SOURCE_MAX_BODY_BYTES``) plus room for headers, and never less than Kafka's default
``max.message.bytes`` (the limit applies to whole record batches, which producers fill up to
about 1 MB). Topics that exist already are left as they are
and reported with their partition count (a raw topic with a different count is fine: the worker
sizes its tables after the real one). Faust creates its own internal topics (table changelogs).

Before asking anything, :func:`verify_connection` makes sure the cluster answers with the
configured credentials: a wrong SASL password, a broker certificate the client does not trust or
a client certificate the broker refuses is reported at once (:class:`KafkaAuthenticationError`,
see :mod:`connector.kafka.refusals`; a key librdkafka cannot decrypt is a
:class:`~connector.errors.ConfigurationError`), a cluster that does not answer within
``KAFKA_CONNECT_TIMEOUT_SECONDS`` as :class:`KafkaUnreachableError`, whose message says what to
check. librdkafka's own log lines (one per reconnect attempt) are coalesced meanwhile
(:mod:`connector.kafka.coalescing_log`): the first, then how many more came.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TextIO

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from connector.errors import ConnectorError
from connector.kafka.coalescing_log import CoalescingLog
from connector.kafka.refusals import (
    client_creation_error,
    refusal,
    refusal_in_log,
    refusal_message,
)
from connector.settings import Settings
from connector.topics import TopicNames

RECORD_HEADROOM_BYTES: Final = 128 * 1024
"""Room for record headers (Zoom's, the dead-letter ones) above the largest accepted body."""

_TIMEOUT_SECONDS: Final = 30.0


class TopicAdminError(ConnectorError):
    """The cluster could not be asked about, or refused to create, a topic."""


class KafkaAuthenticationError(TopicAdminError):
    """The cluster refused the connection: SASL credentials, or the TLS handshake."""


class KafkaUnreachableError(TopicAdminError):
    """No broker of the cluster answered in time."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)


KAFKA_DEFAULT_MAX_MESSAGE_BYTES: Final = 1_048_588
"""The broker's default ``message.max.bytes``: the largest record batch a topic takes."""


def max_record_bytes(settings: Settings) -> int:
    """The largest raw or dead-letter record: the largest accepted body plus headers."""
    return settings.source_max_body_bytes + RECORD_HEADROOM_BYTES


def topic_specs(settings: Settings, event_types: Iterable[str]) -> list[TopicSpec]:
    """Every topic the connector writes, configured from ``settings``."""
    names = TopicNames(settings.topic_prefix)

    def spec(name: str, **config: str) -> TopicSpec:
        return TopicSpec(
            name, settings.topic_partitions, settings.topic_replication_factor, dict(config)
        )

    batch = max(KAFKA_DEFAULT_MAX_MESSAGE_BYTES, max_record_bytes(settings))
    large = {"max.message.bytes": str(batch)}
    return [
        spec(names.raw, **{"retention.ms": str(settings.raw_retention_ms)}, **large),
        *(
            spec(names.typed(t), **{"retention.ms": str(settings.typed_retention_ms)})
            for t in sorted(event_types)
        ),
        spec(names.dlq, **{"retention.ms": str(settings.dlq_retention_ms)}, **large),
        spec(names.agent_scores, **{"cleanup.policy": "compact"}),
    ]


LIBRDKAFKA_LOGGER: Final = "connector.kafka.librdkafka"


def admin_client(settings: Settings, **extra: object) -> AdminClient:
    """An admin client for the cluster (``extra``: more librdkafka settings, e.g. ``error_cb``).

    librdkafka refusing the settings (a key it cannot decrypt) is a ConfigurationError.
    """
    config = {
        **settings.kafka_client_config(),
        "client.id": "zoom-connector-admin",
        "logger": CoalescingLog(logging.getLogger(LIBRDKAFKA_LOGGER)),
        **extra,
    }
    try:
        return AdminClient(config)
    except KafkaException as exc:
        raise client_creation_error(config, exc) from exc


_PROBE_SECONDS: Final = 0.5


_ATTEMPT_DETAILS: Final = re.compile(
    r"\s*\((?:after \d+ms in state \w+|\d+ identical error\(s\) suppressed)\)"
)


class _ConnectionWatch(logging.Filter):
    """An ``error_cb`` keeping the last refusal and the last transport error librdkafka reported,
    and a filter on librdkafka's logger that takes a refusal from its log lines too (builds whose
    ``error_cb`` text leaves the TLS alert out). Those lines are dropped: the error raised with
    the refusal says the same."""

    def __init__(self) -> None:
        super().__init__()
        self.refusal: str | None = None
        self.failure: str | None = None

    def __call__(self, error: KafkaError) -> None:
        reason = refusal(error)
        if reason is not None:
            self.refusal = reason
        elif error.code() != KafkaError._ALL_BROKERS_DOWN:
            self.failure = _ATTEMPT_DETAILS.sub("", error.str())

    def filter(self, record: logging.LogRecord) -> bool:
        reason = refusal_in_log(record)
        if reason is None:
            return True
        if self.refusal is None:
            self.refusal = reason
        return False


def verify_connection(settings: Settings, timeout: float | None = None) -> None:
    """Return once the cluster answers a metadata request with the configured credentials.

    Raises :class:`KafkaAuthenticationError` as soon as the cluster refuses the SASL credentials
    or the TLS handshake fails, and :class:`KafkaUnreachableError` when it does not answer within
    ``timeout`` (``KAFKA_CONNECT_TIMEOUT_SECONDS``).
    """
    if timeout is None:
        timeout = settings.kafka_connect_timeout_seconds
    watch = _ConnectionWatch()
    librdkafka_log = CoalescingLog(logging.getLogger(LIBRDKAFKA_LOGGER))
    admin = admin_client(settings, error_cb=watch, logger=librdkafka_log)
    python_log = logging.getLogger(LIBRDKAFKA_LOGGER)
    python_log.addFilter(watch)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                probe = max(0.1, min(_PROBE_SECONDS, deadline - time.monotonic()))
                admin.list_topics(timeout=probe)
                return
            except KafkaException as exc:
                last = exc
            finally:
                admin.poll(0)  # serves error_cb and the log
            if watch.refusal is not None:
                librdkafka_log.flush()
                raise KafkaAuthenticationError(
                    refusal_message(settings.kafka_client_config(), watch.refusal)
                )
            if time.monotonic() >= deadline:
                librdkafka_log.flush()
                raise KafkaUnreachableError(
                    unreachable_message(settings, timeout, watch.failure or last)
                )
    finally:
        python_log.removeFilter(watch)


def unreachable_message(settings: Settings, timeout: float, cause: object) -> str:
    """What to say, and what to check, when the cluster did not answer."""
    configured = settings.kafka_bootstrap_servers
    where = (
        f"KAFKA_BOOTSTRAP_SERVERS={configured}"
        if configured
        else f"KAFKA_BOOTSTRAP_SERVERS (unset, so {settings.bootstrap_servers})"
    )
    return (
        f"cannot reach Kafka at {settings.bootstrap_servers} within {timeout:g} s ({cause})."
        f" Check {where}, that the broker is running and reachable from here"
        " (`zoom-connector kafka status` for the local one), and its KAFKA_SECURITY_PROTOCOL"
        f" ({settings.kafka_security_protocol}); KAFKA_CONNECT_TIMEOUT_SECONDS waits longer"
    )


def partition_counts(
    settings: Settings, topics: Iterable[str], *, admin: AdminClient | None = None
) -> dict[str, int | None]:
    """Topic -> its partition count, ``None`` when it does not exist."""
    if admin is None:
        verify_connection(settings)
        admin = admin_client(settings)
    try:
        metadata = admin.list_topics(timeout=_TIMEOUT_SECONDS)
    except KafkaException as exc:
        raise TopicAdminError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}") from exc
    counts: dict[str, int | None] = {}
    for name in topics:
        found = metadata.topics.get(name)
        ok = found is not None and found.error is None
        counts[name] = len(found.partitions) if found is not None and ok else None
    return counts


def create_topics(
    settings: Settings, specs: Sequence[TopicSpec], *, admin: AdminClient | None = None
) -> dict[str, str]:
    """Create ``specs``; topic -> ``created`` or ``exists``. Raises on any other failure."""
    if admin is None:
        verify_connection(settings)
        admin = admin_client(settings)
    futures = admin.create_topics(
        [
            NewTopic(
                s.name,
                num_partitions=s.partitions,
                replication_factor=s.replication_factor,
                config=dict(s.config),
            )
            for s in specs
        ],
        operation_timeout=_TIMEOUT_SECONDS,
        request_timeout=_TIMEOUT_SECONDS,
    )
    outcome: dict[str, str] = {}
    failures: list[str] = []
    for spec in specs:
        try:
            futures[spec.name].result(timeout=_TIMEOUT_SECONDS + 5)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                outcome[spec.name] = "exists"
            else:
                failures.append(f"{spec.name}: {exc}")
        except Exception as exc:  # timeouts of the future itself
            failures.append(f"{spec.name}: {type(exc).__name__}: {exc}")
        else:
            outcome[spec.name] = "created"
    if failures:
        raise TopicAdminError("cannot create topics:\n  " + "\n  ".join(failures))
    _wait_until_listed(settings, admin, [s.name for s in specs])
    return outcome


def _wait_until_listed(settings: Settings, admin: AdminClient, names: Sequence[str]) -> None:
    """Return once the broker's metadata lists every topic of ``names`` without an error.

    A topic just created can be missing from the metadata, or listed with an error (no leader
    yet), for a moment, longest on a broker that has just started: a worker started right after
    ``topics create`` (``zoom-connector run``) would take it for missing.
    """
    deadline = time.monotonic() + _TIMEOUT_SECONDS
    while True:
        counts = partition_counts(settings, names, admin=admin)
        waiting = [name for name in names if counts.get(name) is None]
        if not waiting:
            return
        if time.monotonic() >= deadline:
            raise TopicAdminError(
                f"topics created but not listed by the broker after {_TIMEOUT_SECONDS:.0f} s: "
                + ", ".join(waiting)
            )
        time.sleep(0.2)


def create_topics_command(settings: Settings, out: TextIO = sys.stdout) -> int:
    """``zoom-connector topics create``: create what is missing, report what exists."""
    from connector.spec import load_catalog

    specs = topic_specs(settings, load_catalog().event_types)
    verify_connection(settings)
    admin = admin_client(settings)
    outcome = create_topics(settings, specs, admin=admin)
    existing = [name for name, what in outcome.items() if what == "exists"]
    counts = partition_counts(settings, existing, admin=admin) if existing else {}
    for spec in specs:
        if outcome[spec.name] == "created":
            print(
                f"created {spec.name} (partitions={spec.partitions},"
                f" replication={spec.replication_factor})",
                file=out,
            )
        else:
            count = counts.get(spec.name)
            note = "" if count in (None, spec.partitions) else f", settings say {spec.partitions}"
            print(f"exists  {spec.name} (partitions={count}{note})", file=out)
    created = sum(1 for what in outcome.values() if what == "created")
    print(f"{created} created, {len(outcome) - created} already existed", file=out)
    return 0
