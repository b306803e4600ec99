"""The connector's processes and their Kafka topics, for tests that run them for real.

Shared by ``tests/integration`` and ``tests/reliability``:

* :class:`Deployment`: one isolated connector deployment on a broker (topic prefix, worker id,
  settings, environment of its processes);
* :class:`WorkerProcess` / :class:`SourceProcess`: ``python -m connector worker|source`` as child
  processes, output captured in a log file, with their HTTP endpoints, signals (SIGKILL, SIGSTOP,
  SIGCONT, SIGTERM) and resource figures (RSS, open file descriptors) from ``/proc``;
* :class:`RawProducer`: writes raw records as the source does;
* :func:`consume`, :func:`record_count`, :func:`headers_of`: reading what came out.

Every wait polls against a deadline and fails saying what it saw.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from connector.kafka.admin import create_topics, topic_specs
from connector.kafka.local_broker import (
    BrokerConfig,
    JavaNotFoundError,
    KafkaDistributionError,
    LocalBroker,
)
from connector.settings import Settings
from connector.source.signature import signed_headers
from connector.spec import load_catalog
from connector.topics import TopicNames
from connector.wire import raw_record_key
from tests import kafka_helpers

CATALOG = load_catalog()
PARTITIONS = 3
WORKER_START_SECONDS = 90.0
OUTPUT_SECONDS = 90.0
CONNECTOR_COMMAND = [sys.executable, "-m", "connector"]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Deployment:
    """One isolated connector deployment on a broker: prefix, worker id, settings, environment."""

    bootstrap: str
    prefix: str
    tmp: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    partitions: int = PARTITIONS

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.prefix)

    @property
    def worker_id(self) -> str:
        return f"{self.prefix}-worker"

    def settings(self) -> Settings:
        return Settings(
            kafka_bootstrap_servers=self.bootstrap,
            topic_prefix=self.prefix,
            topic_partitions=self.partitions,
        )

    def create_topics(self) -> None:
        create_topics(self.settings(), topic_specs(self.settings(), CATALOG.event_types))

    def typed_topics(self) -> list[str]:
        return [self.topics.typed(t) for t in CATALOG.event_types]

    def env(self, web_port: int) -> dict[str, str]:
        """The environment of this deployment's worker (``web_port``: its HTTP port)."""
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "TOPIC_PREFIX": self.prefix,
            "TOPIC_PARTITIONS": str(self.partitions),
            "WORKER_ID": self.worker_id,
            "WORKER_WEB_PORT": str(web_port),
            "WORKER_DATA_DIR": str(self.tmp / "worker-data"),
            "WORKER_BATCH_SECONDS": "0.05",
            "LOG_LEVEL": "INFO",
            **self.extra_env,
        }

    def source_env(self, port: int, secret: str) -> dict[str, str]:
        """The environment of this deployment's source on ``127.0.0.1:port``."""
        return {
            **self.env(free_port()),
            "ZOOM_WEBHOOK_SECRET_TOKEN": secret,
            "SOURCE_HOST": "127.0.0.1",
            "SOURCE_PORT": str(port),
        }


class ChildProcess:
    """A child process whose stdout and stderr go to one log file."""

    def __init__(self, command: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            list(command), env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.pid = self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.log_path.stem} exited {self.process.returncode}:\n{self.tail()}"
            )

    def kill(self) -> None:
        """SIGKILL, and wait for the process to be gone."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log.close()

    def pause(self) -> None:
        """SIGSTOP: the process stays, frozen (no heartbeats, no writes) until :meth:`resume`."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (after SIGCONT, in case it is paused); SIGKILL if it does not end in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def rss_bytes(self) -> int:
        """Resident memory now (``VmRSS`` of ``/proc/<pid>/status``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no VmRSS for pid {self.pid}")

    def open_fds(self) -> int:
        """Open file descriptors now (entries of ``/proc/<pid>/fd``)."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def open_sockets(self) -> int:
        """How many of the open file descriptors are sockets."""
        sockets = 0
        for name in os.listdir(f"/proc/{self.pid}/fd"):
            with contextlib.suppress(OSError):  # closed meanwhile
                sockets += os.readlink(f"/proc/{self.pid}/fd/{name}").startswith("socket:")
        return sockets


def parse_metrics(text: str) -> Samples:
    """Prometheus text as samples by (name, sorted labels)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def metric_total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    )


class WorkerProcess(ChildProcess):
    """``python -m connector worker`` as a child process, its output in a log file."""

    def __init__(
        self,
        deployment: Deployment,
        name: str = "worker",
        *,
        command: Sequence[str] = (*CONNECTOR_COMMAND, "worker"),
        env: dict[str, str] | None = None,
    ) -> None:
        """``command``: another worker (a fault-injecting one of ``tests.faults``); ``env``:
        variables added to the deployment's."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            command, {**deployment.env(self.port), **(env or {})}, deployment.tmp / f"{name}.log"
        )

    def get(self, path: str, timeout: float = 10.0, **params: str) -> httpx.Response | None:
        """``GET path`` on the worker's HTTP port; ``None`` when it does not answer."""
        try:
            return httpx.get(f"{self.url}{path}", params=params, timeout=timeout)
        except httpx.HTTPError:
            return None

    def metrics(self) -> Samples:
        """Samples of ``GET /metrics``, by (name, sorted labels); empty while not serving."""
        response = self.get("/metrics", timeout=2)
        if response is None or response.status_code != 200:
            return {}
        return parse_metrics(response.text)

    def partitions(self) -> dict[str, Any]:
        """``GET /partitions``: what the worker's stall watch sees (empty while not serving)."""
        response = self.get("/partitions", timeout=5)
        if response is None or response.status_code != 200:
            return {}
        answer: dict[str, Any] = response.json()
        return answer

    def diagnosis(self) -> str:
        """What to print when the worker does not do what a test waits for."""
        return (
            f"{self.log_path.name}: events {self.events_counted()}, /partitions"
            f" {self.partitions()}\nlog (end):\n{self.tail()}"
        )

    def events_counted(self) -> dict[str, float]:
        """``zoom_worker_events_total`` summed by outcome."""
        totals: Counter[str] = Counter()
        for (name, labels), value in self.metrics().items():
            if name == "zoom_worker_events_total":
                totals[dict(labels)["outcome"]] += value
        return dict(totals)

    def wait_counted(self, total: int, timeout: float = OUTPUT_SECONDS) -> dict[str, float]:
        """Poll ``/metrics`` until ``total`` raw records are counted; the counts by outcome."""
        deadline = time.monotonic() + timeout
        counted: dict[str, float] = {}
        while time.monotonic() < deadline:
            self.check_alive()
            counted = self.events_counted()
            if sum(counted.values()) >= total:
                return counted
            time.sleep(0.2)
        raise AssertionError(
            f"worker counted {counted}, expected {total}; lag {self.lag()}:\n{self.diagnosis()}"
        )

    def lag(self) -> dict[int, float]:
        """``zoom_worker_consumer_lag`` by raw partition: the partitions it owns, per /metrics."""
        return {
            int(dict(labels)["partition"]): value
            for (name, labels), value in self.metrics().items()
            if name == "zoom_worker_consumer_lag"
        }


class SourceProcess(ChildProcess):
    """``python -m connector source`` on 127.0.0.1, its output in a log file."""

    def __init__(
        self, deployment: Deployment, secret: str, name: str = "source", **env: str
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            [*CONNECTOR_COMMAND, "source"],
            {**deployment.source_env(self.port, secret), **env},
            deployment.tmp / f"{name}.log",
        )

    def wait_healthy(self, timeout: float = 30.0) -> None:
        wait_for_health(self.port, self.process, timeout)

    def metrics(self) -> Samples:
        try:
            response = httpx.get(f"{self.url}/metrics", timeout=2)
        except httpx.HTTPError:
            return {}
        return parse_metrics(response.text) if response.status_code == 200 else {}


class ProcessGroup:
    """Workers and sources of one deployment, all stopped by :meth:`stop_all`."""

    def __init__(self, deployment: Deployment, secret: str) -> None:
        self.deployment = deployment
        self.secret = secret
        self.all: list[ChildProcess] = []

    def worker(self, name: str = "worker") -> WorkerProcess:
        worker = WorkerProcess(self.deployment, name)
        self.all.append(worker)
        return worker

    def source(self, name: str = "source", **env: str) -> SourceProcess:
        """A source, once it answers ``/healthz``."""
        source = SourceProcess(self.deployment, self.secret, name, **env)
        self.all.append(source)
        source.wait_healthy()
        return source

    def stop_all(self) -> None:
        for process in self.all:
            process.stop()


def wait_for_health(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Poll ``GET /healthz`` on ``port`` until 200; fail if ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the process exited early"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"nothing healthy on port {port} within {timeout} s")


def zoom_headers(secret: str, body: bytes, *, at: float | None = None) -> dict[str, str]:
    """The headers Zoom sends with ``body``: signed with ``secret`` at ``at`` (default now)."""
    return {
        **signed_headers(secret.encode(), body, time.time() if at is None else at),
        "content-type": "application/json",
    }


@contextmanager
def private_broker(data_dir: Path, **options: Any) -> Iterator[LocalBroker]:
    """A broker of our own (free ports, ``data_dir``; ``options`` of ``BrokerConfig.ephemeral``:
    SCRAM users, TLS listeners), which a test may stop and start again; stopped at the end.
    Skips (fails under CI) when this machine cannot run one (no Java, no Kafka jars); any other
    start failure is the test's."""
    broker = LocalBroker(BrokerConfig.ephemeral(data_dir, **options))
    try:
        broker.start()
    except (JavaNotFoundError, KafkaDistributionError) as exc:
        kafka_helpers.kafka_unavailable(f"cannot start a private broker: {exc}")
    try:
        yield broker
    finally:
        broker.stop()


@dataclass(frozen=True)
class Produced:
    body: bytes
    key: bytes
    partition: int
    tracking_id: str = ""


class RawProducer:
    """Writes raw records as the source does: body bytes, object-id key, Zoom's headers."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
        self._topic = topic
        self._sent = 0
        self.produced: list[Produced] = []
        self._lock = threading.Lock()

    def send(
        self,
        body: bytes,
        *,
        signature: str = "v0=first",
        timestamp_ms: int = 0,
        partition: int | None = None,
    ) -> str:
        """Produce ``body``; ``timestamp_ms``/``partition``: when and where the source stored it.

        Returns the record's ``x-zm-trackingid`` (unique per record)."""
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        key = raw_record_key(event if isinstance(event, dict) else {}, body)
        self._sent += 1
        tracking_id = f"track-{self._sent}"
        headers = [
            ("x-zm-signature", signature.encode()),
            ("x-zm-request-timestamp", str(1_700_000_000 + self._sent).encode()),
            ("x-zm-trackingid", tracking_id.encode()),
            ("zoom-connector-received-at", str(int(time.time() * 1000)).encode()),
        ]

        def delivered(error: KafkaError | None, message: Message) -> None:
            assert error is None, error
            partition = message.partition()
            assert partition is not None
            with self._lock:
                self.produced.append(Produced(body, key, partition, tracking_id))

        placement = {} if partition is None else {"partition": partition}
        self._producer.produce(
            self._topic,
            value=body,
            key=key,
            headers=headers,
            timestamp=timestamp_ms,
            on_delivery=delivered,
            **placement,
        )
        self._producer.poll(0)
        return tracking_id

    def flush(self) -> None:
        assert self._producer.flush(30) == 0


def consume(
    bootstrap: str,
    topics: list[str],
    done: Callable[[list[Message]], bool],
    timeout: float = OUTPUT_SECONDS,
    worker: WorkerProcess | None = None,
    security: dict[str, str] | None = None,
) -> list[Message]:
    """Read ``topics`` from the beginning until ``done(messages)``, or fail at the deadline.

    With ``worker``: fail as soon as it exits, and show its log on failure. ``security``: the
    librdkafka settings of a secured listener (``security.protocol``, ``ssl.*``, ``sasl.*``).
    """
    consumer = Consumer(
        {
            **(security or {}),
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe(topics)
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while not done(messages):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"read {len(messages)} records from {topics} before the deadline"
                    + (
                        f"; worker counted {worker.events_counted()}, lag {worker.lag()},"
                        f" /partitions {worker.partitions()}, log:\n{worker.tail(200)}"
                        if worker
                        else ""
                    )
                )
            if worker is not None:
                worker.check_alive()
            message = consumer.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._PARTITION_EOF):
                    continue
                raise AssertionError(f"consumer error: {error}")
            messages.append(message)
    finally:
        consumer.close()
    return messages


def record_count(bootstrap: str, topics: list[str]) -> int:
    """How many records ``topics`` hold (sum of high watermarks; nothing is deleted in a test)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        metadata = consumer.list_topics(timeout=30)
        total = 0
        for topic in topics:
            for partition in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=30, cached=False
                )
                total += high - low
        return total
    finally:
        consumer.close()


def read_everything(
    bootstrap: str, topics: list[str], timeout: float = OUTPUT_SECONDS
) -> list[Message]:
    """Every record ``topics`` hold now (as many as their watermarks say)."""
    expected = record_count(bootstrap, topics)
    return consume(bootstrap, topics, lambda m: len(m) >= expected, timeout)


def headers_of(message: Message) -> dict[str, bytes]:
    return {k: v for k, v in (message.headers() or []) if v is not None}


def event_id_of(message: Message) -> str:
    """The ``zoom-event-id`` header of a typed or dead-letter record."""
    return headers_of(message)["zoom-event-id"].decode()


def group_assignment(bootstrap: str, group: str, topic: str) -> list[set[int]] | None:
    """The partitions of ``topic`` each member of consumer group ``group`` owns, as the group
    coordinator says; ``None`` while the group is not stable (rebalancing, empty)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(
        timeout=15
    )
    if description.state != ConsumerGroupState.STABLE:
        return None
    return [
        {tp.partition for tp in member.assignment.topic_partitions if tp.topic == topic}
        for member in description.members
    ]


def evaluation_body(
    number: int, *, prefix: str = "eval", event_ts: int | None = None, score: int | None = None
) -> bytes:
    """The spec's ``quality_management.evaluation_completed`` example as a numbered raw body:
    ``evaluation_id`` ``<prefix>-<number:05d>``, ``event_ts`` 1,700,000,000,000 + ``number``
    unless given, and ``evaluation_score`` if given."""
    event = copy.deepcopy(CATALOG.example("quality_management.evaluation_completed"))
    event["payload"]["object"]["evaluation_id"] = f"{prefix}-{number:05d}"
    event["event_ts"] = event_ts if event_ts is not None else 1_700_000_000_000 + number
    if score is not None:
        event["payload"]["object"]["evaluation_score"] = score
    return json.dumps(event).encode()


def uncommitted(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """Per partition of ``topic``: records beyond consumer group ``group``'s committed offset
    (the whole partition when nothing is committed), as the broker says."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        asked = [TopicPartition(topic, p) for p in sorted(partitions)]
        behind = {}
        for tp in consumer.committed(asked, timeout=10):
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            committed = tp.offset if tp.offset is not None and tp.offset >= 0 else low
            behind[tp.partition] = max(0, high - max(committed, low))
        return behind
    finally:
        consumer.close()


def wait_raw_committed(
    deployment: Deployment,
    worker: WorkerProcess,
    what: str = "the group to commit every raw record",
    timeout: float = 30,
) -> None:
    """Wait until the worker's group has committed every record of the raw topic; on timeout,
    say which partitions stay behind and what the worker was doing."""
    group, topic = deployment.worker_id, deployment.topics.raw

    def behind() -> dict[int, int]:
        return uncommitted(deployment.bootstrap, group, topic)

    wait_until(
        lambda: not any(behind().values()),
        timeout,
        what,
        explain=lambda: f"{behind()}\n{worker.diagnosis()}",
    )


def wait_until(
    check: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.2,
    explain: Callable[[], str] | None = None,
) -> Any:
    """Poll ``check()`` until it returns something truthy (returned), or fail after ``timeout``.

    ``explain``, if given, is called on failure and its text added to the assertion message
    (the state that tells why the condition never came: counts, lag, a process's log tail).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            message = f"timed out after {timeout:g} s waiting for {what}"
            if explain is not None:
                message += "\n" + explain()
            raise AssertionError(message)
        time.sleep(interval)


def produce_evaluations(
    deployment: Deployment, first: int, per_partition: int, prefix: str
) -> None:
    """``per_partition`` evaluation events per raw partition, numbered from ``first``, spread
    over the partitions in turn."""
    raw = RawProducer(deployment.bootstrap, deployment.topics.raw)
    for n in range(per_partition * deployment.partitions):
        raw.send(evaluation_body(first + n, prefix=prefix), partition=n % deployment.partitions)
    raw.flush()


def process_and_commit(
    deployment: Deployment, workers: list[WorkerProcess], per_partition: int, prefix: str
) -> None:
    """A first, plain worker processes ``per_partition`` evaluations per raw partition, commits
    them all and stops: the group stands at committed offsets and the tables have changelog
    records to restore."""
    first = WorkerProcess(deployment, "first")
    workers.append(first)
    produce_evaluations(deployment, 0, per_partition, prefix)
    first.wait_counted(per_partition * deployment.partitions, timeout=WORKER_START_SECONDS)
    wait_raw_committed(deployment, first, "the first worker to commit everything")
    first.stop()
