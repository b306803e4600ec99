"""Make a record Faust's current event while a batch consumer touches a table.

Faust routes a table write to the changelog partition of ``faust.current_event()`` (and a RocksDB
table read to that partition's database). The context variable behind it is set by a stream's own
iteration, which for batches taken from the stream runs in another task, so a batch consumer sets
it per record with :func:`processing`.

Patch: faust-streaming issue 497 (tables cannot be written from ``stream.take``). Private name:
``faust.streams._current_event``. Pinned by ``tests/unit/test_worker_fanout.py``
(``test_processing_makes_the_event_faust_current``) and ``tests/unit/test_aggregates_stamps.py``
(a RocksDB table read in the record's partition). Remove when Faust sets the current event for
batches it hands over.
"""

from __future__ import annotations

import weakref
from contextvars import Token
from typing import Any

from faust.streams import _current_event


class processing:
    """Make ``event`` (anything with ``.message.topic``/``.partition``) Faust's current event.

    A class rather than a generator context manager: it runs several times per record."""

    __slots__ = ("_event", "_token")

    def __init__(self, event: Any) -> None:
        self._event = event
        self._token: Token[Any] | None = None

    def __enter__(self) -> None:
        self._token = _current_event.set(weakref.ref(self._event))

    def __exit__(self, *exc_info: object) -> None:
        assert self._token is not None
        _current_event.reset(self._token)
