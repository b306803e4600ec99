"""``zoom-connector worker`` whose offset commits Kafka "refuses" while told to.

While the file named by ``REFUSE_TRIGGER`` exists and ``<REFUSE_TRIGGER>.release`` does not, every
commit that includes raw-topic offsets returns ``False`` from Faust's driver-level
``Consumer._commit``, which is what faust-streaming's aiokafka driver returns when Kafka refuses a
commit because the group rebalanced meanwhile (``CommitFailedError``); nothing reaches Kafka. The
worker writes the highest refused raw offset of each partition to ``<REFUSE_TRIGGER>.done``
(``partition offset`` per line). With ``COMMIT_KEEPER=off`` the worker runs without
:mod:`connector.worker.patches.commits` (the control).

    python -m tests.faults.refusing_worker   (the worker's usual environment, plus REFUSE_TRIGGER)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connector.cli import main
from connector.worker import app as worker_app

log = logging.getLogger(__name__)


def install_fault(app: Any, context: worker_app.WorkerContext) -> None:
    trigger = Path(os.environ["REFUSE_TRIGGER"])
    release = Path(f"{trigger}.release")
    raw = context.topics.raw
    consumer = app.consumer
    commit = consumer._commit
    refused: dict[int, int] = {}

    async def refusing_commit(offsets: Mapping[Any, int]) -> bool:
        raw_offsets = {tp.partition: o for tp, o in offsets.items() if tp.topic == raw}
        if not raw_offsets or not trigger.exists() or release.exists():
            done: bool = await commit(offsets)
            return done
        log.warning("fault injected: commit of raw offsets %s refused", raw_offsets)
        for partition, offset in raw_offsets.items():
            refused[partition] = max(offset, refused.get(partition, 0))
        lines = "".join(f"{p} {o}\n" for p, o in sorted(refused.items()))
        Path(f"{trigger}.done").write_text(lines)
        return False

    consumer._commit = refusing_commit


if __name__ == "__main__":
    if os.environ.get("COMMIT_KEEPER") == "off":
        worker_app.INSTALLERS.remove(worker_app.install_commit_keeper)
    worker_app.INSTALLERS.append(install_fault)
    raise SystemExit(main(["worker"]))
