"""Ingest: signed webhooks per second the source acknowledges (200 after Kafka's ack), and latency
at fixed offered rates, beside (a) the same HTTP stack answering without Kafka (the source app with
its in-memory producer) and (b) confluent-kafka's producer alone writing the same records with the
source's settings."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

from bench import requests as request_set
from bench.context import ROOT, Context
from bench.http_stack.run import _post
from bench.procs import LOAD_CPU, SERVER_CPU, Child, pinned, progress
from bench.report import LOWER, Row
from bench.stats import per_10k
from bench.workload import Workload
from bench.wrk import run_wrk

SET_SIZE = 2_000
NO_KAFKA = "source-app"
WITH_KAFKA = "source-kafka"


def run(ctx: Context) -> None:
    plan = ctx.plan
    prefix = ctx.prefix("ingest")
    names = ctx.cluster.create(prefix)
    workload = Workload(run_id=f"{ctx.run_id}-i", agents=plan.agents)
    signed = request_set.sign(workload.events(SET_SIZE), time.time())
    set_path = ctx.workdir / "ingest-set.jsonl"
    wrk_path = ctx.workdir / "ingest-set.tsv"
    request_set.write(set_path, signed)
    request_set.write_wrk_lines(wrk_path, signed)
    found: dict[str, dict[str, Any]] = {}
    try:
        found.update(_bench_stacks(ctx, prefix, signed[0], set_path, wrk_path))
        found["producer"] = _bench_producer(ctx, names.raw, set_path)
    finally:
        ctx.cluster.delete_prefix(prefix)
    ctx.report.details["ingest"] = found
    _rows(ctx, found)


def _bench_stacks(
    ctx: Context,
    prefix: str,
    sample: request_set.SignedRequest,
    set_path: Any,
    wrk_path: Any,
) -> dict[str, dict[str, Any]]:
    """Both servers up at once on the server CPU (the idle one costs nothing), measured in
    alternating rounds, so a burst of other work on the machine hits both alike."""
    plan = ctx.plan
    stacks = (NO_KAFKA, WITH_KAFKA)
    servers: dict[str, tuple[Child, int]] = {}
    result: dict[str, dict[str, Any]] = {stack: {"rounds": []} for stack in stacks}
    try:
        for stack in stacks:
            progress(f"ingest: starting {stack}")
            servers[stack] = ctx.start_source(stack, prefix)
            _check_signatures(stack, servers[stack][1], sample)
            if plan.wrk_warmup_seconds:
                run_wrk(servers[stack][1], wrk_path, plan.wrk_warmup_seconds, plan.wrk_connections)
        seconds = plan.wrk_seconds / plan.wrk_rounds
        for n in range(plan.wrk_rounds):
            for stack in stacks if n % 2 == 0 else reversed(stacks):
                child, port = servers[stack]
                cpu0, broker0 = child.cpu() or 0.0, ctx.broker_cpu()
                profile = ctx.profiling(child, f"{stack}-saturation-{n}")
                found = run_wrk(port, wrk_path, seconds, plan.wrk_connections)
                found["cpu_s"] = (child.cpu() or 0.0) - cpu0
                ctx.finish_profile(profile)
                found["acked"] = found["ok_rps"] * seconds
                if broker0 is not None:
                    found["broker_cpu_s"] = (ctx.broker_cpu() or 0) - broker0
                result[stack]["rounds"].append(found)
                progress(
                    f"  {stack} round {n + 1}/{plan.wrk_rounds}: {found['ok_rps']:,.0f} "
                    f"acknowledged/s, p99 {found['p99_ms']:.1f} ms"
                )
        for stack in stacks:
            rounds = result[stack]["rounds"]
            acked = sum(r["acked"] for r in rounds)
            result[stack]["saturation"] = {
                "ok_rps": statistics.median(r["ok_rps"] for r in rounds),
                "best_ok_rps": max(r["ok_rps"] for r in rounds),
                "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
                "p99_ms": statistics.median(r["p99_ms"] for r in rounds),
                "requests": sum(r["requests"] for r in rounds),
                "non_2xx": sum(r["non_2xx"] for r in rounds),
                "socket_errors": sum(r["socket_errors"] for r in rounds),
                "cpu_per_10k": per_10k(sum(r["cpu_s"] for r in rounds), acked),
            }
            if all("broker_cpu_s" in r for r in rounds):
                result[stack]["saturation"]["broker_cpu_per_10k"] = per_10k(
                    sum(r["broker_cpu_s"] for r in rounds), acked
                )
        for offered in plan.rates:
            for stack in stacks:
                child, port = servers[stack]
                cpu0 = child.cpu() or 0.0
                fixed = run_loadgen(port, set_path, offered, plan.rate_seconds, warmup=1.0)
                fixed["server_cpu_per_10k"] = per_10k((child.cpu() or 0.0) - cpu0, fixed["ok"])
                result[stack][f"rate_{offered}"] = fixed
                progress(
                    f"  {stack} @ {offered}/s: p50 {fixed['latency_ms']['p50']:.2f} ms, "
                    f"p99 {fixed['latency_ms']['p99']:.2f} ms, {fixed['ok']:,} ok"
                )
        for stack in stacks:
            result[stack]["memory_mib"] = servers[stack][0].memory()
    finally:
        for child, _ in servers.values():
            child.stop()
    return result


def _check_signatures(stack: str, port: int, sample: request_set.SignedRequest) -> None:
    headers = {"content-type": "application/json",
               "x-zm-request-timestamp": sample.ts, "x-zm-signature": sample.sig}  # fmt: skip
    if _post(port, sample.body, headers) != 200 or _post(port, sample.body + b" ", headers) != 401:
        raise RuntimeError(f"{stack}: a signed request is not 200 or a tampered one not 401")


def run_loadgen(
    port: int,
    set_path: Any,
    offered: float,
    seconds: float,
    *,
    warmup: float = 0.0,
    times: Any = None,
    connections: int = 256,
) -> dict[str, Any]:
    """``bench.loadgen`` in its own process on the load CPU; its JSON result."""
    argv = [
        sys.executable, "-m", "bench.loadgen", "--port", str(port), "--requests", str(set_path),
        "--rate", str(offered), "--duration", str(seconds), "--warmup", str(warmup),
        "--connections", str(connections),
    ]  # fmt: skip
    if times is not None:
        argv += ["--times", str(times)]
    done = subprocess.run(
        pinned(LOAD_CPU, argv),
        capture_output=True,
        text=True,
        timeout=seconds + warmup + 60,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_raw_producer(ctx: Context, topic: str, set_path: Any, *mode: str) -> dict[str, Any]:
    """``bench.raw_producer`` pinned to the server CPU; its JSON result."""
    argv = [
        sys.executable, "-m", "bench.raw_producer", "--bootstrap", ctx.bootstrap,
        "--topic", topic, "--requests", str(set_path), *mode,
    ]  # fmt: skip
    log = ctx.workdir / "raw-producer.log"
    child = Child("raw-producer", argv, log_path=log, cpu=SERVER_CPU, env=ctx.env(), cwd=ROOT)
    try:
        child.process.wait(timeout=600)
    finally:
        child.stop()
    lines = log.read_text().strip().splitlines()
    for line in reversed(lines):
        if line.startswith("{"):
            parsed: dict[str, Any] = json.loads(line)
            return parsed
    raise RuntimeError(f"raw producer failed:\n{child.log_tail()}")


def _bench_producer(ctx: Context, topic: str, set_path: Any) -> dict[str, Any]:
    plan = ctx.plan
    progress("ingest: confluent-kafka producer alone")
    result: dict[str, Any] = {}
    saturation = run_raw_producer(ctx, topic, set_path, "--saturate", str(plan.producer_seconds))
    saturation["cpu_per_10k"] = per_10k(saturation["cpu_s"], saturation["acked"])
    result["saturation"] = saturation
    progress(f"  producer: {saturation['acked_rate']:,.0f} acknowledged/s")
    for offered in plan.rates:
        fixed = run_raw_producer(
            ctx, topic, set_path, "--rate", str(offered), "--duration", str(plan.rate_seconds)
        )
        result[f"rate_{offered}"] = fixed
        progress(
            f"  producer @ {offered}/s: produce->ack p50 {fixed['latency_ms']['p50']:.2f} ms, "
            f"p99 {fixed['latency_ms']['p99']:.2f} ms"
        )
    return result


def _rows(ctx: Context, found: dict[str, dict[str, Any]]) -> None:
    rows = ctx.report.rows
    kafka, memory, producer = found[WITH_KAFKA], found[NO_KAFKA], found["producer"]
    no_kafka = "the same HTTP stack and app without Kafka (MemoryProducer)"
    rows.append(Row(
        "ingest.saturation", "Ingest",
        "signed webhooks/s acknowledged (200 after Kafka's ack), saturation, median of "
        f"{ctx.plan.wrk_rounds} alternating rounds",
        "events/s", kafka["saturation"]["ok_rps"], memory["saturation"]["ok_rps"], no_kafka,
    ))  # fmt: skip
    rows.append(Row(
        "ingest.saturation_vs_producer", "Ingest",
        "the same, against Kafka alone", "events/s",
        kafka["saturation"]["ok_rps"], producer["saturation"]["acked_rate"],
        "confluent-kafka producer alone, same records and settings (no HTTP)",
    ))  # fmt: skip
    for offered in ctx.plan.rates:
        key = f"rate_{offered}"
        for q in ("p50", "p99"):
            rows.append(Row(
                f"ingest.{q}_at_{offered}", "Ingest",
                f"latency {q} at {offered:,}/s offered (POST to 200)", "ms",
                kafka[key]["latency_ms"][q], memory[key]["latency_ms"][q], no_kafka, LOWER,
            ))  # fmt: skip
        rows.append(Row(
            f"ingest.p99_at_{offered}_vs_producer", "Ingest",
            f"latency p99 at {offered:,}/s, against Kafka alone", "ms",
            kafka[key]["latency_ms"]["p99"], producer[key]["latency_ms"]["p99"],
            "producer alone: produce() to delivery report, same rate", LOWER,
        ))  # fmt: skip
    rows.append(Row(
        "cost.source_cpu", "Cost", "source CPU per 10,000 events (saturation)", "CPU s",
        kafka["saturation"]["cpu_per_10k"], memory["saturation"]["cpu_per_10k"], no_kafka, LOWER,
    ))  # fmt: skip
    rows.append(Row(
        "cost.source_rss", "Cost", "source peak memory (RSS)", "MiB",
        kafka["memory_mib"].get("peak_rss"), memory["memory_mib"].get("peak_rss"), no_kafka, LOWER,
    ))  # fmt: skip
    checks = ctx.report.checks
    for offered in ctx.plan.rates:
        fixed = memory[f"rate_{offered}"]
        keeps_up = fixed["send_lag_ms"]["p99"] < 10 and fixed["generator_cpu_share"] < 0.5
        verdict = (
            "it keeps the rate with CPU to spare, so the latencies are the server's"
            if keeps_up
            else "it may be limiting itself: read these latencies with care"
        )
        checks.append(
            f"Load generator at {offered:,}/s against the source without Kafka: sent "
            f"{fixed['send_rate']:,.0f}/s, send lag p99 {fixed['send_lag_ms']['p99']:.2f} ms, "
            f"its CPU {fixed['generator_cpu_share'] * 100:.0f} % of a core, answers p99 "
            f"{fixed['latency_ms']['p99']:.2f} ms, {fixed['non_200']} non-200, {fixed['errors']} "
            f"errors: {verdict}."
        )
    for stack in (NO_KAFKA, WITH_KAFKA):
        sat = found[stack]["saturation"]
        checks.append(
            f"wrk against {stack}: {sat['requests']:,} answers, {sat['non_2xx']} non-2xx, "
            f"{sat['socket_errors']} socket errors."
        )
