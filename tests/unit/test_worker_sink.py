"""The worker's sink: a batch's topic records and changelog records to the writer at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import faust

from connector.kafka.batch_writer import OutgoingRecord, WriteError
from connector.worker.delivery import BatchSink, StateWrite, TopicWrite
from connector.worker.sink import FaustSink
from tests.faust_fakes import FakeEvent, FakeMessage


class _Writer:
    """Stores every record at the next offset of its partition, but refuses the value b"big"."""

    def __init__(self) -> None:
        self.batches: list[list[OutgoingRecord]] = []
        self.ends: dict[tuple[str, int | None], int] = {}

    async def write(self, records: Sequence[OutgoingRecord]) -> list[WriteError | int]:
        self.batches.append(list(records))
        outcomes: list[WriteError | int] = []
        for record in records:
            if record.value == b"big":
                outcomes.append(WriteError("too large", 10))
                continue
            at = (record.topic, record.partition)
            self.ends[at] = self.ends.get(at, -1) + 1
            outcomes.append(self.ends[at])
        return outcomes

    async def close(self) -> None:
        pass


class _Store(dict[bytes, bytes]):
    def __init__(self) -> None:
        super().__init__()
        self.persisted: dict[Any, int] = {}

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.persisted[tp] = offset


class _Changelog:
    def get_topic_name(self) -> str:
        return "w-scores-changelog"


class _Table:
    key_serializer = "raw"
    value_serializer = "raw"

    def __init__(self) -> None:
        self.data = _Store()
        self.changelog_topic = _Changelog()


async def test_one_writer_call_per_batch_and_outcomes_in_the_batch_order() -> None:
    writer, table = _Writer(), _Table()
    sink = FaustSink(faust.App("sink-test"), {"scores": table}, writer=writer)  # type: ignore[arg-type]
    assert isinstance(sink, BatchSink)
    record = FakeEvent(FakeMessage(partition=2))
    writes = [
        TopicWrite("typed", b"a", b"one", [("h", b"1")], timestamp_ms=7, partition=1),
        StateWrite("scores", 2, b"agent", b"state", record),
        TopicWrite("typed", b"b", b"big"),
        StateWrite("scores", 2, b"other", b"big", record),
        StateWrite("scores", 2, b"third", b"state-3", record),
        StateWrite("scores", 0, b"repaired", b"held"),  # a repair: the changelog only
        TopicWrite("agent_scores", b"agent", b"figures"),
    ]
    outcomes = await sink.write_all(writes)
    assert [type(o).__name__ if o else None for o in outcomes] == [
        None,
        None,
        "WriteError",
        "WriteError",
        None,
        None,
        None,
    ]
    changelog = "w-scores-changelog"
    assert writer.batches == [
        [
            OutgoingRecord("typed", b"a", b"one", [("h", b"1")], 1, 7),
            OutgoingRecord(changelog, b"agent", b"state", (), 2),
            OutgoingRecord("typed", b"b", b"big", [], None, None),
            OutgoingRecord(changelog, b"other", b"big", (), 2),
            OutgoingRecord(changelog, b"third", b"state-3", (), 2),
            OutgoingRecord(changelog, b"repaired", b"held", (), 0),
            OutgoingRecord("agent_scores", b"agent", b"figures", [], None, None),
        ]
    ]
    # stored locally before the write (the delivery core retries what failed)
    assert table.data == {b"agent": b"state", b"other": b"big", b"third": b"state-3"}
    # the last stored offset of each changelog partition, as Faust's own writes would leave it
    assert table.data.persisted == {
        faust.types.TP(changelog, 2): 1,
        faust.types.TP(changelog, 0): 0,
    }


async def test_a_table_of_json_entries_gets_its_changelog_record_serialized_as_faust_does() -> None:
    app = faust.App("sink-test")
    table = app.Table("dedup", default=None, partitions=4)  # keys and values: Faust's json
    writer = _Writer()
    sink = FaustSink(app, {"dedup": table}, writer=writer)  # type: ignore[arg-type]
    record = FakeEvent(FakeMessage(partition=3))
    assert await sink.write_all([StateWrite("dedup", 3, "event-1", [5_000, 3], record)]) == [None]
    ((written,),) = writer.batches
    assert (written.topic, written.partition) == ("sink-test-dedup-changelog", 3)
    assert app.serializers.loads_key(None, written.key, serializer="json") == "event-1"
    assert app.serializers.loads_value(None, written.value, serializer="json") == [5_000, 3]
    assert table.data["event-1"] == [5_000, 3]
