"""Agent score aggregates against a real broker, checked against an independent recomputation.

A generated stream (several agents, six weeks of event time ending now; re-scores, older versions
arriving after newer ones, Zoom's retries on the raw topic, and duplicates written straight to the
typed topic as a pipeline crash would leave them) goes through ``python -m connector worker``:
raw topic -> the pipeline's typed topics -> the aggregates. The expected figures are recomputed
here from the distinct latest version of every event, by code that shares nothing with
``connector.worker.aggregates``. The worker's HTTP answers, its ``agent_scores`` topic and the
recomputation must agree, also after the worker was killed with SIGKILL mid-stream and restarted
(with a RocksDB store, so the restarted worker reuses a local state that may be ahead of the
changelog). Waiting is always polling with a deadline.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from connector.avro.codec import EventCodec
from connector.kafka.admin import create_topics, topic_specs
from connector.registry import registry_client
from connector.settings import Settings
from connector.spec import load_catalog
from connector.topics import TopicNames
from connector.wire import raw_record_key
from connector.worker.aggregates.events import encode as encode_score_event
from connector.worker.aggregates.events import from_typed
from connector.worker.aggregates.queries import FORWARDED_HEADER
from connector.worker.aggregates.record import AgentScoresCodec
from connector.worker.aggregates.rekeying import events_topic_name, partition_for
from connector.worker.command import create_internal_topics
from connector.worker.patches.gaps import Gap, Refetcher
from tests.processes import wait_until

pytestmark = pytest.mark.kafka

CATALOG = load_catalog()
EVALUATION = "quality_management.evaluation_completed"
INTERACTION = "quality_management.interaction_analysis_completed"
PARTITIONS = 3
DAY = 86_400_000
MINUTE = 60_000
START_SECONDS = 90.0
CONVERGE_SECONDS = 120.0
WORKER_COMMAND = [sys.executable, "-m", "connector", "worker"]


# --- the generated stream ----------------------------------------------------------------------


@dataclass
class Stream:
    """What arrives, in order (``("raw", body)`` or ``("typed", body)``: the body's score event
    written again, as a pipeline crash leaves it, just after the original), and the distinct
    events."""

    arrivals: list[tuple[str, bytes]] = field(default_factory=list)
    distinct: list[dict[str, Any]] = field(default_factory=list)


def generate(seed: int, now_ms: int) -> Stream:
    rng = random.Random(seed)
    start = now_ms - 42 * DAY
    users = [f"user{n:02d}{'x' * 14}" for n in range(7)]  # 22 characters, like Zoom user ids
    names = ["Ashlee York", "Rick Arps", "Admin3", "Zoë Ng"]
    scorecards = ["Customer Care", "Sales", "Onboarding"]
    timed: list[tuple[int, dict[str, Any]]] = []  # (arrival time, event)

    def evaluation(number: int, ts: int) -> dict[str, Any]:
        event = copy.deepcopy(CATALOG.example(EVALUATION))
        event["event"] = EVALUATION
        event["event_ts"] = ts
        obj = event["payload"]["object"]
        user = users[number % len(users)]
        obj["evaluation_id"] = f"eval-{number:05d}"
        obj["agent_info"] = {"agent_user_id": user, "display_name": f"Agent {user[:6]}"}
        obj["agent_user_id"] = f"qm-{user}"
        if number % 97 == 0:  # no agent_info: the top-level id names the agent (fallback)
            del obj["agent_info"]
        card = rng.randrange(len(scorecards))
        possible = (50, 100, 10)[card]
        score = round(rng.uniform(0, possible), 2)
        obj["scorecard_name"] = scorecards[card]
        obj["total_possible_score"] = possible
        obj["evaluation_score"] = score
        obj["evaluation_score_ratio"] = round(score / possible, 4)
        obj["evaluation_type"] = rng.choice(["MANUAL", "AUTOMATED"])
        if number % 41 == 0:
            del obj["evaluation_score"]
        return event

    def interaction(number: int, ts: int) -> dict[str, Any]:
        event = copy.deepcopy(CATALOG.example(INTERACTION))
        event["event_ts"] = ts
        obj = event["payload"]["object"]
        info = obj["interaction_info"]
        info["interaction_id"] = f"int-{number:05d}"
        info["agent_name"] = names[number % len(names)]
        info["channel_type"] = rng.choice(["AUDIO", "VIDEO", "SMS", "WEB_CHAT"])
        queue = rng.randrange(3)
        obj["queue_id"] = f"queue-{queue}"
        obj["queue_name"] = f"Queue {queue}"
        obj["duration"] = rng.randrange(30, 3600)
        for name in ("silence_event_count", "crosstalk_event_count", "hold_event_count"):
            obj[name] = rng.randrange(0, 6)
        for name in ("evaluation_score", "sentiment_score", "engagement_score"):
            obj["summary"][name] = round(rng.uniform(0, 100), 2)
        if number % 29 == 0:
            del obj["summary"]["sentiment_score"]
        return event

    def arrive(event: dict[str, Any], delay: int | None = None) -> None:
        lateness = rng.randrange(0, 90 * MINUTE) if delay is None else delay
        timed.append((event["event_ts"] + lateness, event))

    for number in range(2000):
        ts = start + rng.randrange(42 * DAY - 3 * 3_600_000)
        first = evaluation(number, ts)
        arrive(first)
        roll = rng.random()
        if roll < 0.10:  # re-scored a few days later
            later = copy.deepcopy(first)
            later["event_ts"] = min(ts + rng.randrange(1, 10 * DAY), now_ms - MINUTE)
            later["payload"]["object"]["evaluation_score"] = 1.5
            later["payload"]["object"]["evaluation_score_ratio"] = 0.03
            later["payload"]["object"]["evaluation_type"] = "MANUAL"
            arrive(later)
        elif roll < 0.16:  # re-scored within the hour, the first version delivered late
            later = copy.deepcopy(first)
            later["event_ts"] = ts + rng.randrange(MINUTE, 50 * MINUTE)
            later["payload"]["object"]["evaluation_score"] = 99.5
            timed.pop()
            arrive(later, delay=0)
            arrive(first, delay=later["event_ts"] - ts + 80 * MINUTE)
    for number in range(1000):
        arrive(interaction(number, start + rng.randrange(42 * DAY - 3 * 3_600_000)))
        if rng.random() < 0.05:
            again = copy.deepcopy(timed[-1][1])
            again["event_ts"] += rng.randrange(MINUTE, 5 * DAY)
            again["event_ts"] = min(again["event_ts"], now_ms - MINUTE)
            again["payload"]["object"]["summary"]["sentiment_score"] = 0.5
            arrive(again)

    timed.sort(key=lambda pair: pair[0])
    stream = Stream()
    stream.distinct = [event for _, event in timed]
    for _, event in timed:
        body = json.dumps(event).encode()
        stream.arrivals.append(("raw", body))
        if rng.random() < 0.05:  # Zoom retries: the same body again (the pipeline drops it)
            stream.arrivals.append(("raw", body))
        elif rng.random() < 0.05:  # its score event again (a pipeline crash between writes)
            stream.arrivals.append(("typed", body))
    return stream


# --- the independent recomputation ---------------------------------------------------------------


def agent_of(event: dict[str, Any]) -> str:
    obj = event["payload"]["object"]
    if event["event"] == INTERACTION:
        return "name:" + obj["interaction_info"]["agent_name"]
    info_id = (obj.get("agent_info") or {}).get("agent_user_id")
    return str(info_id or obj["agent_user_id"])


def event_id_of(event: dict[str, Any]) -> str:
    obj = event["payload"]["object"]
    if event["event"] == INTERACTION:
        return str(obj["interaction_info"]["interaction_id"])
    return str(obj["evaluation_id"])


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _evaluation_figures(events: list[dict[str, Any]]) -> dict[str, Any]:
    objs = [e["payload"]["object"] for e in events]
    scores = [o["evaluation_score"] for o in objs if o.get("evaluation_score") is not None]
    ratios = [
        o["evaluation_score_ratio"] for o in objs if o.get("evaluation_score_ratio") is not None
    ]
    cards: dict[str, list[dict[str, Any]]] = {}
    for o in objs:
        cards.setdefault(o.get("scorecard_name") or "-", []).append(o)
    return {
        "count": len(objs),
        "score_count": len(scores),
        "score_mean": _mean(scores),
        "score_min": float(min(scores)) if scores else None,
        "score_max": float(max(scores)) if scores else None,
        "ratio_count": len(ratios),
        "ratio_mean": _mean(ratios),
        "by_type": dict(Counter(o.get("evaluation_type") or "-" for o in objs)),
        "by_scorecard": {
            name: {
                "count": len(os_),
                "score_mean": _mean(
                    [o["evaluation_score"] for o in os_ if o.get("evaluation_score") is not None]
                ),
                "ratio_mean": _mean(
                    [
                        o["evaluation_score_ratio"]
                        for o in os_
                        if o.get("evaluation_score_ratio") is not None
                    ]
                ),
            }
            for name, os_ in cards.items()
        },
        "last_evaluation_at": max((e["event_ts"] for e in events), default=None),
    }


def _interaction_figures(events: list[dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    objs = [e["payload"]["object"] for e in events]

    def values(name: str) -> list[float]:
        return [o["summary"][name] for o in objs if o["summary"].get(name) is not None]

    return {
        "count": len(objs),
        "sentiment_score_mean": _mean(values("sentiment_score")),
        "engagement_score_mean": _mean(values("engagement_score")),
        "evaluation_score_mean": _mean(values("evaluation_score")),
        "silence_event_total": sum(o["silence_event_count"] for o in objs),
        "crosstalk_event_total": sum(o["crosstalk_event_count"] for o in objs),
        "hold_event_total": sum(o["hold_event_count"] for o in objs),
        "duration_total_seconds": sum(o["duration"] for o in objs),
        "by_channel": dict(Counter(o["interaction_info"]["channel_type"] for o in objs)),
        "by_queue": {
            queue: {"queue_name": names[queue], "count": count}
            for queue, count in Counter(o["queue_id"] for o in objs).items()
        },
        "last_interaction_at": max((e["event_ts"] for e in events), default=None),
    }


def _day_text(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def expected_scores(events: list[dict[str, Any]], as_of: int | None = None) -> dict[str, Any]:
    """Agent id -> its expected figures, from the distinct latest version of every event."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        key = (event["event"], event_id_of(event))
        if key not in latest or event["event_ts"] > latest[key]["event_ts"]:
            latest[key] = event
    by_agent: dict[str, list[dict[str, Any]]] = {}
    for event in latest.values():
        by_agent.setdefault(agent_of(event), []).append(event)
    result = {}
    for agent, agent_events in by_agent.items():
        newest = max(agent_events, key=lambda e: (e["event_ts"], json.dumps(e)))
        moment = newest["event_ts"] if as_of is None else as_of
        end = moment // DAY
        is_interaction = agent.startswith("name:")
        names = {}
        for e in sorted(agent_events, key=lambda e: e["event_ts"]):
            if is_interaction:
                names[e["payload"]["object"]["queue_id"]] = e["payload"]["object"]["queue_name"]
        section: dict[str, Any] = {"as_of": moment, "latest_event_at": newest["event_ts"]}
        for window, days in (("lifetime", None), ("last_7_days", 7), ("last_30_days", 30)):
            first = None if days is None else end - days + 1
            chosen = [
                e for e in agent_events if first is None or first <= e["event_ts"] // DAY <= end
            ]
            figures = (
                _interaction_figures(chosen, names)
                if is_interaction
                else _evaluation_figures(chosen)
            )
            figures["window_start"] = None if first is None else _day_text(first)
            figures["window_end"] = None if first is None else _day_text(end)
            section[window] = figures
        display = None
        if not is_interaction:
            with_name = [e for e in agent_events if e["payload"]["object"].get("agent_info")]
            if with_name:
                best = max(
                    with_name,
                    key=lambda e: (
                        e["event_ts"],
                        e["payload"]["object"]["agent_info"]["display_name"],
                    ),
                )
                display = best["payload"]["object"]["agent_info"]["display_name"]
        result[agent] = {
            "agent_id": agent,
            "key_kind": "agent_name" if is_interaction else "user_id",
            "display_name": display,
            "evaluations": None if is_interaction else section,
            "interactions": section if is_interaction else None,
        }
    return result


def differences(actual: Any, expected: Any, path: str = "$") -> list[str]:
    """Where ``actual`` differs from ``expected`` (floats to 1e-9 relative)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or sorted(actual) != sorted(expected):
            keys = sorted(actual) if isinstance(actual, dict) else actual
            return [f"{path}: {keys} != {sorted(expected)}"]
        return [d for k in expected for d in differences(actual[k], expected[k], f"{path}.{k}")]
    if isinstance(expected, float) or isinstance(actual, float):
        if actual is None or expected is None:
            return [] if actual is expected else [f"{path}: {actual!r} != {expected!r}"]
        if math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9):
            return []
        return [f"{path}: {actual!r} != {expected!r}"]
    return [] if actual == expected else [f"{path}: {actual!r} != {expected!r}"]


# --- the deployment ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Deployment:
    bootstrap: str
    prefix: str
    tmp: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.prefix)

    @property
    def worker_id(self) -> str:
        return f"{self.prefix}-worker"

    def create_topics(self) -> None:
        settings = Settings(
            kafka_bootstrap_servers=self.bootstrap,
            topic_prefix=self.prefix,
            topic_partitions=PARTITIONS,
        )
        create_topics(settings, topic_specs(settings, CATALOG.event_types))

    def worker_env(self, port: int) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "TOPIC_PREFIX": self.prefix,
            "TOPIC_PARTITIONS": str(PARTITIONS),
            "WORKER_ID": self.worker_id,
            "WORKER_WEB_PORT": str(port),
            "WORKER_DATA_DIR": str(self.tmp / "worker-data"),
            "WORKER_BATCH_SECONDS": "0.05",
            "LOG_LEVEL": "INFO",
            **self.env,
        }


class Worker:
    """``python -m connector worker`` as a child process, its output in a log file."""

    def __init__(self, deployment: Deployment, name: str) -> None:
        self.port = _free_port()
        self.log_path = deployment.tmp / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            WORKER_COMMAND,
            env=deployment.worker_env(self.port),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited {self.process.returncode}:\n{self.tail()}")

    def get(self, path: str, **params: str) -> httpx.Response | None:
        try:
            return httpx.get(f"{self.url}{path}", params=params, timeout=10)
        except httpx.HTTPError:
            return None

    def updates(self) -> float:
        """``zoom_worker_agent_score_updates_total`` over all outcomes (0 while not serving)."""
        response = self.get("/metrics")
        if response is None or response.status_code != 200:
            return 0.0
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in response.text.splitlines()
            if line.startswith("zoom_worker_agent_score_updates_total{")
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def deployment(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> Deployment:
    # this module's own Deployment (not tests.processes'): the aggregates' topics and workers
    deployment = Deployment(kafka_bootstrap, unique_name("agg"), tmp_path)
    deployment.create_topics()
    return deployment


@pytest.fixture
def start_worker(deployment: Deployment) -> Iterator[Callable[[str], Worker]]:
    workers: list[Worker] = []

    def start(name: str) -> Worker:
        worker = Worker(deployment, name)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


class Feeder:
    """Raw records as the source writes them; score events written twice, as a raw agent that
    crashed between its writes and its acknowledgement leaves them."""

    def __init__(self, deployment: Deployment) -> None:
        self._producer = Producer(
            {"bootstrap.servers": deployment.bootstrap, "acks": "all", "linger.ms": 5}
        )
        self._topics = deployment.topics
        settings = Settings(
            kafka_bootstrap_servers=deployment.bootstrap,
            worker_id=deployment.worker_id,
        )
        create_internal_topics(settings, PARTITIONS)  # as the worker does; it may start later
        self._internal = events_topic_name(deployment.worker_id)
        self._codec = EventCodec()

    def feed(self, arrivals: Sequence[tuple[str, bytes]]) -> None:
        for kind, body in arrivals:
            event = json.loads(body)
            if kind == "raw":
                key = raw_record_key(event, body)
                self._producer.produce(self._topics.raw, value=body, key=key)
            else:
                score_event, _ = from_typed(*self._codec.decode(self._codec.encode(body)[1]))
                assert score_event is not None
                agent = score_event.agent.encode()
                self._producer.produce(
                    self._internal,
                    value=encode_score_event(score_event),
                    key=agent,
                    partition=partition_for(agent, PARTITIONS),
                )
            self._producer.poll(0)
        assert self._producer.flush(30) == 0


def wait_for_http(worker: Worker, expected: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Poll ``/agents/{id}/scores?as_of=latest`` until every agent equals ``expected``."""
    deadline = time.monotonic() + timeout
    answers: dict[str, Any] = {}
    problems: list[str] = ["no answer yet"]
    while time.monotonic() < deadline:
        worker.check_alive()
        problems = []
        for agent, figures in expected.items():
            response = worker.get(f"/agents/{agent}/scores", as_of="latest")
            if response is None or response.status_code != 200:
                problems.append(f"{agent}: {response.status_code if response else 'no answer'}")
                continue
            answers[agent] = response.json()
            problems += differences(answers[agent], figures, agent)
        if not problems:
            return answers
        time.sleep(0.5)
    raise AssertionError(
        f"HTTP answers differ from the recomputation: {problems[:10]}\n{worker.tail()}"
    )


def read_agent_scores(
    deployment: Deployment, expected: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """The latest ``agent_scores`` record per key, read until every expected key is there and
    matches (or the deadline passes: then what differs)."""
    codec = AgentScoresCodec()
    consumer = Consumer(
        {
            "bootstrap.servers": deployment.bootstrap,
            "group.id": f"reader-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([deployment.topics.agent_scores])
    latest: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    try:
        while True:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                key = (message.key() or b"").decode()
                latest[key] = codec.decode(message.value() or b"")
                continue
            if message is not None and message.error().code() not in (
                KafkaError._PARTITION_EOF,
                KafkaError.UNKNOWN_TOPIC_OR_PART,
            ):
                raise AssertionError(f"consumer error: {message.error()}")
            problems = [p for a, e in expected.items() for p in differences(latest.get(a), e, a)]
            if not problems and sorted(latest) == sorted(expected):
                return latest
            if time.monotonic() > deadline:
                raise AssertionError(f"agent_scores differs: {sorted(latest)} {problems[:10]}")
    finally:
        consumer.close()


def check_everything(deployment: Deployment, worker: Worker, stream: Stream) -> None:
    expected = expected_scores(stream.distinct)
    answers = wait_for_http(worker, expected, CONVERGE_SECONDS)
    published = read_agent_scores(deployment, expected, 60)
    for agent, answer in answers.items():
        assert answer == published[agent], f"HTTP and agent_scores differ for {agent}"

    # as of now (the default): windows end today, UTC
    for agent in list(expected)[:3]:
        response = worker.get(f"/agents/{agent}/scores")
        assert response is not None and response.status_code == 200
        answer = response.json()
        section = answer["evaluations"] or answer["interactions"]
        now_expected = expected_scores(stream.distinct, as_of=section["as_of"])[agent]
        assert differences(answer, now_expected) == []
    # the leaderboard ranks the same agents
    response = worker.get("/agents", metric="evaluations.count", window="lifetime", limit="100")
    assert response is not None and response.status_code == 200, response
    board = response.json()
    evaluation_agents = {a: e for a, e in expected.items() if e["evaluations"]}
    assert board["agents_ranked"] == len(evaluation_agents)
    counts = {a: e["evaluations"]["lifetime"]["count"] for a, e in evaluation_agents.items()}
    assert [e["agent_id"] for e in board["top"]] == sorted(counts, key=lambda a: (-counts[a], a))
    response = worker.get("/agents", metric="nonsense")
    assert response is not None and response.status_code == 400
    response = worker.get("/agents/nobody-at-all/scores")
    assert response is not None and response.status_code == 404


# --- the tests -----------------------------------------------------------------------------------


def test_aggregates_equal_a_recomputation(
    deployment: Deployment, start_worker: Callable[[str], Worker]
) -> None:
    stream = generate(seed=1, now_ms=int(time.time() * 1000))
    feeder = Feeder(deployment)
    worker = start_worker("worker")
    feeder.feed(stream.arrivals)
    check_everything(deployment, worker, stream)


@pytest.mark.parametrize(
    ("store", "commit_interval"),
    [
        # tables rebuilt from the changelog; Faust's usual commits (part of the work is redone)
        ("memory://", "2.8"),
        # the local store kept (possibly ahead of its changelog); no commit before the kill, so
        # the second worker processes again everything the first one did
        ("rocksdb://", "60"),
    ],
)
def test_aggregates_survive_kill_9_and_restart(
    deployment: Deployment,
    start_worker: Callable[[str], Worker],
    store: str,
    commit_interval: str,
) -> None:
    if store.startswith("rocksdb"):
        pytest.importorskip("rocksdict")
    # The killed worker stays in the group until its session times out; a short session lets the
    # restarted one take over quickly (Faust reads these variables).
    deployment.env.update(
        {
            "WORKER_STORE": store,
            "BROKER_SESSION_TIMEOUT": "6",
            "BROKER_HEARTBEAT_INTERVAL": "1",
            "BROKER_COMMIT_INTERVAL": commit_interval,
        }
    )
    stream = generate(seed=2, now_ms=int(time.time() * 1000))
    feeder = Feeder(deployment)
    first = start_worker("worker-1")
    chunks = [stream.arrivals[i : i + 50] for i in range(0, len(stream.arrivals), 50)]
    head, tail = chunks[: len(chunks) * 2 // 5], chunks[len(chunks) * 2 // 5 :]
    fed: list[int] = []
    killed = threading.Event()

    def produce() -> None:  # the rest as a steady stream; its second half waits for the kill
        for number, chunk in enumerate(tail):
            if number == len(tail) // 2:
                killed.wait(START_SECONDS + CONVERGE_SECONDS)
            feeder.feed(chunk)
            fed.append(len(chunk))
            time.sleep(0.05)

    for chunk in head:
        feeder.feed(chunk)
    deadline = time.monotonic() + START_SECONDS + CONVERGE_SECONDS
    applied_before_kill = 0.0
    while applied_before_kill < len(stream.distinct) // 5:  # busy with the head
        first.check_alive()
        assert time.monotonic() < deadline, first.tail()
        time.sleep(0.05)
        applied_before_kill = first.updates()
    producer = threading.Thread(target=produce)
    producer.start()
    try:
        while applied_before_kill < len(stream.distinct) * 9 // 20:  # into the tail
            first.check_alive()
            assert time.monotonic() < deadline, first.tail()
            time.sleep(0.02)
            applied_before_kill = first.updates()
        first.kill()
        fed_at_kill = sum(fed)
    finally:
        killed.set()
        producer.join()
    assert fed_at_kill < sum(map(len, tail)), "the stream ended before the kill"

    del deployment.env["BROKER_COMMIT_INTERVAL"]
    second = start_worker("worker-2")
    check_everything(deployment, second, stream)
    if commit_interval == "60":  # nothing was committed: the second worker redid everything
        typed_records = len(stream.distinct) + sum(kind == "typed" for kind, _ in stream.arrivals)
        assert second.updates() >= typed_records


def test_any_worker_answers_for_any_agent(
    deployment: Deployment, start_worker: Callable[[str], Worker]
) -> None:
    """Two workers share the partitions; each answers for every agent, forwarding to the owner."""
    stream = generate(seed=4, now_ms=int(time.time() * 1000))
    arrivals = stream.arrivals[:600]
    distinct = [json.loads(body) for _, body in arrivals]
    workers = [start_worker("worker-1"), start_worker("worker-2")]
    Feeder(deployment).feed(arrivals)
    expected = expected_scores(distinct)
    answers = [
        wait_for_http(worker, expected, START_SECONDS + CONVERGE_SECONDS) for worker in workers
    ]
    assert answers[0] == answers[1]
    ranked = sum(1 for e in expected.values() if e["evaluations"])
    params = {"window": "lifetime", "metric": "evaluations.count"}

    def settled() -> list[set[int]] | None:
        """Each worker's own partitions once both own some (the second worker may join the
        group, and a rebalance run, after the answers above already agreed), and both
        leaderboards whole."""
        owned = []
        for worker in workers:  # a forwarded request is answered from the worker's own partitions
            response = worker.get("/agents", **params)
            if response is None or response.status_code != 200:
                return None  # 503 while the group rebalances
            assert response.json()["agents_ranked"] == ranked
            local = httpx.get(
                f"{worker.url}/agents", params=params, headers={FORWARDED_HEADER: "1"}, timeout=10
            )
            if local.status_code != 200:
                return None
            owned.append(set(local.json()["partitions"]))
        return owned if owned[0] and owned[1] else None

    owned = wait_until(settled, CONVERGE_SECONDS, "both workers to own partitions")
    assert not owned[0] & owned[1]
    assert owned[0] | owned[1] == set(range(PARTITIONS))


def test_agent_scores_in_confluent_framing_with_a_registry(
    deployment: Deployment, start_worker: Callable[[str], Worker], schema_registry: str
) -> None:
    with registry_client(Settings(schema_registry_url=schema_registry)) as client:
        deployment.env["SCHEMA_REGISTRY_URL"] = schema_registry
        stream = generate(seed=3, now_ms=int(time.time() * 1000))
        arrivals = [(k, b) for k, b in stream.arrivals if k == "raw"][:300]
        distinct = [json.loads(b) for _, b in arrivals]
        worker = start_worker("worker")
        Feeder(deployment).feed(arrivals)
        expected = expected_scores(distinct)
        wait_for_http(worker, expected, CONVERGE_SECONDS)
        subject = f"{deployment.topics.agent_scores}-value"
        assert subject in client.get_subjects()
        deserializer = AvroDeserializer(client)
        consumer = Consumer(
            {
                "bootstrap.servers": deployment.bootstrap,
                "group.id": f"reader-{time.monotonic_ns()}",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([deployment.topics.agent_scores])
        latest: dict[str, Any] = {}
        deadline = time.monotonic() + 60

        def caught_up() -> bool:  # every agent's latest record read, not just its first one
            return sorted(latest) == sorted(expected) and all(
                latest[a]["evaluations"]["lifetime"]["count"]
                == expected[a]["evaluations"]["lifetime"]["count"]
                for a in expected
                if expected[a]["evaluations"]
            )

        try:
            while not caught_up() and time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is None or message.error() is not None:
                    continue
                value = message.value() or b""
                assert value[0] == 0
                context = SerializationContext(message.topic() or "", MessageField.VALUE)
                latest[(message.key() or b"").decode()] = deserializer(value, context)
        finally:
            consumer.close()
        assert sorted(latest) == sorted(expected)
        assert caught_up(), {a: latest[a]["evaluations"] for a in expected}


async def test_the_refetcher_reads_a_range_of_offsets_again(
    kafka_bootstrap: str, create_topic: Callable[..., str]
) -> None:
    topic = create_topic("refetch", partitions=2)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    for number in range(10):
        producer.produce(topic, key=b"k%d" % number, value=b"v%d" % number, partition=1)
    assert producer.flush(30) == 0
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, worker_id="w")
    refetcher = Refetcher(settings.kafka_client_config(), settings.worker_id)
    records = await refetcher.fetch(Gap(topic, 1, 3, 7))
    assert [(r.offset, r.key, r.value) for r in records] == [
        (n, b"k%d" % n, b"v%d" % n) for n in range(3, 7)
    ]
    assert [r.offset for r in await refetcher.fetch(Gap(topic, 1, 8, 20))] == [8, 9]
    assert await refetcher.fetch(Gap(topic, 0, 0, 5)) == []
