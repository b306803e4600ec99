"""``zoom-connector worker`` that loses track of its raw partitions once told to.

Once the file named by ``STALL_TRIGGER`` exists, the raw topic's partitions are taken out of
Faust's fetch set (``Consumer._active_partitions``) without being paused, as faust-streaming's
own bookkeeping sometimes leaves a partition (faust-streaming issues 629, 471): Faust stops asking
Kafka for them and nothing else in Faust puts them back. The worker then writes
``<STALL_TRIGGER>.done`` naming the partitions. :mod:`connector.worker.stalls` is what should
notice and fetch them again.

    python -m tests.faults.dropping_worker   (the worker's usual environment, plus STALL_TRIGGER)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from connector.cli import main
from connector.worker import app as worker_app

log = logging.getLogger(__name__)


def install_fault(app: Any, context: worker_app.WorkerContext) -> None:
    trigger = Path(os.environ["STALL_TRIGGER"])
    raw = context.topics.raw
    injected = False

    async def drop_raw_partitions() -> None:
        nonlocal injected
        if injected or not trigger.exists():
            return
        consumer = app.consumer
        raw_partitions = {tp for tp in consumer.assignment() if tp.topic == raw}
        consumer._get_active_partitions().difference_update(raw_partitions)
        injected = True
        dropped = sorted(tp.partition for tp in raw_partitions)
        log.warning("fault injected: raw partitions %s dropped from Faust's fetch set", dropped)
        Path(f"{trigger}.done").write_text(" ".join(map(str, dropped)))

    app.timer(0.1)(drop_raw_partitions)


if __name__ == "__main__":
    worker_app.INSTALLERS.append(install_fault)
    raise SystemExit(main(["worker"]))
