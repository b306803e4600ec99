"""What the reliability tests send, what they expect back, and how they count the difference.

* :class:`EventFactory`: webhook bodies with known identities (evaluations and interaction
  analyses credited to a handful of agents, re-scores, and invalid events that must be
  dead-lettered), each an :class:`Event` that says what the pipeline must make of it.
* :class:`WebhookDriver`: posts signed webhooks to a running source at a steady rate from a
  background thread (open loop: a slow answer does not slow the stream), recording every answer.
* :class:`OutputReader` and :func:`tally`: reads the typed topics and the dead-letter topic and
  counts, per event identity (``zoom-event-id``), what is missing (lost) and what came twice
  (duplicated), checking that every duplicate is its original's bytes under its original's id.
* :func:`expected_aggregates` / :func:`check_aggregates`: a ground truth of every agent's lifetime
  figures, recomputed here from the distinct events (latest version of each), and the worker's
  query API compared with it.

The expected identities follow the README's table (``<event type>/<id field>=<id>/event_ts=<ts>``)
and are written out here, not computed with the connector's code.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from connector.source import WEBHOOK_PATH
from tests.processes import (
    CATALOG,
    Deployment,
    RawProducer,
    WorkerProcess,
    headers_of,
    zoom_headers,
)

SECRET = "reliability-secret-3f1c9a7e5b"
"""The Zoom secret token of the reliability tests (grep-able: it must never appear in output)."""
EVALUATION = "quality_management.evaluation_completed"
INTERACTION = "quality_management.interaction_analysis_completed"
AGENT_IDS = [f"agent{n:02d}{'x' * 15}" for n in range(6)]  # 22 characters, like Zoom user ids
AGENT_NAMES = ["Ashlee York", "Rick Arps", "Zoë Ng"]
NAME_KEY_PREFIX = "name:"  # how the aggregates key an agent known by display name only
MAX_RAW_RECORDS = 20_000  # a bound on a raw driver, whatever happens


Figures = Callable[..., None]
"""The ``figures`` fixture: ``figures(events_sent=..., lost=..., ...)``."""


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One webhook event and what the pipeline must make of it."""

    event_type: str
    body: bytes
    event_id: str
    """The ``zoom-event-id`` its typed or dead-letter record must carry."""
    object_id: str
    event_ts: int
    valid: bool
    """Valid: exactly one typed record (at least one after a crash). Else: a dead letter."""
    agent: str | None = None
    """The agent the aggregates credit it to (valid events only)."""
    score: float | None = None
    duration: int | None = None


class EventFactory:
    """Events with identities unique to one test run (``tag``), reproducible from ``seed``."""

    def __init__(self, tag: str, seed: int = 1, now_ms: int | None = None) -> None:
        self._tag = tag
        self._rng = random.Random(seed)
        self._now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        self._serial = 0

    def _next(self) -> int:
        self._serial += 1
        return self._serial

    def _ts(self, serial: int) -> int:
        # Within the last day, distinct per event; the aggregates' rolling windows include it.
        return self._now_ms - 86_400_000 + serial

    def evaluation(self, *, agent: str | None = None, score: float | None = None) -> Event:
        serial = self._next()
        agent = agent or AGENT_IDS[serial % len(AGENT_IDS)]
        score = round(self._rng.uniform(0, 50), 2) if score is None else score
        return self._evaluation(f"{self._tag}-eval-{serial:06d}", self._ts(serial), agent, score)

    def _evaluation(
        self, evaluation_id: str, event_ts: int, agent: str, score: float, enum: str = "MANUAL"
    ) -> Event:
        event = copy.deepcopy(CATALOG.example(EVALUATION))
        event["event"] = EVALUATION
        event["event_ts"] = event_ts
        obj = event["payload"]["object"]
        obj["evaluation_id"] = evaluation_id
        obj["agent_user_id"] = f"qm-{agent}"
        obj["agent_info"] = {"agent_user_id": agent, "display_name": f"Agent {agent[:7]}"}
        obj["total_possible_score"] = 50
        obj["evaluation_score"] = score
        obj["evaluation_score_ratio"] = round(score / 50, 4)
        obj["evaluation_type"] = enum
        valid = enum != "SEMI"
        return Event(
            event_type=EVALUATION,
            body=json.dumps(event).encode(),
            event_id=f"{EVALUATION}/evaluation_id={quote(evaluation_id, safe='')}"
            f"/event_ts={event_ts}",
            object_id=evaluation_id,
            event_ts=event_ts,
            valid=valid,
            agent=agent if valid else None,
            score=score if valid else None,
        )

    def rescore(self, original: Event) -> Event:
        """The same evaluation scored again later: a new event (new ``event_ts``), same id."""
        assert original.event_type == EVALUATION and original.agent is not None
        score = round(self._rng.uniform(0, 50), 2)
        event_ts = original.event_ts + 60_000 + self._next()  # unique: each re-score is new
        return self._evaluation(original.object_id, event_ts, original.agent, score)

    def invalid(self) -> Event:
        """An evaluation with an enum symbol its schema does not know: a dead letter."""
        serial = self._next()
        agent = AGENT_IDS[serial % len(AGENT_IDS)]
        return self._evaluation(
            f"{self._tag}-bad-{serial:06d}", self._ts(serial), agent, 1.0, enum="SEMI"
        )

    def interaction(self) -> Event:
        serial = self._next()
        interaction_id = f"{self._tag}-int-{serial:06d}"
        name = AGENT_NAMES[serial % len(AGENT_NAMES)]
        duration = self._rng.randrange(30, 3600)
        event = copy.deepcopy(CATALOG.example(INTERACTION))
        event["event_ts"] = event_ts = self._ts(serial)
        obj = event["payload"]["object"]
        obj["interaction_info"]["interaction_id"] = interaction_id
        obj["interaction_info"]["agent_name"] = name
        obj["duration"] = duration
        return Event(
            event_type=INTERACTION,
            body=json.dumps(event).encode(),
            event_id=f"{INTERACTION}/interaction_id={quote(interaction_id, safe='')}"
            f"/event_ts={event_ts}",
            object_id=interaction_id,
            event_ts=event_ts,
            valid=True,
            agent=NAME_KEY_PREFIX + name,
            duration=duration,
        )

    def mixed(self, history: Sequence[Event] = ()) -> Event:
        """Mostly evaluations, some interactions, a few invalid events and re-scores."""
        roll = self._rng.random()
        if roll < 0.04:
            return self.invalid()
        if roll < 0.08 and history:
            earlier = history[self._rng.randrange(len(history))]
            if earlier.event_type == EVALUATION and earlier.valid:
                return self.rescore(earlier)
        if roll < 0.25:
            return self.interaction()
        return self.evaluation()


def first_of_each(events: Iterable[Event]) -> list[Event]:
    """The distinct events of a stream with retries: the first event of every identity."""
    distinct: dict[str, Event] = {}
    for event in events:
        distinct.setdefault(event.event_id, event)
    return list(distinct.values())


# --- ground truth of the aggregates -------------------------------------------------------------


def expected_aggregates(events: Iterable[Event]) -> dict[str, dict[str, Any]]:
    """Agent -> its lifetime figures, from the latest version of every distinct valid event."""
    latest: dict[tuple[str, str], Event] = {}
    for event in events:
        if not event.valid or event.agent is None:
            continue
        key = (event.event_type, event.object_id)
        if key not in latest or event.event_ts > latest[key].event_ts:
            latest[key] = event
    figures: dict[str, dict[str, Any]] = {}
    for event in latest.values():
        agent = figures.setdefault(event.agent or "", {"evaluations": [], "interactions": []})
        agent["evaluations" if event.event_type == EVALUATION else "interactions"].append(event)
    expected: dict[str, dict[str, Any]] = {}
    for agent, kinds in figures.items():
        evaluations, interactions = kinds["evaluations"], kinds["interactions"]
        scores = [e.score for e in evaluations if e.score is not None]
        expected[agent] = {
            "evaluations.count": len(evaluations) or None,
            "evaluations.score_mean": sum(scores) / len(scores) if scores else None,
            "evaluations.score_min": min(scores) if scores else None,
            "evaluations.score_max": max(scores) if scores else None,
            "interactions.count": len(interactions) or None,
            "interactions.duration_total_seconds": sum(e.duration or 0 for e in interactions)
            if interactions
            else None,
        }
    return expected


def _answered_figures(answer: Mapping[str, Any]) -> dict[str, Any]:
    evaluations = (answer.get("evaluations") or {}).get("lifetime") or {}
    interactions = (answer.get("interactions") or {}).get("lifetime") or {}
    return {
        "evaluations.count": evaluations.get("count"),
        "evaluations.score_mean": evaluations.get("score_mean"),
        "evaluations.score_min": evaluations.get("score_min"),
        "evaluations.score_max": evaluations.get("score_max"),
        "interactions.count": interactions.get("count"),
        "interactions.duration_total_seconds": interactions.get("duration_total_seconds"),
    }


def _differences(agent: str, actual: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    problems = []
    for name, want in expected.items():
        got = actual.get(name)
        if isinstance(want, float) and isinstance(got, int | float):
            if math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9):
                continue
        elif got == want:
            continue
        problems.append(f"{agent} {name}: {got!r} != {want!r}")
    return problems


def aggregates_wired() -> bool:
    """Whether ``zoom-connector worker`` runs the agent score aggregates (the query API)."""
    from connector.worker.app import INSTALLERS

    return any(getattr(i, "__name__", "") == "install_agent_scores" for i in INSTALLERS)


def query_scores(worker: WorkerProcess, agent: str) -> tuple[int | None, Any]:
    """``GET /agents/{agent}/scores?as_of=latest`` on ``worker``: status and JSON (or None)."""
    response = worker.get(f"/agents/{quote(agent, safe='')}/scores", as_of="latest")
    if response is None:
        return None, None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def check_aggregates(
    workers: Sequence[WorkerProcess], events: Iterable[Event], timeout: float = 120.0
) -> dict[str, dict[str, Any]]:
    """Poll the query API (any worker: it forwards to the partition's owner) until every agent's
    lifetime figures equal :func:`expected_aggregates`; returns the answers."""
    expected = expected_aggregates(events)
    deadline = time.monotonic() + timeout
    answers: dict[str, dict[str, Any]] = {}
    problems: list[str] = ["no answer yet"]
    turn = 0
    while True:
        problems = []
        for agent, figures in expected.items():
            worker = workers[turn % len(workers)]
            turn += 1
            status, answer = query_scores(worker, agent)
            if status != 200 or not isinstance(answer, dict):
                problems.append(f"{agent}: HTTP {status}")
                continue
            answers[agent] = answer
            problems += _differences(agent, _answered_figures(answer), figures)
        if not problems:
            return answers
        if time.monotonic() > deadline:
            raise AssertionError(
                f"aggregates differ from the ground truth after {timeout:g} s: {problems[:10]}\n"
                + "\n".join(worker.diagnosis() for worker in workers)
            )
        for worker in workers:
            worker.check_alive()
        time.sleep(0.5)


def aggregates_snapshot(worker: WorkerProcess, agents: Iterable[str]) -> dict[str, Any]:
    """Every agent's answer (``as_of=latest``, so it does not move with the clock)."""
    snapshot = {}
    for agent in agents:
        status, answer = query_scores(worker, agent)
        assert status == 200, (agent, status, answer)
        snapshot[agent] = answer
    return snapshot


class RawDriver:
    """Produces raw records in a background thread until stopped: new events, and every 10th
    record a retry (the same body again) of an earlier event, as Zoom sends them."""

    def __init__(
        self, deployment: Deployment, factory: EventFactory, rate: float, seed: int = 1
    ) -> None:
        self._rate = rate
        self.raw = RawProducer(deployment.bootstrap, deployment.topics.raw)
        self._factory = factory
        self._rng = random.Random(seed)
        self.sent: list[Event] = []
        self.retries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raw-driver", daemon=True)

    def start(self) -> RawDriver:
        self._thread.start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        distinct: list[Event] = []
        for number in range(MAX_RAW_RECORDS):
            if self._stop.is_set():
                break
            if number % 10 == 9 and distinct:
                event = distinct[self._rng.randrange(len(distinct))]
                self.retries += 1
            else:
                event = self._factory.mixed(distinct)
                distinct.append(event)
            self.raw.send(event.body)
            self.sent.append(event)
            pause = started + (number + 1) / self._rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        self.raw.flush()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive()


def processed_by(worker: WorkerProcess) -> float:
    """Raw records the worker has counted (fails if it died)."""
    worker.check_alive()
    return sum(worker.events_counted().values())


def idle(worker: WorkerProcess) -> bool:
    """Whether the worker owns raw partitions and has nothing left to read on any."""
    worker.check_alive()
    lag = worker.lag()
    return bool(lag) and set(lag.values()) == {0.0}


# --- posting through the source -----------------------------------------------------------------


@dataclass
class Delivery:
    """One POST of an event to the source, and its answer."""

    event: Event
    attempt: int
    sent_at: float
    timestamp: str = ""
    signature: str = ""
    status: int | None = None
    answer: Any = None
    error: str | None = None
    latency: float = 0.0


class WebhookDriver:
    """Posts signed webhooks to ``url`` from a background thread, ``rate`` per second.

    ``next_event(i)`` gives the i-th event to send, or ``None`` to end the stream; :meth:`stop`
    ends it early. Every POST is signed when it is sent, as Zoom does, and recorded as a
    :class:`Delivery`; the driver never waits for one answer before sending the next.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        next_event: Callable[[int], Event | None],
        rate: float,
        *,
        attempt: int = 1,
        timeout: float = 15.0,
        connections: int = 400,
    ) -> None:
        self.url = url.rstrip("/") + WEBHOOK_PATH
        self._secret = secret
        self._next_event = next_event
        self._interval = 1.0 / rate
        self._attempt = attempt
        self._timeout = timeout
        self._connections = connections
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        self._thread = threading.Thread(target=self._run, name="webhook-driver", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> WebhookDriver:
        self._thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> list[Delivery]:
        """End the stream, wait for every answer; the deliveries in sending order."""
        self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the webhook driver did not finish"
        if self.error is not None:
            raise AssertionError(f"the webhook driver failed: {self.error!r}")
        return self.deliveries

    def join(self, timeout: float) -> list[Delivery]:
        """Wait until the stream ends by itself (``next_event`` returned ``None``)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the stream did not end within {timeout:g} s"
        return self.stop()

    @property
    def sent(self) -> int:
        with self._lock:
            return len(self.deliveries)

    def answered(self, status: int) -> int:
        with self._lock:
            return sum(d.status == status for d in self.deliveries)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by stop()
            self.error = exc

    async def _main(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._connections)
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            tasks: set[asyncio.Task[None]] = set()
            started = time.monotonic()
            number = 0
            while not self._stop.is_set():
                event = self._next_event(number)
                if event is None:
                    break
                delivery = Delivery(event, self._attempt, time.time())
                with self._lock:
                    self.deliveries.append(delivery)
                task = asyncio.create_task(post(session, self.url, self._secret, delivery))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                number += 1
                pause = started + number * self._interval - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
            if tasks:
                await asyncio.gather(*tasks)


async def post(session: aiohttp.ClientSession, url: str, secret: str, delivery: Delivery) -> None:
    """POST ``delivery``'s event, signed now; record the answer in ``delivery``."""
    body = delivery.event.body
    headers = zoom_headers(secret, body)
    delivery.timestamp = headers["x-zm-request-timestamp"]
    delivery.signature = headers["x-zm-signature"]
    began = time.monotonic()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            delivery.status = response.status
            text = await response.read()
            try:
                delivery.answer = json.loads(text)
            except ValueError:
                delivery.answer = text
    except (aiohttp.ClientError, TimeoutError) as exc:
        delivery.error = repr(exc)
    delivery.latency = time.monotonic() - began


def post_all(
    url: str, secret: str, events: Sequence[Event], *, concurrency: int = 20, attempt: int = 1
) -> list[Delivery]:
    """POST every event (at most ``concurrency`` at once), each signed when sent."""

    async def main() -> list[Delivery]:
        deliveries = [Delivery(event, attempt, time.time()) for event in events]
        limit = asyncio.Semaphore(concurrency)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def one(delivery: Delivery) -> None:
                async with limit:
                    await post(session, url.rstrip("/") + WEBHOOK_PATH, secret, delivery)

            await asyncio.gather(*(one(d) for d in deliveries))
        return deliveries

    return asyncio.run(main())


def post_until_stored(
    url: str, secret: str, events: Sequence[Event], *, timeout: float = 120.0
) -> list[Delivery]:
    """Zoom's behaviour: POST every event, and again (freshly signed) while the answer is not 200.

    Returns every attempt."""
    attempts: list[Delivery] = []
    pending = list(events)
    deadline = time.monotonic() + timeout
    attempt = 1
    while pending:
        assert time.monotonic() < deadline, f"{len(pending)} event(s) never stored"
        answered = post_all(url, secret, pending, attempt=attempt)
        attempts += answered
        pending = [d.event for d in answered if d.status != 200]
        attempt += 1
    return attempts


async def raw_http(host: str, port: int, request: bytes, close_write: bool = True) -> bytes:
    """Send ``request`` bytes as they are; the answer's bytes (empty if the server closed)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        if close_write and writer.can_write_eof():
            writer.write_eof()
        return await asyncio.wait_for(reader.read(65536), 30)
    except ConnectionError:
        return b""
    finally:
        writer.close()


# --- reading the outputs ------------------------------------------------------------------------


class OutputReader:
    """A consumer of the typed topics and the dead-letter topic, read from the beginning."""

    def __init__(self, deployment: Deployment) -> None:
        self.bootstrap = deployment.bootstrap
        self.typed_topics = deployment.typed_topics()
        self.dlq_topic = deployment.topics.dlq
        self.topics = [*self.typed_topics, self.dlq_topic]
        self._consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"reliability-reader-{time.monotonic_ns()}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        self._consumer.subscribe(self.topics)
        self.typed: list[Message] = []
        self.dlq: list[Message] = []
        self.seen_ids: set[str] = set()

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> OutputReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _poll(self, timeout: float) -> bool:
        message = self._consumer.poll(timeout)
        if message is None:
            return False
        error = message.error()
        if error is not None:
            if error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._PARTITION_EOF):
                return False
            raise AssertionError(f"consumer error: {error}")
        (self.dlq if message.topic() == self.dlq_topic else self.typed).append(message)
        self.seen_ids.add(headers_of(message)["zoom-event-id"].decode())
        return True

    def read_until(
        self,
        done: Callable[[OutputReader], bool],
        timeout: float,
        workers: Sequence[WorkerProcess] = (),
        what: str = "the expected records",
    ) -> None:
        deadline = time.monotonic() + timeout
        checked = 0.0
        while not done(self):
            now = time.monotonic()
            if now > deadline:
                tails = "\n".join(w.tail(40) for w in workers)
                raise AssertionError(
                    f"{what}: not there after {timeout:g} s ({len(self.typed)} typed, "
                    f"{len(self.dlq)} dead letters read)\n{tails}"
                )
            if now - checked > 1.0:
                for worker in workers:
                    worker.check_alive()
                checked = now
            self._poll(0.2)

    def read_ids(
        self, ids: Iterable[str], timeout: float, workers: Sequence[WorkerProcess] = ()
    ) -> None:
        """Read until every identity in ``ids`` has a typed record or a dead letter."""
        wanted = set(ids)
        self.read_until(
            lambda reader: wanted <= reader.seen_ids,
            timeout,
            workers,
            f"{len(wanted - self.seen_ids)} of {len(wanted)} event ids",
        )

    def drain(self, timeout: float = 60.0) -> None:
        """Read up to the topics' current ends (so later duplicates are counted too)."""
        metadata = self._consumer.list_topics(timeout=30)
        ends: dict[tuple[str, int], int] = {}
        for topic in self.topics:
            for partition in metadata.topics[topic].partitions:
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=30, cached=False
                )
                ends[(topic, partition)] = high
        total = sum(ends.values())
        self.read_until(
            lambda r: len(r.typed) + len(r.dlq) >= total, timeout, what=f"{total} records"
        )


@dataclass
class Tally:
    """What came out for what went in, by event identity."""

    distinct_events: int = 0
    deliveries: int = 0
    typed_records: int = 0
    dead_letters: int = 0
    lost: list[str] = field(default_factory=list)
    duplicates: int = 0
    duplicate_typed: int = 0
    duplicate_dead_letters: int = 0
    duplicate_ids: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, int]:
        return {
            "events sent (distinct)": self.distinct_events,
            "deliveries": self.deliveries,
            "typed records": self.typed_records,
            "dead letters": self.dead_letters,
            "lost": len(self.lost),
            "duplicated": self.duplicates,
            "duplicated typed records": self.duplicate_typed,
            "duplicated dead letters": self.duplicate_dead_letters,
        }

    def check(self) -> None:
        assert not self.lost, f"{len(self.lost)} event(s) lost: {self.lost[:10]}"
        assert not self.unexpected, f"records of unknown events: {self.unexpected[:10]}"
        assert not self.mismatched, f"duplicates unlike their original: {self.mismatched[:10]}"


def tally(reader: OutputReader, events: Iterable[Event], deliveries: Counter[str]) -> Tally:
    """Count lost and duplicated events.

    ``events``: the distinct events sent; ``deliveries``: event id -> how many raw records carried
    it (Zoom's retries included). A valid event needs one typed record; more are duplicates, each
    of which must repeat the original's key and bytes under its id. An invalid event gets one dead
    letter per delivery (dead letters are not de-duplicated); more are duplicates.
    """
    by_id = {event.event_id: event for event in events}
    result = Tally(distinct_events=len(by_id), deliveries=sum(deliveries.values()))
    typed: dict[str, list[Message]] = {}
    for message in reader.typed:
        typed.setdefault(headers_of(message)["zoom-event-id"].decode(), []).append(message)
    dead: Counter[str] = Counter(
        headers_of(message)["zoom-event-id"].decode() for message in reader.dlq
    )
    result.typed_records, result.dead_letters = len(reader.typed), len(reader.dlq)
    for event_id in [*typed, *dead]:
        if event_id not in by_id:
            result.unexpected.append(event_id)
    for event_id, event in by_id.items():
        if event.valid:
            copies = typed.get(event_id, [])
            if not copies:
                result.lost.append(event_id)
                continue
            extra = len(copies) - 1
            result.duplicate_typed += extra
            first = copies[0]
            for other in copies[1:]:
                if other.value() != first.value() or other.key() != first.key():
                    result.mismatched.append(event_id)
        else:
            wanted = max(deliveries.get(event_id, 1), 1)
            if dead[event_id] == 0:
                result.lost.append(event_id)
                continue
            extra = max(0, dead[event_id] - wanted)
            result.duplicate_dead_letters += extra
        if extra:
            result.duplicates += extra
            result.duplicate_ids.append(event_id)
    return result


def http_status_counts(deliveries: Iterable[Delivery]) -> dict[str, int]:
    counts: Counter[str] = Counter(
        str(d.status) if d.status is not None else f"error {d.error}" for d in deliveries
    )
    return dict(sorted(counts.items()))


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
