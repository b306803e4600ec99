"""Soak: a steady stream through source and worker for ten minutes, resources sampled.

Load: ``SOAK_RATE`` signed webhooks per second (default 60) for ``SOAK_SECONDS`` (default 600;
developers may run it shorter, CI runs the full ten minutes) through ``zoom-connector source`` into
``zoom-connector worker`` (aggregates included), evaluations and interaction analyses for 60
agents, every 20th request a retry of an event sent a few seconds earlier (as Zoom re-sends).
The dedup retention is 60 s (purged every 5 s), so the dedup table has a steady size; an agent's
state keeps its last 300 replaceable events (``WORKER_SCORES_MAX_REPLACEABLE``), then folds.

Sampled every 5 s: resident memory (RSS) and open file descriptors of both processes.

Pass: after the warm-up (the first fifth of the run, at least 30 s), RSS grows by at most
``RSS_GROWTH_MB`` per process from its value at the end of the warm-up to the end of the run, and
its least-squares slope over that time stays under ``RSS_SLOPE_MB_PER_MIN``; file descriptors
other than sockets grow by at most ``FD_GROWTH``, and sockets stay under ``SOCKETS_MAX`` (the load
generator keeps at most ``CONNECTIONS`` connections open). No event lost (every 200 has its typed
record), the duplicates counted, no answer but 200 or 503 (counted).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.processes import ChildProcess, Deployment, ProcessGroup, wait_until
from tests.reliability.workload import (
    SECRET,
    Event,
    EventFactory,
    Figures,
    OutputReader,
    WebhookDriver,
    aggregates_wired,
    check_aggregates,
    first_of_each,
    http_status_counts,
    idle,
    percentile,
    tally,
)

pytestmark = pytest.mark.kafka

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
SOAK_RATE = float(os.environ.get("SOAK_RATE", "60"))
SAMPLE_SECONDS = 5.0
WARM_UP_SECONDS = max(30.0, SOAK_SECONDS / 5)
RSS_GROWTH_MB = {"source": 30.0, "worker": 60.0}
RSS_SLOPE_MB_PER_MIN = {"source": 2.0, "worker": 4.0}
FD_GROWTH = 10  # descriptors other than sockets
CONNECTIONS = 50  # the load generator's HTTP connections at most
SOCKETS_MAX = CONNECTIONS + 30  # its connections, Kafka's, the listening ones
AGENTS = [f"soak-agent-{n:02d}" for n in range(60)]
RETRY_EVERY = 20


@dataclass
class Samples:
    """Resource samples of one process: (seconds since start, RSS bytes, open fds, sockets)."""

    points: list[tuple[float, int, int, int]] = field(default_factory=list)

    def after(self, seconds: float) -> list[tuple[float, int, int, int]]:
        return [p for p in self.points if p[0] >= seconds]

    def figures(self, warm_up: float) -> dict[str, float]:
        steady = self.after(warm_up)
        assert len(steady) >= 3, "too few samples after the warm-up"
        start, end = steady[0], steady[-1]
        xs = [p[0] / 60 for p in steady]
        ys = [p[1] / 1e6 for p in steady]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mean_x) ** 2 for x in xs
        )
        return {
            "rss_first_mb": round(self.points[0][1] / 1e6, 1),
            "rss_after_warm_up_mb": round(start[1] / 1e6, 1),
            "rss_final_mb": round(end[1] / 1e6, 1),
            "rss_max_mb": round(max(p[1] for p in steady) / 1e6, 1),
            "rss_growth_mb": round((end[1] - start[1]) / 1e6, 1),
            "rss_slope_mb_per_min": round(slope, 2),
            "fds_after_warm_up": start[2],
            "fds_max": max(p[2] for p in steady),
            "fds_final": end[2],
            "non_socket_fds_after_warm_up": start[2] - start[3],
            "non_socket_fds_max": max(p[2] - p[3] for p in steady),
            "sockets_max": max(p[3] for p in steady),
        }


class Sampler:
    """Samples RSS and open fds of some processes every ``SAMPLE_SECONDS`` in a thread."""

    def __init__(self, processes: dict[str, ChildProcess]) -> None:
        self.processes = processes
        self.samples = {name: Samples() for name in processes}
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic() - self._started
            for name, process in self.processes.items():
                if process.alive():
                    sample = (now, process.rss_bytes(), process.open_fds(), process.open_sockets())
                    self.samples[name].points.append(sample)
            self._stop.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.mark.timeout(SOAK_SECONDS + 900)
def test_soak_steady_rate_memory_and_descriptors_stay_bounded(
    deployment: Deployment, processes: ProcessGroup, figures: Figures
) -> None:
    deployment.extra_env.update(
        {
            "WORKER_DEDUP_RETENTION_SECONDS": "60",
            "WORKER_DEDUP_PURGE_INTERVAL_SECONDS": "5",
            "WORKER_SCORES_MAX_REPLACEABLE": "300",
        }
    )
    source = processes.source()
    worker = processes.worker()
    wait_until(lambda: worker.lag(), 90, "the worker to own its partitions")
    factory = EventFactory(deployment.prefix, seed=41)
    rng = random.Random(42)
    total = int(SOAK_SECONDS * SOAK_RATE)
    sent: list[Event] = []

    def next_event(number: int) -> Event | None:
        if number >= total:
            return None
        if number % RETRY_EVERY == RETRY_EVERY - 1 and len(sent) > 300:
            event = sent[-rng.randrange(100, 300)]  # a retry, 2-5 s after the first try
        elif number % 4 == 3:
            event = factory.interaction()
        else:
            event = factory.evaluation(agent=AGENTS[rng.randrange(len(AGENTS))])
        sent.append(event)
        return event

    sampler = Sampler({"source": source, "worker": worker}).start()
    started = time.monotonic()
    driver = WebhookDriver(
        source.url, SECRET, next_event, SOAK_RATE, connections=CONNECTIONS
    ).start()
    try:
        deliveries = driver.join(SOAK_SECONDS + 300)
    finally:
        sampler.stop()
    took = time.monotonic() - started
    source.check_alive()
    worker.check_alive()

    stored = [d.event for d in deliveries if d.status == 200]
    distinct = first_of_each(stored)
    with OutputReader(deployment) as reader:
        reader.read_ids({e.event_id for e in distinct}, 300, [worker])
        wait_until(lambda: idle(worker), 120, "the worker to catch up")
        reader.drain(120)
        result = tally(reader, distinct, Counter(e.event_id for e in stored))
    resources = {name: s.figures(WARM_UP_SECONDS) for name, s in sampler.samples.items()}
    latencies = [d.latency for d in deliveries if d.status == 200]
    figures(
        soak_seconds=SOAK_SECONDS,
        rate_per_second=round(len(deliveries) / took, 1),
        requests=len(deliveries),
        http=http_status_counts(deliveries),
        p50_ms=round(percentile(latencies, 0.5) * 1000, 1),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 1),
        **result.figures(),
        worker_counted=worker.events_counted(),
        warm_up_seconds=WARM_UP_SECONDS,
        source=resources["source"],
        worker=resources["worker"],
        bounds={
            "rss_growth_mb": RSS_GROWTH_MB,
            "rss_slope_mb_per_min": RSS_SLOPE_MB_PER_MIN,
            "non_socket_fd_growth": FD_GROWTH,
            "sockets_max": SOCKETS_MAX,
        },
    )
    assert all(d.status in (200, 503) for d in deliveries), http_status_counts(deliveries)
    result.check()
    if aggregates_wired():
        answers = check_aggregates([worker], distinct, timeout=180)
        figures(aggregates=f"{len(answers)} agents equal the ground truth")
    for name, figure in resources.items():
        assert figure["rss_growth_mb"] <= RSS_GROWTH_MB[name], (name, figure)
        assert figure["rss_slope_mb_per_min"] <= RSS_SLOPE_MB_PER_MIN[name], (name, figure)
        non_socket_growth = figure["non_socket_fds_max"] - figure["non_socket_fds_after_warm_up"]
        assert non_socket_growth <= FD_GROWTH, (name, figure)
        assert figure["sockets_max"] <= SOCKETS_MAX, (name, figure)
