"""The local broker launcher against a real JVM: a second instance on free ports, then stopped.

It does not touch the shared broker on ``localhost:9092``; the last test of the module stops the
instance it started. Needs Java 17+ and the Kafka jars (cached, or fetched with Maven).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, Producer

from connector.kafka.local_broker import (
    KAFKA_VERSION,
    BrokerConfig,
    BrokerStartError,
    JavaNotFoundError,
    KafkaDistributionError,
    LocalBroker,
    ScramUser,
)
from tests import kafka_helpers

pytestmark = pytest.mark.kafka

ALICE = ScramUser("alice", "alice-secret")


def start_or_give_up(broker: LocalBroker) -> None:
    """Start ``broker``; skip (under CI: fail) when this machine cannot run one at all."""
    try:
        broker.start()
    except (JavaNotFoundError, KafkaDistributionError) as exc:
        reason = f"the local broker cannot run here: {exc}"
    else:
        return
    kafka_helpers.kafka_unavailable(reason)


@pytest.fixture(scope="module")
def second_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    config = BrokerConfig.ephemeral(tmp_path_factory.mktemp("second-broker"), scram_users=(ALICE,))
    broker = LocalBroker(config)
    start_or_give_up(broker)
    try:
        yield broker
    finally:
        broker.stop()


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("localhost", port), timeout=1.0):
            return True
    except OSError:
        return False


def test_start_is_idempotent(second_broker: LocalBroker) -> None:
    assert second_broker.is_running()
    first_pid = int(second_broker.config.pid_file.read_text())
    again = second_broker.start()
    assert again.outcome == "already-running"
    assert again.pid == first_pid
    assert again.bootstrap == second_broker.config.bootstrap
    assert second_broker.ensure_started() == second_broker.config.bootstrap


def test_status_reports_running(second_broker: LocalBroker) -> None:
    status = second_broker.status()
    assert status.running and status.answers
    assert status.pid == int(second_broker.config.pid_file.read_text())
    assert status.bootstrap == f"localhost:{second_broker.config.port}"
    assert status.version == KAFKA_VERSION
    assert status.data_dir == second_broker.config.data_dir
    assert "Kafka Server started" in status.server_log.read_text()


def test_a_message_goes_through(
    second_broker: LocalBroker, unique_name: Callable[[str], str]
) -> None:
    bootstrap = second_broker.config.bootstrap
    topic = kafka_helpers.create_topic(bootstrap, unique_name("roundtrip"), partitions=2)
    values = [f"message {i}".encode() for i in range(5)]
    kafka_helpers.produce(bootstrap, topic, values, key=b"same-partition")
    received = kafka_helpers.consume_all(bootstrap, topic, len(values))
    assert [message.value() for message in received] == values
    assert {message.key() for message in received} == {b"same-partition"}


def sasl_produce(broker: LocalBroker, topic: str, password: str) -> KafkaError | None:
    """Produce one message as alice over SCRAM-SHA-512; the delivery error, if any."""
    outcome: list[KafkaError | None] = []
    producer = Producer(
        {
            "bootstrap.servers": broker.config.sasl_bootstrap,
            "security.protocol": "sasl_plaintext",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": ALICE.username,
            "sasl.password": password,
            "message.timeout.ms": 5000,
            "log_level": 0,
            "error_cb": lambda _error: None,
        }
    )

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        outcome.append(error)

    producer.produce(topic, b"over sasl", on_delivery=on_delivery)
    producer.flush(20)
    assert len(outcome) == 1
    return outcome[0]


def test_scram_users_authenticate_on_the_sasl_listener(
    second_broker: LocalBroker, unique_name: Callable[[str], str]
) -> None:
    topic = kafka_helpers.create_topic(second_broker.config.bootstrap, unique_name("sasl"))
    # Credentials reach the SASL listener through the metadata log: allow a moment.
    deadline = time.monotonic() + 30
    while (error := sasl_produce(second_broker, topic, ALICE.password)) is not None:
        assert time.monotonic() < deadline, f"alice cannot produce over SASL: {error}"
    assert sasl_produce(second_broker, topic, "not-her-password") is not None
    received = kafka_helpers.consume_all(second_broker.config.bootstrap, topic, 1)
    assert received[0].value() == b"over sasl"


def test_a_jvm_that_dies_at_start_up_is_reported_with_its_log(tmp_path: Path) -> None:
    config = BrokerConfig.ephemeral(tmp_path)
    config.kraft_dir.mkdir(parents=True)
    # Storage formatted for another node: the broker refuses it and exits at once.
    (config.kraft_dir / "meta.properties").write_text(
        "version=1\nnode.id=7\ncluster.id=q1Sh-9_ISia_zwGINzRvyQ\n"
        "directory.id=Ra6SDzDwA3coBJ1SYdQUnw\n"
    )
    broker = LocalBroker(config)
    try:
        with pytest.raises(BrokerStartError, match="exited during start-up") as caught:
            start_or_give_up(broker)
    finally:
        broker.stop()
    assert "node id" in str(caught.value)
    assert str(config.server_log) in str(caught.value)
    assert not broker.is_running()


def test_stop_ends_the_broker(second_broker: LocalBroker) -> None:
    """Runs last in this module: afterwards the second broker is gone."""
    port = second_broker.config.port
    assert second_broker.stop() is True
    assert not second_broker.is_running()
    assert not second_broker.config.pid_file.exists()
    assert not port_open(port)
    assert second_broker.stop() is False
    assert second_broker.status().running is False


def test_the_session_broker_carries_messages(
    kafka_bootstrap: str, create_topic: Callable[..., str]
) -> None:
    topic = create_topic("session", partitions=3)
    kafka_helpers.produce(kafka_bootstrap, topic, [b"a", b"b", b"c"])
    received = kafka_helpers.consume_all(kafka_bootstrap, topic, 3)
    assert sorted(message.value() or b"" for message in received) == [b"a", b"b", b"c"]
