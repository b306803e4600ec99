"""``zoom-connector topics create`` against a real broker: every topic, configured, re-runnable."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource

from connector.kafka.admin import create_topics_command, max_record_bytes
from connector.settings import Settings
from connector.spec import load_catalog
from connector.topics import TopicNames

pytestmark = pytest.mark.kafka


def _configs(admin: AdminClient, topic: str, timeout: float = 30.0) -> dict[str, str]:
    """A topic's configs, polling while the broker does not know the new topic yet."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    deadline = time.monotonic() + timeout
    while True:
        try:
            entries = admin.describe_configs([resource])[resource].result(timeout=timeout)
        except KafkaException as exc:
            retriable = exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            if not retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        return {name: entry.value for name, entry in entries.items()}


def test_topics_create_makes_every_topic_and_can_run_again(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=unique_name("topics"),
        topic_partitions=2,
        raw_retention_ms=3_600_000,
        typed_retention_ms=7_200_000,
        dlq_retention_ms=10_800_000,
        source_max_body_bytes=2 * 1024 * 1024,
    )
    names = TopicNames(settings.topic_prefix)
    event_types = load_catalog().event_types
    expected = [names.raw, *map(names.typed, event_types), names.dlq, names.agent_scores]

    first = io.StringIO()
    assert create_topics_command(settings, out=first) == 0
    lines = first.getvalue().splitlines()
    assert lines[-1] == f"{len(expected)} created, 0 already existed"
    assert {line.split()[1] for line in lines[:-1] if line.startswith("created ")} == set(expected)

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    metadata = admin.list_topics(timeout=30)
    for topic in expected:
        assert len(metadata.topics[topic].partitions) == 2, topic
    raw = _configs(admin, names.raw)
    assert raw["retention.ms"] == "3600000"
    assert raw["max.message.bytes"] == str(max_record_bytes(settings)) == str((2048 + 128) * 1024)
    assert _configs(admin, names.typed(event_types[0]))["retention.ms"] == "7200000"
    assert _configs(admin, names.dlq)["retention.ms"] == "10800000"
    assert _configs(admin, names.dlq)["max.message.bytes"] == raw["max.message.bytes"]
    assert _configs(admin, names.agent_scores)["cleanup.policy"] == "compact"

    again = io.StringIO()
    assert create_topics_command(settings, out=again) == 0
    lines = again.getvalue().splitlines()
    assert lines[-1] == f"0 created, {len(expected)} already existed"
    assert f"exists  {names.raw} (partitions=2)" in lines


def test_topics_never_take_less_than_kafkas_default_batch_size(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    """Small bodies must not shrink max.message.bytes: it limits whole producer batches."""
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=unique_name("topics"),
        source_max_body_bytes=64 * 1024,
    )
    assert create_topics_command(settings, out=io.StringIO()) == 0
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    raw = _configs(admin, TopicNames(settings.topic_prefix).raw)
    assert raw["max.message.bytes"] == "1048588"


def test_the_worker_creates_its_internal_topic_before_faust_subscribes(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    from connector.kafka.admin import partition_counts
    from connector.worker.aggregates.rekeying import events_topic_name
    from connector.worker.command import create_internal_topics

    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, worker_id=unique_name("internal"))
    name = events_topic_name(settings.worker_id)
    assert partition_counts(settings, [name]).get(name) is None
    create_internal_topics(settings, 4)
    # listed as soon as it returns: a consumer subscribing now is assigned its partitions
    assert partition_counts(settings, [name]) == {name: 4}
    create_internal_topics(settings, 4)  # a restart finds it there
    assert partition_counts(settings, [name]) == {name: 4}
