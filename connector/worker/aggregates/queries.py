"""The aggregates' query API: one agent's figures and the leaderboard, from any worker.

HTTP (``WORKER_WEB_PORT``), read-only:

* ``GET /agents/{agent_id}/scores[?as_of=now|latest]``: the agent's figures
  (:func:`~.figures.agent_scores`), windows as of today (UTC) or of its latest event; 404 for an
  unknown agent; 503 while the agent's partition has no owner (rebalancing) or is recovering;
* ``GET /agents?metric=&window=&limit=&as_of=``: the leaderboard (:mod:`.leaderboard`), from every
  worker's partitions; 400 for a bad parameter.

A worker answers from the partitions it owns and forwards the rest: a key's owner is found with
the re-keying partitioner (:func:`~.rekeying.partition_for`) and the partition assignor's map of
table partitions to workers (``app.router.table_metadata``). Faust's own ``table_route`` hashes the
JSON-serialised key with the producer's metadata, which a worker that never wrote the changelog
may not have (faust-streaming issue 514).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import faust
import orjson
from faust.types import TP
from faust.web import View

from connector.worker.aggregates.figures import agent_scores
from connector.worker.aggregates.leaderboard import (
    InvalidQuery,
    LeaderboardQuery,
    Ranking,
    entry_of,
    merge,
    parse_as_of,
    parse_query,
    rank,
)
from connector.worker.aggregates.rekeying import partition_for
from connector.worker.aggregates.state import AgentState

FORWARDED_HEADER: Final = "x-zoom-connector-forwarded"
"""Marks a request one worker forwarded to another: answer from local partitions, never forward."""

_FORWARD_TIMEOUT_SECONDS: Final = 10.0


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
            return self.json({**query.describe(), **ranking.to_json()})

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
