"""A commit Kafka refused is made again (connector.worker.patches.commits), against the real broker.

The fault is injected by :mod:`tests.faults.refusing_worker`: the commit of the worker's last raw
offsets is answered as Kafka answers one refused at a rebalance, and no record comes after. With
the commit keeper the group's committed offsets reach the end of every raw partition, and stay
there after a graceful stop; without it (the control) faust-streaming, which noted the refused
offsets as committed, never asks again: the group stays behind even after the graceful stop, and
the next worker would process those records again.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.processes import (
    WORKER_START_SECONDS,
    Deployment,
    RawProducer,
    WorkerProcess,
    evaluation_body,
    uncommitted,
    wait_raw_committed,
    wait_until,
)

pytestmark = pytest.mark.kafka

RECORDS = 30
COMMIT_ROUNDS_SECONDS = 3 * 2.8
"""Three of Faust's commit rounds (``broker_commit_interval``, 2.8 s): how long the control
watches the group stay behind (a negative can only be watched)."""


class RefusingWorker(WorkerProcess):
    """The worker of :mod:`tests.faults.refusing_worker`."""

    def __init__(self, deployment: Deployment, trigger: Path, keeper: bool) -> None:
        super().__init__(
            deployment,
            "refusing-worker",
            command=[sys.executable, "-m", "tests.faults.refusing_worker"],
            env={"REFUSE_TRIGGER": str(trigger), "COMMIT_KEEPER": "on" if keeper else "off"},
        )
        self.trigger = trigger

    def refused(self) -> dict[int, int]:
        """The highest raw offset refused so far, by partition."""
        done = Path(f"{self.trigger}.done")
        if not done.exists():
            return {}
        pairs = (line.split() for line in done.read_text().splitlines() if line)
        return {int(p): int(o) for p, o in pairs}

    def retried(self) -> float:
        return sum(
            value
            for (name, _), value in self.metrics().items()
            if name == "zoom_worker_commits_retried_total"
        )


def log_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """Where each partition of ``topic`` that holds records ends."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "log-ends"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        for p in sorted(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        return ends
    finally:
        consumer.close()


@pytest.fixture
def deployment(new_deployment: Callable[..., Deployment]) -> Deployment:
    return new_deployment("commit")


def _run_until_refused(
    deployment: Deployment, workers: list[WorkerProcess], keeper: bool
) -> tuple[RefusingWorker, dict[int, int]]:
    """A worker whose commits of the raw offsets are refused until it noted the last ones as
    committed; then Kafka takes commits again. The raw partitions' ends."""
    worker = RefusingWorker(deployment, deployment.tmp / "refuse-now", keeper)
    workers.append(worker)
    worker.trigger.write_text("refuse")
    raw = RawProducer(deployment.bootstrap, deployment.topics.raw)
    for number in range(RECORDS):
        raw.send(evaluation_body(number, prefix="commit"))
    raw.flush()
    worker.wait_counted(RECORDS, timeout=WORKER_START_SECONDS)
    ends = log_ends(deployment.bootstrap, deployment.topics.raw)
    assert sum(ends.values()) == RECORDS
    wait_until(
        lambda: worker.refused() == ends,
        30,
        "the commit of the last raw offsets to be refused",
        explain=worker.diagnosis,
    )
    Path(f"{worker.trigger}.release").write_text("commits go through again")
    return worker, ends


def test_a_refused_commit_is_made_again(
    deployment: Deployment, workers: list[WorkerProcess]
) -> None:
    worker, _ = _run_until_refused(deployment, workers, keeper=True)
    wait_raw_committed(deployment, worker)
    assert worker.retried() >= 1
    assert "committed again offsets Kafka had refused" in worker.log()
    worker.stop()
    group, topic = deployment.worker_id, deployment.topics.raw
    assert not any(uncommitted(deployment.bootstrap, group, topic).values())


def test_without_the_keeper_the_group_stays_behind(
    deployment: Deployment, workers: list[WorkerProcess]
) -> None:
    worker, ends = _run_until_refused(deployment, workers, keeper=False)
    group, topic = deployment.worker_id, deployment.topics.raw
    deadline = time.monotonic() + COMMIT_ROUNDS_SECONDS
    while time.monotonic() < deadline:
        worker.check_alive()
        behind = uncommitted(deployment.bootstrap, group, topic)
        assert any(behind.values()), "the refused offsets were committed without the keeper"
        time.sleep(0.5)
    worker.stop()  # graceful: Faust's last commit has nothing new to commit
    behind = uncommitted(deployment.bootstrap, group, topic)
    assert {p for p, n in behind.items() if n} == set(ends), (behind, ends)
