"""Root pytest configuration: the Kafka broker of the integration tests, and naming helpers.

``kafka_bootstrap`` (session-scoped) finds one broker for the whole run, in this order:

1. ``KAFKA_BOOTSTRAP_SERVERS`` when set (it must answer);
2. a testcontainers Kafka container, when a Docker daemon answers a ping (``KAFKA_TEST_IMAGE``:
   the image, ``confluentinc/cp-kafka:7.6.0`` unless set; where no registry can be reached,
   the local stand-in built by ``tests/images/build.sh``);
3. a private instance of the connector's local broker (``LocalBroker`` on free ports with a
   temporary data directory, stopped at the end of the session; Java 17+ needed).

``KAFKA_TEST_BROKER=testcontainers`` takes the broker from testcontainers or from nowhere (no
fall-back: CI runs the integration suite this way once); ``KAFKA_TEST_BROKER=local`` skips
testcontainers.

When none can be had the tests that need it are skipped, except under ``CI=true``, where they
fail, and where any skipped ``kafka`` test makes the whole session fail too: CI must never go
green without having talked to a broker.

Tests using ``kafka_bootstrap`` get the ``kafka`` mark automatically, so ``-m "not kafka"`` runs
everything else.

``schema_registry`` (session-scoped) is a real Confluent-compatible registry: a local Apicurio
Registry (:mod:`connector.registry.local_apicurio`; Java 21+ and Maven, or
``APICURIO_REGISTRY_HOME``), or the registry at ``TEST_SCHEMA_REGISTRY_URL`` when set. Tests using
it get the ``registry`` mark; like ``kafka`` tests, they may be skipped only outside CI.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
from confluent_kafka.admin import AdminClient

from connector.errors import ConnectorError
from tests import kafka_helpers

logger = logging.getLogger(__name__)

KAFKA_MARK = "kafka"
REGISTRY_MARK = "registry"
CONTAINERS_MARK = "containers"
GUARDED_MARKS = (KAFKA_MARK, REGISTRY_MARK, CONTAINERS_MARK)
KAFKA_CONTAINER_IMAGE = os.environ.get("KAFKA_TEST_IMAGE", "confluentinc/cp-kafka:7.6.0")
_DOCKER_PING_TIMEOUT_SECONDS = 1.0
_CONTAINER_START_SECONDS = 180
_BROKER_CHOICES = ("", "testcontainers", "local")


# --- finding a broker ----------------------------------------------------------------------


def docker_daemon_answers(timeout: float = _DOCKER_PING_TIMEOUT_SECONDS) -> bool:
    """Whether the Docker daemon docker-py would use answers ``GET /_ping`` within ``timeout``.

    A raw socket rather than the docker SDK: quick, and no unclosed-socket warnings when there is
    no daemon. ``DOCKER_HOST`` (``unix://`` or ``tcp://``) or ``/var/run/docker.sock``.
    """
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    url = urlparse(host)
    try:
        if url.scheme == "unix":
            if not os.path.exists(url.path):
                return False
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            address: Any = url.path
        elif url.scheme == "tcp" and url.hostname:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            address = (url.hostname, url.port or 2375)
        else:
            return False  # ssh:// and friends: let KAFKA_BOOTSTRAP_SERVERS cover those setups
        with sock:
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(256)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]


def _broker_from_env() -> str | None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if not bootstrap:
        return None
    from connector.kafka.local_broker import broker_answers

    if not broker_answers(bootstrap, timeout=15.0):
        kafka_helpers.kafka_unavailable(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap} does not answer")
    return bootstrap


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of a Kafka broker for the integration tests (see module docstring)."""
    from_env = _broker_from_env()
    if from_env is not None:
        yield from_env
        return

    choice = os.environ.get("KAFKA_TEST_BROKER", "").strip()
    if choice not in _BROKER_CHOICES:
        raise pytest.UsageError(f"KAFKA_TEST_BROKER={choice!r}: use testcontainers or local")
    reasons: list[str] = []
    if choice == "local":
        reasons.append("testcontainers: not tried (KAFKA_TEST_BROKER=local)")
    elif docker_daemon_answers():
        container: Any = None
        try:
            from testcontainers.community.kafka import KafkaContainer

            container = KafkaContainer(KAFKA_CONTAINER_IMAGE).with_kraft()
            container.start(timeout=_CONTAINER_START_SECONDS)
        except Exception as exc:  # any failure: fall through to the local broker
            logger.warning("testcontainers could not start Kafka, trying the local broker: %s", exc)
            reasons.append(f"testcontainers ({KAFKA_CONTAINER_IMAGE}): {exc}")
            if container is not None:
                container.stop()
        else:
            try:
                yield str(container.get_bootstrap_server())
            finally:
                container.stop()
            return
    else:
        reasons.append("testcontainers: no Docker daemon answers")
    if choice == "testcontainers":
        kafka_helpers.kafka_unavailable("no Kafka broker: " + "; ".join(reasons))
        return

    from connector.kafka.local_broker import BrokerConfig, LocalBroker

    # A broker of the session's own (temporary data directory, free ports), never the shared
    # one of `zoom-connector kafka start`: topics of earlier runs would pile up in a shared
    # broker (thousands of partitions make it slow to start), and a developer's running
    # connector is left alone.
    broker = LocalBroker(BrokerConfig.ephemeral(tmp_path_factory.mktemp("kafka")))
    try:
        broker.start()
    except ConnectorError as exc:
        reasons.append(f"local broker: {exc}")
        broker.stop()
    else:
        try:
            yield broker.bootstrap
        finally:
            broker.stop()
        return
    kafka_helpers.kafka_unavailable("no Kafka broker: " + "; ".join(reasons))


@pytest.fixture(scope="session")
def schema_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a real Confluent-compatible schema registry (see the module docstring)."""
    from_env = os.environ.get("TEST_SCHEMA_REGISTRY_URL", "").strip()
    if from_env:
        yield from_env
        return
    from connector.registry.local_apicurio import LocalApicurio

    registry = LocalApicurio(tmp_path_factory.mktemp("apicurio"))
    try:
        registry.start()
    except ConnectorError as exc:
        registry.stop()
        if kafka_helpers.in_ci():
            pytest.fail(f"no schema registry: {exc} (CI=true: one is required)", pytrace=False)
        pytest.skip(f"no schema registry: {exc}")
    try:
        yield registry.url
    finally:
        registry.stop()


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``unique_name("orders")`` gives a topic or group name unique to this test and run."""

    def make(prefix: str = "t") -> str:
        return kafka_helpers.unique_name(prefix, request.node.name)

    return make


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> AdminClient:
    """A confluent-kafka ``AdminClient`` on the test broker."""
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def create_topic(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> Callable[..., str]:
    """``create_topic("orders", partitions=3)`` creates a fresh, uniquely named topic and returns
    its name once the broker's metadata shows it."""

    def make(prefix: str = "t", partitions: int = 1, config: dict[str, str] | None = None) -> str:
        return kafka_helpers.create_topic(kafka_bootstrap, unique_name(prefix), partitions, config)

    return make


@pytest.fixture
def new_deployment(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Any
) -> Callable[..., Any]:
    """``new_deployment("agg", partitions=3)``: a fresh :class:`tests.processes.Deployment` (its
    own topic prefix and worker id) on the test broker, its topics created; options as the
    class takes them (``extra_env``, ``partitions``)."""
    from tests.processes import Deployment

    def make(prefix: str, **options: Any) -> Deployment:
        deployment = Deployment(kafka_bootstrap, unique_name(prefix), tmp_path, **options)
        deployment.create_topics()
        return deployment

    return make


# --- the kafka mark, and CI strictness -----------------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the broker fixture ``kafka`` and every one using the registry
    ``registry``, whether or not it says so."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "kafka_bootstrap" in fixtures:
            item.add_marker(KAFKA_MARK)
        if "schema_registry" in fixtures:
            item.add_marker(REGISTRY_MARK)


class _KafkaSkipGuard:
    """Under ``CI=true``, turns a green run with skipped ``kafka`` or ``registry`` tests into a
    failed one."""

    def __init__(self) -> None:
        self.skipped: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and any(mark in report.keywords for mark in GUARDED_MARKS):
            self.skipped.append(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.skipped and kafka_helpers.in_ci() and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not (self.skipped and kafka_helpers.in_ci()):
            return
        terminalreporter.section("kafka tests skipped under CI", sep="=", red=True, bold=True)
        terminalreporter.line(
            f"{len(self.skipped)} test(s) marked 'kafka' or 'registry' were skipped; with CI=true"
            " that fails the run (give the tests a broker: KAFKA_BOOTSTRAP_SERVERS, Docker, or"
            " Java 17+; and a registry: Java 21+ and Maven, or TEST_SCHEMA_REGISTRY_URL):"
        )
        for nodeid in self.skipped:
            terminalreporter.line(f"  {nodeid}")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_KafkaSkipGuard(), "zoom-connector-kafka-skip-guard")


@pytest.fixture
def workers() -> Iterator[list[Any]]:
    """Worker processes a test starts (append them); stopped at the end of the test."""
    started: list[Any] = []
    yield started
    for worker in started:
        worker.stop()
