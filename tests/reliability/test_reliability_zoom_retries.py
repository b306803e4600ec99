"""Zoom's retries through the real source: one typed record per event, aggregates unchanged.

Fault: after a stream of distinct events (evaluations and interaction analyses), every event is
sent again 1 to 3 times, each time freshly signed with a new timestamp, as Zoom re-sends after a
timeout, through ``zoom-connector source`` into ``zoom-connector worker``. Any 503 is re-sent as
Zoom would.

Pass: every event has exactly one typed record (under its ``zoom-event-id``); the worker counts
every retry as a duplicate; the aggregates answer exactly as they did before the retries, and
equal the ground truth.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.processes import Deployment, ProcessGroup, record_count, wait_until
from tests.reliability.workload import (
    SECRET,
    EventFactory,
    Figures,
    OutputReader,
    aggregates_snapshot,
    aggregates_wired,
    check_aggregates,
    expected_aggregates,
    http_status_counts,
    idle,
    post_until_stored,
    tally,
)

pytestmark = pytest.mark.kafka

EVENTS = 300
START_SECONDS = 90.0
FINISH_SECONDS = 120.0


@pytest.mark.timeout(600)
def test_zoom_retries_make_one_typed_record_per_event(
    deployment: Deployment, processes: ProcessGroup, figures: Figures
) -> None:
    source = processes.source()
    worker = processes.worker()
    factory = EventFactory(deployment.prefix, seed=11)
    events = [factory.interaction() if n % 4 == 3 else factory.evaluation() for n in range(EVENTS)]

    first = post_until_stored(source.url, SECRET, events)
    raw_topic = [deployment.topics.raw]
    stored = record_count(deployment.bootstrap, raw_topic)
    worker.wait_counted(stored, START_SECONDS + FINISH_SECONDS)
    wired = aggregates_wired()
    before = {}
    if wired:
        check_aggregates([worker], events)
        before = aggregates_snapshot(worker, expected_aggregates(events))

    rng = random.Random(12)
    retries = [event for event in events for _ in range(rng.randint(1, 3))]
    rng.shuffle(retries)
    again = post_until_stored(source.url, SECRET, retries)
    total = record_count(deployment.bootstrap, raw_topic)
    counted = worker.wait_counted(total, FINISH_SECONDS)

    deliveries = Counter(event.event_id for event in events)
    with OutputReader(deployment) as reader:
        reader.read_ids(deliveries, FINISH_SECONDS, [worker])
        wait_until(lambda: idle(worker), 60, "the worker to have no lag")
        reader.drain()
        result = tally(reader, events, deliveries)
    figures(
        events_sent=len(events),
        retries_sent=len(retries),
        http_first=http_status_counts(first),
        http_retries=http_status_counts(again),
        raw_records=total,
        typed_records=result.typed_records,
        lost=len(result.lost),
        duplicated=result.duplicates,
        dropped_as_duplicates_by_the_worker=counted.get("duplicate", 0),
    )
    result.check()
    assert result.typed_records == len(events) and result.duplicates == 0
    assert counted == {"typed": len(events), "duplicate": total - len(events)}, counted
    if wired:
        after = aggregates_snapshot(worker, before)
        assert after == before, "the retries changed the aggregates"
        figures(aggregates=f"{len(after)} agents unchanged by the retries, equal the ground truth")
