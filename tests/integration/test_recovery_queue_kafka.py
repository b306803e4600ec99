"""Records handed to the streams while a recovery seeks are all processed, against the broker.

A first worker processes some records (so the tables have changelog records to restore, and Faust
fetches while it restores). The worker of :mod:`tests.faults.held_seek_worker` then starts with
new records waiting in the raw topic; its raw stream waits, and its recovery's seek returns only
once all of them are in the stream's queue, so they sit there when Faust resumes its flow. With
:mod:`connector.worker.patches.flow` the resume keeps them and every one is typed; with Faust's own
flow control (the control) the resume empties the queue (records dropped that way are neither
processed nor fetched again, unless the seek made the fetcher read them a second time).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from tests.processes import (
    WORKER_START_SECONDS,
    Deployment,
    WorkerProcess,
    process_and_commit,
    produce_evaluations,
    wait_until,
)

pytestmark = pytest.mark.kafka

BEFORE = 5
"""Records per partition processed and committed by a first, plain worker."""
PER_PARTITION = 30
"""Records per partition waiting when the held-seek worker starts."""


class HeldSeekWorker(WorkerProcess):
    """The worker of :mod:`tests.faults.held_seek_worker`."""

    def __init__(self, deployment: Deployment, until: int, patched: bool) -> None:
        super().__init__(
            deployment,
            "held-seek-worker",
            command=[sys.executable, "-m", "tests.faults.held_seek_worker"],
            env={"HOLD_UNTIL": str(until), "FLOW_PATCH": "on" if patched else "off"},
        )

    def queued(self, when: str) -> int | None:
        """How many records waited in the raw stream's queue when the seek returned (``"seek
        held"``) or once Faust resumed the flow (``"flow resumed"``)."""
        for line in self.log().splitlines():
            if f"{when}:" in line:
                return int(line.split(f"{when}:")[1].split()[0])
        return None


@pytest.fixture
def deployment(new_deployment: Callable[..., Deployment]) -> Deployment:
    return new_deployment("recoveryq")


def _start_with_records_waiting(
    deployment: Deployment, workers: list[WorkerProcess], patched: bool
) -> tuple[HeldSeekWorker, int]:
    process_and_commit(deployment, workers, BEFORE, "rq")
    total = PER_PARTITION * deployment.partitions
    produce_evaluations(deployment, 1000, PER_PARTITION, "rq")
    # the stream's wait for its first record began before the fault closed the queue: that one
    # record goes through
    waiting = total - 1
    worker = HeldSeekWorker(deployment, until=waiting, patched=patched)
    workers.append(worker)
    held = wait_until(
        lambda: worker.queued("seek held"),
        WORKER_START_SECONDS,
        "the seek to be held",
        explain=worker.diagnosis,
    )
    # the records wait in the queue when Faust resumes the flow: the race is there, not by chance
    assert held >= waiting, held
    return worker, total


def test_records_queued_while_the_recovery_seeks_are_all_processed(
    deployment: Deployment, workers: list[WorkerProcess]
) -> None:
    worker, total = _start_with_records_waiting(deployment, workers, patched=True)
    resumed = wait_until(
        lambda: worker.queued("flow resumed"), 30, "the flow to resume", explain=worker.diagnosis
    )
    assert resumed >= total - 1, resumed
    counted = wait_until(
        lambda: (c := worker.events_counted()).get("typed", 0) >= total and c,
        WORKER_START_SECONDS,
        f"the {total} records to be typed",
        explain=worker.diagnosis,
    )
    # the copies fetched while the seek ran are processed too, and dropped as duplicates
    assert counted["typed"] == total and set(counted) <= {"typed", "duplicate"}, counted


def test_faust_alone_empties_the_queue_when_it_resumes_the_flow(
    deployment: Deployment, workers: list[WorkerProcess]
) -> None:
    worker, _ = _start_with_records_waiting(deployment, workers, patched=False)
    resumed = wait_until(
        lambda: worker.queued("flow resumed") is not None,
        30,
        "the flow to resume",
        explain=worker.diagnosis,
    )
    assert resumed and worker.queued("flow resumed") == 0
