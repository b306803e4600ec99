"""A worker that stops fetching a partition it owns gets it read again (connector.worker.stalls).

The fault is injected by :mod:`tests.faults.dropping_worker`: once told to, it takes the raw
topic's partitions out of Faust's fetch set, as faust-streaming's bookkeeping sometimes does. With
the stall watch on, every record written after the fault is still processed, and the watch says
so in its log and metrics; with it off (``WORKER_STALL_SECONDS=0``), the same fault leaves the
records unread, which shows the fault is real.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.processes import (
    WORKER_START_SECONDS,
    Deployment,
    RawProducer,
    WorkerProcess,
    evaluation_body,
)

pytestmark = pytest.mark.kafka

STALL_SECONDS = 3.0
UNREAD_WINDOW_SECONDS = 4 * STALL_SECONDS
"""How long the control run watches records stay unread (a negative can only be watched)."""


class DroppingWorker(WorkerProcess):
    """The worker of :mod:`tests.faults.dropping_worker`."""

    def __init__(self, deployment: Deployment, trigger: Path, stall_seconds: float) -> None:
        super().__init__(
            deployment,
            "dropping-worker",
            command=[sys.executable, "-m", "tests.faults.dropping_worker"],
            env={"STALL_TRIGGER": str(trigger), "WORKER_STALL_SECONDS": str(stall_seconds)},
        )
        self.trigger = trigger

    def inject(self, timeout: float = 30.0) -> list[int]:
        """Drop the raw partitions from Faust's fetch set; the partitions dropped."""
        self.trigger.write_text("drop")
        done = Path(f"{self.trigger}.done")
        deadline = time.monotonic() + timeout
        while not done.exists():
            self.check_alive()
            assert time.monotonic() < deadline, f"the fault was not injected:\n{self.tail()}"
            time.sleep(0.05)
        return [int(p) for p in done.read_text().split()]

    def stalls(self) -> dict[str, float]:
        return {
            dict(labels)["cause"]: value
            for (name, labels), value in self.metrics().items()
            if name == "zoom_worker_partition_stalls_total"
        }


@pytest.fixture
def deployment(new_deployment: Callable[..., Deployment]) -> Deployment:
    return new_deployment("stall")


def _start_and_drop(
    deployment: Deployment, workers: list[WorkerProcess], stall_seconds: float
) -> tuple[DroppingWorker, RawProducer]:
    worker = DroppingWorker(deployment, deployment.tmp / "drop-now", stall_seconds)
    workers.append(worker)
    raw = RawProducer(deployment.bootstrap, deployment.topics.raw)
    raw.send(evaluation_body(0, prefix="stall"))
    raw.flush()
    worker.wait_counted(1, timeout=WORKER_START_SECONDS)  # assigned, fetching, processing
    dropped = worker.inject()
    assert dropped == list(range(deployment.partitions))
    for number in range(1, 101):
        raw.send(evaluation_body(number, prefix="stall"))
    raw.flush()
    return worker, raw


def test_a_partition_left_unfetched_is_read_again(
    deployment: Deployment, workers: list[WorkerProcess]
) -> None:
    worker, _ = _start_and_drop(deployment, workers, STALL_SECONDS)
    counted = worker.wait_counted(101, timeout=10 * STALL_SECONDS + 30)
    assert counted == {"typed": 101}
    stalls = worker.stalls()
    assert stalls.get("dropped", 0) >= 1, stalls
    assert "partition stalled" in worker.log() and "cause=dropped" in worker.log()


def test_without_the_watch_the_fault_leaves_records_unread(
    deployment: Deployment, workers: list[WorkerProcess]
) -> None:
    worker, _ = _start_and_drop(deployment, workers, 0)
    deadline = time.monotonic() + UNREAD_WINDOW_SECONDS
    while time.monotonic() < deadline:
        worker.check_alive()
        assert sum(worker.events_counted().values()) == 1, "the fault did not stop the reading"
        time.sleep(0.5)
    assert worker.stalls() == {}
    # what the watch sees, also with it off: the raw partitions, none requested, records waiting
    seen = worker.partitions()
    assert seen["settled"] is True
    raw = [v for v in seen["partitions"] if v["topic"] == deployment.topics.raw]
    assert sorted(v["partition"] for v in raw) == list(range(deployment.partitions))
    assert not any(v["requested"] for v in raw)
    assert sum(v["highwater"] - v["position"] for v in raw) == 100, raw
    assert seen["batches"] == []
