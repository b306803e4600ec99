"""Stalled worker: SIGSTOP one of two workers past its session timeout, then SIGCONT it.

Fault: workers A and B share the raw partitions while a driver produces (~100 raw records/s).
A is frozen with SIGSTOP in the middle of its work; once its session (6 s) has expired, B takes
over A's partitions and works through the rest of the stream. Then A is resumed with SIGCONT: it
wakes up holding records it fetched before the pause, for partitions it no longer owns (a zombie),
and may write what it makes of them before it learns about the rebalance. A resumes only once B
has processed everything, so whatever A writes then comes after B's writes.

Pass: no event lost; duplicates only as at-least-once repeats under their original's id, same
bytes; the tables are not corrupted by the zombie's writes: the live workers' aggregates equal the
ground truth, and so do those of a third worker C that rebuilds every table from the changelogs
alone after A and B are stopped; C still drops a retry of every event (its dedup table, rebuilt
from the changelog, knows them all), and drops as well whatever raw records A and B left
uncommitted (reported as ``uncommitted_after_stop``) when it reads them again.
"""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from tests.processes import (
    Deployment,
    ProcessGroup,
    RawProducer,
    WorkerProcess,
    group_assignment,
    uncommitted,
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
    processed_by,
    tally,
)

pytestmark = pytest.mark.kafka

RATE = 100.0
SESSION_TIMEOUT = 6.0
START_SECONDS = 90.0
FINISH_SECONDS = 180.0


def owned(worker: WorkerProcess) -> set[int]:
    """The raw partitions ``worker`` owns, per its lag metric (measured every 2 s)."""
    worker.check_alive()
    return set(worker.lag())


def all_idle(workers: list[WorkerProcess], partitions: int) -> bool:
    """Whether together the workers own every raw partition, each without lag."""
    lag: dict[int, float] = {}
    for worker in workers:
        worker.check_alive()
        lag.update(worker.lag())
    return set(lag) == set(range(partitions)) and set(lag.values()) == {0.0}


@pytest.mark.timeout(900)
def test_stalled_worker_resumes_as_a_zombie_without_corrupting_anything(
    deployment: Deployment, processes: ProcessGroup, figures: Figures
) -> None:
    deployment.extra_env.update(
        {"BROKER_SESSION_TIMEOUT": str(SESSION_TIMEOUT), "BROKER_HEARTBEAT_INTERVAL": "1"}
    )
    partitions = set(range(deployment.partitions))
    raw_topic = deployment.topics.raw

    def members() -> list[set[int]] | None:
        return group_assignment(deployment.bootstrap, deployment.worker_id, raw_topic)

    driver = RawDriver(deployment, EventFactory(deployment.prefix, seed=5), RATE, seed=6).start()
    try:
        a = processes.worker("worker-a")
        wait_until(lambda: processed_by(a) >= 100, START_SECONDS, "worker A to start")
        b = processes.worker("worker-b")
        shared = wait_until(
            lambda: (m := members()) and len(m) == 2 and all(m) and m,
            START_SECONDS,
            "A and B to share the raw partitions",
        )
        wait_until(lambda: processed_by(b) >= 50, START_SECONDS, "worker B to work")

        def disjoint_shares() -> tuple[set[int], set[int]] | None:
            mine, theirs = owned(a), owned(b)
            if mine and theirs and not mine & theirs and mine | theirs == partitions:
                return mine, theirs
            return None

        a_partitions, _ = wait_until(
            disjoint_shares, START_SECONDS, "A and B to report their shares (lag metric)"
        )

        a.pause()
        paused_at = time.monotonic()
        wait_until(
            lambda: members() == [partitions] and owned(b) == partitions,
            START_SECONDS,
            "B alone to own every raw partition",
        )
        takeover_seconds = time.monotonic() - paused_at
        b_before = processed_by(b)
        wait_until(
            lambda: processed_by(b) >= b_before + 200, START_SECONDS, "B to work A's share too"
        )
    finally:
        driver.stop()
    assert len(driver.sent) < MAX_RAW_RECORDS
    wait_until(lambda: all_idle([b], len(partitions)), FINISH_SECONDS, "B to finish the stream")

    a.resume()  # B's takeover proved that A's session had expired
    paused_seconds = time.monotonic() - paused_at
    wait_until(lambda: (m := members()) and len(m) == 2 and all(m), START_SECONDS, "A to rejoin")
    wait_until(lambda: all_idle([a, b], len(partitions)), FINISH_SECONDS, "A and B to be idle")

    distinct = first_of_each(driver.sent)
    deliveries = Counter(event.event_id for event in driver.sent)
    with OutputReader(deployment) as reader:
        reader.read_ids(deliveries, FINISH_SECONDS, [a, b])
        reader.drain()
        result = tally(reader, distinct, deliveries)
    figures(
        **result.figures(),
        raw_records=len(driver.sent),
        zoom_retries=driver.retries,
        group_before_pause=[sorted(p) for p in shared],
        a_partitions_before=sorted(a_partitions),
        paused_seconds=round(paused_seconds, 1),
        takeover_seconds=round(takeover_seconds, 1),
        a_after_resume=sorted(owned(a)),
    )
    result.check()
    wired = aggregates_wired()
    if wired:
        check_aggregates([a, b], distinct)

    # The tables as their changelogs have them: a third worker rebuilds them from there alone.
    processes.stop_all()
    # Both stopped gracefully, idle: the group should have committed everything they processed.
    # It does not always (README known issues: a commit refused at a rebalance is now committed
    # again, streams.commits, but a stalled-worker run in CI still left two partitions behind
    # with no refused commit): at-least-once allows it, and C must then process those records
    # again without a typed record more. Counted and reported.
    behind = uncommitted(deployment.bootstrap, deployment.worker_id, raw_topic)
    reread = sum(behind.values())
    figures(uncommitted_after_stop=behind)
    c = processes.worker("worker-c")
    wait_until(lambda: owned(c) == partitions, START_SECONDS, "worker C to own every partition")
    if wired:
        answers = check_aggregates([c], distinct)
        figures(aggregates=f"{len(answers)} agents equal the ground truth (live and rebuilt)")
    retried = [e for e in distinct if e.valid]
    random.Random(7).shuffle(retried)
    retried = retried[:300]
    raw = RawProducer(deployment.bootstrap, deployment.topics.raw)
    for event in retried:
        raw.send(event.body, signature="v0=late-retry")
    raw.flush()
    counted = c.wait_counted(len(retried) + reread, FINISH_SECONDS)
    figures(retries_after_rebuild=len(retried), dropped_as_duplicates=counted.get("duplicate", 0))
    # every retry dropped; what was read again dropped too (or dead-lettered again if invalid:
    # dead letters are not de-duplicated); nothing else processed, no typed record written
    assert sum(counted.values()) == len(retried) + reread, counted
    assert counted.get("duplicate", 0) >= len(retried), counted
    assert counted.get("dlq", 0) <= reread and not counted.get("typed"), counted
