"""Before/after comparisons of one change: an older revision of ``connector`` against the working
tree, measured in alternating rounds so both see the same noise of a shared machine.

    .venv/bin/python -m bench.ab source  --old REV [--rounds 6] [--seconds 3]
    .venv/bin/python -m bench.ab worker  --old REV [--rounds 2] [--events 15000] [--aggregates on]
    .venv/bin/python -m bench.ab latency --old REV [--rates 50,200,500] [--seconds 8]

``REV``'s ``connector`` package (and its specs and schemas) is extracted with ``git archive`` into
a temporary folder and put first on the ``PYTHONPATH`` of the "old" processes; the "new" ones run
the working tree. ``source``: both sources on Kafka up at once on the server CPU, wrk rounds in
alternating order: acknowledged/s and source CPU per 10,000 requests. ``worker``: the same
pre-filled records drained by each worker in turn (fresh topics per drain): events/s and CPU per
10,000 events. ``latency``: one worker at a time, records written to its raw topic at fixed
rates, raw -> typed latency from the broker's append times (both topics ``LogAppendTime``), so
only the worker and Kafka are measured. Medians are printed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

from bench import requests as request_set
from bench.context import ROOT, SERVERS, Context, Plan
from bench.http_stack.run import _free_port
from bench.kafka_util import Cluster, append_times, outputs_of, prefill, raw_headers
from bench.pipeline import _drain
from bench.procs import SERVER_CPU, Child, progress, wait_http_ok
from bench.report import Report
from bench.stats import per_10k, percentile
from bench.workload import GOOD, Workload, expected_outputs
from bench.wrk import run_wrk

VARIANTS = ("old", "new")


def _extract(rev: str, folder: Path) -> None:
    archive = subprocess.run(
        # pyproject.toml marks the folder a checkout, so connector.paths finds specs/ and schemas/
        ["git", "archive", rev, "connector", "specs", "schemas", "pyproject.toml"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")


def _order(round_: int) -> tuple[str, ...]:
    return VARIANTS if round_ % 2 == 0 else tuple(reversed(VARIANTS))


def _context(bootstrap: str, name: str, workdir: Path) -> Context:
    report = Report("ab", "ab", "", 0.0, {}, {}, {})
    return Context(Plan.quick(), bootstrap, Cluster(bootstrap), name, workdir, report)


def ab_source(args: argparse.Namespace, old_path: Path, workdir: Path) -> dict[str, list[Any]]:
    ctx = _context(args.bootstrap, f"ab{int(time.time()) % 100000}", workdir)
    prefix = ctx.prefix("src")
    ctx.cluster.create(prefix)
    signed = request_set.sign(Workload(run_id=prefix).events(2000), time.time())
    lines = workdir / "set.tsv"
    request_set.write_wrk_lines(lines, signed)
    servers: dict[str, tuple[Child, int]] = {}
    found: dict[str, list[Any]] = {v: [] for v in VARIANTS}
    try:
        for variant in VARIANTS:
            port = _free_port()
            extra = {"PYTHONPATH": str(old_path)} if variant == "old" else {}
            env = {**ctx.env(BENCH_TOPIC_PREFIX=prefix), **extra}
            argv = [sys.executable, str(SERVERS), "source-kafka", "--port", str(port)]
            child = Child(variant, argv, log_path=workdir / f"{variant}.log", cpu=SERVER_CPU,
                          env=env, cwd=SERVERS.parent)  # fmt: skip
            servers[variant] = (child, port)
            wait_http_ok(f"http://127.0.0.1:{port}/healthz", child, 60)
            run_wrk(port, lines, 1, 50)
        for n in range(args.rounds):
            for variant in _order(n):
                child, port = servers[variant]
                cpu0 = child.cpu() or 0.0
                result = run_wrk(port, lines, args.seconds, 50)
                cpu = per_10k((child.cpu() or 0.0) - cpu0, result["ok_rps"] * args.seconds)
                found[variant].append((result["ok_rps"], cpu))
                progress(f"{variant} round {n + 1}: {result['ok_rps']:,.0f}/s, {cpu:.2f} CPU s/10k")
    finally:
        for child, _ in servers.values():
            child.stop()
        ctx.cluster.delete_prefix(prefix)
    return found


def ab_worker(args: argparse.Namespace, old_path: Path, workdir: Path) -> dict[str, list[Any]]:
    ctx = _context(args.bootstrap, f"ab{int(time.time()) % 100000}", workdir)
    workload = Workload(run_id=ctx.run_id)
    warm, measured = list(workload.events(2000)), list(workload.events(args.events))
    found: dict[str, list[Any]] = {v: [] for v in VARIANTS}
    for n in range(args.rounds):
        for variant in _order(n):
            prefix = ctx.prefix(f"{variant}{n}")
            names = ctx.cluster.create(prefix)
            prefill(ctx.bootstrap, names.raw, [*warm, *measured])
            ctx.extra_env = {"PYTHONPATH": str(old_path)} if variant == "old" else {}
            try:
                child, _ = ctx.start_worker(
                    prefix, f"{variant}{n}", aggregates=args.aggregates == "on"
                )
                try:
                    base = expected_outputs(warm)
                    ctx.watch(
                        outputs_of(names), base, child, timeout=300, label=f"{variant} warm-up"
                    )
                    result = _drain(ctx, child, outputs_of(names), base,
                                    expected_outputs(measured), len(measured), variant)  # fmt: skip
                    found[variant].append((result["rate"], result["cpu_per_10k"]))
                finally:
                    child.stop()
            finally:
                ctx.extra_env = {}
                ctx.cluster.delete_prefix(prefix)
    return found


def ab_latency(args: argparse.Namespace, old_path: Path, workdir: Path) -> dict[str, list[Any]]:
    rates = [int(r) for r in args.rates.split(",")]
    found: dict[str, list[Any]] = {v: [] for v in VARIANTS}
    for variant in VARIANTS:
        ctx = _context(args.bootstrap, f"ab{int(time.time()) % 100000}", workdir)
        if variant == "old":
            ctx.extra_env = {"PYTHONPATH": str(old_path)}
        prefix = ctx.prefix(f"lat-{variant}")
        names = ctx.cluster.create(prefix, log_append_time=True)
        entry = ConfigEntry("message.timestamp.type", "LogAppendTime",
                            incremental_operation=AlterConfigOpType.SET)  # fmt: skip
        resource = ConfigResource("topic", names.raw, incremental_configs=[entry])
        for future in ctx.cluster.admin.incremental_alter_configs([resource]).values():
            future.result()
        workload = Workload(run_id=prefix)
        child, _ = ctx.start_worker(prefix, f"lat-{variant}", cpu=None)
        try:
            out = Producer({"bootstrap.servers": ctx.bootstrap, "enable.idempotence": True,
                            "acks": "all", "linger.ms": 5})  # fmt: skip
            warm = list(workload.events(300))
            for event in warm:
                out.produce(names.raw, event.body, key=event.raw_key,
                            headers=raw_headers(event, time.time()))  # fmt: skip
            out.flush(10)
            ctx.watch(outputs_of(names), expected_outputs(warm), child, timeout=120, label="warm")
            for rate in rates:
                events = list(workload.events(int(rate * args.seconds)))
                cpu0, start = child.cpu() or 0.0, time.monotonic()
                for i, event in enumerate(events):
                    due = start + i / rate
                    while (wait := due - time.monotonic()) > 0:
                        out.poll(min(wait, 0.001))
                    out.produce(names.raw, event.body, key=event.raw_key,
                                headers=raw_headers(event, time.time()))  # fmt: skip
                out.flush(10)
                time.sleep(3)
                cpu = per_10k((child.cpu() or 0.0) - cpu0, len(events))
                raw = append_times(ctx.bootstrap, [names.raw])
                typed = append_times(ctx.bootstrap, outputs_of(names)[:-1])
                lat = [typed[e.typed_key][0] - raw[e.raw_key][0] for e in events
                       if e.kind == GOOD and e.typed_key in typed and e.raw_key in raw]  # fmt: skip
                p50, p99 = percentile(lat, 50), percentile(lat, 99)
                found[variant].append((rate, p50, p99, cpu))
                progress(f"{variant} {rate}/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
                         f"{cpu:.2f} CPU s/10k")  # fmt: skip
        finally:
            child.stop()
            ctx.cluster.delete_prefix(prefix)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ab", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("what", choices=["source", "worker", "latency"])
    parser.add_argument("--old", required=True, help="the git revision to compare against")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--events", type=int, default=15_000)
    parser.add_argument("--aggregates", choices=["on", "off"], default="on")
    parser.add_argument("--rates", default="50,200,500")
    args = parser.parse_args()
    args.bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    if args.what == "source":
        args.rounds, args.seconds = args.rounds or 6, args.seconds or 3.0
    elif args.what == "worker":
        args.rounds = args.rounds or 2
    else:
        args.seconds = args.seconds or 8.0
    if not 1 <= (args.rounds or 1) <= 20 or not 0 < (args.seconds or 1) <= 60:
        parser.error("--rounds within 1..20, --seconds within (0, 60]")
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as folder:
        old_path = Path(folder) / "old"
        _extract(args.old, old_path)
        workdir = Path(folder) / "work"
        workdir.mkdir()
        run = {"source": ab_source, "worker": ab_worker, "latency": ab_latency}[args.what]
        found = run(args, old_path, workdir)
    for variant, results in found.items():
        print(f"{variant} ({args.old if variant == 'old' else 'working tree'}): {results}")
        if args.what in ("source", "worker") and results:
            rate = statistics.median(r[0] for r in results)
            cpu = statistics.median(r[1] for r in results)
            print(f"  median {rate:,.0f}/s, median {cpu:.2f} CPU s per 10,000")


if __name__ == "__main__":
    main()
