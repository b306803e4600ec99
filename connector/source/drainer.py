"""The drain loop: sends the spool's records to Kafka in order, then deletes their segment.

One :class:`Drainer` task runs for the source's lifetime. It waits until the spool holds records
and Kafka answers (``producer.is_ready()``), then takes the oldest sealed segment (sealing the
active one when it is the last) and sends its records with the source's idempotent producer in
chunks of ``window``, each handed to librdkafka in spool order; a chunk's records whose send
failed are sent again after a pause, before the next chunk. After each chunk the segment's
progress file notes how many leading records are in Kafka, and the segment is deleted only once
every record in it is acknowledged. A source killed mid-drain sends again at most the chunk in
flight (and a chunk acknowledged just before its note): duplicates the worker drops by event id.

Damage found in a segment (a torn tail after a crash mid-write, a bad checksum) is logged and
counted once per segment; the readable records around it are drained all the same, and the
segment is then kept as ``*.damaged`` instead of deleted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Final

from connector.source.metrics import SourceMetrics
from connector.source.producer import DurableProducer
from connector.source.spool import SegmentContents, Spool, SpooledRecord

log = logging.getLogger(__name__)

DEFAULT_WINDOW: Final = 1000
_RETRY_SECONDS: Final = (0.5, 1.0, 2.0, 5.0)


class Drainer:
    """Sends what the spool holds to Kafka; :meth:`run` is the task, :meth:`wake` nudges it."""

    def __init__(
        self,
        spool: Spool,
        producer: DurableProducer,
        topic: str,
        metrics: SourceMetrics,
        *,
        window: int = DEFAULT_WINDOW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._spool = spool
        self._producer = producer
        self._topic = topic
        self._metrics = metrics
        self._window = window
        self._clock = clock
        self._wake = asyncio.Event()
        self._reported: set[int] = set()

    def wake(self) -> None:
        """New records are in the spool."""
        self._wake.set()

    def report(self, sequence: int, contents: SegmentContents) -> None:
        """Log and count the damage of a segment, once per segment."""
        if not contents.damage or sequence in self._reported:
            return
        self._reported.add(sequence)
        for damage in contents.damage:
            self._metrics.spool_damaged.labels(reason=damage.reason).inc()
            log.error(
                "spool segment damaged segment=%d offset=%d bytes=%d reason=%s"
                " readable_records=%d: the damaged bytes are skipped",
                sequence,
                damage.offset,
                damage.length,
                damage.reason,
                len(contents.records),
            )

    async def run(self) -> None:
        """Drain for ever (until cancelled)."""
        while True:
            sealed = self._spool.sealed()
            if not sealed:
                if self._spool.active_records() == 0:
                    self._wake.clear()
                    if self._spool.records() == 0 and not self._spool.sealed():
                        await self._wake.wait()
                    continue
                await asyncio.to_thread(self._spool.seal_active)
                continue
            try:
                await self._drain(sealed[0])
            except Exception:  # a disk error, or a bug: logged, and the loop goes on
                log.exception("spool segment could not be drained segment=%d", sealed[0])
                await asyncio.sleep(_RETRY_SECONDS[-1])

    async def _drain(self, sequence: int) -> None:
        contents = await asyncio.to_thread(self._spool.read, sequence)
        self.report(sequence, contents)
        records = contents.records
        start = self._spool.drained(sequence)  # sent by an earlier process
        for chunk_start in range(start, len(records), self._window):
            chunk_end = min(chunk_start + self._window, len(records))
            await self._deliver(sequence, records[chunk_start:chunk_end], records[chunk_end:])
            await asyncio.to_thread(self._spool.drained_up_to, sequence, chunk_end)
        kept = await asyncio.to_thread(self._spool.remove, sequence, damaged=bool(contents.damage))
        if kept is not None:
            log.warning("spool segment drained, damaged part kept path=%s", kept)
        else:
            log.info("spool segment drained segment=%d records=%d", sequence, len(records))
        if self._spool.records() == 0:
            log.info("spool drained: webhooks go to Kafka directly again")

    async def _deliver(
        self, sequence: int, chunk: list[SpooledRecord], rest: list[SpooledRecord]
    ) -> None:
        """Send ``chunk`` until Kafka acknowledged every record of it; ``rest`` follows it."""
        waiting = chunk
        failures = 0
        while waiting:
            await self._until_kafka_answers()
            failed = await self._send(waiting)
            sent = len(waiting) - len(failed)
            self._metrics.spool_drained.inc(sent)
            oldest = failed[0] if failed else rest[0] if rest else None
            self._spool.acknowledged(
                sequence, sent, oldest.received_at_ms if oldest is not None else None
            )
            if failed:
                failures += 1
                pause = _RETRY_SECONDS[min(failures, len(_RETRY_SECONDS)) - 1]
                log.warning(
                    "spool drain: kafka did not acknowledge records=%d segment=%d, again in %g s",
                    len(failed),
                    sequence,
                    pause,
                )
                await asyncio.sleep(pause)
            waiting = failed

    async def _until_kafka_answers(self) -> None:
        waited = 0
        while not await self._producer.is_ready():
            waited += 1
            await asyncio.sleep(_RETRY_SECONDS[min(waited, len(_RETRY_SECONDS)) - 1])

    async def _send(self, records: Iterable[SpooledRecord]) -> list[SpooledRecord]:
        """Send ``records`` in order, at most ``window`` unacknowledged; those that failed."""
        room = asyncio.Semaphore(self._window)
        sends: list[tuple[SpooledRecord, asyncio.Task[object]]] = []
        try:
            for record in records:
                await room.acquire()
                task: asyncio.Task[object] = asyncio.create_task(
                    self._producer.send(self._topic, record.key, record.value, record.headers)
                )
                task.add_done_callback(lambda _: room.release())
                sends.append((record, task))
            failed = []
            for record, task in sends:
                try:
                    await task
                except Exception:  # a ProduceError, or anything else: sent again later
                    failed.append(record)
            return failed
        finally:
            for _, task in sends:
                task.cancel()
