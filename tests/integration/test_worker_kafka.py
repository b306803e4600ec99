"""The worker against a real broker: ``python -m connector worker`` in a subprocess.

Each test has its own topic prefix and worker id (consumer group, changelog topics), creates its
topics with the connector's own admin code, produces raw records as the source would (key from
``raw_record_key``, Zoom's headers), and reads the outputs with plain confluent-kafka consumers.
Waiting is always a poll with a deadline: on the worker's ``/metrics`` (every raw record counted)
or on the output topics (every expected record read).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import Message
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from connector.avro.codec import parse_event
from connector.avro.errors import Reason
from connector.paths import avro_schemas_dir
from connector.registry import registry_client
from connector.settings import Settings
from connector.worker.identity import event_identity
from tests.processes import (
    CATALOG,
    OUTPUT_SECONDS,
    PARTITIONS,
    WORKER_START_SECONDS,
    Deployment,
    RawProducer,
    WorkerProcess,
    consume,
    evaluation_body,
    free_port,
    headers_of,
    record_count,
)
from tests.unit.test_codec import BAD_INPUTS

pytestmark = pytest.mark.kafka

EVALUATION = "quality_management.evaluation_completed"
INTERACTION = "quality_management.interaction_analysis_completed"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "consume_typed.py"


# --- helpers ---------------------------------------------------------------------------------


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    if isinstance(value, dt.datetime):  # timestamp-millis, read with fastavro's logical types
        return round(value.timestamp() * 1000)
    return value


def read_with_committed_avsc(event_type: str, value: bytes) -> Any:
    """Decode a single-object record as a consumer with fastavro and the ``.avsc`` would."""
    assert value[:2] == b"\xc3\x01"
    schema = fastavro.schema.load_schema(str(avro_schemas_dir() / f"{event_type}.avsc"))
    return fastavro.schemaless_reader(io.BytesIO(value[10:]), schema, None)


def run_example(deployment: Deployment, event_type: str, count: int) -> list[dict[str, Any]]:
    """``examples/consume_typed.py`` on one typed topic: the JSON lines it prints."""
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            event_type,
            "--from-beginning",
            "--max",
            str(count),
        ],
        env={**deployment.env(0), **deployment.extra_env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _evaluation(number: int, *, event_ts: int | None = None, score: int = 10) -> bytes:
    return evaluation_body(number, event_ts=event_ts, score=score)


@pytest.fixture
def deployment(new_deployment: Callable[..., Deployment]) -> Deployment:
    return new_deployment("wk")


@pytest.fixture
def start_worker(deployment: Deployment) -> Iterator[Callable[..., WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def start(name: str = "worker") -> WorkerProcess:
        worker = WorkerProcess(deployment, name)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


# --- the pipeline ----------------------------------------------------------------------------

UNPARSEABLE = [
    (b"", Reason.INVALID_JSON),
    (b"{", Reason.INVALID_JSON),
    (b"[]", Reason.NOT_AN_OBJECT),
]
UNKNOWN = b'{"event": "webinar.started", "event_ts": 1, "payload": {"object": {"id": "w"}}}'


def test_seed_examples_bad_inputs_and_retries(
    deployment: Deployment, start_worker: Callable[..., WorkerProcess]
) -> None:
    topics = deployment.topics
    raw = RawProducer(deployment.bootstrap, topics.raw)
    seeds = {t: CATALOG.example_bytes(t) for t in CATALOG.event_types}
    for body in seeds.values():
        raw.send(body)
    expected_dlq: dict[bytes, tuple[str, str]] = {}
    for _, event, path, reason in BAD_INPUTS:
        body = json.dumps(event).encode()
        expected_dlq[body] = (str(reason), path)
        raw.send(body)
    for body, reason in UNPARSEABLE:
        expected_dlq[body] = (str(reason), "$")
        raw.send(body)
    expected_dlq[UNKNOWN] = (str(Reason.UNKNOWN_EVENT_TYPE), "$.event")
    raw.send(UNKNOWN)
    published = CATALOG.event(EVALUATION).published_example
    assert published is not None
    expected_dlq[published.encode()] = (
        str(Reason.MISSING_REQUIRED_FIELD),
        "$.payload.object.interaction_info",
    )
    raw.send(published.encode())
    # Zoom's retry: the same body again, re-signed; and a re-score, which is a new event.
    raw.send(seeds[EVALUATION], signature="v0=retry")
    rescore = json.loads(seeds[EVALUATION])
    rescore["event_ts"] += 60_000
    rescore["payload"]["object"]["evaluation_score"] = 42
    rescored = json.dumps(rescore).encode()
    raw.send(rescored)
    raw.flush()
    total = len(raw.produced)

    worker = start_worker()
    counted = worker.wait_counted(total, timeout=WORKER_START_SECONDS + OUTPUT_SECONDS)
    assert counted == {"typed": len(seeds) + 1, "dlq": len(expected_dlq), "duplicate": 1}

    typed_topics = [topics.typed(t) for t in CATALOG.event_types]
    typed = consume(
        deployment.bootstrap,
        typed_topics,
        lambda m: len(m) >= len(seeds) + 1,
        worker=worker,
    )
    dlq = consume(deployment.bootstrap, [topics.dlq], lambda m: len(m) >= len(expected_dlq))
    assert record_count(deployment.bootstrap, typed_topics) == len(typed)
    assert record_count(deployment.bootstrap, [topics.dlq]) == len(dlq)

    # every seed example on its typed topic, decoding with the committed .avsc to its values
    by_topic: dict[str, list[Message]] = {}
    for message in typed:
        by_topic.setdefault(message.topic() or "", []).append(message)
    assert sorted(by_topic) == sorted(typed_topics)
    for event_type, body in seeds.items():
        messages = by_topic[topics.typed(event_type)]
        values = [_without_nulls(read_with_committed_avsc(event_type, m.value())) for m in messages]
        assert json.loads(body) in values
    evaluations = by_topic[topics.typed(EVALUATION)]
    assert len(evaluations) == 2, "the retry must not be written, the re-score must"
    scores = sorted(
        read_with_committed_avsc(EVALUATION, m.value())["payload"]["object"]["evaluation_score"]
        for m in evaluations
    )
    assert scores == [10, 42]
    first = evaluations[0]
    assert first.key() == b"0e73a69f8f104d24a589fa0c615abca8"
    assert headers_of(first)["zoom-event-id"].startswith(f"{EVALUATION}/evaluation_id=".encode())
    assert len({headers_of(m)["zoom-event-id"] for m in typed}) == len(typed)

    # every bad input on the DLQ: original bytes, key and headers, plus why and where from
    produced = {p.body: p for p in raw.produced}
    assert sorted(m.value() for m in dlq) == sorted(expected_dlq)
    for message in dlq:
        headers = headers_of(message)
        reason, path = expected_dlq[message.value()]
        assert (headers["zoom-dlq-reason"].decode(), headers["zoom-dlq-path"].decode()) == (
            reason,
            path,
        ), message.value()
        origin = produced[message.value()]
        assert message.key() == origin.key
        assert headers["zoom-dlq-source-topic"] == topics.raw.encode()
        assert int(headers["zoom-dlq-source-partition"]) == origin.partition
        assert int(headers["zoom-dlq-source-offset"]) >= 0
        assert headers["x-zm-signature"] == b"v0=first"
        assert headers["zoom-event-id"]

    # Faust wrote each dedup entry to the changelog partition of the raw record that made it
    changelog = consume(
        deployment.bootstrap,
        [f"{deployment.worker_id}-dedup-changelog"],
        lambda m: len(m) >= len(typed),
    )
    ids_to_partition = {
        event_identity(parse_event(p.body), p.body): p.partition
        for p in raw.produced
        if p.body in seeds.values() or p.body == rescored
    }
    assert record_count(deployment.bootstrap, [changelog[0].topic() or ""]) == len(typed)
    for entry in changelog:
        event_id = json.loads(entry.key())
        assert entry.partition() == ids_to_partition[event_id] == json.loads(entry.value())[1]

    # the example consumer reads them too
    printed = run_example(deployment, EVALUATION, 2)
    assert sorted(line["event"]["payload"]["object"]["evaluation_score"] for line in printed) == [
        10,
        42,
    ]
    assert printed[0]["key"] == "0e73a69f8f104d24a589fa0c615abca8"

    # the metrics page says the same
    samples = worker.metrics()
    assert (
        samples[
            (
                "zoom_worker_events_total",
                (("event_type", EVALUATION), ("outcome", "duplicate"), ("reason", "")),
            )
        ]
        == 1
    )
    assert any(name == "zoom_worker_event_latency_seconds_count" for name, _ in samples)
    deadline = time.monotonic() + OUTPUT_SECONDS  # lag is measured every 2 s
    while True:
        lag = {
            dict(labels)["partition"]: value
            for (name, labels), value in worker.metrics().items()
            if name == "zoom_worker_consumer_lag"
        }
        if lag == {str(p): 0 for p in range(PARTITIONS)}:
            break
        assert time.monotonic() < deadline, lag
        time.sleep(0.2)

    # and a worker that has processed its partitions is alive and ready
    healthz = worker.get("/healthz")
    assert healthz is not None and healthz.status_code == 200
    readyz = worker.get("/readyz")
    assert readyz is not None and readyz.status_code == 200, readyz.text if readyz else None
    assert readyz.json() == {"status": "ready"}


def test_dedup_retention_is_measured_in_raw_record_time(
    deployment: Deployment, start_worker: Callable[..., WorkerProcess]
) -> None:
    """A retry within the retention is dropped; past it the entry is purged, the event is new."""
    hour = 3600 * 1000
    start = int(time.time() * 1000) - 6 * hour  # as if the source stored these hours ago
    deployment.extra_env["WORKER_DEDUP_PURGE_INTERVAL_SECONDS"] = "0.2"  # retention: 2 h
    raw = RawProducer(deployment.bootstrap, deployment.topics.raw)
    first, other = _evaluation(1), _evaluation(2)
    raw.send(first, timestamp_ms=start, partition=0)
    raw.send(first, timestamp_ms=start + 90 * 60 * 1000, partition=0, signature="v0=retry")
    raw.send(other, timestamp_ms=start + 3 * hour, partition=0)  # stream time moves on 3 h
    raw.flush()
    worker = start_worker()
    counted = worker.wait_counted(3, timeout=WORKER_START_SECONDS + OUTPUT_SECONDS)
    assert counted == {"typed": 2, "duplicate": 1}

    # the purge timer deletes the entry older than 2 h in partition 0's record time
    changelog = f"{deployment.worker_id}-dedup-changelog"
    entries = consume(
        deployment.bootstrap,
        [changelog],
        lambda m: any(x.value() is None for x in m),
        worker=worker,
    )
    first_id = event_identity(parse_event(first), first)
    assert [json.loads(m.key()) for m in entries if m.value() is None] == [first_id]
    assert all(m.partition() == 0 for m in entries)
    assert worker.metrics()[("zoom_worker_dedup_purged_total", ())] == 1

    # the same body 3 h later is beyond any retry: written again
    raw.send(first, timestamp_ms=start + 3 * hour + 1, partition=0, signature="v0=late")
    raw.flush()
    assert worker.wait_counted(4) == {"typed": 3, "duplicate": 1}


def test_worker_fails_fast_without_its_topics(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    deployment = Deployment(kafka_bootstrap, unique_name("wk-missing"), tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "connector", "worker"],
        env=deployment.env(free_port()),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "missing topics" in result.stderr and "zoom-connector topics create" in result.stderr
    assert deployment.topics.raw in result.stderr


# --- crash and restart -----------------------------------------------------------------------


def test_no_typed_record_is_lost_when_the_worker_is_killed(
    deployment: Deployment, start_worker: Callable[..., WorkerProcess]
) -> None:
    topics = deployment.topics
    count = 400
    # The killed worker stays in the group until its session times out (Faust's default 60 s);
    # a short session lets the restarted worker take over quickly (Faust reads these variables).
    deployment.extra_env.update({"BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1"})
    raw = RawProducer(deployment.bootstrap, topics.raw)
    first = start_worker("worker-1")
    warm_up = 20
    for number in range(warm_up):
        raw.send(_evaluation(number))
    raw.flush()
    first.wait_counted(warm_up, timeout=WORKER_START_SECONDS)

    def produce() -> None:  # the rest as a steady stream, ~2.5 s
        for number in range(warm_up, count):
            raw.send(_evaluation(number))
            if number % 10 == 9:
                raw.flush()
                time.sleep(0.06)
        raw.flush()

    producer = threading.Thread(target=produce)
    producer.start()
    # kill -9 once the worker is well into the stream, while records are still arriving
    deadline = time.monotonic() + OUTPUT_SECONDS
    while first.events_counted().get("typed", 0) < count // 4:
        first.check_alive()
        assert time.monotonic() < deadline, first.tail()
        time.sleep(0.02)
    first.kill()
    produced_at_kill = len(raw.produced)
    producer.join()
    assert produced_at_kill < count, "the stream ended before the kill; produce more slowly"

    second = start_worker("worker-2")
    typed = consume(
        deployment.bootstrap,
        [topics.typed(EVALUATION)],
        lambda m: len({headers_of(x)["zoom-event-id"] for x in m}) >= count,
        timeout=WORKER_START_SECONDS + OUTPUT_SECONDS,
        worker=second,
    )
    ids = [headers_of(m)["zoom-event-id"].decode() for m in typed]
    expected = {
        f"{EVALUATION}/evaluation_id=eval-{n:05d}/event_ts={1_700_000_000_000 + n}"
        for n in range(count)
    }
    assert set(ids) == expected

    # duplicates (written before the kill, not yet committed) carry the same id and bytes
    first_seen: dict[str, Message] = {}
    duplicates = []
    for message in typed:
        event_id = headers_of(message)["zoom-event-id"].decode()
        original = first_seen.setdefault(event_id, message)
        if original is not message:
            assert message.value() == original.value() and message.key() == original.key()
            duplicates.append(event_id)
    print(
        f"\nkilled after >= {count // 4} typed records, {produced_at_kill}/{count} produced;"
        f" {len(duplicates)} typed records written again:"
    )
    for event_id in duplicates:
        print(f"  {event_id}")
    assert not second.log().count("Traceback"), second.tail()


# --- with a schema registry ------------------------------------------------------------------


def test_records_decode_through_confluent_avro_deserializer(
    deployment: Deployment, start_worker: Callable[..., WorkerProcess], schema_registry: str
) -> None:
    with registry_client(Settings(schema_registry_url=schema_registry)) as client:
        deployment.extra_env["SCHEMA_REGISTRY_URL"] = schema_registry
        raw = RawProducer(deployment.bootstrap, deployment.topics.raw)
        for event_type in CATALOG.event_types:
            raw.send(CATALOG.example_bytes(event_type))
        raw.flush()
        worker = start_worker()
        typed_topics = [deployment.topics.typed(t) for t in CATALOG.event_types]
        typed = consume(
            deployment.bootstrap,
            typed_topics,
            lambda m: len(m) >= len(CATALOG.event_types),
            timeout=WORKER_START_SECONDS + OUTPUT_SECONDS,
            worker=worker,
        )
        # every typed topic's schema, and the agent_scores topic's (the aggregates write it too)
        expected = [f"{t}-value" for t in [*typed_topics, deployment.topics.agent_scores]]
        subjects = [s for s in client.get_subjects() if s.startswith(f"{deployment.prefix}.")]
        assert sorted(subjects) == sorted(expected)
        deserializer = AvroDeserializer(client)
        for message in typed:
            value = message.value()
            assert value is not None and value[0] == 0
            datum = deserializer(
                value, SerializationContext(message.topic() or "", MessageField.VALUE)
            )
            assert isinstance(datum, dict)
            event_type = datum["event"]
            assert message.topic() == deployment.topics.typed(event_type)
            assert _without_nulls(datum) == CATALOG.example(event_type)
        printed = run_example(deployment, INTERACTION, 1)
        assert printed[0]["event"]["payload"]["object"]["queue_name"] == "Demo"
