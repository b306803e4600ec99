"""Worker kill loop: SIGKILL the worker three times while a driver keeps producing.

Fault: a driver writes raw records continuously (~100/s: evaluations, interaction analyses,
re-scores, invalid events, and Zoom's retries of earlier events); the worker is killed with
SIGKILL at a varying point of its work and restarted, three times; then the driver stops.

Pass: every distinct event has a typed record (or, if invalid, a dead letter per delivery); every
duplicate repeats its original's key and bytes under its original's ``zoom-event-id``; the count
of duplicates is reported; when the worker runs the aggregates, every agent's lifetime figures
equal a ground truth recomputed from the distinct events.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.processes import (
    Deployment,
    ProcessGroup,
    wait_until,
)
from tests.reliability.workload import (
    MAX_RAW_RECORDS,
    EventFactory,
    Figures,
    OutputReader,
    RawDriver,
    aggregates_wired,
    check_aggregates,
    first_of_each,
    idle,
    processed_by,
    tally,
)

pytestmark = pytest.mark.kafka

RATE = 100.0  # raw records per second
KILLS = 3
START_SECONDS = 90.0
FINISH_SECONDS = 180.0


@pytest.mark.timeout(600)
def test_worker_killed_three_times_loses_nothing(
    deployment: Deployment, processes: ProcessGroup, figures: Figures
) -> None:
    # A killed worker stays in the group until its session times out (Faust's default: 60 s); a
    # short session lets the restarted one take over quickly (Faust reads these variables).
    deployment.extra_env.update({"BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1"})
    rng = random.Random(20)
    driver = RawDriver(deployment, EventFactory(deployment.prefix, seed=2), RATE, seed=3).start()
    worker = processes.worker("worker-0")
    kills: list[str] = []
    try:
        for kill in range(1, KILLS + 1):
            # kill at a different point of the work each time
            target = rng.randrange(100, 400)
            wait_until(
                lambda w=worker, t=target: processed_by(w) >= t,
                START_SECONDS,
                f"worker {kill - 1} to process {target} records",
                interval=0.05,
            )
            processed = sum(worker.events_counted().values())
            worker.kill()
            kills.append(f"after {processed:.0f} records ({len(driver.sent)} produced)")
            worker = processes.worker(f"worker-{kill}")
        # the last worker takes over, then the stream ends
        wait_until(
            lambda: processed_by(worker) >= 100,
            START_SECONDS,
            "the last worker to take over",
        )
    finally:
        driver.stop()
    produced = len(driver.sent)
    assert produced < MAX_RAW_RECORDS, "the driver ran out of records before the kills were done"

    distinct = first_of_each(driver.sent)
    deliveries = Counter(event.event_id for event in driver.sent)
    with OutputReader(deployment) as reader:
        reader.read_ids(deliveries, FINISH_SECONDS, [worker])
        wait_until(
            lambda: idle(worker),
            FINISH_SECONDS,
            "the last worker to have no lag",
        )
        reader.drain()
        result = tally(reader, distinct, deliveries)

    figures(
        **result.figures(),
        raw_records=produced,
        zoom_retries=driver.retries,
        kills=kills,
        duplicate_ids_sample=result.duplicate_ids[:3],
    )
    result.check()
    if aggregates_wired():
        answers = check_aggregates([worker], distinct)
        figures(aggregates=f"{len(answers)} agents equal the ground truth")
    assert "Traceback" not in worker.log(), worker.tail()
