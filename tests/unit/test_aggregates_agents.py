"""The aggregates' handlers on the delivery core without a broker: batches, writes before acks,
crash replays, repairs, re-keying; the handlers alone; and the query API's routing (two in-process
"workers" answering and forwarding over real HTTP)."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaTimeoutError
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import CollectorRegistry

from connector.avro.codec import EventCodec
from connector.settings import Settings
from connector.spec import load_catalog
from connector.topics import TopicNames
from connector.worker.aggregates import events as score_events
from connector.worker.aggregates.aggregation import Aggregator
from connector.worker.aggregates.decoded import DecodedStates
from connector.worker.aggregates.events import Evaluation
from connector.worker.aggregates.install import (
    AGGREGATE_AGENT,
    TABLE,
    install_agent_scores,
)
from connector.worker.aggregates.metrics import AggregateMetrics
from connector.worker.aggregates.queries import (
    FORWARDED_HEADER,
    ScoresQueries,
    Unavailable,
    install_scores_views,
)
from connector.worker.aggregates.record import AgentScoresCodec
from connector.worker.aggregates.rekeying import ScoreEvents, events_topic_name, partition_for
from connector.worker.aggregates.repairs import Repairer, TableRepairs
from connector.worker.aggregates.stamps import Stamp, stamp_of
from connector.worker.aggregates.state import AgentState, Retention
from connector.worker.app import create_app
from connector.worker.dedup import DedupIndex
from connector.worker.delivery import (
    CoreHooks,
    DeliveryAborted,
    DeliveryCore,
    StateWrite,
    TopicWrite,
    Write,
)
from connector.worker.fanout import FanOut
from connector.worker.metrics import WorkerMetrics
from connector.worker.patches import Fetcher, Gap, Record, StampedTable
from connector.worker.routing import RawRecord, Router, TypedRecord
from tests.faust_fakes import FakeEvent, FakeMessage

CATALOG = load_catalog()
CODEC = EventCodec()
SCORES = AgentScoresCodec()
DAY = 86_400_000
T0 = 20_000 * DAY
RETENTION = Retention(31 * DAY, 3000)


def _event(
    key: bytes | None, value: bytes | None, partition: int = 0, offset: int = 0
) -> FakeEvent:
    """A record of the internal agent-score-events topic."""
    message = FakeMessage(
        key=key, value=value, topic="w-agent-score-events", partition=partition, offset=offset
    )
    return FakeEvent(message)


class _Writes:
    """Fake Kafka: records writes; ``fail`` makes the next deliveries of a kind fail."""

    def __init__(self) -> None:
        self.log: list[tuple[str, bytes, bytes]] = []
        self.failures: dict[str, int] = {}

    def delivery(self, kind: str, key: bytes, value: bytes) -> Awaitable[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.failures.get(kind, 0) > 0:
            self.failures[kind] -= 1
            future.set_exception(KafkaTimeoutError())
        else:
            self.log.append((kind, key, value))
            future.set_result(None)
        return future

    def of(self, kind: str) -> list[tuple[bytes, bytes]]:
        return [(k, v) for w, k, v in self.log if w == kind]


class _Store:
    """The table's local store and its changelog, and the topics: the delivery core's sink."""

    def __init__(self, writes: _Writes) -> None:
        self.local: dict[bytes, bytes] = {}
        self.writes = writes

    def get(self, event: Any, key: bytes) -> bytes | None:
        return self.local.get(key)

    def held(self, key: bytes) -> bytes | None:
        return self.local.get(key)

    async def send(self, write: Write) -> Awaitable[Any]:
        if isinstance(write, StateWrite):
            assert write.table == TABLE
            if write.record is not None:
                self.local[write.key] = write.value
            return self.writes.delivery("changelog", write.key, write.value)
        assert isinstance(write, TopicWrite) and write.key is not None and write.value is not None
        return self.writes.delivery(write.topic, write.key, write.value)


@dataclass
class _Repairs:
    """Stale keys (key -> partition) as the stamped table would leave them."""

    stale: dict[bytes, int] = field(default_factory=dict)

    def pending(self) -> dict[bytes, int]:
        return dict(self.stale)

    def done(self, keys: Any) -> None:
        for key in keys:
            self.stale.pop(key, None)


@dataclass
class _Harness:
    writes: _Writes = field(default_factory=_Writes)
    acked: list[Any] = field(default_factory=list)
    stopping: bool = False

    def __post_init__(self) -> None:
        self.store = _Store(self.writes)
        self.metrics = AggregateMetrics(CollectorRegistry())

    async def ack(self, event: Any) -> None:
        self.acked.append(event)

    def aggregator(
        self,
        repairs: _Repairs | None = None,
        refetcher: Fetcher | None = None,
        decoded: DecodedStates | None = None,
    ) -> _Aggregating:
        return _Aggregating(self, repairs or _Repairs(), refetcher, decoded)

    def published(self) -> dict[bytes, dict[str, Any]]:
        return {k: SCORES.decode(v) for k, v in self.writes.of("agent_scores")}


class _Aggregating:
    """The aggregating agent's handler on a delivery core, and its repairer."""

    def __init__(
        self,
        h: _Harness,
        repairs: _Repairs,
        refetcher: Fetcher | None,
        decoded: DecodedStates | None = None,
    ) -> None:
        handler = Aggregator(
            h.store,
            TABLE,
            "agent_scores",
            SCORES,
            RETENTION,
            h.metrics,
            stored=repairs.done,
            decoded=decoded,
        )
        hooks = CoreHooks(
            retried=h.metrics.write_retries.inc,
            refetched=h.metrics.refetched.labels("aggregate").inc,
        )
        self.core = DeliveryCore(
            "aggregate",
            handler,
            h.store,
            stopping=lambda: h.stopping,
            refetcher=refetcher,
            hooks=hooks,
        )
        self.repairer = Repairer(
            self.core, repairs, h.store, TABLE, "agent_scores", SCORES, h.metrics
        )

    async def process(self, events: list[Any], ack: Callable[[Any], Awaitable[Any]]) -> None:
        await self.core.process(events, ack)

    async def repair(self) -> None:
        await self.repairer.repair()


def _internal(event: Evaluation, offset: int = 0) -> FakeEvent:
    return _event(event.agent.encode(), score_events.encode(event), 0, offset)


def _evaluation(agent: str, eid: str, ts: int, score: float) -> Evaluation:
    return Evaluation(agent, eid, ts, score, score / 100, "MANUAL", "Care", agent.upper())


def test_partition_for_is_kafkas_default_partitioner() -> None:
    partitioner = DefaultPartitioner()
    for n in (1, 3, 6, 12):
        for key in (b"httgPnTgTxq0d65-alfYVw", b"name:Admin3", b"", "Zoë".encode()):
            assert partition_for(key, n) == partitioner(key, list(range(n)), list(range(n)))


async def test_one_write_per_agent_per_batch_then_acks() -> None:
    h = _Harness()
    batch = [
        _internal(_evaluation("a", "e1", T0, 10)),
        _internal(_evaluation("b", "e2", T0, 20)),
        _internal(_evaluation("a", "e3", T0 + 1, 30)),
        _internal(_evaluation("a", "e1", T0, 10)),  # a duplicate
        _event(b"a", b"not json"),  # unreadable: skipped, acknowledged
        _event(b"b", score_events.encode(_evaluation("a", "e9", T0, 1))),  # wrong key
    ]
    await h.aggregator().process(batch, h.ack)
    assert h.acked == batch
    assert sorted(k for k, _ in h.writes.of("changelog")) == [b"a", b"b"]
    published = h.published()
    assert published[b"a"]["evaluations"]["lifetime"]["count"] == 2
    assert published[b"a"]["evaluations"]["lifetime"]["score_mean"] == 20.0
    assert published[b"b"]["evaluations"]["lifetime"]["count"] == 1
    stored = AgentState.from_bytes(h.store.local[b"a"])
    assert published[b"a"]["display_name"] == stored.display_name == "A"


async def test_failed_writes_are_retried_before_acknowledging() -> None:
    h = _Harness()
    h.writes.failures = {"changelog": 1, "agent_scores": 2}
    batch = [_internal(_evaluation("a", "e1", T0, 10))]
    await h.aggregator().process(batch, h.ack)
    assert h.acked == batch
    assert len(h.writes.of("changelog")) == 1 and len(h.writes.of("agent_scores")) == 1
    assert h.metrics.write_retries._value.get() == 3


async def test_stopping_with_failing_writes_leaves_the_batch_unacknowledged() -> None:
    h = _Harness(stopping=True)
    h.writes.failures = {"agent_scores": 1}
    with pytest.raises(DeliveryAborted):
        await h.aggregator().process([_internal(_evaluation("a", "e1", T0, 10))], h.ack)
    assert h.acked == []


async def test_a_replayed_batch_repairs_a_lost_write_and_changes_nothing_else() -> None:
    """kill -9 after the changelog write, before agent_scores and the offset commit."""
    h = _Harness()
    first = [_internal(_evaluation("a", f"e{i}", T0 + i, i), i) for i in range(5)]
    await h.aggregator().process(first, h.ack)
    second = [_internal(_evaluation("a", "e0", T0 + DAY, 99), 5)]  # a re-score
    h.writes.failures = {"agent_scores": 1}
    h.stopping = True
    with pytest.raises(DeliveryAborted):
        await h.aggregator().process(second, h.ack)
    # the state has the re-score, agent_scores does not; the offset was not committed
    assert AgentState.from_bytes(h.store.local[b"a"]).evaluations is not None
    assert h.published()[b"a"]["evaluations"]["lifetime"]["score_max"] == 4
    h.stopping = False
    state_before = h.store.local[b"a"]
    await h.aggregator().process(second, h.ack)  # the restarted worker processes it again
    assert h.store.local[b"a"] == state_before
    lifetime = h.published()[b"a"]["evaluations"]["lifetime"]
    assert (lifetime["count"], lifetime["score_max"]) == (5, 99)


async def test_states_kept_decoded_give_the_figures_of_states_decoded_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kept states spare the decoding; a value the table got otherwise (a restore) is decoded."""
    decodes = 0
    from_bytes = AgentState.from_bytes

    def counted(data: bytes) -> AgentState:
        nonlocal decodes
        decodes += 1
        return from_bytes(data)

    monkeypatch.setattr(AgentState, "from_bytes", staticmethod(counted))
    kept, plain = _Harness(), _Harness()
    keeping = kept.aggregator(decoded=DecodedStates(1_000_000))
    batches = [
        [_internal(_evaluation(agent, f"e{n}{agent}", T0 + n, 10 * n), n) for agent in "ab"]
        for n in range(4)
    ]
    for batch in batches[:3]:
        await keeping.process(batch, kept.ack)
        await plain.aggregator().process(batch, plain.ack)
    assert decodes == 4  # plain: agents a and b in batches 2 and 3; kept: none
    assert kept.published() == plain.published()
    for key, value in kept.store.local.items():  # the same events (applied at other times)
        mine, theirs = from_bytes(value), from_bytes(plain.store.local[key])
        assert mine.evaluations is not None and theirs.evaluations is not None
        assert mine.evaluations.live == theirs.evaluations.live

    # a restore puts an older state of agent a in the table: it is decoded, not the kept one
    kept.store.local[b"a"] = kept.writes.of("changelog")[0][1]
    plain.store.local[b"a"] = plain.writes.of("changelog")[0][1]
    await keeping.process(batches[3], kept.ack)
    await plain.aggregator().process(batches[3], plain.ack)
    assert kept.published() == plain.published()
    assert kept.published()[b"a"]["evaluations"]["lifetime"]["count"] == 2  # e0 and e3


async def test_a_batch_not_stored_hands_no_state_back() -> None:
    h = _Harness()
    decoded = DecodedStates(1_000_000)
    aggregator = h.aggregator(decoded=decoded)
    await aggregator.process([_internal(_evaluation("a", "e1", T0, 10), 0)], h.ack)
    assert len(decoded) == 1
    h.writes.failures = {"agent_scores": 1}
    h.stopping = True
    with pytest.raises(DeliveryAborted):
        await aggregator.process([_internal(_evaluation("a", "e2", T0, 20), 1)], h.ack)
    assert len(decoded) == 0


async def test_records_the_stream_skipped_are_read_again_and_applied() -> None:
    h = _Harness()
    skipped = _evaluation("a", "e2", T0 + 2, 20)

    class Fetching:
        async def fetch(self, gap: Gap) -> list[Record]:
            assert (gap.partition, gap.start, gap.end) == (0, 1, 2)
            value = score_events.encode(skipped)
            return [Record(gap.topic, 0, 1, b"a", value)]

        async def start_offsets(self, partitions: Any) -> dict[tuple[str, int], int]:
            return {}  # the group's position unknown: only jumps count

        async def processed(self, records: Any) -> None:
            return None

    aggregator = h.aggregator(refetcher=Fetching())
    await aggregator.process([_internal(_evaluation("a", "e1", T0, 10), 0)], h.ack)
    batch = [_internal(_evaluation("a", "e3", T0 + 3, 30), 2)]  # offset 1 never came
    await aggregator.process(batch, h.ack)
    assert h.acked[-1:] == batch  # only what the stream delivered is acknowledged
    lifetime = h.published()[b"a"]["evaluations"]["lifetime"]
    assert (lifetime["count"], lifetime["score_mean"]) == (3, 20.0)
    assert h.metrics.refetched.labels("aggregate")._value.get() == 1


def _raw(event_type: str, change: Callable[[dict[str, Any]], None]) -> bytes:
    event = copy.deepcopy(CATALOG.example(event_type))
    event["event"] = event_type
    change(event["payload"]["object"])
    return json.dumps(event).encode()


async def test_states_are_stamped_with_their_generation_and_last_offset() -> None:
    h = _Harness()
    aggregator = h.aggregator()
    batch = [_internal(_evaluation("a", f"e{i}", T0 + i, i), 10 + i) for i in range(3)]
    batch.append(_internal(_evaluation("b", "x", T0, 1), 20))
    for event in batch:
        event.message.generation_id = 6 if event.message.offset != 11 else 5
    await aggregator.process(batch, h.ack)
    assert stamp_of(h.store.local[b"a"]) == Stamp(5, 12)  # the batch's oldest generation
    assert stamp_of(h.store.local[b"b"]) == Stamp(5, 20)
    # a batch processed again (after a crash, by the next owner) does not move the offset back
    replay = [_internal(_evaluation("a", "e0", T0, 0), 10)]
    replay[0].message.generation_id = 7
    await aggregator.process(replay, h.ack)
    assert stamp_of(h.store.local[b"a"]) == Stamp(7, 12)


async def test_held_states_of_skipped_stale_records_are_written_again() -> None:
    h = _Harness()
    repairs = _Repairs()
    aggregator = h.aggregator(repairs)
    await aggregator.process(
        [
            _internal(_evaluation("a", "e1", T0, 10), 1),
            _internal(_evaluation("b", "e2", T0, 20), 2),
        ],
        h.ack,
    )
    held = dict(h.store.local)
    h.writes.log.clear()
    await aggregator.repair()  # nothing pending: nothing written
    assert h.writes.log == []
    repairs.stale = {b"a": 0, b"b": 0, b"gone": 0}
    h.writes.failures = {"agent_scores": 1}  # retried like any aggregate write
    await aggregator.repair()
    assert sorted(h.writes.of("changelog")) == [(b"a", held[b"a"]), (b"b", held[b"b"])]
    assert h.published()[b"a"]["evaluations"]["lifetime"]["score_max"] == 10
    assert repairs.stale == {} and h.metrics.repaired._value.get() == 2
    # a batch writing a pending key repairs it as well
    repairs.stale = {b"a": 0}
    await aggregator.process([_internal(_evaluation("a", "e3", T0, 30), 3)], h.ack)
    assert repairs.stale == {}


class _Ownership:
    """The partitions a worker owns and stands by for, and whether it is settled."""

    def __init__(self, owned: set[int], standby: set[int], ready: bool = True) -> None:
        self.owned, self.standby, self.ready = owned, standby, ready

    def check_ready(self) -> None:
        if not self.ready:
            raise Unavailable("rebalancing")

    def local_partitions(self) -> set[int]:
        return self.owned

    def standby_partitions(self) -> set[int]:
        return self.standby


def test_repairs_wait_for_ownership_and_forget_partitions_gone_elsewhere() -> None:
    table = StampedTable.__new__(StampedTable)  # only its stale keys are used
    table.stale_keys = {b"owned": 0, b"standby": 1, b"elsewhere": 2}
    ownership = _Ownership(owned={0}, standby={1}, ready=False)
    repairs = TableRepairs(table, ownership)
    assert repairs.pending() == {}  # rebalancing: nothing decided, nothing forgotten
    assert len(table.stale_keys) == 3
    ownership.ready = True
    assert repairs.pending() == {b"owned": 0}
    assert table.stale_keys == {b"owned": 0, b"standby": 1}  # the owner of 2 repairs its own
    ownership.owned = {0, 1}  # the standby was promoted
    assert repairs.pending() == {b"owned": 0, b"standby": 1}
    repairs.done([b"owned", b"standby"])
    assert table.stale_keys == {}


async def test_the_raw_agent_writes_each_score_event_with_its_typed_record() -> None:
    """Re-keying happens in the raw agent's plan: one score event per new evaluation or
    interaction analysis that names an agent, none for a retry or another event type, all
    acknowledged with the raw records."""
    sent: list[TopicWrite] = []
    acked: list[Any] = []

    class Sink:
        async def send(self, write: Write) -> Awaitable[Any]:
            if isinstance(write, TopicWrite):
                sent.append(write)
            else:  # a dedup mark
                store[write.key] = write.value
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            future.set_result(None)
            return future

    async def ack(event: Any) -> None:
        acked.append(event)

    def no_agent(obj: dict[str, Any]) -> None:
        del obj["agent_info"], obj["agent_user_id"]
        obj["evaluation_id"] = "another evaluation"

    metrics = AggregateMetrics(CollectorRegistry())
    store: dict[str, Any] = {}
    fan_out = FanOut(
        Router(CODEC, TopicNames("zoom"), clock=lambda: 1_700_000_001.0),
        DedupIndex(store, lambda p, k: None, 3_600_000),
        WorkerMetrics(CODEC.event_types),
        [ScoreEvents("w-agent-score-events", 6, metrics)],
    )
    core = DeliveryCore("fan-out", fan_out, Sink(), stopping=lambda: False)
    evaluation = _raw(score_events.EVALUATION_COMPLETED, lambda o: None)
    bodies = [
        evaluation,
        _raw(score_events.EVALUATION_COMPLETED, no_agent),
        _raw(score_events.INTERACTION_ANALYSIS_COMPLETED, lambda o: None),
        _raw("revenue_accelerator.post_comment_completed", lambda o: None),
        evaluation,  # Zoom's retry: no typed record, no score event
    ]
    batch = [FakeEvent(FakeMessage(value=body, offset=n)) for n, body in enumerate(bodies)]
    await core.process(batch, ack)
    assert acked == batch
    internal = [w for w in sent if w.topic == "w-agent-score-events"]
    assert len(sent) - len(internal) == 4  # the typed records
    assert [(w.key, w.partition) for w in internal] == [
        (b"httgPnTgTxq0d65-alfYVw", partition_for(b"httgPnTgTxq0d65-alfYVw", 6)),
        (b"name:Admin3", partition_for(b"name:Admin3", 6)),
    ]
    assert internal[0].value is not None
    assert score_events.decode(internal[0].value).id == "0e73a69f8f104d24a589fa0c615abca8"
    counts = {
        tuple(sorted(s.labels.items())): s.value
        for m in metrics.score_events.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert (
        counts[(("attribution", "unattributed"), ("event_type", score_events.EVALUATION_COMPLETED))]
        == 1
    )


def test_a_score_event_is_what_decoding_the_typed_record_gives() -> None:
    """The derivation reads the datum the router validated; decoding the typed record it wrote
    gives the same score event, for every example the spec has of the two types."""
    derive = ScoreEvents("w-agent-score-events", 6, AggregateMetrics(CollectorRegistry()))
    router = Router(CODEC, TopicNames("zoom"), clock=lambda: 1_700_000_001.0)
    for event_type in score_events.EVENT_TYPES:
        body = _raw(event_type, lambda o: None)
        typed = router.route(RawRecord("raw", 0, 0, None, b"k", body))
        assert isinstance(typed, TypedRecord)
        write = derive(typed)
        assert write is not None and write.value is not None
        decoded = score_events.from_typed(*CODEC.decode(typed.value))[0]
        assert score_events.decode(write.value) == decoded


def test_installed_in_the_worker_app(tmp_path: Path) -> None:
    settings = Settings(worker_data_dir=str(tmp_path), worker_id="zc-test")
    app = create_app(settings, raw_partitions=4, installers=[install_agent_scores])
    assert AGGREGATE_AGENT in set(app.agents)
    table = app.tables[TABLE]
    assert table.partitions == 4
    assert table.changelog_topic.get_topic_name() == "zc-test-agent-scores-changelog"
    assert events_topic_name("zc-test") == "zc-test-agent-score-events"


# --- the query API ---------------------------------------------------------------------------


class _Table:
    name = TABLE

    class changelog_topic:
        @staticmethod
        def get_topic_name() -> str:
            return "w-agent-scores-changelog"

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}


class _Queries(ScoresQueries):
    """Partition ownership given by the test instead of the partition assignor."""

    url: str = ""
    ownership: dict[str, set[int]]

    def owners(self) -> dict[str, set[int]]:
        return self.ownership

    def local_partitions(self) -> set[int]:
        return self.ownership.get(self.url, set())

    def own_url(self) -> str:
        return self.url


PARTITIONS = 4


def _state_of(agent: str, scores: list[float]) -> bytes:
    state = AgentState(agent)
    for i, score in enumerate(scores):
        state.apply(_evaluation(agent, f"{agent}-{i}", T0 + i, score), RETENTION, T0)
    return state.to_bytes()


@pytest.fixture
async def workers() -> AsyncIterator[
    tuple[TestClient[Any, Any], TestClient[Any, Any], _Queries, _Queries]
]:
    """Two workers sharing the partitions; each table holds the agents of its partitions."""
    agents = {f"agent-{i}": [float(i), float(i) + 1] for i in range(12)}
    apps = [faust.App(f"w{i}", web_enabled=True, autodiscover=False) for i in range(2)]
    queries = [_Queries(app, _Table(), PARTITIONS, clock=lambda: T0 / 1000) for app in apps]
    servers = [TestServer(app.web.web_app) for app in apps]  # type: ignore[attr-defined]
    clients: list[TestClient[Any, Any]] = []
    for app, query, server in zip(apps, queries, servers, strict=True):
        install_scores_views(app, query)
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        query.url = str(server.make_url("/"))
    ownership = {queries[0].url: {0, 1}, queries[1].url: {2, 3}}
    for query in queries:
        query.ownership = ownership
    for agent, scores in agents.items():
        partition = partition_for(agent.encode(), PARTITIONS)
        owner = queries[0] if partition in {0, 1} else queries[1]
        owner.table.data[agent.encode()] = _state_of(agent, scores)
    yield clients[0], clients[1], queries[0], queries[1]
    for client, app in zip(clients, apps, strict=True):
        await client.close()
        if app._http_client is not None:
            await app.http_client.close()


async def test_any_worker_answers_for_any_agent(workers: Any) -> None:
    first, second, *_ = workers
    for agent in ("agent-0", "agent-1", "agent-2", "agent-7"):
        answers = []
        for client in (first, second):
            response = await client.get(f"/agents/{agent}/scores", params={"as_of": "latest"})
            assert response.status == 200, await response.text()
            answers.append(await response.json())
        assert answers[0] == answers[1]
        assert answers[0]["agent_id"] == agent
        assert answers[0]["evaluations"]["lifetime"]["count"] == 2
    response = await first.get("/agents/nobody/scores")
    assert response.status == 404
    assert await response.json() == {"error": "unknown agent 'nobody'"}


async def test_scores_parameters_are_checked(workers: Any) -> None:
    first, *_ = workers
    response = await first.get("/agents/agent-0/scores", params={"as_of": "tomorrow"})
    assert response.status == 400
    assert "as_of 'tomorrow' is not one of now, latest" in (await response.json())["error"]
    response = await first.get("/agents/agent-0/scores", params={"window": "7d"})
    assert response.status == 400


async def test_a_partition_without_owner_is_503(workers: Any) -> None:
    first, _, q0, q1 = workers
    ownership = {q0.url: {0, 1}}
    q0.ownership = q1.ownership = ownership
    agent = next(f"agent-{i}" for i in range(12) if partition_for(f"agent-{i}".encode(), 4) > 1)
    response = await first.get(f"/agents/{agent}/scores")
    assert response.status == 503 and response.headers["Retry-After"] == "1"
    response = await first.get("/agents")
    assert response.status == 503
    assert "partitions [2, 3] have no owner" in (await response.json())["error"]


async def test_the_leaderboard_merges_every_workers_agents(workers: Any) -> None:
    first, second, *_ = workers
    params = {"metric": "evaluations.score_max", "window": "lifetime", "limit": "3"}
    for client in (first, second):
        response = await client.get("/agents", params=params)
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["agents_ranked"] == 12
        assert [e["agent_id"] for e in body["top"]] == ["agent-11", "agent-10", "agent-9"]
        assert [e["value"] for e in body["top"]] == [12.0, 11.0, 10.0]
        assert [e["agent_id"] for e in body["bottom"]] == ["agent-0", "agent-1", "agent-2"]
        assert body["metric"] == "evaluations.score_max" and body["window"] == "lifetime"
    # a forwarded request answers for the local partitions only
    response = await first.get("/agents", params=params, headers={FORWARDED_HEADER: "1"})
    local = await response.json()
    assert local["partitions"] == [0, 1] and local["agents_ranked"] < 12


async def test_leaderboard_parameters_are_checked(workers: Any) -> None:
    first, *_ = workers
    response = await first.get("/agents", params={"metric": "evaluations.nope"})
    assert response.status == 400
    assert "metric 'evaluations.nope' is not one of" in (await response.json())["error"]
    response = await first.get("/agents?limit=2&limit=3")
    assert response.status == 400
    assert "given more than once: limit" in (await response.json())["error"]
