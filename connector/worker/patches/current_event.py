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

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

from faust.streams import _current_event


@contextlib.contextmanager
def processing(event: Any) -> Iterator[None]:
    """Make ``event`` (anything with ``.message.topic``/``.partition``) Faust's current event."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
