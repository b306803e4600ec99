"""The worker's sink: a batch's topic records to the writer at once, table entries to Faust."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import faust

from connector.kafka.batch_writer import OutgoingRecord, WriteError
from connector.worker.delivery import BatchSink, StateWrite, TopicWrite
from connector.worker.sink import FaustSink
from tests.faust_fakes import FakeEvent, FakeMessage


class _Writer:
    def __init__(self) -> None:
        self.batches: list[list[OutgoingRecord]] = []
        self.closed = False

    async def write(self, records: Sequence[OutgoingRecord]) -> list[WriteError | None]:
        self.batches.append(list(records))
        return [WriteError("too large", 10) if r.value == b"big" else None for r in records]

    async def close(self) -> None:
        self.closed = True


class _Table:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.changelog: list[tuple[int, bytes, bytes]] = []

    def send_changelog(self, partition: int, key: bytes, value: bytes) -> Any:
        self.changelog.append((partition, key, value))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if value == b"lost":
            future.set_exception(TimeoutError("changelog"))
        else:
            future.set_result(None)
        return future


async def test_one_writer_call_per_batch_and_outcomes_in_the_batch_order() -> None:
    writer, table = _Writer(), _Table()
    sink = FaustSink(faust.App("sink-test"), {"scores": table}, writer=writer)  # type: ignore[arg-type]
    assert isinstance(sink, BatchSink)
    record = FakeEvent(FakeMessage(partition=2))
    writes = [
        TopicWrite("typed", b"a", b"one", [("h", b"1")], timestamp_ms=7, partition=1),
        StateWrite("scores", 2, b"agent", b"state", record),
        TopicWrite("typed", b"b", b"big"),
        StateWrite("scores", 2, b"other", b"lost", record),
        TopicWrite("agent_scores", b"agent", b"figures"),
    ]
    outcomes = await sink.write_all(writes)
    assert [type(o).__name__ if o else None for o in outcomes] == [
        None,
        None,
        "WriteError",
        "TimeoutError",
        None,
    ]
    assert len(writer.batches) == 1
    assert writer.batches[0] == [
        OutgoingRecord("typed", b"a", b"one", [("h", b"1")], 1, 7),
        OutgoingRecord("typed", b"b", b"big", [], None, None),
        OutgoingRecord("agent_scores", b"agent", b"figures", [], None, None),
    ]
    assert table.changelog == [(2, b"agent", b"state"), (2, b"other", b"lost")]
    assert table.data == {b"agent": b"state", b"other": b"lost"}
