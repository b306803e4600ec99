"""Stamps on stored agent states: how far into its input a state is, so a late stale write is known.

An agent's state is written whole (one changelog record per agent per batch), and a restore takes
the last record of a key as its state. A worker that lost the agent's partition while frozen
(SIGSTOP, a VM pause) can still send a state computed from its old table after the new owner's
(:mod:`...patches.fence` keeps that to a narrow window, not to nothing); the last record
is then stale, and every restore would take it, including the new owner's own restore at the
rebalance the thawed worker causes by rejoining.

Every state the aggregating agent writes is therefore framed with a :class:`Stamp`:

* ``offset``: the highest offset of the agent's partition of the internal score-event topic
  applied to the state. That partition is read in offset order and a batch is complete (skipped
  records are read again: :mod:`...patches.gaps`), so a state with offset ``o`` holds every
  event of the agent up to ``o``: two states with the same offset hold the same events;
* ``generation``: the consumer-group generation its input was fetched under (the lowest of the
  batch). The group's generation grows at every rebalance, so a worker that lost its partitions
  while frozen writes with an older generation than the partition's new owner.

A restored record is **stale** when its generation is older than the held state's *and* its
offset is not beyond the held state's: it holds no event the held state lacks, and it comes from
a worker that has since been replaced. :class:`StampedTable` skips stale records when it applies
changelog records (a restore, a standby); a key whose last record is stale is written again
by its owner with the held state (changelog and ``agent_scores``), which makes that the key's
last record once more (log compaction keeps only the last one) and repairs ``agent_scores``,
where the stale worker most likely published too.

Requiring both conditions keeps a reset from freezing a key: a consumer group deleted and made
again starts its generations afresh (its offsets go on), and a re-created internal topic starts
its offsets afresh (the generation goes on). Only both at once, with the old changelog kept,
would make new states look stale. Records without a stamp (written before stamps existed) are
never stale and never make another record stale.

Frame: one marker byte (``0xA5``, never the first byte of the JSON state), generation and offset
as big-endian signed 64-bit integers, then the state (:meth:`~.state.AgentState.to_bytes`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

MARKER: Final = 0xA5
_FRAME: Final = struct.Struct(">Bqq")
NO_GENERATION: Final = -1
"""The generation of a batch none of whose records says under which generation it was fetched."""


@dataclass(frozen=True, slots=True)
class Stamp:
    """How far into its input a stored state is (module docstring)."""

    generation: int
    offset: int

    def is_stale_beside(self, held: Stamp) -> bool:
        """Whether a record with this stamp must not replace a state stamped ``held``."""
        return self.generation < held.generation and self.offset <= held.offset


def stamped(stamp: Stamp, state: bytes) -> bytes:
    """The stored value: ``state`` framed with ``stamp``."""
    return _FRAME.pack(MARKER, stamp.generation, stamp.offset) + state


def stamp_of(value: bytes | None) -> Stamp | None:
    """The stamp of a stored value; ``None`` for an unstamped one (or none)."""
    if value is None or len(value) < _FRAME.size or value[0] != MARKER:
        return None
    _, generation, offset = _FRAME.unpack_from(value)
    return Stamp(generation, offset)


def state_bytes(value: bytes) -> bytes:
    """The state in a stored value, stamped or not."""
    if value[:1] == bytes((MARKER,)):
        return value[_FRAME.size :]
    return value


def generation_of(events: Iterable[Any]) -> int:
    """The lowest consumer generation ``events`` were fetched under (:data:`NO_GENERATION` when
    none says; records read again from Kafka do not)."""
    generations = [
        g for e in events if isinstance(g := getattr(e.message, "generation_id", None), int)
    ]
    return min(generations) if generations else NO_GENERATION


def next_stamp(held: Stamp | None, generation: int, offsets: Iterable[int]) -> Stamp:
    """The stamp of a state that was ``held`` and has had the records at ``offsets`` applied."""
    offset = max(offsets, default=-1)
    if held is not None:
        offset = max(offset, held.offset)
    return Stamp(generation, offset)


def current_records(
    batch: Iterable[Any],
    held: Callable[[Any], bytes | None],
    on_stale: Callable[[Any, Stamp, Stamp], None],
    on_current: Callable[[Any], None] = lambda event: None,
) -> list[Any]:
    """The changelog records of ``batch`` that are not stale, in order.

    ``held(event)``: the value the table holds for the key of a changelog record before the
    batch; ``on_stale(event, stamp, held_stamp)`` is told of every record left out, and
    ``on_current(event)`` of every record kept, in the batch's order.
    """
    latest: dict[Any, Stamp | None] = {}
    kept: list[Any] = []
    for event in batch:
        key = event.key
        value = event.message.value
        stamp = stamp_of(value)
        held_stamp = latest[key] if key in latest else stamp_of(held(event))
        if stamp is not None and held_stamp is not None and stamp.is_stale_beside(held_stamp):
            latest[key] = held_stamp
            on_stale(event, stamp, held_stamp)
            continue
        latest[key] = stamp
        kept.append(event)
        on_current(event)
    return kept
