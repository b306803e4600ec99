"""Scale-out: two sources and two workers on one deployment, then one worker killed.

* The sources are stateless: webhooks go to either (a load balancer's round robin), Zoom's
  retries of one event to different ones; every event still lands in one raw partition per key.
* The workers share the raw topic: one consumer group (``WORKER_ID``), each owning a disjoint
  part of the partitions, together all of them; seen from each worker (its ``/metrics``: the
  consumer lag of the partitions it owns) and from Kafka (the group's description).
* SIGKILL of one worker while webhooks keep coming: the other takes over every partition, no
  event is lost (every event's identity is on the typed topics), and the agent aggregates are
  exact (equal to the independent recomputation of ``test_aggregates_kafka``).

Waiting is always polling with a deadline.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from connector.worker.identity import event_identity
from tests.integration.test_aggregates_kafka import (
    expected_scores,
    generate,
    read_agent_scores,
    wait_for_http,
)
from tests.processes import (
    Deployment,
    ProcessGroup,
    SourceProcess,
    WorkerProcess,
    consume,
    event_id_of,
    metric_total,
    record_count,
    wait_until,
    zoom_headers,
)

pytestmark = pytest.mark.kafka

PARTITIONS = 4
EVENTS = 900
SECRET = "scale-out-secret"
START_SECONDS = 120.0
CONVERGE_SECONDS = 150.0


@pytest.fixture
def deployment(new_deployment: Callable[..., Deployment]) -> Deployment:
    return new_deployment(
        "scale",
        # A killed worker stays in the group until its session expires: keep that short.
        extra_env={"BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1"},
        partitions=PARTITIONS,
    )


@pytest.fixture
def group(deployment: Deployment) -> Iterator[ProcessGroup]:
    processes = ProcessGroup(deployment, SECRET)
    yield processes
    processes.stop_all()


class LoadBalancer:
    """Round robin over the sources: each webhook signed as Zoom does, POSTed to the next one."""

    def __init__(self, sources: list[SourceProcess]) -> None:
        self._clients = [httpx.Client(base_url=s.url, timeout=10) for s in sources]
        self.answers: Counter[int] = Counter()
        self.per_source: Counter[int] = Counter()
        self._turn = 0

    def post(self, body: bytes) -> None:
        index = self._turn % len(self._clients)
        self._turn += 1
        response = self._clients[index].post(
            "/zoom/webhooks", content=body, headers=zoom_headers(SECRET, body)
        )
        self.answers[response.status_code] += 1
        self.per_source[index] += 1
        assert response.status_code == 200, response.text

    def close(self) -> None:
        for client in self._clients:
            client.close()


def owned(worker: WorkerProcess) -> set[int]:
    """The raw partitions ``worker`` owns, per its ``/metrics``."""
    return set(worker.lag())


def group_assignment(deployment: Deployment) -> dict[str, set[int]]:
    """Member id -> the raw partitions Kafka assigned to it, from the group's description."""
    admin = AdminClient({"bootstrap.servers": deployment.bootstrap})
    description = admin.describe_consumer_groups([deployment.worker_id])[
        deployment.worker_id
    ].result(timeout=30)
    if description.state != ConsumerGroupState.STABLE:
        return {}
    return {
        member.member_id: {
            tp.partition
            for tp in member.assignment.topic_partitions
            if tp.topic == deployment.topics.raw
        }
        for member in description.members
    }


def test_two_sources_two_workers_then_one_worker_killed(
    deployment: Deployment, group: ProcessGroup
) -> None:
    stream = generate(seed=11, now_ms=int(time.time() * 1000))
    bodies = [body for kind, body in stream.arrivals if kind == "raw"][:EVENTS]
    events = [json.loads(body) for body in bodies]
    first, rest = bodies[: EVENTS // 2], bodies[EVENTS // 2 :]

    sources = [group.source("source-1"), group.source("source-2")]
    workers = [group.worker("worker-1"), group.worker("worker-2")]
    everything = set(range(PARTITIONS))

    def split() -> bool:
        for worker in workers:
            worker.check_alive()
        mine = [owned(worker) for worker in workers]
        return all(mine) and not mine[0] & mine[1] and mine[0] | mine[1] == everything

    wait_until(split, START_SECONDS, "the two workers to split the raw partitions")
    assignment = wait_until(
        lambda: (found := group_assignment(deployment)) and len(found) == 2 and found,
        60,
        "Kafka to describe a stable group of two",
    )
    parts = sorted(assignment.values(), key=min)
    assert not parts[0] & parts[1] and parts[0] | parts[1] == everything
    assert sorted(parts, key=min) == sorted((owned(w) for w in workers), key=min)

    balancer = LoadBalancer(sources)
    try:
        for body in first:
            balancer.post(body)
        counted = [0.0, 0.0]

        def all_counted() -> bool:
            for index, worker in enumerate(workers):
                counted[index] = sum(worker.events_counted().values())
            return sum(counted) >= len(first)

        wait_until(all_counted, CONVERGE_SECONDS, "the workers to process the first half")
        assert all(counted), f"one worker did all the work: {counted}"

        # The second half keeps coming while worker 1 is killed.
        sent: list[int] = []

        def feed() -> None:
            for body in rest:
                balancer.post(body)
                sent.append(1)
                time.sleep(0.002)

        feeder = threading.Thread(target=feed)
        feeder.start()
        wait_until(lambda: len(sent) >= len(rest) // 4, 60, "a quarter of the second half")
        workers[0].kill()
        killed_at, kill_time = len(sent), time.monotonic()
        feeder.join(timeout=120)
        assert not feeder.is_alive()
        assert killed_at < len(rest), "the stream ended before the kill"
    finally:
        balancer.close()
    assert set(balancer.answers) == {200}
    assert all(balancer.per_source[i] > 0 for i in range(len(sources)))

    survivor = workers[1]
    wait_until(
        lambda: (survivor.check_alive(), owned(survivor) == everything)[1],
        START_SECONDS,
        "the surviving worker to own every raw partition",
    )
    takeover_seconds = time.monotonic() - kill_time

    # No event lost: every identity the webhooks carried is on the typed topics.
    expected_ids = {event_identity(event, body) for event, body in zip(events, bodies, strict=True)}
    typed = deployment.typed_topics()
    records = consume(
        deployment.bootstrap,
        typed,
        lambda messages: {event_id_of(m) for m in messages} >= expected_ids,
        timeout=CONVERGE_SECONDS,
        worker=survivor,
    )
    ids = Counter(event_id_of(m) for m in records)
    assert set(ids) == expected_ids
    assert record_count(deployment.bootstrap, [deployment.topics.dlq]) == 0

    # The aggregates are exact: HTTP answers and the agent_scores topic.
    expected = expected_scores(events)
    answers: dict[str, Any] = wait_for_http(survivor, expected, CONVERGE_SECONDS)
    published = read_agent_scores(deployment, expected, 60)
    for agent, answer in answers.items():
        assert answer == published[agent], f"HTTP and agent_scores differ for {agent}"

    repeats = sum(count - 1 for count in ids.values())
    # Records Faust's stream skipped at the rebalances and the agents read again (gaps.py).
    refetched = metric_total(survivor.metrics(), "zoom_worker_raw_records_refetched_total")
    skipped_logged = sum(
        log.read_text(errors="replace").count("the stream skipped")
        for log in deployment.tmp.glob("*.log")
    )
    print(
        f"\nscale-out: {len(bodies)} webhooks through 2 sources {dict(balancer.per_source)},"
        f" worker 1 killed after {killed_at} of the second half's {len(rest)};"
        f" survivor owned all {PARTITIONS} partitions within {takeover_seconds:.1f} s;"
        f" {len(expected_ids)} events typed, {repeats} written twice (same zoom-event-id);"
        f" the survivor read {refetched:.0f} skipped raw record(s) again,"
        f" {skipped_logged} skip(s) logged by the workers"
    )
