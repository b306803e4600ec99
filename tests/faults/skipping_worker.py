"""``zoom-connector worker`` whose Faust consumer loses the first records of a raw partition.

Records of raw partition ``SKIP_PARTITION`` below offset ``SKIP_BELOW`` are fetched (Faust's read
offset moves past them) but never handed to the streams, so never acknowledged either: what
faust-streaming does at a rebalance to records it fetched while the generation changed (see
:mod:`~connector.worker.patches.gaps`). The
worker writes the offsets it withheld to ``<SKIP_LOG>``, one
per line. :mod:`connector.worker.patches.gaps` reads them again and processes them; with
``GAP_ACKS=off`` the worker does not tell Faust's consumer so (the control), and faust-streaming
never commits the partition past them.

    python -m tests.faults.skipping_worker   (the worker's usual environment, plus SKIP_PARTITION,
                                              SKIP_BELOW and SKIP_LOG)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from connector.cli import main
from connector.worker import app as worker_app
from connector.worker.patches import gaps

log = logging.getLogger(__name__)


def install_fault(app: Any, context: worker_app.WorkerContext) -> None:
    partition = int(os.environ["SKIP_PARTITION"])
    below = int(os.environ["SKIP_BELOW"])
    skipped_log = Path(os.environ["SKIP_LOG"])
    raw = context.topics.raw
    consumer = app.consumer
    deliver = consumer.callback

    async def losing_callback(message: Any) -> None:
        if message.topic == raw and message.partition == partition and message.offset < below:
            log.warning("fault injected: raw record %d[%d] withheld", partition, message.offset)
            with skipped_log.open("a") as lines:
                lines.write(f"{message.offset}\n")
            return
        await deliver(message)

    consumer.callback = losing_callback


async def _not_acknowledged(consumer: Any, records: Sequence[gaps.Record]) -> None:
    log.warning("control: %d records read again are not acknowledged to Faust", len(records))


if __name__ == "__main__":
    if os.environ.get("GAP_ACKS") == "off":
        gaps.acknowledge = _not_acknowledged  # type: ignore[assignment]
    worker_app.INSTALLERS.append(install_fault)
    raise SystemExit(main(["worker"]))
