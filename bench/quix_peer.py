"""The peer a user would pick instead of the worker: a Quix Streams application doing its job.

    bench/.venv-quix/bin/python -m bench.quix_peer --bootstrap B --raw-topic T --out-prefix P
        --group G --state-dir D [--dedup-retention-seconds 7200]

Runs in its own virtualenv (:mod:`bench.quix_env`; quixstreams pins an older confluent-kafka and
pydantic than the project) with the project's tree on ``PYTHONPATH``; it imports only the pure
parts of the connector: the :class:`~connector.worker.routing.Router` with the connector's
:class:`~connector.avro.codec.EventCodec`, and the aggregates' :func:`from_typed` and
:class:`AgentState`.

Per raw record, as the worker does (at-least-once, Quix's checkpoints: offsets committed after
the producer flushed and the state was stored):

1. route it: a typed record on ``<P>.<event type>`` or a dead letter on ``<P>.webhooks.dlq``,
   with the worker's keys, values, headers and timestamps (the Router makes all of them);
2. drop a typed event already written within the retention: state keyed by ``zoom-event-id``
   under the raw key (every retry of an event has the same raw key, so the same partition);
3. for the two Quality Management types, the score event goes by agent (Quix's ``group_by``: a
   repartition topic) into a per-agent running aggregate held in Quix's state (``AgentState``,
   applied exactly as the worker applies it). The worker also writes ``agent_scores`` records;
   the peer keeps the aggregate in its state only.

Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from quixstreams import Application, message_context
from quixstreams.models.serializers import Serializer

from connector.avro.codec import EventCodec
from connector.avro.errors import CodecError
from connector.topics import TopicNames
from connector.worker.aggregates.events import (
    EVENT_TYPES,
    ScoreEventError,
    decode,
    encode,
    from_typed,
)
from connector.worker.aggregates.state import AgentState, Retention
from connector.worker.routing import Outcome, RawRecord, Router, TypedRecord

DAY_MS = 86_400_000
SCORE_TYPES = frozenset(EVENT_TYPES)


class OutcomeValue(Serializer):
    """Writes a routed outcome's value (already framed by the codec)."""

    def __call__(self, value: Outcome, ctx: Any) -> bytes:
        return value.value if value.value is not None else b""


class OutcomeKey(Serializer):
    def __call__(self, value: bytes | None, ctx: Any) -> bytes | None:
        return value


def build(args: argparse.Namespace) -> Application:
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee="at-least-once",
        state_dir=args.state_dir,
        loglevel="WARNING",
        producer_extra_config={"acks": "all", "enable.idempotence": True},
    )
    names = TopicNames(args.out_prefix)
    codec = EventCodec()
    router = Router(codec, names, clock=time.time)
    retention_ms = args.dedup_retention_seconds * 1000
    scores_retention = Retention(
        replaceable_ms=args.rescore_days * DAY_MS + retention_ms,
        max_replaceable=args.max_replaceable,
    )
    raw = app.topic(args.raw_topic, key_deserializer="bytes", value_deserializer="bytes")
    outputs = {
        name: app.topic(name, key_serializer=OutcomeKey(), value_serializer=OutcomeValue())
        for name in [*(names.typed(t) for t in codec.event_types), names.dlq]
    }

    def route(value: bytes | None, key: bytes | None, timestamp: int, headers: Any,
              state: Any) -> Outcome | None:  # fmt: skip
        context = message_context()
        record = RawRecord(
            topic=context.topic,
            partition=context.partition,
            offset=context.offset,
            timestamp_ms=timestamp,
            key=key,
            value=value,
            headers=[(k, v if v is not None else b"") for k, v in (headers or ())],
        )
        outcome = router.route(record)
        if isinstance(outcome, TypedRecord):
            first_seen = state.get(outcome.event_id)
            if first_seen is not None and timestamp - first_seen <= retention_ms:
                return None  # a retry of an event already written
            state.set(outcome.event_id, timestamp)
        return outcome

    sdf = app.dataframe(raw)
    sdf = sdf.apply(route, stateful=True, metadata=True)
    sdf = sdf.filter(lambda outcome: outcome is not None)
    sdf = sdf.set_headers(lambda outcome, key, timestamp, headers: outcome.headers)
    sdf.to_topic(
        lambda outcome, key, timestamp, headers: outputs[outcome.topic],
        key=lambda outcome: outcome.key,
    )

    def score_event(outcome: Outcome) -> bytes | None:
        if not isinstance(outcome, TypedRecord) or outcome.event_type not in SCORE_TYPES:
            return None
        try:
            event_type, datum = codec.decode(outcome.value)
            event, _ = from_typed(event_type, datum)
        except (CodecError, ScoreEventError):
            return None
        return encode(event) if event is not None else None

    scores = sdf.apply(score_event).filter(lambda event: event is not None)
    scores = scores.group_by(
        lambda event: decode(event).agent,
        name="agent",
        key_serializer="str",
        key_deserializer="str",
        value_serializer="bytes",
        value_deserializer="bytes",
    )

    def aggregate(event: bytes, state: Any) -> None:
        score_event = decode(event)
        stored = state.get("state")  # Quix stores JSON: the state's JSON as text
        agent = AgentState.from_bytes(stored.encode()) if stored is not None else None
        agent = agent or AgentState(score_event.agent)
        agent.apply(score_event, scores_retention, round(time.time() * 1000))
        state.set("state", agent.to_bytes().decode())

    scores.update(aggregate, stateful=True)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--raw-topic", required=True)
    parser.add_argument("--out-prefix", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--dedup-retention-seconds", type=int, default=2 * 3600)
    parser.add_argument("--rescore-days", type=int, default=31)
    parser.add_argument("--max-replaceable", type=int, default=3000)
    build(parser.parse_args()).run()


if __name__ == "__main__":
    main()
