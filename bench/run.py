"""Benchmark the connector on this machine, each figure beside its ceiling from the same run.

    .venv/bin/python -m bench [--quick] [--backlog N] [--agents 1000,10000,100000]
        [--pipeline-events N] [--scenarios ingest,pipeline,e2e,growth] [--out bench/results]
        [--no-latest] [--profile]

Scenarios (see each module): ``ingest`` (bench.ingest), ``pipeline`` (bench.pipeline), ``e2e``
(bench.e2e), ``growth`` (bench.pipeline.run_growth); costs (CPU, RSS) come with the first two.
The broker is ``KAFKA_BOOTSTRAP_SERVERS`` (default ``localhost:9092``); when nothing answers there
and the variable is unset, the connector's local launcher starts one (left running, as the tests
do). Every topic the bench creates is named ``bench-<run>-...`` and deleted at the end of its
scenario. Progress goes to stderr; the results to ``<out>/<timestamp>.json`` and ``.md`` and,
unless ``--no-latest``, ``<out>/latest.md``; logs of the child processes to
``<out>/<timestamp>.tmp/`` (ignored by git).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import traceback
from pathlib import Path

from bench import e2e, ingest, pipeline
from bench.context import Context, Plan
from bench.kafka_util import Cluster
from bench.machine import broker, machine, versions
from bench.procs import LOAD_CPU, progress
from bench.report import Report, Target, render_markdown

SCENARIOS = {
    "ingest": ingest.run,
    "pipeline": pipeline.run,
    "e2e": e2e.run,
    "growth": pipeline.run_growth,
}
TARGETS = [
    Target("ingest.saturation", "ingest >= 70 % of the no-Kafka HTTP ceiling", at_least_ratio=0.70),
    Target("pipeline.rate", "pipeline >= 50 % of the plain-loop ceiling", at_least_ratio=0.50),
    Target("e2e.p99_at_500", "end-to-end p99 <= 100 ms at 500 events/s", at_most_figure=100.0),
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a short smoke run (about 3 min)")
    parser.add_argument("--backlog", type=int, default=None, help="events in the backlog run")
    parser.add_argument("--agents", default=None, help="agent counts of the growth run")
    parser.add_argument("--scenarios", default=None, help=f"subset of {','.join(SCENARIOS)}")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--pipeline-events", type=int, default=None, help="measured raw records")
    parser.add_argument("--no-latest", action="store_true", help="do not update latest.md")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy profiles of the source and worker"
    )
    return parser


def _plan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Plan:
    plan = Plan.quick() if args.quick else Plan.full()
    if args.backlog is not None:
        if not 1_000 <= args.backlog <= 5_000_000:
            parser.error("--backlog must be within 1,000 and 5,000,000")
        plan.backlog = args.backlog
    if args.pipeline_events is not None:
        if not 1_000 <= args.pipeline_events <= 5_000_000:
            parser.error("--pipeline-events must be within 1,000 and 5,000,000")
        plan.pipeline_events = args.pipeline_events
    if args.agents:
        plan.growth_agents = [int(a) for a in args.agents.split(",") if a.strip()]
        if any(not 2 <= a <= 1_000_000 for a in plan.growth_agents):
            parser.error("--agents: each count must be within 2 and 1,000,000")
    if args.scenarios:
        plan.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
        unknown = set(plan.scenarios) - set(SCENARIOS)
        if unknown:
            parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return plan


def _find_broker() -> str:
    from connector.kafka.local_broker import LocalBroker, broker_answers

    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    bootstrap = configured or "localhost:9092"
    if broker_answers(bootstrap, timeout=10.0):
        return bootstrap
    if configured:
        raise SystemExit(f"KAFKA_BOOTSTRAP_SERVERS={configured} does not answer")
    progress("no broker at localhost:9092: starting the local one (zoom-connector kafka start)")
    return LocalBroker().ensure_started()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    plan = _plan(args, parser)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {LOAD_CPU})  # the bench itself stays off the measured CPU
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_id = time.strftime("%H%M%S", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = args.out / f"{stamp}.tmp"
    workdir.mkdir()
    bootstrap = _find_broker()
    broker_version, broker_pid = broker(bootstrap)
    started = time.monotonic()
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    report = Report(
        title=f"zoom-kafka-connector benchmark ({plan.name} run)",
        command=command.strip(),
        started_at=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        duration_s=0.0,
        machine=machine(),
        versions=versions(broker_version),
        settings={
            "broker": bootstrap,
            "partitions": 6,
            "pinning": f"measured process on CPU 0, load generators and bench on CPU {LOAD_CPU}, "
            "broker unpinned; end to end: source and worker unpinned",
            "ingest": f"wrk 1 thread {plan.wrk_connections} connections, {plan.wrk_rounds} rounds "
            f"of {plan.wrk_seconds / plan.wrk_rounds:g} s per server, alternating (after "
            f"{plan.wrk_warmup_seconds:g} s warm-up), 2,000 distinct pre-signed bodies; "
            f"fixed rates {plan.rates} for {plan.rate_seconds:g} s each",
            "pipeline": f"{plan.pipeline_warmup:,} warm-up + {plan.pipeline_events:,} measured "
            f"raw records, {plan.agents:,} agents, ~3 % bad, ~2 % retries",
            "e2e": f"{plan.e2e_rate}/s for {plan.e2e_seconds:g} s"
            + (f", then {plan.e2e_extra_rates}/s" if plan.e2e_extra_rates else ""),
            "growth": f"agents {plan.growth_agents} with {plan.growth_events:,} events each; "
            f"backlog {plan.backlog:,}",
            "worker": "defaults (WORKER_BATCH_SIZE=500, WORKER_BATCH_SECONDS=0.2, memory:// "
            "store, aggregates on)",
        },
        targets=list(TARGETS),
    )
    ctx = Context(plan, bootstrap, Cluster(bootstrap), run_id, workdir, report, broker_pid)
    if args.profile:
        from bench.profile import available

        if not available():
            parser.error("--profile needs py-spy: pip install -e '.[bench]'")
        ctx.profile = True
        report.notes.append("Profiled run (py-spy attached): figures are a little low.")
    progress(f"bench {plan.name}: {', '.join(plan.scenarios)} on {bootstrap}; logs in {workdir}")
    for name in plan.scenarios:
        began = time.monotonic()
        try:
            SCENARIOS[name](ctx)
        except Exception as exc:
            progress(f"{name} failed: {exc!r}")
            traceback.print_exc()
            last = (str(exc).strip().splitlines() or [""])[-1]
            report.notes.append(f"Scenario {name} failed: {type(exc).__name__}: {last}")
        report.details.setdefault("scenario_seconds", {})[name] = time.monotonic() - began
        progress(f"{name} done in {time.monotonic() - began:.0f} s")
    report.duration_s = time.monotonic() - started
    report.machine["load_after"] = machine()["load_before"]
    json_path = args.out / f"{stamp}.json"
    md_path = args.out / f"{stamp}.md"
    json_path.write_text(report.to_json())
    markdown = render_markdown(report)
    md_path.write_text(markdown)
    if not args.no_latest:
        (args.out / "latest.md").write_text(markdown)
    print(markdown)
    progress(f"results: {json_path} and {md_path}")
    return 0
