"""The worker's patches of faust-streaming and aiokafka, behind one facade.

Each module here compensates for one behaviour of the libraries and states, in its docstring, the
upstream issue, the test that pins it and when it can go (``docs/known-issues.md`` lists them).
Nothing else in the worker touches a private name of faust, mode or aiokafka; the rest of the
worker imports from this package only (``tests/unit/test_worker_patches.py`` checks both).

- :mod:`.versions`: the library versions the patches are tested against, checked at start-up;
- :mod:`.current_event`: a record made Faust's current event for table access from a batch;
- :mod:`.batching`: batches taken from a stream as soon as the agent is free, unacknowledged;
- :mod:`.gaps`: records a stream skipped at a rebalance, read again and registered as processed;
- :mod:`.commits`: offset commits Kafka refused at a rebalance but Faust noted as made, redone;
- :mod:`.dense_offsets`: no offsets taken as skipped by Faust's fetch loop (dense offsets);
- :mod:`.fetching`: the consumer's fetch size and wait (Faust hard-codes one byte);
- :mod:`.handover`: fetched records handed to their stream without four asyncio tasks each;
- :mod:`.flow`: resuming a running flow keeps the records queued for the streams;
- :mod:`.worker_app`: the worker's ``faust.App``, with the transport and flow control above;
- :mod:`.partitions`: the stall watch's views of Faust's consumer, and its remedies;
- :mod:`.log_ends`: where partitions end, asked of the broker (the consumer's figure goes stale);
- :mod:`.fence`: a worker frozen past its session keeps its stale state writes to itself;
- :mod:`.stamped_table`: a table restore that skips stale (zombie) state records;
- :mod:`.refusals`: which of the driver's write errors refuse the record itself.
"""

from connector.worker.patches.batching import take_available
from connector.worker.patches.commits import CommitKeeper
from connector.worker.patches.current_event import processing
from connector.worker.patches.fence import FreezeGuard, release_unwritten
from connector.worker.patches.fetching import Fetching
from connector.worker.patches.gaps import (
    Fetcher,
    Gap,
    OffsetGaps,
    Record,
    RefetchedEvent,
    Refetcher,
    refill,
    settle,
)
from connector.worker.patches.log_ends import LogEnds, furthest
from connector.worker.patches.partitions import FaustPartitions
from connector.worker.patches.refusals import refuses_record
from connector.worker.patches.stamped_table import StampedTable
from connector.worker.patches.versions import TESTED, UnsupportedLibrary, check_versions
from connector.worker.patches.worker_app import WorkerApp

__all__ = [
    "TESTED",
    "CommitKeeper",
    "FaustPartitions",
    "Fetcher",
    "Fetching",
    "FreezeGuard",
    "Gap",
    "LogEnds",
    "OffsetGaps",
    "Record",
    "RefetchedEvent",
    "Refetcher",
    "StampedTable",
    "UnsupportedLibrary",
    "WorkerApp",
    "check_versions",
    "furthest",
    "processing",
    "refill",
    "refuses_record",
    "release_unwritten",
    "settle",
    "take_available",
]
