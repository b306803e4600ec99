"""The filters of ``replay`` and ``dlq show``, and the parsing of their values.

A record is selected when every filter given matches: its reason is one of ``--reason`` (dead
letters only), its event type one of ``--event``, its time within ``[--since, --until)``.
``--partition`` is not a filter on records but on what is read: the other partitions are not read
at all. The time is the dead letter's ``zoom-dlq-failed-at`` (when the worker refused it) or the
raw record's Kafka timestamp (when the source stored it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connector.avro.errors import Reason
from connector.errors import ConnectorError
from connector.worker.dead_letters import PipelineReason

if TYPE_CHECKING:
    from connector.replay.records import RecordView

KNOWN_REASONS: frozenset[str] = frozenset(
    [str(r) for r in Reason] + [str(r) for r in PipelineReason]
)


class SelectionError(ConnectorError):
    """A filter value the commands cannot use (the CLI exits 2 with the message)."""


def parse_time(text: str) -> int:
    """``--since``/``--until``: epoch milliseconds (digits) or ISO-8601 (UTC when no offset is
    given, e.g. ``2026-12-01``, ``2026-12-01T08:00``, ``2026-12-01T08:00:00+01:00``, ``...Z``)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SelectionError(
            f"{text!r} is not a time: give ISO-8601 (2026-12-01T08:00:00Z) or epoch milliseconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def split_values(values: Collection[str] | None) -> frozenset[str]:
    """Repeated and comma-separated flag values as one set (``--reason a,b --reason c``)."""
    return frozenset(v.strip() for value in values or () for v in value.split(",") if v.strip())


@dataclass(frozen=True)
class Selection:
    """Which records a command takes (empty sets and ``None`` mean "any")."""

    reasons: frozenset[str] = field(default_factory=frozenset)
    events: frozenset[str] = field(default_factory=frozenset)
    since_ms: int | None = None
    until_ms: int | None = None
    partitions: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        unknown = sorted(self.reasons - KNOWN_REASONS)
        if unknown:
            raise SelectionError(
                f"unknown reason {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_REASONS))}"
            )
        if (
            self.since_ms is not None
            and self.until_ms is not None
            and self.since_ms >= self.until_ms
        ):
            raise SelectionError("--since must be before --until")
        negative = [p for p in self.partitions if p < 0]
        if negative:
            raise SelectionError(f"--partition {negative[0]}: partitions are numbered from 0")

    def matches(self, record: RecordView) -> bool:
        """Whether ``record`` passes every filter given."""
        if self.reasons and record.reason not in self.reasons:
            return False
        if self.events and record.event_type not in self.events:
            return False
        if self.since_ms is not None and record.timestamp_ms < self.since_ms:
            return False
        return self.until_ms is None or record.timestamp_ms < self.until_ms

    def fingerprint(self) -> str:
        """A short digest of the filters, to tell one replay's checkpoint from another's."""
        canonical = json.dumps(
            {
                "reasons": sorted(self.reasons),
                "events": sorted(self.events),
                "since": self.since_ms,
                "until": self.until_ms,
                "partitions": sorted(self.partitions),
            },
            sort_keys=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
