"""The source's disk spool (``SOURCE_SPOOL_DIR``): a long outage, a kill, damage, a full disk.

Faults and pass criteria, one test each, the real ``zoom-connector source`` on a real broker:

* The (private) broker is stopped for ``SPOOL_OUTAGE_SECONDS`` (180) under 100 signed requests/s:
  not one 503; after the broker is back the spool drains by itself, and the real worker, started
  then, types every accepted event exactly once.
* ``kill -9`` of a source holding spooled records (Kafka unreachable), then a restart with Kafka
  reachable, which is killed again while draining and restarted: every event answered 200 is on
  the raw topic; what the killed drain had in flight is sent again (counted as raw duplicates,
  at most two chunks of the drain).
* A spool left with a torn tail (a crash mid-write) in one segment and a flipped byte in another:
  both are detected, logged and counted by reason, every other record is drained, the spool
  empties and new webhooks are stored; only the record whose bytes were destroyed is lost.
* The spool filled to ``SOURCE_SPOOL_MAX_BYTES`` while Kafka is unreachable: 503 ``spool_full``
  and ``/readyz`` 503, the source keeps serving; after a restart with Kafka, every 200 is on the
  raw topic, and Zoom's re-sends of the 503s are stored: nothing lost.

"Kafka unreachable" is the source pointed at a port where nothing listens (the same failure as a
broker that is down, for the producer), except in the outage test, which stops a real broker.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from connector.kafka.local_broker import LocalBroker
from connector.source.drainer import DEFAULT_WINDOW
from connector.source.spool import (
    DAMAGED_SUFFIX,
    FRAME_OVERHEAD,
    SpooledRecord,
    decode_segment,
    encode_frame,
)
from tests.processes import (
    Deployment,
    ProcessGroup,
    SourceProcess,
    free_port,
    metric_total,
    private_broker,
    read_everything,
    wait_until,
)
from tests.reliability.workload import (
    SECRET,
    EventFactory,
    Figures,
    OutputReader,
    WebhookDriver,
    http_status_counts,
    idle,
    percentile,
    post_all,
    post_until_stored,
    tally,
)

pytestmark = pytest.mark.kafka

RATE = 100.0
OUTAGE_SECONDS = float(os.environ.get("SPOOL_OUTAGE_SECONDS", "180"))
BEFORE_SECONDS = 10.0
AFTER_SECONDS = 10.0
DRAIN_SECONDS = 180.0
TYPED_SECONDS = 240.0


def _unreachable() -> str:
    return f"127.0.0.1:{free_port()}"


def _spool_env(spool: Path, bootstrap: str, **more: str) -> dict[str, str]:
    return {
        "SOURCE_SPOOL_DIR": str(spool),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SOURCE_PRODUCE_TIMEOUT_SECONDS": "1",
        **more,
    }


def _reachable(env: dict[str, str], deployment: Deployment) -> dict[str, str]:
    return {**env, "KAFKA_BOOTSTRAP_SERVERS": deployment.bootstrap}


def _spool_state(source: SourceProcess) -> dict[str, float]:
    samples = source.metrics()
    return {
        name: metric_total(samples, f"zoom_source_{name}")
        for name in (
            "spooled_total",
            "spool_drained_total",
            "spool_records",
            "spool_bytes",
            "spool_oldest_age_seconds",
        )
    }


def _wait_drained(source: SourceProcess, timeout: float = DRAIN_SECONDS) -> dict[str, float]:
    """Until the source's spool holds nothing; its spool metrics then."""

    def drained() -> dict[str, float] | None:
        source.check_alive()
        state = _spool_state(source)
        if state and state["spool_records"] == 0 and state["spool_bytes"] == 0:
            return state
        return None

    result: dict[str, float] = wait_until(
        drained, timeout, "the spool to drain", explain=lambda: source.tail(30)
    )
    return result


def _raw_bodies(deployment: Deployment) -> Counter[bytes]:
    return Counter(
        m.value() for m in read_everything(deployment.bootstrap, [deployment.topics.raw])
    )


# --- the broker down for minutes under load -----------------------------------------------------


@pytest.fixture
def broker_deployment(
    tmp_path: Path, unique_name: Callable[[str], str]
) -> Iterator[tuple[Deployment, LocalBroker]]:
    """A deployment on a private broker of its own, which the test stops and starts."""
    with private_broker(tmp_path / "broker") as broker:
        deployment = Deployment(broker.bootstrap, unique_name("spool"), tmp_path)
        deployment.create_topics()
        yield deployment, broker


@pytest.mark.timeout(int(OUTAGE_SECONDS) + 900)
def test_broker_down_for_minutes_with_the_spool_on(
    broker_deployment: tuple[Deployment, LocalBroker], figures: Figures
) -> None:
    deployment, broker = broker_deployment
    processes = ProcessGroup(deployment, SECRET)
    factory = EventFactory(deployment.prefix, seed=41)
    spool = deployment.tmp / "spool"
    peak = {"spool_records": 0.0, "spool_bytes": 0.0, "spool_oldest_age_seconds": 0.0}
    try:
        source = processes.source(SOURCE_SPOOL_DIR=str(spool))
        source_pid = source.pid
        driver = WebhookDriver(source.url, SECRET, lambda n: factory.evaluation(), RATE).start()
        try:
            wait_until(
                lambda: driver.answered(200) >= BEFORE_SECONDS * RATE, 60, "the stream stored"
            )
            stopped_at = time.time()
            broker.stop()

            def outage_over() -> bool:
                source.check_alive()
                for name, value in _spool_state(source).items():
                    if name in peak:
                        peak[name] = max(peak[name], value)
                return time.time() - stopped_at >= OUTAGE_SECONDS

            wait_until(outage_over, OUTAGE_SECONDS + 60, "the outage to last", interval=1.0)
            ready = httpx.get(f"{source.url}/readyz", timeout=10)
            restarted_at = time.time()
            broker.start()
            back_at = time.time()
            emptied_at = math.nan

            def more_load() -> bool:
                nonlocal emptied_at
                if math.isnan(emptied_at) and _spool_state(source).get("spool_records") == 0:
                    emptied_at = time.time()
                return time.time() - back_at >= AFTER_SECONDS

            wait_until(more_load, AFTER_SECONDS + 30, "more load")
        finally:
            deliveries = driver.stop()
        state = _wait_drained(source)
        drained_at = time.time()
        source.check_alive()
        assert source.pid == source_pid

        worker = processes.worker()
        events = [d.event for d in deliveries]
        accepted = Counter(d.event.event_id for d in deliveries if d.status == 200)
        with OutputReader(deployment) as reader:
            reader.read_ids(accepted, TYPED_SECONDS, [worker])
            wait_until(lambda: idle(worker), 60, "the worker to have no lag")
            reader.drain()
            result = tally(reader, events, accepted)
    finally:
        processes.stop_all()

    raw = _raw_bodies(deployment)
    statuses = http_status_counts(deliveries)
    figures(
        events_sent=len(deliveries),
        http=statuses,
        outage_seconds=round(restarted_at - stopped_at, 1),
        readyz_during_outage=f"{ready.status_code} {ready.text}",
        spooled=state["spooled_total"],
        drained=state["spool_drained_total"],
        spool_peak_records=peak["spool_records"],
        spool_peak_bytes=peak["spool_bytes"],
        spool_peak_oldest_age_seconds=round(peak["spool_oldest_age_seconds"], 1),
        spool_empty_seconds_after_broker_start=round(
            (drained_at if math.isnan(emptied_at) else emptied_at) - back_at, 1
        ),
        raw_records=sum(raw.values()),
        raw_duplicates=sum(raw.values()) - len(raw),
        typed_records=result.typed_records,
        lost=len(result.lost),
        duplicated=result.duplicates,
        p99_answer_seconds=round(percentile([d.latency for d in deliveries], 0.99), 2),
        max_answer_seconds=round(max(d.latency for d in deliveries), 2),
    )
    assert statuses == {"200": len(deliveries)}, statuses
    assert state["spooled_total"] > OUTAGE_SECONDS * RATE * 0.9
    assert ready.status_code == 200 and ready.json()["kafka"] == "unreachable"
    assert all(raw[d.event.body] >= 1 for d in deliveries), "an accepted event not on the raw topic"
    result.check()
    assert result.typed_records == len(deliveries) and result.duplicates == 0


# --- kill -9 with spooled records ----------------------------------------------------------------


@pytest.mark.timeout(600)
def test_kill_9_while_records_are_spooled_loses_nothing(
    deployment: Deployment, processes: ProcessGroup, figures: Figures
) -> None:
    factory = EventFactory(deployment.prefix, seed=43)
    spool = deployment.tmp / "spool"
    events = [factory.evaluation() for _ in range(3000)]

    holding = processes.source("holding", **_spool_env(spool, _unreachable()))
    answers = post_all(holding.url, SECRET, events, concurrency=50)
    held = _spool_state(holding)
    holding.kill()

    # Kafka reachable again: killed once more while it drains (if the drain is not over by then).
    draining = processes.source("draining", **_spool_env(spool, deployment.bootstrap))
    at_kill = wait_until(
        lambda: (s := _spool_state(draining)) and s["spool_drained_total"] > 0 and s,
        60,
        "the drain to begin",
        interval=0.02,
    )
    draining.kill()

    final = processes.source("final", **_spool_env(spool, deployment.bootstrap))
    state = _wait_drained(final)
    raw = _raw_bodies(deployment)
    accepted = [d.event for d in answers if d.status == 200]
    lost = [event.event_id for event in accepted if raw[event.body] == 0]
    figures(
        events_sent=len(events),
        http=http_status_counts(answers),
        spooled_before_kill=held["spooled_total"],
        drained_before_second_kill=at_kill["spool_drained_total"],
        drained_after_restart=state["spool_drained_total"],
        raw_records=sum(raw.values()),
        lost=len(lost),
        duplicated_raw=sum(raw.values()) - len(raw),
    )
    assert len(accepted) == len(events)
    assert held["spooled_total"] == len(events) and held["spool_records"] == len(events)
    assert not lost, lost[:10]
    assert set(raw) == {event.body for event in events}
    # Sent again after the kill mid-drain: at most the chunk in flight and one just acknowledged.
    assert sum(raw.values()) - len(raw) <= 2 * DEFAULT_WINDOW
    assert list(spool.glob("segment-*")) == []


# --- a torn tail and a flipped byte --------------------------------------------------------------


@pytest.mark.timeout(600)
def test_a_damaged_spool_is_reported_and_the_rest_drained(
    deployment: Deployment, processes: ProcessGroup, figures: Figures
) -> None:
    factory = EventFactory(deployment.prefix, seed=47)
    spool = deployment.tmp / "spool"
    events = [factory.evaluation() for _ in range(200)]
    env = _spool_env(spool, _unreachable(), SOURCE_SPOOL_SEGMENT_BYTES="40000")
    holding = processes.source("holding", **env)
    answers = post_all(holding.url, SECRET, events, concurrency=1)  # one frame per write
    holding.kill()
    assert http_status_counts(answers) == {"200": len(events)}

    segments = sorted(spool.glob("segment-*.spool"))
    assert len(segments) >= 3, segments
    # A crash mid-write: the last segment ends with the first half of a frame.
    torn = encode_frame(SpooledRecord(b"torn", b"{}", (), 0))
    with segments[-1].open("ab") as tail:
        tail.write(torn[: len(torn) // 2])
    # Bit rot: a byte in the middle of the first segment's payload flipped.
    first = bytearray(segments[0].read_bytes())
    before = decode_segment(bytes(first)).records
    middle = len(before) // 2
    offset = sum(len(encode_frame(r)) for r in before[:middle]) + FRAME_OVERHEAD + 20
    first[offset] ^= 0xFF
    segments[0].write_bytes(bytes(first))
    survivors = decode_segment(bytes(first)).records
    destroyed = {r.value for r in before} - {r.value for r in survivors}
    assert len(destroyed) == 1

    source = processes.source(
        "draining", **{**env, "KAFKA_BOOTSTRAP_SERVERS": deployment.bootstrap}
    )
    state = _wait_drained(source)
    later = [factory.evaluation() for _ in range(20)]
    after = post_all(source.url, SECRET, later)
    samples = source.metrics()
    damaged = {
        reason: metric_total(samples, "zoom_source_spool_damaged_total", reason=reason)
        for reason in ("truncated", "checksum", "not_a_frame")
    }
    log = source.log()
    raw = _raw_bodies(deployment)
    lost = [e.event_id for e in events if raw[e.body] == 0 and e.body not in destroyed]
    kept = sorted(p.name for p in spool.glob("segment-*"))
    figures(
        events_sent=len(events) + len(later),
        http=http_status_counts([*answers, *after]),
        segments=len(segments),
        damaged_by_reason=damaged,
        drained=state["spool_drained_total"],
        destroyed_by_the_flipped_byte=len(destroyed),
        lost_besides_it=len(lost),
        raw_records=sum(raw.values()),
        duplicated_raw=sum(raw.values()) - len(raw),
        kept_aside=kept,
    )
    assert damaged["truncated"] == 1 and damaged["checksum"] == 1, damaged
    assert log.count("spool segment damaged") == 2, log
    assert not lost, lost[:10]
    assert state["spool_drained_total"] == len(events) - 1
    assert http_status_counts(after) == {"200": len(later)}
    assert all(raw[e.body] == 1 for e in later)
    assert kept == sorted(p.name + DAMAGED_SUFFIX for p in (segments[0], segments[-1]))


# --- a full spool --------------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_a_full_spool_answers_503_and_loses_nothing(
    deployment: Deployment, processes: ProcessGroup, figures: Figures
) -> None:
    factory = EventFactory(deployment.prefix, seed=53)
    spool = deployment.tmp / "spool"
    limit = 64 * 1024
    events = [factory.evaluation() for _ in range(300)]
    env = _spool_env(spool, _unreachable(), SOURCE_SPOOL_MAX_BYTES=str(limit))
    holding = processes.source("holding", **env)
    pid = holding.pid
    answers = post_all(holding.url, SECRET, events, concurrency=20)
    ready = httpx.get(f"{holding.url}/readyz", timeout=10)
    held = _spool_state(holding)
    statuses = http_status_counts(answers)
    refused = [d for d in answers if d.status == 503]
    holding.check_alive()
    assert holding.pid == pid
    assert holding.stop() == 0  # a clean stop keeps the spool

    source = processes.source(
        "draining", **{**env, "KAFKA_BOOTSTRAP_SERVERS": deployment.bootstrap}
    )
    state = _wait_drained(source)
    resent = post_until_stored(source.url, SECRET, [d.event for d in refused])
    raw = _raw_bodies(deployment)
    lost = [e.event_id for e in events if raw[e.body] == 0]
    figures(
        events_sent=len(events),
        http_while_full=statuses,
        spool_limit_bytes=limit,
        spool_bytes_when_full=held["spool_bytes"],
        readyz_when_full=f"{ready.status_code} {ready.text}",
        drained_after_restart=state["spool_drained_total"],
        resent_503s=len(refused),
        resend_attempts=len(resent),
        raw_records=sum(raw.values()),
        lost=len(lost),
        duplicated_raw=sum(raw.values()) - len(raw),
    )
    assert statuses.get("200", 0) > 0 and statuses.get("503", 0) > 0, statuses
    assert set(statuses) == {"200", "503"}, statuses
    assert {d.answer["reason"] for d in refused} == {"spool_full"}
    assert limit - 4096 < held["spool_bytes"] <= limit
    assert held["spooled_total"] == statuses["200"]
    assert ready.status_code == 503 and json.loads(ready.text)["spool"]["full"] is True
    assert state["spool_drained_total"] == statuses["200"]
    assert not lost, lost[:10]
