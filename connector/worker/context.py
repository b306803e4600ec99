"""What every installer of the worker's Faust app gets: the shared pieces, built once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import faust

from connector.avro.codec import EventCodec
from connector.settings import Settings
from connector.topics import TopicNames
from connector.worker.fanout import Derivation
from connector.worker.metrics import WorkerMetrics
from connector.worker.patches import LogEnds, Refetcher
from connector.worker.sink import FaustSink
from connector.worker.stalls import Batches


@dataclass(frozen=True)
class WorkerContext:
    """What every installer may use."""

    settings: Settings
    topics: TopicNames
    codec: EventCodec
    metrics: WorkerMetrics
    raw_partitions: int
    log_ends: LogEnds
    """Where the input partitions end, per the broker (the lag metric, the stall watch)."""
    batches: Batches
    """The batches the agents are working on (the stall watch looks for slow ones)."""
    refetcher: Refetcher
    """Reads again the records Faust's streams skipped (:mod:`.patches.gaps`), for every agent."""
    sink: FaustSink
    """Where every agent's writes go."""
    derivations: list[Derivation] = field(default_factory=list)
    """Writes the raw agent derives from each new typed record, in the typed record's plan
    (an installer adds its own, such as the aggregates' score events)."""

    def stopping(self, app: faust.App) -> Callable[[], bool]:
        return lambda: bool(app.should_stop)


Installer = Callable[[faust.App, WorkerContext], None]
