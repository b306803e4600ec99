"""Before/after drain of one change, counting all of the worker's work: the aggregates included.

    .venv/bin/python -m bench.drain_all --old REV [--rounds 2] [--events 30000] [--agents 10000]

``bench.ab worker`` times the drain by its typed outputs only; the aggregates' agents (re-keying,
aggregating) run behind the raw agent and much of their work falls after that window, so a short
drain shows less CPU per event than a long backlog (where every stage must keep pace). Here each
worker (``REV``'s connector, then the working tree's, alternating per round, both pinned to the
measured CPU) first finishes a warm-up; then the measured records are written to its raw topic
and the clock and its CPU run until its consumer group has committed every record of the raw
topic, the aggregates' internal topic and, for a tree whose aggregates read the typed topics
(before the re-keying moved into the raw agent), those typed topics. Printed per run: events/s
over the whole drain, events/s until the typed outputs were complete, CPU seconds per 10,000
events, and the share of a core the worker used.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.ab import VARIANTS, _context, _extract, _order
from bench.context import Context, worker_id
from bench.kafka_util import outputs_of, prefill
from bench.procs import cpu_seconds, progress
from bench.workload import Workload, expected_outputs
from connector.topics import TopicNames
from connector.worker.aggregates.events import EVENT_TYPES
from connector.worker.aggregates.rekeying import events_topic_name


def _committed(ctx: Context, prefix: str, topics: list[str], timeout: float) -> None:
    start = time.monotonic()
    while ctx.committed_lag(worker_id(prefix), topics) != 0:
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{prefix}: not all records committed within {timeout:.0f} s")
        time.sleep(0.2)


def drain(ctx: Context, prefix: str, name: str, agents: int, events: int) -> dict[str, Any]:
    workload = Workload(run_id=f"{ctx.run_id}-{name}", agents=agents)
    warm, measured = list(workload.events(2000)), list(workload.events(events))
    names = ctx.cluster.create(prefix)
    topics = [names.raw, events_topic_name(worker_id(prefix))]
    typed = [TopicNames(prefix).typed(t) for t in EVENT_TYPES]
    try:
        prefill(ctx.bootstrap, names.raw, warm)
        child, _ = ctx.start_worker(prefix, name)
        try:
            base = expected_outputs(warm)
            ctx.watch(outputs_of(names), base, child, timeout=300, label=f"{name} warm-up")
            _committed(ctx, prefix, topics, 300)
            topics += ctx.consumed(worker_id(prefix), typed)
            _committed(ctx, prefix, topics, 300)
            cpu0, start = cpu_seconds(child.pid) or 0.0, time.monotonic()
            prefill(ctx.bootstrap, names.raw, measured)
            expected = base + expected_outputs(measured)
            ctx.watch(outputs_of(names), expected, child, timeout=1800, label=name)
            typed_done = time.monotonic()
            _committed(ctx, prefix, topics, 1800)
            done, cpu = time.monotonic(), (cpu_seconds(child.pid) or 0.0) - cpu0
        finally:
            child.stop()
    finally:
        ctx.cluster.delete_prefix(prefix)
    result = {
        "rate": events / (done - start),
        "typed_rate": events / (typed_done - start),
        "cpu_per_10k": cpu * 10_000 / events,
        "core_share": cpu / (done - start),
    }
    progress(
        f"  {name}: {result['rate']:,.0f} events/s all done ({result['typed_rate']:,.0f}/s typed),"
        f" {result['cpu_per_10k']:.2f} CPU s/10k, {result['core_share']:.0%} of a core"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.drain_all", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--old", required=True, help="the git revision to compare against")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--agents", type=int, default=10_000)
    args = parser.parse_args()
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds within 1..20")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    found: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as folder:
        old_path = Path(folder) / "old"
        _extract(args.old, old_path)
        workdir = Path(folder) / "work"
        workdir.mkdir()
        ctx = _context(bootstrap, f"da{int(time.time()) % 100000}", workdir)
        for n in range(args.rounds):
            for variant in _order(n):
                ctx.extra_env = {"PYTHONPATH": str(old_path)} if variant == "old" else {}
                name = f"{variant}{n}"
                found[variant].append(drain(ctx, ctx.prefix(name), name, args.agents, args.events))
    for variant, results in found.items():
        label = args.old if variant == "old" else "working tree"
        print(f"{variant} ({label}):")
        for key in ("rate", "typed_rate", "cpu_per_10k", "core_share"):
            values = [r[key] for r in results]
            shown = ", ".join(f"{v:,.2f}" for v in values)
            print(f"  {key}: {shown} (median {statistics.median(values):,.2f})")


if __name__ == "__main__":
    sys.exit(main())
