"""Stand-ins for the Faust objects the worker's agents read: a consumer message and its event.

The agents only read attributes of Faust's ``Message`` (``key``, ``value``, ``topic``,
``partition``, ``offset``, ``timestamp``, ``headers``, ``generation_id``, ``tp``) through
``event.message``, so unit tests hand them these plain dataclasses instead of running a consumer.
An event compares by identity, as Faust's does (the agents keep events in dicts and sets).
:class:`FaustOffsets` runs Faust's own commit bookkeeping over the state its consumer keeps.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP
from intervaltree import IntervalTree


@dataclass(kw_only=True)
class FakeMessage:
    key: bytes | None = b"k"
    value: bytes | None = b""
    topic: str = "t"
    partition: int = 0
    offset: int = 0
    timestamp: float = 1_700_000_000.0
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    generation_id: int | None = None
    """The consumer generation the record was fetched under; records read again carry none."""

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass(eq=False)
class FakeEvent:
    message: FakeMessage

    @property
    def key(self) -> bytes | None:
        return self.message.key

    @property
    def value(self) -> bytes | None:
        return self.message.value


class FaustOffsets:
    """faust-streaming's own bookkeeping of acknowledged offsets (``Consumer._new_offset``, the
    offset its next commit would make; ``_should_commit``; ``_add_gap``) on the state its
    consumer keeps per partition, without a consumer."""

    _new_offset = FaustConsumer._new_offset
    _should_commit = FaustConsumer._should_commit
    _add_gap = FaustConsumer._add_gap

    def __init__(self, assigned: set[TP], committed: dict[TP, int]) -> None:
        self.assigned = assigned
        self._committed_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._committed_offset.update(committed)
        self._acked: defaultdict[TP, list[int]] = defaultdict(list)
        self._acked_index: defaultdict[TP, set[int]] = defaultdict(set)
        self._gap: defaultdict[TP, IntervalTree] = defaultdict(IntervalTree)

    def assignment(self) -> set[TP]:
        return self.assigned

    def acknowledge(self, tp: TP, *offsets: int) -> None:
        """What ``Consumer.ack`` records for offsets a stream delivered and acknowledged: each
        once, none below the committed offset."""
        committed = self._committed_offset[tp]
        for offset in offsets:
            if (committed is None or offset >= committed) and offset not in self._acked_index[tp]:
                self._acked[tp].append(offset)
                self._acked_index[tp].add(offset)
