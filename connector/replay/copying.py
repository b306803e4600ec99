"""``zoom-connector replay dlq|raw``: copy the selected records of a topic to another topic.

The run reads the source topic (the dead-letter or the raw topic) from its first record up to the
end offsets taken when it starts (:mod:`connector.replay.reading`), and writes each selected
record to the target topic (the raw topic unless ``--to``) with its key, bytes and headers, the
dead-letter headers dropped and ``zoom-replayed-from`` added (:func:`replay_headers`). Copies are
safe to repeat: the worker's de-duplication keeps the typed output at one record per event.

**Resuming.** Progress is checkpointed in a consumer group of the run's own, named after what it
replays (kind, source, target, filters): every second the producer is flushed, then each
partition's next offset is committed with the run's plan (start and end offsets) as the commit's
metadata. Started again with the same arguments after Ctrl-C, SIGTERM or a crash, the command finds
the unfinished checkpoint, says so, and goes on from there up to the *first* run's end offsets
(after a crash, up to a second of records is copied twice: harmless). A finished run marks its
checkpoint done, so the next run with the same arguments starts over; ``--restart`` ignores an
unfinished one. A record Kafka refused to take holds its partition's checkpoint back, so running
the command again retries it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal, TextIO, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from connector.replay.progress import Progress
from connector.replay.reading import (
    Plan,
    Range,
    ReadError,
    StopSignal,
    open_consumer,
    read_range,
    take_plan,
    topic_partitions,
)
from connector.replay.records import RecordView, replay_headers
from connector.replay.selection import Selection
from connector.settings import Settings

Kind = Literal["dlq", "raw"]

GROUP_PREFIX: Final = "zoom-connector-replay-"
CHECKPOINT_SECONDS: Final = 1.0
_FLUSH_SECONDS: Final = 60.0
_TIMEOUT_SECONDS: Final = 30.0
_NOUNS: Final = {"dlq": ("dead letter", "dead letters"), "raw": ("raw record", "raw records")}


def _count(n: int, kind: Kind) -> str:
    """``1 dead letter``, ``2,000 raw records``."""
    singular, plural = _NOUNS[kind]
    return f"{n:,} {singular if n == 1 else plural}"


EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_INTERRUPTED: Final = 130


@dataclass(frozen=True)
class ReplayRequest:
    """What one ``replay`` command asks for."""

    kind: Kind
    source_topic: str
    target_topic: str
    selection: Selection = field(default_factory=Selection)
    dry_run: bool = False
    rate: float | None = None
    """Records copied per second at most (``None``: as fast as Kafka takes them)."""
    restart: bool = False
    progress: bool | None = None
    """Show the progress bar; ``None``: when stderr is a terminal."""

    @property
    def checkpoint_group(self) -> str:
        """The consumer group holding this replay's checkpoint."""
        what = f"{self.kind}|{self.source_topic}|{self.target_topic}|{self.selection.fingerprint()}"
        return GROUP_PREFIX + hashlib.sha256(what.encode()).hexdigest()[:16]


@dataclass
class ReplaySummary:
    """What a run did (counts over this run; ``already_done``: records an earlier run read)."""

    total: int = 0
    already_done: int = 0
    read: int = 0
    matched: int = 0
    skipped: int = 0
    copied: int = 0
    failed: int = 0
    interrupted: bool = False
    resumed: bool = False
    by_reason_event: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Checkpoint:
    """An unfinished run's plan and how far it got, per partition."""

    plan: Plan
    positions: dict[int, int]

    @property
    def total(self) -> int:
        return sum(r.size for r in self.plan.values())

    @property
    def done(self) -> int:
        return sum(self.positions[p] - r.start for p, r in self.plan.items())

    def remaining(self) -> Plan:
        return {p: Range(self.positions[p], r.end) for p, r in self.plan.items()}


_COORDINATOR_BUSY: Final = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError._WAIT_COORD,
        KafkaError.REQUEST_TIMED_OUT,
    }
)

T = TypeVar("T")


def with_coordinator(call: Callable[[], T], what: str) -> T:
    """``call()``, retried for up to 30 s while the group coordinator is not there yet (a new
    cluster creates its offsets topic on the first group request) or moving."""
    deadline = time.monotonic() + _TIMEOUT_SECONDS
    while True:
        try:
            return call()
        except KafkaException as exc:
            error = exc.args[0]
            busy = isinstance(error, KafkaError) and (
                error.code() in _COORDINATOR_BUSY or error.retriable()
            )
            if not busy or time.monotonic() >= deadline:
                raise ReadError(f"cannot {what}: {exc}") from exc
            time.sleep(0.5)


def load_checkpoint(consumer: Consumer, topic: str, partitions: list[int]) -> Checkpoint | None:
    """The unfinished checkpoint of the consumer's group on ``topic``, if there is one."""
    asked = [TopicPartition(topic, p) for p in partitions]
    committed = with_coordinator(
        lambda: consumer.committed(asked, timeout=_TIMEOUT_SECONDS), "read the replay's checkpoint"
    )
    plan: Plan = {}
    positions: dict[int, int] = {}
    for tp in committed:
        if tp.offset < 0 or not tp.metadata:
            continue
        try:
            saved = json.loads(tp.metadata)
            if saved.get("done"):
                return None
            plan[tp.partition] = Range(int(saved["start"]), int(saved["end"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # not one of ours: ignore it
        positions[tp.partition] = min(
            max(tp.offset, plan[tp.partition].start), plan[tp.partition].end
        )
    return Checkpoint(plan, positions) if plan else None


def _commit(
    consumer: Consumer, topic: str, plan: Plan, positions: dict[int, int], *, done: bool
) -> None:
    offsets = [
        TopicPartition(
            topic,
            p,
            positions[p],
            json.dumps({"start": r.start, "end": r.end, "done": done}, sort_keys=True),
        )
        for p, r in plan.items()
    ]
    with_coordinator(
        lambda: consumer.commit(offsets=offsets, asynchronous=False), "save the replay's checkpoint"
    )


class _Copier:
    """Produces the copies, paced to ``rate``, and keeps the per-partition checkpoint."""

    def __init__(
        self, settings: Settings, request: ReplayRequest, plan: Plan, positions: dict[int, int]
    ) -> None:
        self._request = request
        self._producer = Producer(
            {
                **settings.kafka_client_config(),
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
            }
        )
        self._plan = plan
        self.positions = dict(positions)
        self._held_back: dict[int, int] = {}
        self.copied = 0
        self.failed = 0
        self.failures: list[str] = []
        self._started: float | None = None
        self._produced = 0

    def pace(self, stop: StopSignal) -> None:
        """Wait until the next copy keeps the rate at or under ``--rate``."""
        if self._request.rate is None:
            return
        if self._started is None:  # the clock starts with the first copy
            self._started = time.monotonic()
        due = self._started + self._produced / self._request.rate
        while not stop.received and (wait := due - time.monotonic()) > 0:
            self._producer.poll(min(wait, 0.1))

    def copy(self, record: RecordView) -> None:
        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is None:
                self.copied += 1
            else:
                self._fail(record, str(error))

        while True:
            try:
                self._producer.produce(
                    self._request.target_topic,
                    value=record.value,
                    key=record.key,
                    headers=replay_headers(record.headers, record.coordinates),
                    on_delivery=delivered,
                )
                break
            except BufferError:
                self._producer.poll(0.1)  # the local queue is full: let deliveries drain it
            except KafkaException as exc:  # refused before sending (e.g. too large)
                self._fail(record, str(exc.args[0]))
                break
        self._produced += 1
        self._producer.poll(0)

    def _fail(self, record: RecordView, error: str) -> None:
        self.failed += 1
        held = self._held_back.get(record.partition)
        if held is None or record.offset < held:
            self._held_back[record.partition] = record.offset
        if len(self.failures) < 10:
            self.failures.append(f"{record.coordinates}: {error}")

    def advance(self, partition: int, next_offset: int) -> None:
        self.positions[partition] = next_offset

    def flush(self) -> bool:
        """Wait for every copy's acknowledgement (or failure); whether none is still pending."""
        return self._producer.flush(_FLUSH_SECONDS) == 0

    def checkpoint(self, consumer: Consumer, *, done: bool) -> None:
        """Commit how far the copies are acknowledged (call after a successful :meth:`flush`)."""
        safe = {p: min(o, self._held_back.get(p, o)) for p, o in self.positions.items()}
        _commit(consumer, self._request.source_topic, self._plan, safe, done=done)


def run_replay(
    settings: Settings, request: ReplayRequest, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run one ``replay`` command; the exit code (0 done, 1 some copies failed, 130 stopped)."""
    consumer = open_consumer(settings, request.checkpoint_group)
    try:
        summary = _replay(settings, request, consumer, out, err)
    finally:
        consumer.close()
    _print_summary(request, summary, out)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if summary.failed else EXIT_OK


def _replay(
    settings: Settings, request: ReplayRequest, consumer: Consumer, out: TextIO, err: TextIO
) -> ReplaySummary:
    selection = request.selection
    since = selection.since_ms if request.kind == "raw" else None
    plan = take_plan(consumer, request.source_topic, selection.partitions, since)
    if not request.dry_run:
        topic_partitions(consumer, request.target_topic)  # it must exist
    summary = ReplaySummary()
    checkpoint = None
    if not request.dry_run and not request.restart:
        checkpoint = load_checkpoint(consumer, request.source_topic, sorted(plan))
    if checkpoint is not None:
        plan = checkpoint.plan
        positions = checkpoint.positions
        summary.resumed = True
        summary.already_done = checkpoint.done
        print(
            f"resuming the replay interrupted earlier ({checkpoint.done:,} of"
            f" {_count(checkpoint.total, request.kind)} were done; checkpoint: consumer group"
            f" {request.checkpoint_group}; --restart starts over)",
            file=out,
            flush=True,
        )
        reading = checkpoint.remaining()
    else:
        positions = {p: r.start for p, r in plan.items()}
        reading = plan
    summary.total = sum(r.size for r in plan.values())
    show = request.progress if request.progress is not None else err.isatty()
    progress = Progress(summary.total, err, enabled=show, done=summary.already_done)
    copier = None
    if not request.dry_run:
        copier = _Copier(settings, request, plan, positions)
        copier.checkpoint(consumer, done=False)  # the plan is on record before the first copy
    stop = StopSignal()
    last_checkpoint = time.monotonic()
    kind_is_dlq = request.kind == "dlq"
    with stop.installed():
        records = read_range(consumer, request.source_topic, reading, stop=lambda: stop.received)
        with contextlib.closing(records):
            for message in records:
                record = RecordView.of(message, dead_letter=kind_is_dlq)
                _take(record, selection, summary, copier, stop)
                if copier is not None and time.monotonic() - last_checkpoint >= CHECKPOINT_SECONDS:
                    if copier.flush():
                        copier.checkpoint(consumer, done=False)
                    last_checkpoint = time.monotonic()
                progress.update(summary.already_done + summary.read)
                if stop.received:
                    break
        summary.interrupted = stop.received
        progress.finish(summary.already_done + summary.read)
        if copier is not None:
            flushed = copier.flush()
            summary.copied, summary.failed = copier.copied, copier.failed
            summary.failures = copier.failures
            if flushed:
                finished = not summary.interrupted and not copier.failed
                copier.checkpoint(consumer, done=finished)
    return summary


def _take(
    record: RecordView,
    selection: Selection,
    summary: ReplaySummary,
    copier: _Copier | None,
    stop: StopSignal,
) -> None:
    """Count one record read, and copy it when it is selected (unless a dry run)."""
    summary.read += 1
    if selection.matches(record):
        summary.matched += 1
        summary.by_reason_event[(record.reason or "-", record.event_type or "-")] += 1
        if copier is not None:
            copier.pace(stop)
            copier.copy(record)
    else:
        summary.skipped += 1
    if copier is not None:
        copier.advance(record.partition, record.offset + 1)


def _print_summary(request: ReplayRequest, summary: ReplaySummary, out: TextIO) -> None:
    if request.dry_run:
        print(
            f"dry run: {summary.matched:,} of {_count(summary.read, request.kind)} in"
            f" {request.source_topic}"
            f" match; nothing written",
            file=out,
        )
        print_counts(summary.by_reason_event, out, with_reason=request.kind == "dlq")
        return
    print(
        f"replay {request.source_topic} -> {request.target_topic}: {summary.copied:,} copied,"
        f" {summary.skipped:,} skipped by filter, {summary.failed:,} failed"
        f" ({_count(summary.read, request.kind)} read"
        + (f", {summary.already_done:,} by the interrupted run" if summary.resumed else "")
        + ")",
        file=out,
    )
    for failure in summary.failures:
        print(f"  failed: {failure}", file=out)
    if summary.interrupted:
        print(
            f"interrupted after {summary.already_done + summary.read:,} of {summary.total:,}"
            f" {_NOUNS[request.kind][1]}: run the same command again to resume"
            f" (checkpoint: consumer group {request.checkpoint_group})",
            file=out,
        )
    elif summary.failed:
        print(
            "some copies failed: run the same command again to retry them (records after them"
            " are copied again, which is safe)",
            file=out,
        )


def print_counts(
    counts: Counter[tuple[str, str]], out: TextIO, *, with_reason: bool = True
) -> None:
    """A table of counts by reason and event type, largest first."""
    if not counts:
        return
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    reason_width = max([len("reason"), *(len(r) for (r, _), _ in rows)])
    event_width = max([len("event type"), *(len(e) for (_, e), _ in rows)])
    if with_reason:
        print(f"{'reason':<{reason_width}}  {'event type':<{event_width}}  count", file=out)
    else:
        print(f"{'event type':<{event_width}}  count", file=out)
    for (reason, event), count in rows:
        first = f"{reason:<{reason_width}}  " if with_reason else ""
        print(f"{first}{event:<{event_width}}  {count:>5,}", file=out)
