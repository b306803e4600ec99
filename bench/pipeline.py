"""Pipeline and growth: raw events per second from a pre-filled raw topic to the typed topics, for
one worker (aggregates on), beside a plain confluent-kafka consume -> fastavro -> produce loop over
the same records; then how that changes with the number of agents in the aggregates' table and
with a large backlog.

A drain is measured on the output topics (typed + dead letters, counted with one ListOffsets
request every 0.1 s): from when 1 % of the measured records' outputs exist to when all do, so
start-up and the warm-up records are left out. Worker and plain loop are pinned to the same CPU.

The peer (full plan): a Quix Streams application doing the worker's job on the same raw records
(:mod:`bench.quix_peer`, in its own virtualenv), pinned to the same CPU; its row reads "worker ÷
peer", and its outputs are compared record by record with the worker's (:mod:`bench.peer_check`,
a line under the report's checks).
"""

from __future__ import annotations

from typing import Any

from bench.context import Context, window, worker_id
from bench.kafka_util import outputs_of, prefill
from bench.procs import Child, progress
from bench.report import LOWER, Row
from bench.stats import per_10k
from bench.workload import Event, Workload, expected_outputs

try:
    from connector.worker.aggregates.rekeying import events_topic_name
except ImportError:  # the aggregates are not in this tree
    events_topic_name = None  # type: ignore[assignment]

_MIN_RATE = 100.0
"""Slowest drain we wait for (events/s) before giving up; bounds every wait."""


def _timeout(events: int) -> float:
    return 120.0 + events / _MIN_RATE


def _drain(
    ctx: Context,
    child: Child,
    outputs: list[str],
    base: int,
    expected: int,
    raw_count: int,
    label: str,
) -> dict[str, Any]:
    """Watch ``child`` write ``expected`` outputs above ``base``; its rate, CPU and memory."""
    broker0 = ctx.broker_cpu()
    series = ctx.watch(outputs, base + expected, child, timeout=_timeout(raw_count), label=label)
    measured = window(series, base, expected)
    result: dict[str, Any] = {"raw_records": raw_count, "outputs_expected": expected,
                              "outputs_seen": series[-1][1] - base}  # fmt: skip
    if measured is None:
        result["rate"] = None
        return result
    seconds, share, cpu = measured
    events = raw_count * share
    result.update(
        rate=events / seconds,
        seconds=seconds,
        cpu_s=cpu,
        cpu_per_10k=per_10k(cpu, events),
        memory_mib=child.memory(),
    )
    if broker0 is not None:
        total = series[-1][0] - series[0][0]
        result["broker_cpu_share"] = ((ctx.broker_cpu() or 0) - broker0) / max(total, 1e-9)
    progress(f"  {label}: {result['rate']:,.0f} events/s, {result['cpu_per_10k']:.2f} CPU s/10k")
    return result


def _aggregates_caught_up(
    ctx: Context, prefix: str, label: str, timeout: float = 90
) -> float | None:
    """Seconds until the worker's group committed everything on the aggregates' topics."""
    if events_topic_name is None:
        return None
    import time

    from connector.topics import TopicNames
    from connector.worker.aggregates.events import EVENT_TYPES

    names = TopicNames(prefix)
    typed = [names.typed(t) for t in EVENT_TYPES]
    topics = [events_topic_name(worker_id(prefix)), *ctx.consumed(worker_id(prefix), typed)]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        lag = ctx.committed_lag(worker_id(prefix), topics)
        if lag == 0:
            return time.monotonic() - start
        time.sleep(0.5)
    progress(f"  {label}: the aggregates did not catch up within {timeout:.0f} s")
    return None


def run(ctx: Context) -> None:
    plan = ctx.plan
    prefix = ctx.prefix("pipeline")
    names = ctx.cluster.create(prefix)
    workload = Workload(run_id=f"{ctx.run_id}-p", agents=plan.agents)
    warm = list(workload.events(plan.pipeline_warmup))
    measured = list(workload.events(plan.pipeline_events))
    progress(f"pipeline: pre-filling {len(warm) + len(measured):,} raw records")
    prefill(ctx.bootstrap, names.raw, [*warm, *measured])
    found: dict[str, Any] = {
        "raw_records": len(warm) + len(measured),
        "warmup": len(warm),
        "measured": len(measured),
        "bad": sum(1 for e in measured if e.kind == "bad"),
        "retries": sum(1 for e in measured if e.kind == "retry"),
        "agents": plan.agents,
    }
    try:
        found["worker"] = _worker_drain(ctx, prefix, "worker", warm, measured, aggregates=True)
        found["plain_loop"] = _loop_drain(ctx, names.raw, prefix, "plain", warm, measured)
        ctx.results["plain_loop"] = found["plain_loop"]
        if plan.peer_run:
            _optional(ctx, found, "quix_peer", _peer_drain, ctx, names.raw, prefix, warm, measured)
        if plan.codec_loop_run:
            _optional(ctx, found, "codec_loop", _loop_drain, ctx, names.raw, prefix, "connector",
                      warm, measured)  # fmt: skip
        if plan.aggregates_off_run:
            _optional(ctx, found, "worker_no_aggregates", _no_aggregates, ctx, warm, measured)
        if plan.faust_floor_run:
            _optional(ctx, found, "faust_floor", _faust_floor, ctx, warm, measured, "faust")
            _optional(ctx, found, "faust_read_floor", _faust_floor, ctx, warm, measured,
                      "librdkafka")  # fmt: skip
    finally:
        ctx.cluster.delete_prefix(prefix)
        ctx.report.details["pipeline"] = found
        if "worker" in found and "plain_loop" in found:
            _rows(ctx, found)


def _optional(ctx: Context, found: dict[str, Any], key: str, work: Any, *args: Any) -> None:
    """A figure that only adds to the others: when it fails, say so and keep the rest."""
    try:
        found[key] = work(*args)
    except Exception as exc:
        progress(f"pipeline: {key} failed: {exc!r}")
        last = (str(exc).strip().splitlines() or [""])[-1]
        ctx.report.notes.append(f"Pipeline: {key} not measured: {type(exc).__name__}: {last}")


def _no_aggregates(ctx: Context, warm: list[Event], measured: list[Event]) -> dict[str, Any]:
    # The real worker reads <prefix>.webhooks.raw: its own prefix, its own copy of the records.
    off = ctx.prefix("pipeline-noagg")
    off_names = ctx.cluster.create(off)
    try:
        prefill(ctx.bootstrap, off_names.raw, [*warm, *measured])
        return _worker_drain(ctx, off, "worker-noagg", warm, measured, aggregates=False)
    finally:
        ctx.cluster.delete_prefix(off)


def _faust_floor(
    ctx: Context, warm: list[Event], measured: list[Event], writer: str
) -> dict[str, Any]:
    """Faust alone (:mod:`bench.faust_floor`): one record out per raw record, like the loop,
    written with Faust's producer (``writer="faust"``) or librdkafka."""
    from connector.topics import TopicNames

    floor = ctx.prefix("pipeline-floor" if writer == "faust" else "pipeline-readfloor")
    name = "faust-floor" if writer == "faust" else "faust-read-floor"
    names = ctx.cluster.create(floor)
    try:
        prefill(ctx.bootstrap, names.raw, [*warm, *measured])
        progress(f"pipeline: {name} (Faust reads, {writer} writes each record, nothing else)")
        outputs = outputs_of(TopicNames(floor))
        child, _ = ctx.start_worker(floor, name, aggregates=False, floor=writer)
        try:
            ctx.watch(outputs, len(warm), child, timeout=_timeout(len(warm)),
                      label=f"{name} warm-up")  # fmt: skip
            profile = ctx.profiling(child, f"{name}-drain")
            result = _drain(ctx, child, outputs, len(warm), len(measured), len(measured),
                            name)  # fmt: skip
            ctx.finish_profile(profile)
            result["memory_mib"] = child.memory()
        finally:
            child.stop()
        return result
    finally:
        ctx.cluster.delete_prefix(floor)


def _worker_drain(
    ctx: Context,
    prefix: str,
    name: str,
    warm: list[Event],
    measured: list[Event],
    *,
    aggregates: bool,
) -> dict[str, Any]:
    from connector.topics import TopicNames

    progress(f"pipeline: {name} (aggregates {'on' if aggregates else 'off'})")
    outputs = outputs_of(TopicNames(prefix))
    child, _ = ctx.start_worker(prefix, name, aggregates=aggregates)
    try:
        base = expected_outputs(warm)
        ctx.watch(outputs, base, child, timeout=_timeout(len(warm)), label=f"{name} warm-up")
        profile = ctx.profiling(child, f"{name}-drain")
        result = _drain(ctx, child, outputs, base, expected_outputs(measured), len(measured), name)
        ctx.finish_profile(profile)
        if aggregates:
            result["aggregates_caught_up_s"] = _aggregates_caught_up(ctx, prefix, name)
        result["memory_mib"] = child.memory()
    finally:
        child.stop()
    return result


def _loop_drain(
    ctx: Context,
    raw_topic: str,
    prefix: str,
    codec: str,
    warm: list[Event],
    measured: list[Event],
) -> dict[str, Any]:
    name = f"{codec}-loop"
    progress(f"pipeline: {name} (confluent-kafka, {codec} codec)")
    out_prefix = f"{prefix}-{codec}"
    out_names = ctx.cluster.create(out_prefix)
    outputs = outputs_of(out_names)
    child = ctx.start_plain_loop(raw_topic, out_prefix, name, codec)
    try:
        # The loop writes one record per raw record: it does not deduplicate.
        ctx.watch(outputs, len(warm), child, timeout=_timeout(len(warm)), label=f"{name} warm-up")
        result = _drain(ctx, child, outputs, len(warm), len(measured), len(measured), name)
        result["memory_mib"] = child.memory()
    finally:
        child.stop()
    return result


def _peer_drain(
    ctx: Context, raw_topic: str, prefix: str, warm: list[Event], measured: list[Event]
) -> dict[str, Any]:
    """The Quix Streams peer (:mod:`bench.quix_peer`) on the worker's raw records, writing under
    ``<prefix>-quix``; then its outputs compared with the worker's (:mod:`bench.peer_check`)."""
    from bench.peer_check import compare, read_outputs

    name, out_prefix = "quix-peer", f"{prefix}-quix"
    group = f"{out_prefix}-peer"
    progress(f"pipeline: {name} (Quix Streams, its own virtualenv; same Router, dedup, aggregate)")
    out_names = ctx.cluster.create(out_prefix)
    outputs = outputs_of(out_names)
    child = ctx.start_quix_peer(raw_topic, out_prefix, group, name)
    try:
        base = expected_outputs(warm)  # it deduplicates: as many outputs as the worker
        ctx.watch(outputs, base, child, timeout=_timeout(len(warm)), label=f"{name} warm-up")
        profile = ctx.profiling(child, f"{name}-drain")
        result = _drain(ctx, child, outputs, base, expected_outputs(measured), len(measured), name)
        ctx.finish_profile(profile)
        result["memory_mib"] = child.memory()
    finally:
        child.stop()
        ctx.cluster.delete_containing(group)
    from connector.topics import TopicNames

    worker_outputs = read_outputs(ctx.bootstrap, outputs_of(TopicNames(prefix)), prefix)
    peer_outputs = read_outputs(ctx.bootstrap, outputs, out_prefix)
    same, line = compare(worker_outputs, peer_outputs)
    result["outputs_match"] = same
    ctx.report.checks.append(f"Pipeline: {line}.")
    progress(f"  {line}")
    return result


def _rows(ctx: Context, found: dict[str, Any]) -> None:
    rows = ctx.report.rows
    worker, loop = found["worker"], found["plain_loop"]
    plain = "plain confluent-kafka consume -> fastavro -> produce loop, same records"
    rows.append(Row(
        "pipeline.rate", "Pipeline",
        "raw -> typed events/s, one worker, aggregates on (mix with "
        f"{found['bad']:,} bad and {found['retries']:,} retries in {found['measured']:,})",
        "events/s", worker.get("rate"), loop.get("rate"), plain,
    ))  # fmt: skip
    if "worker_no_aggregates" in found:
        rows.append(Row(
            "pipeline.rate_no_aggregates", "Pipeline", "the same with the aggregates off",
            "events/s", found["worker_no_aggregates"].get("rate"), loop.get("rate"), plain,
        ))  # fmt: skip
    if "codec_loop" in found:
        rows.append(Row(
            "pipeline.rate_vs_codec_loop", "Pipeline",
            "the worker (aggregates on), against a loop doing the connector's validation",
            "events/s", worker.get("rate"), found["codec_loop"].get("rate"),
            "the same plain loop calling the connector's EventCodec",
        ))  # fmt: skip
    if "faust_floor" in found:
        floor = found["faust_floor"]
        rows.append(Row(
            "pipeline.faust_floor", "Pipeline",
            "Faust alone: an agent that reads each raw record and writes it unchanged (the "
            "worker's batching and acknowledgement, no work)",
            "events/s", floor.get("rate"), loop.get("rate"), plain,
        ))  # fmt: skip
        rows.append(Row(
            "pipeline.rate_vs_faust_floor", "Pipeline",
            "the worker (aggregates on), against Faust alone",
            "events/s", worker.get("rate"), floor.get("rate"),
            "Faust alone (the row above): the most a Faust agent reached here",
        ))  # fmt: skip
        if "worker_no_aggregates" in found:
            rows.append(Row(
                "pipeline.rate_no_aggregates_vs_faust_floor", "Pipeline",
                "the worker with the aggregates off, against Faust alone",
                "events/s", found["worker_no_aggregates"].get("rate"), floor.get("rate"),
                "Faust alone",
            ))  # fmt: skip
    if "faust_read_floor" in found:
        rows.append(Row(
            "pipeline.faust_read_floor", "Pipeline",
            "Faust reading, librdkafka writing: the same agent with the writes moved off Faust "
            "(the most a worker whose Faust agents read the raw topic could reach)",
            "events/s", found["faust_read_floor"].get("rate"), loop.get("rate"), plain,
        ))  # fmt: skip
    if "quix_peer" in found:
        peer = found["quix_peer"]
        peer_is = ("Quix Streams 3.28 peer (bench.quix_peer): the same Router and codec, typed "
                   "topics and DLQ, dedup and a per-agent aggregate in its state")  # fmt: skip
        rows.append(Row(
            "pipeline.peer", "Pipeline",
            "Quix Streams peer doing the worker's job on the same records (its own virtualenv)",
            "events/s", peer.get("rate"), loop.get("rate"), plain,
        ))  # fmt: skip
        rows.append(Row(
            "pipeline.rate_vs_peer", "Pipeline",
            "worker ÷ peer: the worker (aggregates on) against the Quix Streams peer",
            "events/s", worker.get("rate"), peer.get("rate"), peer_is,
        ))  # fmt: skip
        rows.append(Row(
            "cost.worker_cpu_vs_peer", "Cost",
            "worker ÷ peer: worker CPU per 10,000 events against the peer's", "CPU s",
            worker.get("cpu_per_10k"), peer.get("cpu_per_10k"), peer_is, LOWER,
        ))  # fmt: skip
        rows.append(Row(
            "cost.worker_rss_vs_peer", "Cost", "worker ÷ peer: peak memory (RSS)", "MiB",
            worker.get("memory_mib", {}).get("peak_rss"),
            peer.get("memory_mib", {}).get("peak_rss"), peer_is, LOWER,
        ))  # fmt: skip
    if worker.get("aggregates_caught_up_s") is not None:
        ctx.report.notes.append(
            f"Pipeline: the aggregates had committed all their input "
            f"{worker['aggregates_caught_up_s']:.1f} s after the last typed record (Faust commits "
            "about every 2.8 s, so this is an upper bound)."
        )
    rows.append(Row(
        "cost.worker_cpu", "Cost", "worker CPU per 10,000 events (pipeline drain)", "CPU s",
        worker.get("cpu_per_10k"), loop.get("cpu_per_10k"), plain, LOWER,
    ))  # fmt: skip
    rows.append(Row(
        "cost.worker_rss", "Cost", "worker peak memory (RSS)", "MiB",
        worker.get("memory_mib", {}).get("peak_rss"), loop.get("memory_mib", {}).get("peak_rss"),
        plain, LOWER,
    ))  # fmt: skip


# --- growth ------------------------------------------------------------------------------------


def run_growth(ctx: Context) -> None:
    """One worker; the table grows to each agent count in turn (one seed event per agent), and a
    drain of the same mix is measured at each size; then a backlog of ``plan.backlog`` events."""
    plan = ctx.plan
    found: dict[str, Any] = {"agents": {}, "backlog": None}
    prefix = ctx.prefix("growth")
    names = ctx.cluster.create(prefix)
    outputs = outputs_of(names)
    progress(f"growth: agents {', '.join(f'{n:,}' for n in plan.growth_agents)}")
    child, _ = ctx.start_worker(prefix, "worker-growth")
    try:
        base = 0
        for agents in plan.growth_agents:
            workload = Workload(run_id=f"{ctx.run_id}-g{agents}", agents=agents)
            seed = list(workload.seed_agents())
            measured = list(workload.events(plan.growth_events))
            progress(f"growth: seeding {agents:,} agents")
            prefill(ctx.bootstrap, names.raw, seed)
            base += expected_outputs(seed)
            ctx.watch(outputs, base, child, timeout=_timeout(len(seed)), label=f"seed {agents:,}")
            _aggregates_caught_up(ctx, prefix, f"seed {agents:,}", timeout=180)
            prefill(ctx.bootstrap, names.raw, measured)
            expected = expected_outputs(measured)
            step = _drain(ctx, child, outputs, base, expected, len(measured), f"{agents:,} agents")
            step["aggregates_caught_up_s"] = _aggregates_caught_up(ctx, prefix, f"{agents:,}")
            base += expected
            found["agents"][agents] = step
    finally:
        child.stop()
        ctx.cluster.delete_prefix(prefix)
    found["backlog"] = _backlog(ctx)
    ctx.report.details["growth"] = found
    _growth_rows(ctx, found)


def _backlog(ctx: Context) -> dict[str, Any]:
    plan = ctx.plan
    prefix = ctx.prefix("backlog")
    names = ctx.cluster.create(prefix)
    workload = Workload(run_id=f"{ctx.run_id}-b", agents=10_000)
    progress(f"growth: pre-filling a backlog of {plan.backlog:,} raw records")
    counted: list[int] = [0, 0]

    def events() -> Any:
        for event in workload.events(plan.backlog):
            counted[0] += 1
            counted[1] += event.kind != "retry"
            yield event

    prefill(ctx.bootstrap, names.raw, events(), progress_every=100_000)
    raw_count, expected = counted
    result: dict[str, Any] = {"events": raw_count, "agents": 10_000}
    try:
        progress("growth: worker over the backlog")
        child, _ = ctx.start_worker(prefix, "worker-backlog")
        try:
            result["worker"] = _drain(
                ctx, child, outputs_of(names), 0, expected, raw_count, "backlog worker"
            )
            result["worker"]["memory_mib"] = child.memory()
        finally:
            child.stop()
        progress("growth: plain loop over the backlog")
        out = f"{prefix}-plain"
        out_names = ctx.cluster.create(out)
        loop = ctx.start_plain_loop(names.raw, out, "plain-loop-backlog")
        try:
            result["plain_loop"] = _drain(
                ctx, loop, outputs_of(out_names), 0, raw_count, raw_count, "backlog plain loop"
            )
            result["plain_loop"]["memory_mib"] = loop.memory()
        finally:
            loop.stop()
    finally:
        ctx.cluster.delete_prefix(prefix)
    return result


def _growth_rows(ctx: Context, found: dict[str, Any]) -> None:
    rows = ctx.report.rows
    loop = ctx.results.get("plain_loop") or {}
    ceiling_is = "plain loop (pipeline scenario, same run)"
    for agents, step in found["agents"].items():
        rows.append(Row(
            f"growth.agents_{agents}", "Growth",
            f"raw -> typed events/s with {agents:,} agents in the table", "events/s",
            step.get("rate"), loop.get("rate"), ceiling_is,
        ))  # fmt: skip
    if found["agents"]:
        largest = max(found["agents"])
        step = found["agents"][largest]
        rows.append(Row(
            "growth.agents_cpu", "Growth",
            f"worker CPU per 10,000 events with {largest:,} agents", "CPU s",
            step.get("cpu_per_10k"), loop.get("cpu_per_10k"), ceiling_is, LOWER,
        ))  # fmt: skip
        rows.append(Row(
            "growth.agents_rss", "Growth",
            f"worker peak memory with {largest:,} agents (and every earlier step)", "MiB",
            step.get("memory_mib", {}).get("peak_rss"),
            loop.get("memory_mib", {}).get("peak_rss"), ceiling_is, LOWER,
        ))  # fmt: skip
    backlog = found.get("backlog") or {}
    worker, plain = backlog.get("worker") or {}, backlog.get("plain_loop") or {}
    if worker:
        size = f"{backlog['events']:,}"
        same = "plain loop over the same backlog"
        rows.append(Row(
            "growth.backlog", "Growth", f"raw -> typed events/s draining a {size}-event backlog",
            "events/s", worker.get("rate"), plain.get("rate"), same,
        ))  # fmt: skip
        rows.append(Row(
            "growth.backlog_cpu", "Growth", f"worker CPU per 10,000 events, {size} backlog",
            "CPU s", worker.get("cpu_per_10k"), plain.get("cpu_per_10k"), same, LOWER,
        ))  # fmt: skip
        rows.append(Row(
            "growth.backlog_rss", "Growth", f"worker peak memory after a {size} backlog", "MiB",
            worker.get("memory_mib", {}).get("peak_rss"),
            plain.get("memory_mib", {}).get("peak_rss"), same, LOWER,
        ))  # fmt: skip
