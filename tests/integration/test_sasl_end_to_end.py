"""The whole connector over SASL/SCRAM, against a private broker that requires it.

The local launcher starts a throw-away broker with a SASL_PLAINTEXT listener (SCRAM-SHA-256 and
SCRAM-SHA-512, user ``alice``); every connector process talks to that listener only, configured
by the interface's variables (``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_*``):

``zoom-connector topics create`` (admin client) -> ``zoom-connector source`` (producer; ``/readyz``
is a metadata request) receives a webhook signed by ``zoom-connector send`` -> ``zoom-connector
worker`` (Faust's consumers and producers, the aggregates' internal topic and changelog) writes
the typed record and the agent's scores -> a consumer with SCRAM credentials reads them. Wrong
credentials fail at once and say why. Waiting is always polling with a deadline.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, Message
from confluent_kafka.admin import AdminClient

from connector.kafka.local_broker import (
    LocalBroker,
    ScramUser,
)
from connector.paths import avro_schemas_dir
from connector.spec import load_catalog
from connector.topics import TopicNames
from connector.wire import EVENT_ID_HEADER
from connector.worker.aggregates.record import AgentScoresCodec
from connector.worker.identity import event_identity
from tests.processes import private_broker

pytestmark = pytest.mark.kafka

ALICE = ScramUser("alice", "alice-pw")
EVALUATION = "quality_management.evaluation_completed"
CATALOG = load_catalog()
SECRET = "sasl-test-secret"
CONNECTOR = [sys.executable, "-m", "connector"]
START_SECONDS = 90.0
REFUSAL_SECONDS = 15.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A private broker whose SASL_PLAINTEXT listener knows alice (both SCRAM mechanisms)."""
    with private_broker(tmp_path_factory.mktemp("scram-broker"), scram_users=(ALICE,)) as broker:
        yield broker


def client_config(broker: LocalBroker, mechanism: str, password: str) -> dict[str, Any]:
    """confluent-kafka settings for alice on the SASL listener."""
    assert broker.config.sasl_bootstrap is not None
    return {
        "bootstrap.servers": broker.config.sasl_bootstrap,
        "security.protocol": "sasl_plaintext",
        "sasl.mechanism": mechanism,
        "sasl.username": ALICE.username,
        "sasl.password": password,
    }


def wait_for_scram(broker: LocalBroker) -> None:
    """Credentials reach the SASL listener through the metadata log: poll until alice gets in."""
    admin = AdminClient(client_config(broker, "SCRAM-SHA-512", ALICE.password))
    deadline = time.monotonic() + 60
    while True:
        try:
            admin.list_topics(timeout=2)
            return
        except Exception as exc:
            assert time.monotonic() < deadline, f"alice cannot connect over SASL: {exc}"


@dataclass
class Deployment:
    """The environment every connector process of one test gets."""

    broker: LocalBroker
    prefix: str
    tmp: Path

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.prefix)

    def env(self, password: str = ALICE.password, **extra: str) -> dict[str, str]:
        assert self.broker.config.sasl_bootstrap is not None
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.broker.config.sasl_bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": ALICE.username,
            "KAFKA_SASL_PASSWORD": password,
            "TOPIC_PREFIX": self.prefix,
            "TOPIC_PARTITIONS": "2",
            "WORKER_ID": f"{self.prefix}-worker",
            "WORKER_DATA_DIR": str(self.tmp / "worker-data"),
            "WORKER_BATCH_SECONDS": "0.05",
            "ZOOM_WEBHOOK_SECRET_TOKEN": SECRET,
            "LOG_LEVEL": "INFO",
            **extra,
        }

    def run(self, *args: str, password: str = ALICE.password) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CONNECTOR, *args],
            env=self.env(password),
            capture_output=True,
            text=True,
            timeout=120,
        )


class Process:
    """A connector command running in the background, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], tmp: Path) -> None:
        self.log_path = tmp / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*CONNECTOR, *args], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.process.poll() is not None:
                code = self.process.returncode
                raise AssertionError(f"exited {code} before {what}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not {what} within {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def http_status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def worker_owns_partitions(port: int) -> bool:
    """The worker's ``/metrics`` shows consumer lag for raw partitions: it has its assignment."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return False
    return any(line.startswith("zoom_worker_consumer_lag{") for line in text.splitlines())


REFUSALS = (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED)


def read(config: dict[str, Any], topic: str, count: int, timeout: float = 60.0) -> list[Message]:
    """Read ``count`` records of ``topic`` from the beginning, with ``config``'s credentials.

    A refused authentication (reported to the client's ``error_cb``) fails at once.
    """
    refusals: list[KafkaError] = []
    consumer = Consumer(
        {
            **config,
            "group.id": f"reader-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "error_cb": lambda error: refusals.append(error) if error.code() in REFUSALS else None,
        }
    )
    consumer.subscribe([topic])
    received: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(received) < count:
            assert not refusals, f"refused: {refusals[0].str()}"
            assert time.monotonic() < deadline, f"{len(received)} of {count} from {topic}"
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue
                raise AssertionError(f"consuming {topic}: {error}")
            received.append(message)
    finally:
        consumer.close()
    return received


@pytest.fixture
def deployment(
    scram_broker: LocalBroker, unique_name: Callable[[str], str], tmp_path: Path
) -> Deployment:
    wait_for_scram(scram_broker)
    return Deployment(scram_broker, unique_name("sasl"), tmp_path)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


def test_webhook_to_typed_record_over_scram(
    deployment: Deployment, processes: list[Process]
) -> None:
    topics = deployment.topics
    created = deployment.run("topics", "create")
    assert created.returncode == 0, created.stderr
    assert f"created {topics.raw} (partitions=2" in created.stdout
    assert f"created {topics.agent_scores}" in created.stdout

    source_port, worker_port = _free_port(), _free_port()
    source = Process(
        "source", ["source"], deployment.env(SOURCE_PORT=str(source_port)), deployment.tmp
    )
    worker = Process(
        "worker", ["worker"], deployment.env(WORKER_WEB_PORT=str(worker_port)), deployment.tmp
    )
    processes.extend([source, worker])
    # /readyz answers 200 only once a metadata request over SCRAM succeeded
    source.wait_until(
        lambda: http_status(f"http://127.0.0.1:{source_port}/readyz") == 200,
        "ready",
        START_SECONDS,
    )
    worker.wait_until(lambda: worker_owns_partitions(worker_port), "assigned", START_SECONDS)

    sent = deployment.run(
        "send", "--example", EVALUATION, "--url", f"http://127.0.0.1:{source_port}"
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr

    # read back over SCRAM-SHA-256 (the processes used SCRAM-SHA-512)
    reader = client_config(deployment.broker, "SCRAM-SHA-256", ALICE.password)
    body = CATALOG.example_bytes(EVALUATION)
    (raw,) = read(reader, topics.raw, 1)
    assert raw.value() == body
    (typed,) = read(reader, topics.typed(EVALUATION), 1)
    value = typed.value()
    assert value is not None and value[:2] == b"\xc3\x01"
    schema = fastavro.schema.load_schema(str(avro_schemas_dir() / f"{EVALUATION}.avsc"))
    record = fastavro.schemaless_reader(io.BytesIO(value[10:]), schema, None)
    example = json.loads(body)
    assert isinstance(record, dict)
    assert (
        record["payload"]["object"]["evaluation_id"]
        == example["payload"]["object"]["evaluation_id"]
    )
    headers = dict(typed.headers() or [])
    assert headers[EVENT_ID_HEADER].decode() == event_identity(example, body)
    # the aggregates (internal topic, table changelog, agent_scores) went over SCRAM too
    (scores,) = read(reader, topics.agent_scores, 1)
    figures = AgentScoresCodec().decode(scores.value() or b"")
    assert figures["agent_id"] == (scores.key() or b"").decode()
    assert figures["evaluations"]["lifetime"]["count"] == 1


def test_wrong_credentials_fail_at_once_and_say_why(
    deployment: Deployment, processes: list[Process]
) -> None:
    for command in (["topics", "create"], ["worker"]):
        began = time.monotonic()
        refused = deployment.run(*command, password="not-alice-pw")
        took = time.monotonic() - began
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "refused the connection" in refused.stderr
        assert "SASL authentication error" in refused.stderr
        assert "not-alice-pw" not in refused.stdout + refused.stderr
        assert took < REFUSAL_SECONDS, f"{command}: {took:.1f} s to refuse"

    # The source starts (it has nothing to ask Kafka first) but is not ready, says why in its
    # log, and answers Zoom 503 so that Zoom retries later.
    port = _free_port()
    source = Process(
        "source",
        ["source"],
        deployment.env("not-alice-pw", SOURCE_PORT=str(port)),
        deployment.tmp,
    )
    processes.append(source)
    source.wait_until(lambda: http_status(f"http://127.0.0.1:{port}/healthz") == 200, "up", 30)
    assert http_status(f"http://127.0.0.1:{port}/readyz") == 503
    sent = deployment.run("send", "--example", EVALUATION, "--url", f"http://127.0.0.1:{port}")
    assert sent.returncode != 0
    assert "503" in sent.stdout + sent.stderr
    source.wait_until(
        lambda: "kafka refused the connection" in source.tail(200), "logged the refusal", 30
    )

    # and a consumer with a wrong password gets nothing but the refusal
    with pytest.raises(AssertionError, match=r"refused: .*SASL authentication error"):
        read(client_config(deployment.broker, "SCRAM-SHA-256", "not-alice-pw"), "any", 1, 15)
