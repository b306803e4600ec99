"""State loss: the worker's local table store is deleted between two runs.

Fault: a worker with ``WORKER_STORE=rocksdb://`` processes a stream and stops; its data
directory (the RocksDB stores of the dedup and aggregates tables) is deleted; a new worker starts
on the same group and must rebuild both tables from their changelog topics.

Pass: the rebuilt dedup table still drops a retry of every event already seen (no new typed
record), new events are written, and the aggregates query answers for every earlier agent exactly
as before the loss (and equal the ground truth, new events included).
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.processes import Deployment, ProcessGroup, RawProducer, wait_until
from tests.reliability.workload import (
    EventFactory,
    Figures,
    OutputReader,
    aggregates_snapshot,
    aggregates_wired,
    check_aggregates,
    expected_aggregates,
    idle,
    tally,
)

pytestmark = pytest.mark.kafka

EVENTS = 400
NEW_EVENTS = 50
START_SECONDS = 90.0
FINISH_SECONDS = 120.0


def directory_size(path: Path) -> tuple[int, int]:
    """Files and bytes below ``path``."""
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


@pytest.mark.timeout(600)
def test_deleted_table_store_is_rebuilt_from_the_changelog(
    deployment: Deployment, processes: ProcessGroup, figures: Figures
) -> None:
    pytest.importorskip("rocksdict")
    deployment.extra_env["WORKER_STORE"] = "rocksdb://"
    data_dir = deployment.tmp / "worker-data"
    factory = EventFactory(deployment.prefix, seed=21)
    events = [factory.interaction() if n % 5 == 4 else factory.evaluation() for n in range(EVENTS)]
    raw = RawProducer(deployment.bootstrap, deployment.topics.raw)
    for event in events:
        raw.send(event.body)
    raw.flush()

    first = processes.worker("worker-1")
    assert first.wait_counted(EVENTS, START_SECONDS + FINISH_SECONDS) == {"typed": EVENTS}
    wired = aggregates_wired()
    before = {}
    if wired:
        check_aggregates([first], events)
        before = aggregates_snapshot(first, expected_aggregates(events))
    assert first.stop() == 0, first.tail()
    files, size = directory_size(data_dir)
    assert files > 0, f"no table store under {data_dir}"
    shutil.rmtree(data_dir)

    # The same events again (Zoom's retries, hours later in wall-clock time, still within the
    # retention in record time), and new ones for an agent nobody has seen yet.
    new_events = [factory.evaluation(agent="agent-after-the-loss") for _ in range(NEW_EVENTS)]
    for event in events:
        raw.send(event.body, signature="v0=retry-after-state-loss")
    for event in new_events:
        raw.send(event.body)
    raw.flush()
    started = time.monotonic()
    second = processes.worker("worker-2")
    second.wait_counted(EVENTS + NEW_EVENTS, START_SECONDS + FINISH_SECONDS)
    wait_until(lambda: idle(second), FINISH_SECONDS, "the second worker to have no lag")
    rebuilt_in = time.monotonic() - started
    counted = second.events_counted()
    all_events = [*events, *new_events]
    with OutputReader(deployment) as reader:
        reader.read_ids({e.event_id for e in all_events}, FINISH_SECONDS, [second])
        reader.drain()
        result = tally(reader, all_events, Counter(e.event_id for e in all_events))
    figures(
        events_before_the_loss=EVENTS,
        store_deleted=f"{files} files, {size / 1e6:.1f} MB",
        retries_after_the_loss=EVENTS,
        new_events_after_the_loss=NEW_EVENTS,
        second_worker=dict(counted),
        seconds_until_the_second_worker_had_counted_everything=round(rebuilt_in, 1),
        typed_records=result.typed_records,
        lost=len(result.lost),
        duplicated=result.duplicates,
    )
    # The retries are dropped: nothing typed but the new events. (A few records the first worker
    # processed last may be read again, its final commit notwithstanding: dropped too.)
    assert counted.get("typed") == NEW_EVENTS, counted
    assert set(counted) == {"typed", "duplicate"} and counted["duplicate"] >= EVENTS, counted
    result.check()
    assert result.duplicates == 0
    if wired:
        check_aggregates([second], all_events)
        after = aggregates_snapshot(second, before)
        assert after == before, "the rebuilt aggregates answer differently"
        figures(aggregates=f"{len(after)} agents answer as before the loss")
