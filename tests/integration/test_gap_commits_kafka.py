"""Records Faust never delivered, read again and processed, are committed past, against the broker.

The fault is injected by :mod:`tests.faults.skipping_worker`: the first records of one raw
partition beyond the group's committed offset are fetched but never handed to the streams, as
faust-streaming loses records at a rebalance. :mod:`connector.worker.patches.gaps` finds
them (the first
offset delivered is past where the group stands) and reads them again. faust-streaming commits a
partition only through offsets it saw acknowledged, from the committed one on, so with the records
read again registered with it (``Refetcher.processed``) the group's committed offsets reach the
end of every raw partition; without (the control) the partition's committed offset stands still
for as long as the worker runs and after its graceful stop, and the next worker would process all
of it again (what the stalled-worker reliability test saw: 355 and 376 records left uncommitted on
the two partitions a worker had taken over).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import pytest

from tests.processes import (
    WORKER_START_SECONDS,
    Deployment,
    WorkerProcess,
    metric_total,
    process_and_commit,
    produce_evaluations,
    uncommitted,
    wait_raw_committed,
    wait_until,
)

pytestmark = pytest.mark.kafka

PARTITION = 1
BEFORE = 12
"""Records per partition processed and committed by a first, plain worker."""
AFTER = 30
"""Records per partition produced for the skipping worker."""
WITHHELD = 10
"""Of those, how many at the head of ``PARTITION`` Faust never delivers."""
COMMIT_ROUNDS_SECONDS = 3 * 2.8
"""Three of Faust's commit rounds (``broker_commit_interval``, 2.8 s)."""
STALL_SECONDS = 6
"""The skipping worker's ``WORKER_STALL_SECONDS``: its stall watch reports commits standing
still after that long."""


class SkippingWorker(WorkerProcess):
    """The worker of :mod:`tests.faults.skipping_worker`."""

    def __init__(self, deployment: Deployment, below: int, acknowledge: bool) -> None:
        self.skip_log = deployment.tmp / "withheld.txt"
        super().__init__(
            deployment,
            "skipping-worker",
            command=[sys.executable, "-m", "tests.faults.skipping_worker"],
            env={
                "SKIP_PARTITION": str(PARTITION),
                "SKIP_BELOW": str(below),
                "SKIP_LOG": str(self.skip_log),
                "GAP_ACKS": "on" if acknowledge else "off",
                "WORKER_STALL_SECONDS": str(STALL_SECONDS),
            },
        )

    def withheld(self) -> list[int]:
        if not self.skip_log.exists():
            return []
        return [int(line) for line in self.skip_log.read_text().split()]


@pytest.fixture
def deployment(new_deployment: Callable[..., Deployment]) -> Deployment:
    return new_deployment("gapcommit")


def _run_until_processed(
    deployment: Deployment, workers: list[WorkerProcess], acknowledge: bool
) -> SkippingWorker:
    """A first worker processes and commits everything; then a skipping worker takes over the
    group, with the head of ``PARTITION``'s new records withheld by Faust, and processes all."""
    process_and_commit(deployment, workers, BEFORE, "gap")
    produce_evaluations(deployment, 1000, AFTER, "gap")
    worker = SkippingWorker(deployment, below=BEFORE + WITHHELD, acknowledge=acknowledge)
    workers.append(worker)
    new = AFTER * deployment.partitions
    counted = wait_until(
        lambda: (c := worker.events_counted()).get("typed", 0) >= new and c,
        WORKER_START_SECONDS,
        f"the {new} new records to be typed",
        explain=worker.diagnosis,
    )
    # A rebalance while the worker starts (Faust's own topics appearing) sends it back to the
    # committed offsets: records processed again are dropped as duplicates, never typed twice.
    assert counted["typed"] == new and set(counted) <= {"typed", "duplicate"}, counted
    # ... and the head of PARTITION is withheld, and read again, every time it is fetched.
    assert set(worker.withheld()) == set(range(BEFORE, BEFORE + WITHHELD))
    refetched = metric_total(worker.metrics(), "zoom_worker_raw_records_refetched_total")
    assert refetched >= WITHHELD, refetched
    return worker


def test_records_read_again_are_committed_past(
    deployment: Deployment, workers: list[WorkerProcess]
) -> None:
    worker = _run_until_processed(deployment, workers, acknowledge=True)
    wait_raw_committed(deployment, worker)
    group, topic = deployment.worker_id, deployment.topics.raw
    raw = [v for v in worker.partitions()["partitions"] if v["topic"] == topic]
    assert {(v["committed"], v["acknowledged"]) for v in raw} == {(BEFORE + AFTER, 0)}, raw
    worker.stop()
    assert not any(uncommitted(deployment.bootstrap, group, topic).values())


def test_without_telling_faust_the_partition_is_never_committed(
    deployment: Deployment, workers: list[WorkerProcess]
) -> None:
    worker = _run_until_processed(deployment, workers, acknowledge=False)
    group, topic = deployment.worker_id, deployment.topics.raw
    others = set(range(deployment.partitions)) - {PARTITION}
    wait_until(
        lambda: not any(uncommitted(deployment.bootstrap, group, topic)[p] for p in others),
        30,
        "the other partitions to be committed",
        explain=lambda: (
            f"uncommitted {uncommitted(deployment.bootstrap, group, topic)}\n{worker.diagnosis()}"
        ),
    )
    # GET /partitions shows why: the partition's records after the hole are acknowledged, and
    # Faust's commit stands before it.
    raw = {v["partition"]: v for v in worker.partitions()["partitions"] if v["topic"] == topic}
    hole = raw[PARTITION]
    assert BEFORE <= hole["committed"] < BEFORE + WITHHELD, raw
    assert hole["acknowledged"] > 0 and hole["acknowledged_from"] > hole["committed"] + 1, raw
    for other in others:
        assert raw[other]["committed"] == BEFORE + AFTER, raw
        assert raw[other]["acknowledged"] == 0, raw
    # ... and the stall watch reports the partition whose commits stand still, with the hole.
    wait_until(
        lambda: metric_total(
            worker.metrics(), "zoom_worker_partition_stalls_total", cause="uncommitted"
        ),
        3 * STALL_SECONDS,
        "the stall watch to report the commits standing still",
        explain=worker.diagnosis,
    )
    reported = [
        line
        for line in worker.log().splitlines()
        if "commits stand still" in line and f"partition={PARTITION} " in line
    ]
    assert reported, worker.tail()
    assert f"offsets {hole['committed']}-" in reported[0], reported
    assert "were never acknowledged" in reported[0], reported
    # Never past the withheld records (30 behind, or fewer when a rebalance re-read some of the
    # records before them and Faust saw them acknowledged).
    deadline = time.monotonic() + COMMIT_ROUNDS_SECONDS
    while time.monotonic() < deadline:
        worker.check_alive()
        behind = uncommitted(deployment.bootstrap, group, topic)
        assert AFTER - WITHHELD < behind[PARTITION] <= AFTER, behind
        time.sleep(0.5)
    worker.stop()  # graceful: Faust's last commit still has the hole in front
    behind = uncommitted(deployment.bootstrap, group, topic)
    assert AFTER - WITHHELD < behind[PARTITION] <= AFTER, behind
    assert "records read again are not acknowledged" in worker.log()
