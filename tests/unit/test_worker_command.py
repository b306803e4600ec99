"""``zoom-connector worker``'s start-up steps that need no broker."""

from __future__ import annotations

import gc

from connector.worker.command import freeze_startup_objects


def test_startup_objects_are_frozen_out_of_the_collectors_sight() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    Cycle()  # garbage: collected first, not frozen
    alive = [Cycle() for _ in range(10)]
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() >= len(alive)
        assert not any(type(o) is Cycle for o in gc.get_objects(generation=2))
    finally:
        gc.unfreeze()
    assert sum(type(o) is Cycle for o in gc.get_objects()) == len(alive)
