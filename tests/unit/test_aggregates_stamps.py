"""Stamps on agent states, and the table that skips a frozen worker's late stale writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.settings import Settings
from connector.worker.aggregates.install import TABLE, install_agent_scores
from connector.worker.aggregates.stamps import (
    NO_GENERATION,
    Stamp,
    current_records,
    generation_of,
    next_stamp,
    stamp_of,
    stamped,
    state_bytes,
)
from connector.worker.aggregates.state import AgentState
from connector.worker.app import create_app
from connector.worker.patches import StampedTable
from tests.faust_fakes import FakeEvent, FakeMessage

CHANGELOG = "zc-test-agent-scores-changelog"


def _event(
    key: bytes | None,
    value: bytes | None,
    partition: int = 0,
    offset: int = 0,
    *,
    generation_id: int | None = None,
) -> FakeEvent:
    """A record of the agent-scores table's changelog."""
    message = FakeMessage(
        key=key,
        value=value,
        topic=CHANGELOG,
        partition=partition,
        offset=offset,
        generation_id=generation_id,
    )
    return FakeEvent(message)


def _record(key: bytes, stamp: Stamp | None, body: bytes, offset: int = 0) -> FakeEvent:
    value = stamped(stamp, body) if stamp is not None else body
    return _event(key, value, 0, offset)


def test_a_stamp_frames_the_state_and_is_read_back() -> None:
    body = AgentState("a").to_bytes()
    value = stamped(Stamp(7, 1234), body)
    assert stamp_of(value) == Stamp(7, 1234)
    assert state_bytes(value) == body
    assert AgentState.from_bytes(value).agent == "a"
    # states written before stamps existed are read as they are, without a stamp
    assert stamp_of(body) is None and state_bytes(body) == body
    assert stamp_of(None) is None and stamp_of(b"") is None
    assert stamp_of(stamped(Stamp(-1, -1), b"{}")) == Stamp(-1, -1)


@pytest.mark.parametrize(
    ("incoming", "held", "stale"),
    [
        (Stamp(3, 10), Stamp(4, 12), True),  # a replaced worker's late write, behind on events
        (Stamp(3, 12), Stamp(4, 12), True),  # ... holding the same events
        (Stamp(3, 13), Stamp(4, 12), False),  # holds an event the held state lacks (group reset)
        (Stamp(4, 5), Stamp(4, 12), False),  # same generation: never stale (topic re-created)
        (Stamp(5, 5), Stamp(4, 12), False),  # newer generation: never stale
        (Stamp(4, 12), Stamp(4, 12), False),  # a duplicate of the held record
    ],
)
def test_stale_only_when_older_in_generation_and_not_beyond_in_offset(
    incoming: Stamp, held: Stamp, stale: bool
) -> None:
    assert incoming.is_stale_beside(held) is stale


def test_the_next_stamp_never_goes_back_in_offset() -> None:
    assert next_stamp(None, 4, [7, 3]) == Stamp(4, 7)
    assert next_stamp(Stamp(3, 20), 4, [7]) == Stamp(4, 20)  # a replayed batch
    assert next_stamp(Stamp(3, 20), 4, [21]) == Stamp(4, 21)
    assert next_stamp(None, NO_GENERATION, []) == Stamp(NO_GENERATION, -1)


def test_the_generation_of_a_batch_is_its_oldest() -> None:
    events = [_event(b"a", b"", generation_id=g) for g in (5, 4, 6)]
    assert generation_of(events) == 4
    refetched = [_event(b"a", b"")]  # records read again carry no generation
    assert generation_of(refetched) == NO_GENERATION
    assert generation_of(events + refetched) == 4


def test_stale_records_are_left_out_and_reported() -> None:
    new_owner, zombie, later = AgentState("new"), AgentState("zombie"), AgentState("later")
    held_values = {b"b": stamped(Stamp(9, 50), AgentState("held").to_bytes())}
    batch = [
        _record(b"a", Stamp(8, 40), new_owner.to_bytes(), 100),
        _record(b"a", Stamp(7, 38), zombie.to_bytes(), 101),  # late, behind: skipped
        _record(b"b", Stamp(8, 49), zombie.to_bytes(), 102),  # behind the stored value: skipped
        _record(b"c", Stamp(7, 10), zombie.to_bytes(), 103),  # nothing held: kept
        _record(b"a", Stamp(8, 41), later.to_bytes(), 104),  # the new owner goes on: kept
        _record(b"a", None, later.to_bytes(), 105),  # unstamped: kept
        _record(b"a", Stamp(1, 1), later.to_bytes(), 106),  # after an unstamped one: kept
    ]
    reported: list[tuple[int, Stamp, Stamp]] = []
    kept = current_records(
        batch,
        lambda event: held_values.get(event.key),
        lambda e, s, h: reported.append((e.message.offset, s, h)),
    )
    assert [e.message.offset for e in kept] == [100, 103, 104, 105, 106]
    assert reported == [(101, Stamp(7, 38), Stamp(8, 40)), (102, Stamp(8, 49), Stamp(9, 50))]


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_the_stamped_table_skips_stale_records_when_it_restores(tmp_path: Path, store: str) -> None:
    """The worker's real table (Faust's memory or RocksDB store) applying changelog batches."""
    settings = Settings(worker_data_dir=str(tmp_path), worker_id="zc-test", worker_store=store)
    app = create_app(settings, raw_partitions=2, installers=[install_agent_scores])
    table = app.tables[TABLE]
    assert isinstance(table, StampedTable)
    old = stamped(Stamp(7, 30), AgentState("old").to_bytes())
    good = stamped(Stamp(8, 40), AgentState("good").to_bytes())
    stale = stamped(Stamp(7, 38), AgentState("stale").to_bytes())
    table.apply_changelog_batch([_event(b"a", good, 1, 10), _event(b"b", good, 0, 11)])
    # the stale record comes in a later batch: compared with what the store holds
    table.apply_changelog_batch([_event(b"a", stale, 1, 12)])
    assert table.data[b"a"] == good
    assert table.stale_keys == {b"a": 1}  # its last record is stale: to be written again
    table.repaired([b"a"])
    assert table.stale_keys == {}
    # the same in one batch (a restore from scratch)
    table.apply_changelog_batch([_event(b"c", good, 0, 14), _event(b"c", stale, 0, 15)])
    assert table.data[b"c"] == good and table.stale_keys == {b"c": 0}
    table.repaired([b"c"])
    # a restore over the held states (a memory table at a rebalance): the older records are
    # skipped until the held state's own record, which is not stale: nothing to write again
    table.apply_changelog_batch([_event(b"b", old, 0, 0), _event(b"b", good, 0, 11)])
    assert table.data[b"b"] == good and table.stale_keys == {}
    table.apply_changelog_batch([_event(b"b", old, 0, 0)])
    assert table.stale_keys == {b"b": 0}
    # without stamps the last record wins, as in any Faust table
    table.apply_changelog_batch([_event(b"b", AgentState("plain").to_bytes(), 0, 13)])
    assert AgentState.from_bytes(table.data[b"b"]).agent == "plain"
    assert table.stale_keys == {}
