"""``zoom-connector dlq show``: print dead letters, to look at them before replaying.

Each selected dead letter is printed with when it was refused, its reason, JSON path, message,
event type and the raw record it came from (topic, partition, offset); ``--body`` adds the raw
body. ``--json`` prints one JSON object per line instead (for ``jq``), and the closing counts by
reason go to stderr so stdout stays JSON. The topic is read up to its end when the command starts;
``--follow`` then goes on printing new dead letters until Ctrl-C. ``--limit N`` stops after N.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final, TextIO

from connector.replay.reading import StopSignal, open_consumer, read_range, take_plan
from connector.replay.records import RecordView
from connector.replay.selection import Selection
from connector.settings import Settings

_GROUP: Final = "zoom-connector-dlq-show"
"""Never commits: the group only names the reader to the broker."""


@dataclass(frozen=True)
class ShowRequest:
    """What one ``dlq show`` command asks for."""

    topic: str
    selection: Selection
    limit: int | None = None
    follow: bool = False
    as_json: bool = False
    body: bool = False


def iso_time(epoch_ms: int) -> str:
    """``2026-12-04T13:55:01.123Z``."""
    moment = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_object(record: RecordView, *, body: bool) -> dict[str, Any]:
    """The ``--json`` line of a dead letter (``body`` as text when it is UTF-8, else base64)."""
    found: dict[str, Any] = {
        "failed_at": iso_time(record.timestamp_ms),
        "failed_at_ms": record.timestamp_ms,
        "reason": record.reason,
        "path": record.path,
        "message": record.message,
        "event_type": record.event_type,
        "source": {
            "topic": record.source_topic,
            "partition": record.source_partition,
            "offset": record.source_offset,
        },
        "dlq": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
        "key": None if record.key is None else record.key.decode("utf-8", errors="replace"),
        "event_id": record.event_id,
        "replayed_from": record.replayed_from,
    }
    if body:
        value = record.value or b""
        try:
            found["body"] = value.decode("utf-8")
        except UnicodeDecodeError:
            found["body_base64"] = base64.b64encode(value).decode("ascii")
    return found


def as_text(record: RecordView, *, body: bool) -> str:
    """The human-readable lines of one dead letter."""
    source = (
        f"{record.source_topic}[{record.source_partition}]@{record.source_offset}"
        if record.source_topic is not None
        else "?"
    )
    again = f", a replay of {record.replayed_from}" if record.replayed_from else ""
    lines = [
        f"{iso_time(record.timestamp_ms)}  {record.reason or '?'}  {record.event_type or '-'}"
        f"  from {source}  (dlq [{record.partition}]@{record.offset}{again})",
        f"    {record.path or '$'}: {record.message or ''}",
    ]
    if body:
        lines.append("    body: " + (record.value or b"").decode("utf-8", errors="replace"))
    return "\n".join(lines)


def run_show(
    settings: Settings, request: ShowRequest, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Run one ``dlq show`` command; exit code 0 (Ctrl-C ends ``--follow`` normally)."""
    consumer = open_consumer(settings, _GROUP)
    counts: Counter[tuple[str, str]] = Counter()
    shown = read = 0
    stop = StopSignal()
    try:
        plan = take_plan(consumer, request.topic, request.selection.partitions)
        with stop.installed():
            records = read_range(
                consumer, request.topic, plan, follow=request.follow, stop=lambda: stop.received
            )
            with contextlib.closing(records):
                for message in records:
                    record = RecordView.of(message, dead_letter=True)
                    read += 1
                    if not request.selection.matches(record):
                        continue
                    shown += 1
                    counts[(record.reason or "-", record.event_type or "-")] += 1
                    if request.as_json:
                        print(
                            json.dumps(as_object(record, body=request.body)), file=out, flush=True
                        )
                    else:
                        print(as_text(record, body=request.body), file=out, flush=True)
                    if request.limit is not None and shown >= request.limit:
                        break
    finally:
        consumer.close()
    summary = err if request.as_json else out
    noun = "dead letter" if shown == 1 else "dead letters"
    print(f"{shown:,} {noun} shown ({read:,} read from {request.topic})", file=summary)
    by_reason: Counter[tuple[str, str]] = Counter()
    for (reason, _), count in counts.items():
        by_reason[(reason, "")] += count
    _print_reasons(by_reason, summary)
    return 0


def _print_reasons(counts: Counter[tuple[str, str]], out: TextIO) -> None:
    if not counts:
        return
    rows = sorted(((r, c) for (r, _), c in counts.items()), key=lambda rc: (-rc[1], rc[0]))
    width = max(len("reason"), *(len(r) for r, _ in rows))
    print(f"{'reason':<{width}}  count", file=out)
    for reason, count in rows:
        print(f"{reason:<{width}}  {count:>5,}", file=out)
