"""Stand-ins for the Faust objects the worker's agents read: a consumer message and its event.

The agents only read attributes of Faust's ``Message`` (``key``, ``value``, ``topic``,
``partition``, ``offset``, ``timestamp``, ``headers``, ``generation_id``, ``tp``) through
``event.message``, so unit tests hand them these plain dataclasses instead of running a consumer.
An event compares by identity, as Faust's does (the agents keep events in dicts and sets).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from faust.types import TP


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
