"""What every scenario shares: the plan, the broker, the report, and how to run the connector's
processes (source, worker, plain loop) and watch their output topics."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from bench.http_stack.run import _free_port
from bench.kafka_util import PARTITIONS, Cluster
from bench.procs import SERVER_CPU, Child, progress, wait_http_ok
from bench.report import Report
from bench.stats import crossing_time
from bench.worker_main import IMPORTED_FROM

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVERS = HERE / "http_stack" / "servers.py"
POLL_SECONDS = 0.1


@dataclass
class Plan:
    """How much of everything one run does; ``quick()`` and ``full()`` are the two presets."""

    name: str
    scenarios: list[str]
    wrk_seconds: float
    """Per server, over all rounds."""
    wrk_rounds: int
    wrk_warmup_seconds: float
    wrk_connections: int
    rates: list[int]
    rate_seconds: float
    producer_seconds: float
    pipeline_warmup: int
    pipeline_events: int
    agents: int
    aggregates_off_run: bool
    codec_loop_run: bool
    faust_floor_run: bool
    peer_run: bool
    """The Quix Streams peer (:mod:`bench.quix_peer`) on the pipeline's records."""
    e2e_rate: int
    e2e_seconds: float
    e2e_extra_rates: list[int]
    growth_agents: list[int]
    growth_events: int
    backlog: int

    @classmethod
    def full(cls) -> Plan:
        return cls(
            name="full",
            scenarios=["ingest", "pipeline", "e2e", "growth"],
            wrk_seconds=15,
            wrk_rounds=3,
            wrk_warmup_seconds=2,
            wrk_connections=50,
            rates=[500, 2000],
            rate_seconds=10,
            producer_seconds=10,
            pipeline_warmup=5_000,
            pipeline_events=40_000,
            agents=1_000,
            aggregates_off_run=True,
            codec_loop_run=True,
            faust_floor_run=True,
            peer_run=True,
            e2e_rate=500,
            e2e_seconds=20,
            e2e_extra_rates=[2000],
            growth_agents=[1_000, 10_000, 100_000],
            growth_events=20_000,
            backlog=200_000,
        )

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            name="quick",
            scenarios=["ingest", "pipeline", "e2e", "growth"],
            wrk_seconds=4,
            wrk_rounds=2,
            wrk_warmup_seconds=1,
            wrk_connections=50,
            rates=[500, 2000],
            rate_seconds=3,
            producer_seconds=3,
            pipeline_warmup=1_000,
            pipeline_events=5_000,
            agents=1_000,
            aggregates_off_run=False,
            codec_loop_run=False,
            faust_floor_run=False,
            peer_run=False,
            e2e_rate=500,
            e2e_seconds=5,
            e2e_extra_rates=[],
            growth_agents=[1_000],
            growth_events=4_000,
            backlog=10_000,
        )


@dataclass
class Context:
    plan: Plan
    bootstrap: str
    cluster: Cluster
    run_id: str
    workdir: Path
    report: Report
    broker_pid: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    """Added to every child's environment (bench.ab: PYTHONPATH of an older revision)."""
    profile: bool = False
    """Attach py-spy to the source and the worker while they are measured (bench.profile)."""
    results: dict[str, Any] = field(default_factory=dict)
    """Figures one scenario leaves for another (the plain loop's rate for the growth rows)."""

    def profiling(self, child: Child, name: str) -> Any:
        """A py-spy profile of ``child`` when ``--profile`` asked for it, else ``None``."""
        if not self.profile:
            return None
        from bench.profile import Profile

        return Profile(child.pid, self.workdir, name)

    def finish_profile(self, profile: Any) -> None:
        if profile is None:
            return
        found = profile.stop()
        self.report.details.setdefault("profiles", {})[profile.name] = {
            "summary": str(profile.summary_path),
            "folded": str(profile.folded),
            "svg": str(profile.svg),
            "top_self": found.get("self", [])[:10],
            "top_connector": found.get("connector_inclusive", [])[:10],
        }
        progress(f"  profile: {profile.summary_path}, flame graph: {profile.svg}")

    def prefix(self, name: str) -> str:
        return f"bench-{self.run_id}-{name}"

    def broker_cpu(self) -> float | None:
        from bench.procs import cpu_seconds

        return cpu_seconds(self.broker_pid) if self.broker_pid else None

    # --- processes ------------------------------------------------------------------------

    def env(self, **more: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "SOURCE_"))}
        # BENCH_WORKER_X / BENCH_SOURCE_X set the measured processes' WORKER_X / SOURCE_X (to try
        # a setting); the ordinary variables are left out so a shell's leftovers cannot skew a run.
        tried = {
            k.removeprefix("BENCH_"): v
            for k, v in os.environ.items()
            if k.startswith(("BENCH_WORKER_", "BENCH_SOURCE_"))
        }
        env.update(KAFKA_BOOTSTRAP_SERVERS=self.bootstrap, **tried, **self.extra_env, **more)
        return env

    def start_worker(
        self,
        prefix: str,
        name: str,
        *,
        aggregates: bool = True,
        cpu: int | None = SERVER_CPU,
        floor: str | None = None,
    ) -> tuple[Child, int]:
        """The connector's worker on ``prefix``'s topics (``floor``: Faust alone,
        :mod:`bench.faust_floor`, writing with ``"faust"`` or ``"librdkafka"``); returns it and
        its web port once ``/metrics`` answers."""
        port = _free_port()
        env = self.env(
            TOPIC_PREFIX=prefix,
            TOPIC_PARTITIONS=str(PARTITIONS),
            WORKER_ID=worker_id(prefix),
            WORKER_WEB_PORT=str(port),
            WORKER_DATA_DIR=str(self.workdir / f"{name}-data"),
        )
        argv = [sys.executable, "-m", "bench.worker_main"]
        argv += ["--aggregates", "on" if aggregates else "off"]
        if floor is not None:
            argv += ["--floor", floor]
        # `python -m` puts its working folder first on sys.path, before PYTHONPATH: run from the
        # work folder, so an older revision's connector on PYTHONPATH (bench.ab) is the one
        # imported, with this checkout after it for the bench package (and the current connector).
        expected = Path(self.extra_env.get("PYTHONPATH") or ROOT)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (self.extra_env.get("PYTHONPATH"), str(ROOT)) if p
        )
        log_path = self.workdir / f"{name}.log"
        child = Child(name, argv, log_path=log_path, cpu=cpu, env=env, cwd=self.workdir)
        try:
            wait_http_ok(f"http://127.0.0.1:{port}/metrics", child, timeout=120)
            running = f"{IMPORTED_FROM}{(expected / 'connector').resolve()}\n"
            if running not in log_path.read_text(errors="replace"):
                raise RuntimeError(f"{name} does not run the connector of {expected}: {log_path}")
        except Exception:
            child.stop()
            raise
        return child, port

    def start_source(
        self, stack: str, prefix: str, *, cpu: int | None = SERVER_CPU
    ) -> tuple[Child, int]:
        """``bench/http_stack/servers.py`` ``source-app`` (in-memory producer) or ``source-kafka``
        (the real source on ``prefix``'s raw topic)."""
        port = _free_port()
        argv = [sys.executable, str(SERVERS), stack, "--port", str(port)]
        env = self.env(BENCH_TOPIC_PREFIX=prefix)
        child = Child(
            stack, argv, log_path=self.workdir / f"{stack}-{prefix}.log", cpu=cpu, env=env,
            cwd=SERVERS.parent,
        )  # fmt: skip
        try:
            wait_http_ok(f"http://127.0.0.1:{port}/healthz", child, timeout=60)
        except Exception:
            child.stop()
            raise
        return child, port

    def start_plain_loop(
        self, raw_topic: str, out_prefix: str, name: str, codec: str = "plain"
    ) -> Child:
        argv = [
            sys.executable, "-m", "bench.plain_loop", "--bootstrap", self.bootstrap,
            "--raw-topic", raw_topic, "--out-prefix", out_prefix, "--group", f"{out_prefix}-loop",
            "--codec", codec, "--max-seconds", "1800",
        ]  # fmt: skip
        return Child(
            name, argv, log_path=self.workdir / f"{name}.log", cpu=SERVER_CPU, env=self.env(),
            cwd=ROOT,
        )  # fmt: skip

    def start_quix_peer(self, raw_topic: str, out_prefix: str, group: str, name: str) -> Child:
        """The Quix Streams peer (:mod:`bench.quix_peer`) in its own virtualenv
        (:mod:`bench.quix_env`), pinned like the worker; writes under ``out_prefix``."""
        from bench import quix_env

        argv = [
            str(quix_env.python()), "-m", "bench.quix_peer", "--bootstrap", self.bootstrap,
            "--raw-topic", raw_topic, "--out-prefix", out_prefix, "--group", group,
            "--state-dir", str(self.workdir / f"{name}-state"),
        ]  # fmt: skip
        return Child(
            name, argv, log_path=self.workdir / f"{name}.log", cpu=SERVER_CPU,
            env=self.env(**quix_env.env()), cwd=ROOT,
        )  # fmt: skip

    # --- watching outputs -----------------------------------------------------------------

    def watch(
        self,
        topics: list[str],
        target: int,
        child: Child | None,
        *,
        timeout: float,
        label: str,
    ) -> list[tuple[float, int, float]]:
        """Poll the record count of ``topics`` until it reaches ``target`` (or ``timeout``);
        returns ``(monotonic time, count, child CPU seconds)`` samples, with progress lines."""
        series: list[tuple[float, int, float]] = []
        start = time.monotonic()
        deadline = start + timeout
        last_print = start
        while True:
            now = time.monotonic()
            count = self.cluster.end_offsets(topics)
            cpu = (child.cpu() if child is not None else None) or 0.0
            series.append((now, count, cpu))
            if count >= target:
                break
            if child is not None and not child.alive():
                raise RuntimeError(f"{child.name} exited:\n{child.log_tail()}")
            if now > deadline:
                progress(f"  {label}: gave up after {timeout:.0f} s at {count:,}/{target:,}")
                break
            if now - last_print >= 3:
                first = next((s for s in series if s[1] > series[0][1]), None)
                speed = ""
                if first is not None and now > first[0]:
                    speed = f", {(count - first[1]) / (now - first[0]):,.0f}/s"
                progress(f"  {label}: {count:,}/{target:,} records{speed}")
                last_print = now
            time.sleep(POLL_SECONDS)
        return series

    def committed_lag(self, group: str, topics: list[str]) -> int | None:
        """Records of ``topics`` not yet committed by consumer group ``group`` (``None``: no
        such topic)."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            partitions = []
            for topic in topics:
                count = self.cluster.partitions(topic)
                if count == 0:
                    return None
                partitions += [TopicPartition(topic, p) for p in range(count)]
            committed = consumer.committed(partitions, timeout=10)
            lag = 0
            for tp in committed:
                _, high = consumer.get_watermark_offsets(tp, timeout=10)
                lag += max(0, high - max(tp.offset, 0))
            return lag
        finally:
            consumer.close()

    def consumed(self, group: str, topics: list[str]) -> list[str]:
        """Those of ``topics`` that consumer group ``group`` has committed offsets on (the
        aggregates read the typed topics in older trees, the internal topic only today)."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            found = []
            for topic in topics:
                count = self.cluster.partitions(topic)
                partitions = [TopicPartition(topic, p) for p in range(count)]
                committed = consumer.committed(partitions, timeout=10) if partitions else []
                if any(tp.offset >= 0 for tp in committed):
                    found.append(topic)
            return found
        finally:
            consumer.close()


def worker_id(prefix: str) -> str:
    return f"{prefix}-worker"


def window(
    series: list[tuple[float, int, float]], base: int, outputs: int
) -> tuple[float, float, float] | None:
    """The measured window of a drain: from 1 % to 100 % of ``outputs`` records above ``base``.

    Returns ``(seconds, share of the records in the window, child CPU seconds in it)``; the 1 %
    start leaves the consumer's start-up out.
    """
    points = [(t, float(c)) for t, c, _ in series]
    start = crossing_time(points, base + 0.01 * outputs)
    end = crossing_time(points, base + outputs)
    if start is None or end is None or end <= start:
        return None
    return end - start, 0.99, _cpu_at(series, end) - _cpu_at(series, start)


def _cpu_at(series: list[tuple[float, int, float]], when: float) -> float:
    previous = series[0]
    for sample in series:
        if sample[0] >= when:
            span = sample[0] - previous[0]
            if span <= 0:
                return sample[2]
            share = (when - previous[0]) / span
            return previous[2] + (sample[2] - previous[2]) * share
        previous = sample
    return series[-1][2]
