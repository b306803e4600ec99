"""Agent states kept decoded between batches, so an agent's next batch does not decode its state
again, and its figures keep their per-day totals (:meth:`~.state.Section.live_days`).

An entry is a state and the stored value it stands for. It is used only while the table holds
exactly that value: a restore, a repair or a write by another worker changes the value, and the
state is decoded from the table again. A batch takes its agents' entries out and puts them back
only once Kafka has stored the batch's writes, so a batch that fails half-way leaves no state in
memory that the table does not hold.

Memory is bounded by an estimate of each entry (:func:`estimated_size`, fitted to states of 1,
40 and 3,000 live events: 2.2 KiB, 15 KiB and 1.1 MiB each, measured with tracemalloc over many
copies). The least recently used entries go first.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from connector.worker.aggregates.state import AgentState

ENTRY_BYTES: Final = 1_500
"""What an entry takes besides its size-dependent part (the objects every state has)."""


class _Entry(NamedTuple):
    value: bytes
    state: AgentState


class DecodedStates:
    """Decoded agent states by key, each with the stored value it stands for (module docstring)."""

    def __init__(self, budget_bytes: int) -> None:
        """``budget_bytes``: about how much memory the entries may take; 0 keeps none."""
        self._budget = budget_bytes
        self._entries: dict[bytes, _Entry] = {}
        self._estimate = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def estimated_bytes(self) -> int:
        return self._estimate

    def take(self, key: bytes, stored: bytes) -> AgentState | None:
        """The state kept for ``key`` if it stands for ``stored``, taken out (:meth:`keep` puts
        it back); ``None`` otherwise."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self._estimate -= estimated_size(entry.value)
        return entry.state if entry.value == stored else None

    def keep(self, key: bytes, stored: bytes, state: AgentState) -> None:
        """Keep ``state``, which the table now holds as ``stored``, as the most recently used."""
        previous = self._entries.pop(key, None)
        if previous is not None:
            self._estimate -= estimated_size(previous.value)
        size = estimated_size(stored)
        if size > self._budget:
            return
        self._entries[key] = _Entry(stored, state)
        self._estimate += size
        while self._estimate > self._budget:
            oldest = next(iter(self._entries))
            self._estimate -= estimated_size(self._entries.pop(oldest).value)


def estimated_size(value: bytes) -> int:
    """About how much memory the decoded state of a stored ``value`` and its entry take."""
    return ENTRY_BYTES + len(value) * 6
