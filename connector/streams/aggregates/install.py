"""The agent score aggregates in the worker: two Faust agents, one table, the query API.

Flow::

    <prefix>.quality_management.evaluation_completed           ┐  agent zoom-agent-scores-rekey:
    <prefix>.quality_management.interaction_analysis_completed ┘  decode, name the agent
        -> <WORKER_ID>-agent-score-events  (internal; key: agent id; partition: murmur2(key))
        -> agent zoom-agent-scores: table agent-scores (key: agent id, value: the agent's state)
        -> <prefix>.agent_scores  (compacted; key: agent id; value: AgentScores, Avro)

Both agents take batches (``noack_take``), write everything a batch produces, **wait until Kafka
has acknowledged every write**, and only then acknowledge the batch's records. Faust commits an
offset only once every record before it is acknowledged, so a committed offset never runs ahead
of the writes made for it (we do not rely on Faust flushing its producer buffer before a commit,
which it does only up to a timeout). A worker killed at any point therefore at worst processes a
batch again, and every step is idempotent:

* re-keying writes the same internal records again;
* an agent's state ignores an event it already holds (same id, same or older ``event_ts``:
  :mod:`.state`), and the table's changelog gets **one record per agent per batch with the
  agent's whole state**, so a state is never half written;
* every agent a batch touched is written again (table and ``agent_scores``) even when nothing
  changed, so a batch replayed after a crash between the two writes repairs whichever was lost,
  and a RocksDB store that kept a state its changelog lost gets the changelog record back.

Faust's stream can also skip records at a rebalance (faust-streaming acknowledges records fetched
under the previous consumer generation without delivering them, and commits past them): both
agents watch the offsets of each partition and read skipped records again from Kafka before
acknowledging the batch (:mod:`.gaps`).

A worker frozen (SIGSTOP, a VM pause) past its group session comes back as a zombie holding
records of partitions it no longer owns; its stale whole-state writes would overwrite the new
owner's in the changelog. The aggregating agent therefore asks a fence before writing
(:mod:`connector.streams.fence`): after a freeze it waits for the group's verdict, and when a
rebalance has started since, a batch of records fetched before it is released unwritten and
unacknowledged (read again after the rebalance).

Each agent's state lives in one partition of the internal topic, table and changelog (all
``raw_partitions`` wide). The internal records get an explicit partition, ``murmur2(agent id) %
partitions`` (Kafka's default partitioner), and the query API finds a key's owner with the same
function and the partition assignor's map of table partitions to workers
(``app.router.table_metadata``), then forwards the request there; Faust's own ``table_route``
hashes the JSON-serialised key with the producer's metadata, which a worker that never wrote the
changelog may not have (faust-streaming issue 514).

HTTP (``WORKER_WEB_PORT``), read-only:

* ``GET /agents/{agent_id}/scores[?as_of=now|latest]``: the agent's figures
  (:func:`~.figures.agent_scores`), windows as of today (UTC) or of its latest event; 404 for an
  unknown agent; 503 while the agent's partition has no owner (rebalancing) or is recovering;
* ``GET /agents?metric=&window=&limit=&as_of=``: the leaderboard (:mod:`.leaderboard`), from every
  worker's partitions; 400 for a bad parameter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Protocol

import aiohttp
import faust
import orjson
from aiokafka.partitioner import murmur2
from faust.types import TP
from faust.web import View
from prometheus_client import CollectorRegistry, Counter, Histogram

from connector.avro.codec import EventCodec
from connector.avro.errors import CodecError
from connector.streams.agent import DeliveryAborted, processing
from connector.streams.aggregates.events import (
    EVENT_TYPES,
    Attribution,
    ScoreEventError,
    decode,
    encode,
    from_typed,
)
from connector.streams.aggregates.figures import agent_scores
from connector.streams.aggregates.leaderboard import (
    InvalidQuery,
    LeaderboardQuery,
    Ranking,
    answer,
    entry_of,
    merge,
    parse_as_of,
    parse_query,
    rank,
)
from connector.streams.aggregates.record import AgentScoresCodec, codec_for
from connector.streams.aggregates.stamps import (
    Stamp,
    StampedTable,
    generation_of,
    next_stamp,
    stamp_of,
    stamped,
)
from connector.streams.aggregates.state import AgentState, Retention
from connector.streams.aggregates.windows import DAY_MS
from connector.streams.fence import FreezeGuard, release_unwritten
from connector.streams.gaps import Fetcher, OffsetGaps, refill, settle

if TYPE_CHECKING:
    from connector.streams.app import WorkerContext

log = logging.getLogger(__name__)

REKEY_AGENT: Final = "zoom-agent-scores-rekey"
AGGREGATE_AGENT: Final = "zoom-agent-scores"
TABLE: Final = "agent-scores"
FORWARDED_HEADER: Final = "x-zoom-connector-forwarded"
"""Marks a request one worker forwarded to another: answer from local partitions, never forward."""

_FIRST_BACKOFF_SECONDS: Final = 0.2
_MAX_BACKOFF_SECONDS: Final = 10.0
_FORWARD_TIMEOUT_SECONDS: Final = 10.0
_REPAIR_INTERVAL_SECONDS: Final = 1.0


def events_topic_name(worker_id: str) -> str:
    """The internal topic of score events keyed by agent (Faust names its own ``<id>-...``)."""
    return f"{worker_id}-agent-score-events"


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of an agent: Kafka's default partitioner (murmur2, positive, modulo)."""
    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions


class AggregateMetrics:
    """The aggregates' Prometheus metrics, in the worker's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.score_events = Counter(
            "zoom_worker_score_events",
            "Typed records read for the agent aggregates, by event type and how the agent was"
            " found (primary, fallback, unattributed, unreadable).",
            ["event_type", "attribution"],
            registry=registry,
        )
        self.updates = Counter(
            "zoom_worker_agent_score_updates",
            "Score events applied to agent states, by outcome (added, replaced, duplicate, stale,"
            " unreadable).",
            ["outcome"],
            registry=registry,
        )
        self.published = Counter(
            "zoom_worker_agent_scores_published",
            "Records written to the agent_scores topic.",
            registry=registry,
        )
        self.write_retries = Counter(
            "zoom_worker_agent_score_write_retries",
            "Aggregate writes (internal topic, changelog, agent_scores) retried after an error.",
            registry=registry,
        )
        self.fenced = Counter(
            "zoom_worker_agent_score_batches_fenced",
            "Aggregate batches released unwritten and unacknowledged: the worker had been frozen"
            " and the group rebalanced meanwhile (connector.streams.fence).",
            registry=registry,
        )
        self.refetched = Counter(
            "zoom_worker_agent_score_records_refetched",
            "Records a stream skipped (an offset gap) that the aggregates read again from Kafka,"
            " by stage (connector.streams.gaps).",
            ["stage"],
            registry=registry,
        )
        self.repaired = Counter(
            "zoom_worker_agent_score_states_repaired",
            "Agent states whose last changelog record was stale (written late by a worker that"
            " had lost the partition: connector.streams.aggregates.stamps), skipped when the"
            " table was restored and written again (changelog and agent_scores).",
            registry=registry,
        )
        self.state_bytes = Histogram(
            "zoom_worker_agent_state_bytes",
            "Size of the agent states written to the table.",
            buckets=(1e3, 4e3, 16e3, 64e3, 128e3, 256e3, 512e3, 1e6),
            registry=registry,
        )


Write = Callable[[], Awaitable[Awaitable[Any]]]
"""Starts one write; the awaitable it returns resolves once Kafka acknowledged it."""


async def deliver(
    writes: Sequence[Write], stopping: Callable[[], bool], metrics: AggregateMetrics
) -> None:
    """Run ``writes`` until Kafka acknowledged each (retrying failures), or raise
    :class:`DeliveryAborted` when the worker stops first. Every write is idempotent."""
    pending = list(writes)
    backoff = _FIRST_BACKOFF_SECONDS
    while pending:
        started: list[Awaitable[Any]] = []
        for write in pending:
            try:
                started.append(await write())
            except Exception as exc:  # refused before it left
                started.append(_failed(exc))
        results = await asyncio.gather(*started, return_exceptions=True)
        failed = [w for w, r in zip(pending, results, strict=True) if isinstance(r, BaseException)]
        for result in results:
            if isinstance(result, asyncio.CancelledError):
                raise DeliveryAborted("a write was cancelled; not acknowledging the batch")
        if failed:
            errors = [r for r in results if isinstance(r, BaseException)]
            log.warning("%d aggregate write(s) failed, will retry: %r", len(failed), errors[:3])
            metrics.write_retries.inc(len(failed))
            if stopping():
                raise DeliveryAborted("stopping with unwritten aggregate records")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
        pending = failed


async def _failed(error: Exception) -> Any:
    raise error


class Rekeyer:
    """Typed records -> score events on the internal topic, keyed and partitioned by agent."""

    def __init__(
        self,
        codec: EventCodec,
        send: Callable[[bytes, bytes, int], Awaitable[Awaitable[Any]]],
        partitions: int,
        metrics: AggregateMetrics,
        stopping: Callable[[], bool],
        refetcher: Fetcher | None = None,
    ) -> None:
        self._codec = codec
        self._send = send
        self._partitions = partitions
        self._metrics = metrics
        self._stopping = stopping
        self._gaps = OffsetGaps()
        self._refetcher = refetcher

    def score_event(self, value: bytes | None) -> tuple[bytes, bytes] | None:
        """The internal record (key, value) of a typed record's value, if it names an agent."""
        try:
            event_type, datum = self._codec.decode(value or b"")
            event, attribution = from_typed(event_type, datum)
        except (CodecError, ScoreEventError) as exc:
            log.error("typed record unreadable for the aggregates, skipped: %s", exc)
            self._metrics.score_events.labels("unknown", "unreadable").inc()
            return None
        self._metrics.score_events.labels(event_type, str(attribution)).inc()
        if event is None:
            assert attribution is Attribution.UNATTRIBUTED
            return None
        return event.agent.encode(), encode(event)

    async def process(self, events: Sequence[Any], ack: Callable[[Any], Awaitable[Any]]) -> None:
        received = await refill(events, self._gaps, self._refetcher)
        self._metrics.refetched.labels("rekey").inc(len(received) - len(events))
        writes: list[Write] = []
        for event in received:
            record = self.score_event(event.message.value)
            if record is not None:
                key, value = record
                partition = partition_for(key, self._partitions)
                writes.append(partial(self._send, key, value, partition))
        await deliver(writes, self._stopping, self._metrics)
        for event in events:
            await ack(event)
        await settle(received, self._refetcher)


class StateStore:
    """The table's local store plus its changelog, written together per agent."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, event: Any, key: bytes) -> bytes | None:
        with processing(event):
            value: bytes | None = self._table.data.get(key)
        return value

    async def put(self, event: Any, key: bytes, value: bytes) -> Awaitable[Any]:
        """Store locally and start the changelog write (resolves once Kafka has it)."""
        with processing(event):
            self._table.data[key] = value
        future: Awaitable[Any] = self._table.send_changelog(event.message.partition, key, value)
        return future

    def held(self, key: bytes) -> bytes | None:
        """The value held for ``key``, whichever partition's store has it."""
        value: bytes | None = self._table.data.get(key)
        return value

    async def rewrite(self, partition: int, key: bytes, value: bytes) -> Awaitable[Any]:
        """Write a held value to the changelog again (it is in the local store already)."""
        future: Awaitable[Any] = self._table.send_changelog(partition, key, value)
        return future


class Repairs(Protocol):
    """Keys whose held state must be written again (:meth:`Aggregator.repair`)."""

    def pending(self) -> dict[bytes, int]:
        """Key -> table partition, for keys of partitions this worker owns now."""
        ...

    def done(self, keys: Sequence[bytes]) -> None: ...


@dataclass
class TableRepairs:
    """The stale keys a :class:`~.stamps.StampedTable` skipped records of, on owned partitions."""

    table: StampedTable
    queries: ScoresQueries

    def pending(self) -> dict[bytes, int]:
        stale = self.table.stale_keys
        if not stale:
            return {}
        try:
            self.queries.check_ready()
        except Unavailable:
            return {}  # the owned partitions are not settled yet
        owned = self.queries.local_partitions()
        # A standby skipped the record: it repairs once the partition is its own (its restore
        # then starts past the record). A partition neither here nor standing by: its owner
        # restored it, met the record and repairs it.
        kept = owned | self.queries.standby_partitions()
        for key in [k for k, p in stale.items() if p not in kept]:
            del stale[key]
        return {k: p for k, p in stale.items() if p in owned}

    def done(self, keys: Sequence[bytes]) -> None:
        self.table.repaired(keys)


class Aggregator:
    """Score events -> agent states (one table write per agent per batch) -> ``agent_scores``."""

    def __init__(
        self,
        store: Any,
        publish: Callable[[bytes, bytes], Awaitable[Awaitable[Any]]],
        codec: AgentScoresCodec,
        retention: Retention,
        metrics: AggregateMetrics,
        stopping: Callable[[], bool],
        clock: Callable[[], float] = time.time,
        fence: Callable[[Sequence[Any]], Awaitable[bool]] | None = None,
        refetcher: Fetcher | None = None,
        repairs: Repairs | None = None,
    ) -> None:
        self._store = store
        self._publish = publish
        self._codec = codec
        self._retention = retention
        self._metrics = metrics
        self._stopping = stopping
        self._clock = clock
        self._fence = fence
        self._gaps = OffsetGaps()
        self._refetcher = refetcher
        self._repairs = repairs
        self._writing = asyncio.Lock()

    async def process(self, events: Sequence[Any], ack: Callable[[Any], Awaitable[Any]]) -> None:
        received = await refill(events, self._gaps, self._refetcher)
        self._metrics.refetched.labels("aggregate").inc(len(received) - len(events))
        async with self._writing:
            await self._process(events, received, ack)

    async def _process(
        self, events: Sequence[Any], received: Sequence[Any], ack: Callable[[Any], Awaitable[Any]]
    ) -> None:
        # A worker that lost its partitions while frozen must not write states computed from its
        # old table: the batch is released unacknowledged, and processed again by the partitions'
        # owner after the rebalance. Nothing awaits between this check and the first write.
        if self._fence is not None and not await self._fence(events):
            log.warning(
                "aggregate batch not written: the worker was frozen and the group rebalanced"
                " meanwhile; its records are read again after the rebalance size=%d",
                len(events),
            )
            release_unwritten(events)
            self._metrics.fenced.inc()
            return
        states: dict[bytes, AgentState] = {}
        held: dict[bytes, Stamp | None] = {}
        last_event: dict[bytes, Any] = {}
        now_ms = round(self._clock() * 1000)
        for event in received:
            message = event.message
            key: bytes | None = message.key
            try:
                score_event = decode(message.value or b"")
                if key is None or score_event.agent.encode() != key:
                    raise ScoreEventError(f"record key {key!r} is not the event's agent")
            except ScoreEventError as exc:
                log.error(
                    "internal score event unreadable, skipped partition=%d offset=%d: %s",
                    message.partition,
                    message.offset,
                    exc,
                )
                self._metrics.updates.labels("unreadable").inc()
                continue
            state = states.get(key)
            if state is None:
                stored = self._store.get(event, key)
                held[key] = stamp_of(stored)
                state = AgentState.from_bytes(stored) if stored is not None else None
                state = state or AgentState(score_event.agent)
                states[key] = state
            outcome = state.apply(score_event, self._retention, now_ms)
            self._metrics.updates.labels(str(outcome)).inc()
            last_event[key] = event
        generation = generation_of(events)
        writes: list[Write] = []
        for key, state in states.items():
            # last_event[key] is the agent's record with the highest offset (records come in
            # offset order, refilled gaps included): the state holds every event up to it.
            stamp = next_stamp(held[key], generation, (last_event[key].message.offset,))
            value = stamped(stamp, state.to_bytes())
            self._metrics.state_bytes.observe(len(value))
            record = self._codec.encode(agent_scores(state))
            writes.append(partial(self._store.put, last_event[key], key, value))
            writes.append(partial(self._publish, key, record))
        await deliver(writes, self._stopping, self._metrics)
        self._metrics.published.inc(len(states))
        if self._repairs is not None:
            self._repairs.done(list(states))
        for event in events:
            await ack(event)
        await settle(received, self._refetcher)

    async def repair(self) -> None:
        """Write again the held states whose stale changelog records were skipped
        (:mod:`.stamps`): to the changelog, so the held state is its key's last record again, and
        to ``agent_scores``, where the stale worker most likely published too."""
        if self._repairs is None or not self._repairs.pending():
            return
        async with self._writing:
            if self._fence is not None and not await self._fence(()):
                return
            pending = self._repairs.pending()
            writes: list[Write] = []
            for key, partition in pending.items():
                value = self._store.held(key)
                if value is None:
                    continue
                record = self._codec.encode(agent_scores(AgentState.from_bytes(value)))
                writes.append(partial(self._store.rewrite, partition, key, value))
                writes.append(partial(self._publish, key, record))
            await deliver(writes, self._stopping, self._metrics)
            self._repairs.done(list(pending))
            repaired = len(writes) // 2
            self._metrics.repaired.inc(repaired)
            log.warning(
                "agent states whose last changelog record was stale (written late by a worker"
                " that had lost the partition) written again count=%d agents=%s",
                repaired,
                sorted(k.decode(errors="replace") for k in pending)[:10],
            )


# --- the query API ---------------------------------------------------------------------------


class Unavailable(Exception):
    """The answer cannot be given now (rebalancing, recovering, an owner unreachable)."""


@dataclass
class ScoresQueries:
    """Answers the query API from the table, forwarding to the owner of a partition."""

    app: faust.App
    table: Any
    partitions: int
    clock: Callable[[], float] = time.time

    @property
    def changelog(self) -> str:
        name: str = self.table.changelog_topic.get_topic_name()
        return name

    def owners(self) -> dict[str, set[int]]:
        """Worker URL -> the table partitions it owns (active), per the partition assignor."""
        metadata: Mapping[str, Mapping[str, Sequence[int]]] = self.app.router.table_metadata(
            self.table.name
        )
        return {url: set(topics.get(self.changelog, ())) for url, topics in metadata.items()}

    def local_partitions(self) -> set[int]:
        actives: set[TP] = self.app.assignor.assigned_actives()
        return {tp.partition for tp in actives if tp.topic == self.changelog}

    def standby_partitions(self) -> set[int]:
        standbys: set[TP] = self.app.assignor.assigned_standbys()
        return {tp.partition for tp in standbys if tp.topic == self.changelog}

    def own_url(self) -> str:
        return str(self.app.conf.canonical_url)

    def check_ready(self) -> None:
        if getattr(self.app, "rebalancing", False) or getattr(self.app, "in_recovery", False):
            raise Unavailable("the worker is rebalancing or restoring its tables; retry")

    def local_state(self, agent_id: str) -> AgentState | None:
        value = self.table.data.get(agent_id.encode())
        return AgentState.from_bytes(value) if value is not None else None

    def local_ranking(self, query: LeaderboardQuery) -> tuple[set[int], Ranking]:
        self.check_ready()
        local = self.local_partitions()
        now_ms = round(self.clock() * 1000)
        entries = []
        for key, value in list(self.table.data.items()):
            if partition_for(key, self.partitions) in local:
                entry = entry_of(AgentState.from_bytes(value), query, now_ms)
                if entry is not None:
                    entries.append(entry)
        return local, rank(entries, query.limit)

    async def forward(self, url: str, request: Any) -> tuple[int, bytes, str]:
        """``request`` sent to the worker at ``url``: status, body, content type."""
        target = f"{url.rstrip('/')}{request.rel_url}"
        timeout = aiohttp.ClientTimeout(total=_FORWARD_TIMEOUT_SECONDS)
        try:
            async with self.app.http_client.get(
                target, headers={FORWARDED_HEADER: "1"}, timeout=timeout
            ) as response:
                body = await response.read()
                return response.status, body, response.content_type
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"the worker owning the data ({url}) did not answer: {exc}") from exc


def _single_params(request: Any) -> dict[str, str]:
    query = request.query
    repeated = sorted({k for k in query if len(query.getall(k)) > 1})
    if repeated:
        raise InvalidQuery(f"parameter(s) given more than once: {', '.join(repeated)}")
    return {k: query[k] for k in query}


def install_scores_views(app: faust.App, queries: ScoresQueries) -> None:
    """``GET /agents/{agent_id}/scores`` and ``GET /agents``."""

    @app.page("/agents/{agent_id}/scores")
    class AgentScoresView(View):
        async def get(self, request: Any, agent_id: str) -> Any:
            try:
                params = _single_params(request)
                unknown = sorted(set(params) - {"as_of"})
                if unknown:
                    raise InvalidQuery(f"unknown parameter(s) {', '.join(unknown)}; known: as_of")
                as_of = parse_as_of(params.get("as_of", "now"))
                partition = partition_for(agent_id.encode(), queries.partitions)
                owner = next((u for u, ps in queries.owners().items() if partition in ps), None)
                forwarded = request.headers.get(FORWARDED_HEADER) is not None
                if owner is not None and owner != queries.own_url() and not forwarded:
                    status, body, content_type = await queries.forward(owner, request)
                    return self.bytes(body, status=status, content_type=content_type)
                if partition not in queries.local_partitions():
                    raise Unavailable(f"no worker owns partition {partition} of {agent_id!r} now")
                queries.check_ready()
                state = queries.local_state(agent_id)
            except InvalidQuery as exc:
                return self.error(400, str(exc))
            except Unavailable as exc:
                return self.error(503, str(exc), headers={"Retry-After": "1"})
            if state is None:
                return self.error(404, f"unknown agent {agent_id!r}")
            as_of_ms = round(queries.clock() * 1000) if as_of == "now" else None
            return self.json(agent_scores(state, as_of_ms))

    @app.page("/agents")
    class LeaderboardView(View):
        async def get(self, request: Any) -> Any:
            try:
                query = parse_query(_single_params(request))
                if request.headers.get(FORWARDED_HEADER) is not None:
                    partitions, ranking = queries.local_ranking(query)
                    return self.json({"partitions": sorted(partitions), **ranking.to_json()})
                ranking = await self._gather(request, query)
            except InvalidQuery as exc:
                return self.error(400, str(exc))
            except Unavailable as exc:
                return self.error(503, str(exc), headers={"Retry-After": "1"})
            return self.json(answer(query, ranking, round(queries.clock() * 1000)))

        async def _gather(self, request: Any, query: LeaderboardQuery) -> Ranking:
            parts: list[Ranking] = []
            covered: set[int] = set()
            for url in queries.owners():
                if url == queries.own_url():
                    partitions, ranking = queries.local_ranking(query)
                else:
                    status, body, _ = await queries.forward(url, request)
                    if status != 200:
                        raise Unavailable(f"the worker at {url} answered {status}")
                    answer = orjson.loads(body)
                    partitions, ranking = set(answer["partitions"]), Ranking.from_json(answer)
                parts.append(ranking)
                covered |= partitions
            missing = set(range(queries.partitions)) - covered
            if missing:
                raise Unavailable(f"partitions {sorted(missing)} have no owner now; retry")
            return merge(parts, query.limit)


# --- installation ----------------------------------------------------------------------------


def retention_for(context: WorkerContext) -> Retention:
    settings = context.settings
    return Retention(
        replaceable_ms=settings.worker_scores_rescore_days * DAY_MS
        + settings.worker_dedup_retention_seconds * 1000,
        max_replaceable=settings.worker_scores_max_replaceable,
    )


def install_agent_scores(app: faust.App, context: WorkerContext) -> None:
    """The re-keying agent, the aggregating agent and its table, and the query API."""
    settings, topics = context.settings, context.topics
    partitions = context.raw_partitions
    metrics = AggregateMetrics(context.metrics.registry)
    stopping: Callable[[], bool] = lambda: bool(app.should_stop)  # noqa: E731

    typed = app.topic(
        *(topics.typed(t) for t in EVENT_TYPES), key_serializer="raw", value_serializer="raw"
    )
    by_agent = app.topic(
        events_topic_name(settings.worker_id),
        partitions=partitions,
        internal=True,
        key_serializer="raw",
        value_serializer="raw",
    )
    table = StampedTable(
        app,
        name=TABLE,
        default=None,
        beacon=app.tables.beacon,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        help="agent id -> the agent's score aggregates (connector.streams.aggregates.state,"
        " stamped: connector.streams.aggregates.stamps)",
    )
    app.tables.add(table)
    queries = ScoresQueries(app, table, partitions)
    output = app.topic(topics.agent_scores, key_serializer="raw", value_serializer="raw")

    async def send_by_agent(key: bytes, value: bytes, partition: int) -> Awaitable[Any]:
        future: Awaitable[Any] = await by_agent.send(key=key, value=value, partition=partition)
        return future

    async def publish(key: bytes, value: bytes) -> Awaitable[Any]:
        future: Awaitable[Any] = await output.send(key=key, value=value)
        return future

    guard = FreezeGuard.for_app(app)

    async def notice_freezes() -> None:
        guard.tick()

    app.timer(guard.tick_interval)(notice_freezes)
    refetcher = context.refetcher
    rekeyer = Rekeyer(context.codec, send_by_agent, partitions, metrics, stopping, refetcher)
    aggregator = Aggregator(
        StateStore(table),
        publish,
        codec_for(settings),
        retention_for(context),
        metrics,
        stopping,
        fence=guard.may_write,
        refetcher=refetcher,
        repairs=TableRepairs(table, queries),
    )

    async def repair_stale_states() -> None:
        try:
            await aggregator.repair()
        except DeliveryAborted as exc:  # stopping: the next owner's restore finds them again
            log.warning("stale agent states not written again: %s", exc)
        except Exception:  # a bug: an exception would end the timer task for good
            log.exception("writing stale agent states again failed; retried at the next tick")

    app.timer(_REPAIR_INTERVAL_SECONDS)(repair_stale_states)
    size, within = settings.worker_batch_size, settings.worker_batch_seconds

    @app.agent(typed, name=REKEY_AGENT)
    async def rekey(stream: Any) -> None:
        async for events in stream.noack_take(size, within=within):
            with context.batches.working(REKEY_AGENT, len(events)):
                work = rekeyer.process(events, stream.ack)
                if not await _guarded(work, "re-keying", len(events)):
                    return

    @app.agent(by_agent, name=AGGREGATE_AGENT)
    async def aggregate(stream: Any) -> None:
        async for events in stream.noack_take(size, within=within):
            with context.batches.working(AGGREGATE_AGENT, len(events)):
                work = aggregator.process(events, stream.ack)
                if not await _guarded(work, "aggregate", len(events)):
                    return

    install_scores_views(app, queries)


async def _guarded(work: Awaitable[None], what: str, size: int) -> bool:
    """Run one batch; ``False`` when the agent must stop (the batch stays unacknowledged)."""
    try:
        await work
    except DeliveryAborted as exc:
        log.warning("%s batch left unacknowledged: %s", what, exc)
        return False
    except Exception:
        # A bug: the batch stays unacknowledged (its offsets are not committed, it is processed
        # again after a restart); go on with the next.
        log.exception("%s batch failed, left unacknowledged size=%d", what, size)
    return True
