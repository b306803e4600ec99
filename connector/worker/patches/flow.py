"""Resuming Faust's flow keeps the records already queued for the streams while it flowed.

faust-streaming 0.15.3 empties every stream's queue (and the changelog queue) each time it calls
``app.flow_control.resume()``, also when the flow was not suspended. At the end of a recovery it
resumes the stream partitions, seeks them to the committed offsets, and only then calls
``resume()``: records the fetcher handed over meanwhile (the consumer flows since the recovery
began) are dropped from the queues. They are neither processed nor acknowledged, and the
consumer's read offset has passed them, so nothing fetches them again: the partition's commits stand
still behind them, and they wait until a later record of the partition lets
:mod:`~connector.worker.patches.gaps` find the hole, or until a restart. A worker that starts
with records waiting, or rebalances while they arrive, can leave the tail of a partition
unprocessed for as long as that partition stays quiet.

:class:`SteadyFlowControl` empties the queues only when the flow was suspended (what they then
hold was queued before the suspension, for an assignment that has since changed). Resuming a
flow that already runs changes nothing.

Patch: faust-streaming issue 596 (a race in recovery leaves unrecoverable gaps in the acked
offsets). Private names: mode's ``FlowControlEvent`` (``is_active``, ``resume``), Faust's
``App.flow_control``. Pinned by ``tests/unit/test_worker_flow.py`` (Faust's own event empties a
running flow's queues; this one keeps them) and ``tests/integration/test_recovery_queue_kafka.py``
(records handed over while the recovery seeks are all processed). Remove when faust-streaming
stops emptying the queues of a flow that was not suspended.
"""

from __future__ import annotations

from mode.utils.queues import FlowControlEvent


class SteadyFlowControl(FlowControlEvent):
    """The worker's flow control: :meth:`resume` of a running flow keeps the queued records."""

    def resume(self) -> None:
        if self.is_active():
            return
        super().resume()
