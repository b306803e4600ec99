"""End to end: from the POST leaving the load generator to the record stored on its typed topic,
at a fixed offered rate, through the real source, the broker and one worker (aggregates on).

The typed topics of this scenario are created with ``message.timestamp.type=LogAppendTime``, so a
typed record's timestamp is when the broker stored it; the load generator records when it wrote
each request (same host, same clock). Records are matched by their typed key, unique per event.
The ceiling: confluent-kafka's producer writing the same records at the same rate, a plain
consume -> fastavro -> produce loop, the same append-time topics (no HTTP, no Faust).
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench import requests as request_set
from bench.context import Context
from bench.ingest import run_loadgen, run_raw_producer
from bench.kafka_util import append_times, outputs_of
from bench.procs import progress
from bench.report import LOWER, Row
from bench.stats import per_10k, percentile, summary
from bench.workload import GOOD, Workload, expected_outputs

WARMUP_SECONDS = 10
"""Each path is warmed up at the first measured rate for this long before the measurement: a
freshly started worker falls behind for its first seconds at 500/s (every agent is new to its
table, batches are small until a backlog makes them larger) and catches up within about ten (the
median per second of an earlier run: 196, 679, 848, 726, 415, 236, 201, 144, 57, 46, 31 ms, then
24-63 ms), so without it the p99 measured that cold start rather than the rate."""


def run(ctx: Context) -> None:
    plan = ctx.plan
    prefix = ctx.prefix("e2e")
    names = ctx.cluster.create(prefix, log_append_time=True)
    plain_prefix = f"{prefix}-plain"
    plain_names = ctx.cluster.create(plain_prefix, log_append_time=True)
    workload = Workload(run_id=f"{ctx.run_id}-e", agents=plan.agents)
    now = time.time()
    warm = list(workload.events(plan.e2e_rate * WARMUP_SECONDS))
    phases = [(plan.e2e_rate, plan.e2e_seconds)]
    phases += [(r, min(plan.e2e_seconds, 10)) for r in plan.e2e_extra_rates]
    sets = [list(workload.events(int(r * s))) for r, s in phases]
    warm_path = ctx.workdir / "e2e-warm.jsonl"
    request_set.write(warm_path, request_set.sign(warm, now))
    paths = []
    for n, events in enumerate(sets):
        path = ctx.workdir / f"e2e-set-{n}.jsonl"
        request_set.write(path, request_set.sign(events, now))
        paths.append(path)
    found: dict[str, Any] = {"phases": []}
    outputs = outputs_of(names)
    try:
        progress("e2e: worker and source (real source, Kafka, worker with aggregates)")
        worker, _ = ctx.start_worker(prefix, "worker-e2e", cpu=None)
        try:
            source, port = ctx.start_source("source-kafka", prefix, cpu=None)
            try:
                progress(f"e2e: warm-up at {plan.e2e_rate}/s for {WARMUP_SECONDS} s")
                run_loadgen(port, warm_path, plan.e2e_rate, WARMUP_SECONDS)
                base = expected_outputs(warm)
                ctx.watch(outputs, base, worker, timeout=120, label="e2e warm-up")
                for (offered, seconds), events, path in zip(phases, sets, paths, strict=True):
                    times = ctx.workdir / f"e2e-times-{offered}.json"
                    cpu0 = (source.cpu() or 0.0, worker.cpu() or 0.0)
                    progress(f"e2e: {offered}/s for {seconds:.0f} s")
                    profile = ctx.profiling(worker, f"worker-e2e-{offered}")
                    load = run_loadgen(port, path, offered, seconds, times=times)
                    ctx.finish_profile(profile)
                    base += expected_outputs(events)
                    ctx.watch(outputs, base, worker, timeout=60, label=f"e2e {offered}/s")
                    cpu = ((source.cpu() or 0.0) - cpu0[0], (worker.cpu() or 0.0) - cpu0[1])
                    sent = json.loads(times.read_text())
                    by_key = {
                        e.typed_key: t
                        for e, t, s in zip(events, sent["send_wall"], sent["status"], strict=True)
                        if e.kind == GOOD and t is not None and s == 200
                    }
                    latency = _latencies(ctx, outputs[:-1], by_key)
                    good = sum(1 for e in events if e.kind == GOOD)
                    found["phases"].append({
                        "offered_rate": offered, "seconds": seconds, "load": load,
                        "typed_expected": good, "latency_ms": latency,
                        "source_cpu_per_10k": per_10k(cpu[0], len(events)),
                        "worker_cpu_per_10k": per_10k(cpu[1], len(events)),
                    })  # fmt: skip
                    progress(
                        f"  e2e {offered}/s: p50 {latency['p50']:.1f} ms, p99 "
                        f"{latency['p99']:.1f} ms over {latency['count']:,}/{good:,} typed records"
                    )
            finally:
                source.stop()
        finally:
            worker.stop()
        found["ceiling"] = _ceiling(ctx, plain_names, paths[0], sets[0], plan.e2e_rate)
    finally:
        ctx.cluster.delete_prefix(prefix)
    ctx.report.details["e2e"] = found
    _rows(ctx, found)


def _latencies(ctx: Context, typed_topics: list[str], sent: dict[bytes, float]) -> dict[str, Any]:
    """POST -> typed record latencies (ms): the summary, the share after the source received the
    request (when the records say), and the median per second of the run (a rising median means
    the pipeline fell behind the offered rate)."""
    stored = append_times(ctx.bootstrap, typed_topics)
    matched = sorted((at, stored[key]) for key, at in sent.items() if key in stored)
    found: dict[str, Any] = summary((stamp - at * 1000) for at, (stamp, _) in matched)
    after = [stamp - received for _, (stamp, received) in matched if received is not None]
    if after:
        found["after_source_ms"] = summary(after)
    if matched:
        first = matched[0][0]
        seconds: dict[int, list[float]] = {}
        for at, (stamp, _) in matched:
            seconds.setdefault(int(at - first), []).append(stamp - at * 1000)
        by_second = sorted(seconds.items())
        found["p50_by_second_ms"] = [round(percentile(v, 50), 1) for _, v in by_second]
        found["p99_by_second_ms"] = [round(percentile(v, 99), 1) for _, v in by_second]
    return found


def _ceiling(
    ctx: Context, names: Any, path: Any, events: list[Any], offered: int
) -> dict[str, Any]:
    progress(f"e2e ceiling: producer alone at {offered}/s -> plain loop -> typed")
    plan = ctx.plan
    outputs = outputs_of(names)
    loop = ctx.start_plain_loop(names.raw, names.prefix, "plain-loop-e2e")
    try:
        warm = run_raw_producer(
            ctx, names.raw, path, "--rate", str(offered), "--duration", str(WARMUP_SECONDS)
        )
        ctx.watch(outputs, warm["acked"], loop, timeout=60, label="e2e ceiling warm-up")
        base = ctx.cluster.end_offsets(outputs)
        times = ctx.workdir / "e2e-ceiling-times.json"
        produced = run_raw_producer(
            ctx, names.raw, path, "--rate", str(offered), "--duration", str(plan.e2e_seconds),
            "--times", str(times),
        )  # fmt: skip
        ctx.watch(outputs, base + produced["acked"], loop, timeout=60, label="e2e ceiling")
    finally:
        loop.stop()
    sent = json.loads(times.read_text())
    by_key = {e.raw_key: sent[e.raw_key.decode()] for e in events
              if e.kind == GOOD and e.raw_key.decode() in sent}  # fmt: skip
    # The warm-up wrote some of the same keys earlier: keep each key's latest append time.
    latency = _latencies(ctx, outputs[:-1], by_key)
    progress(f"  ceiling: p50 {latency['p50']:.1f} ms, p99 {latency['p99']:.1f} ms")
    return {"offered_rate": offered, "producer": produced, "latency_ms": latency}


def _rows(ctx: Context, found: dict[str, Any]) -> None:
    ceiling = found.get("ceiling", {}).get("latency_ms", {})
    ceiling_is = "producer alone -> plain loop -> typed topic, same rate"
    for n, phase in enumerate(found["phases"]):
        offered = phase["offered_rate"]
        for q in ("p50", "p99"):
            ctx.report.rows.append(Row(
                f"e2e.{q}_at_{offered}", "End to end",
                f"POST -> stored on its typed topic, {q} at {offered:,}/s", "ms",
                phase["latency_ms"][q], ceiling.get(q) if n == 0 else None,
                ceiling_is if n == 0 else "(ceiling measured at the first rate only)", LOWER,
            ))  # fmt: skip
        ctx.report.checks.append(
            f"End to end at {offered:,}/s: {phase['latency_ms']['count']:,} of "
            f"{phase['typed_expected']:,} typed records matched to their request; the load "
            f"generator sent {phase['load']['send_rate']:,.0f}/s (lag p99 "
            f"{phase['load']['send_lag_ms']['p99']:.2f} ms), {phase['load']['non_200']} non-200."
        )
