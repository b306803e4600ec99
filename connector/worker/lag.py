"""The raw topic's consumer lag, per partition this worker owns, for ``/metrics``.

Lag is where a partition's log ends minus the next offset the raw agent will process (before the
first record: the consumer's position). Where the log ends is asked of the broker
(:class:`~connector.worker.patches.LogEnds`): the consumer's own figure stands still while it does
not fetch a partition, which would hide exactly the lag that matters. Measured every 2 s; a round
that fails (rebalancing, not started) keeps the last figures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Final

import faust

from connector.worker.metrics import WorkerMetrics
from connector.worker.patches import LogEnds, furthest

log = logging.getLogger(__name__)

_INTERVAL_SECONDS: Final = 2.0
_POSITION_TIMEOUT: Final = 2.0


def watch_lag(
    app: faust.App,
    topic: str,
    next_offsets: Mapping[tuple[str, int], int],
    log_ends: LogEnds,
    metrics: WorkerMetrics,
) -> None:
    """Measure ``topic``'s lag on a timer; ``next_offsets``: (topic, partition) -> the offset
    after the last record the agent acknowledged."""
    lag: dict[int, int] = {}

    async def measure_lag() -> None:
        current: dict[int, int] = {}
        try:
            consumer = app.consumer
            owned = [tp for tp in consumer.assignment() if tp.topic == topic]
            ends = await log_ends.refresh((tp.topic, tp.partition) for tp in owned)
            for tp in owned:
                highwater = furthest(consumer.highwater(tp), ends.get((tp.topic, tp.partition)))
                next_offset = next_offsets.get((tp.topic, tp.partition))
                if next_offset is None:  # nothing processed here yet: where the consumer stands
                    next_offset = await asyncio.wait_for(consumer.position(tp), _POSITION_TIMEOUT)
                if isinstance(highwater, int) and isinstance(next_offset, int):
                    current[tp.partition] = max(0, highwater - next_offset)
        except Exception as exc:  # rebalancing, not started yet: keep the last figures
            log.debug("consumer lag not measured: %r", exc)
            return
        lag.clear()
        lag.update(current)

    app.timer(_INTERVAL_SECONDS)(measure_lag)
    metrics.watch_lag(lambda: dict(lag))
