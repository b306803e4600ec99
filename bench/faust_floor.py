"""Faust alone: what the framework costs before the connector does any work.

``python -m bench.worker_main --floor`` runs the worker's own Faust app (same settings: broker,
consumer group, producer ``acks=all``, batching ``WORKER_BATCH_SIZE``/``WORKER_BATCH_SECONDS``)
with one agent instead of the connector's: it reads the raw topic in the same no-ack batches
(:func:`connector.worker.patches.batching.take_available`), writes every raw record unchanged to the
dead-letter topic through Faust's producer, waits until Kafka acknowledged the batch's writes and
then acknowledges its records, exactly the raw agent's sequence, with no parsing, validation,
deduplication, metrics or aggregates. Its rate is the most a worker built on Faust's stream could
reach on this machine: the pipeline's figure read against it separates what Faust costs from what
the connector's own work costs.

``--floor librdkafka`` keeps Faust's stream for reading and writes with a confluent-kafka
(librdkafka) producer configured as the source's (:func:`connector.source.producer.producer_config`:
``acks=all``, idempotent) instead of Faust's aiokafka producer: the most a worker could reach that
keeps Faust agents on the raw topic (the product's design) and moves only the writes off Faust.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from confluent_kafka import Producer

from connector.source.producer import producer_config
from connector.worker.app import WorkerContext
from connector.worker.patches.batching import take_available


def install_faust_floor(app: faust.App, context: WorkerContext) -> None:
    """Faust reads and writes (Faust's producer)."""
    _install(app, context, writer="faust")


def install_faust_read_floor(app: faust.App, context: WorkerContext) -> None:
    """Faust reads, librdkafka writes."""
    _install(app, context, writer="librdkafka")


def _install(app: faust.App, context: WorkerContext, *, writer: str) -> None:
    settings, topics = context.settings, context.topics
    raw = app.topic(topics.raw, key_serializer="raw", value_serializer="raw")
    out = app.topic(topics.dlq, key_serializer="raw", value_serializer="raw")

    if writer == "librdkafka":
        write = _librdkafka_writer(context)
    else:

        async def write(messages: list[Any]) -> None:
            deliveries = [
                await out.send(
                    key=message.key,
                    value=message.value if message.value is not None else b"",
                    headers=list(message.headers or ()),
                )
                for message in messages
            ]
            await asyncio.gather(*deliveries)

    @app.agent(raw, name="bench-faust-floor")
    async def forward(stream: Any) -> None:
        size, within = settings.worker_batch_size, settings.worker_batch_seconds
        async for events in take_available(stream, size, within):
            await write([event.message for event in events])
            for event in events:
                await stream.ack(event)


def _librdkafka_writer(context: WorkerContext) -> Callable[[list[Any]], Awaitable[None]]:
    """Hand a batch to a librdkafka producer at once, then wait (in a thread) until Kafka
    acknowledged all of it: the cheapest way to write a batch durably from the event loop."""
    dlq = context.topics.dlq
    config = {**producer_config(context.settings), "client.id": "bench-faust-read-floor"}
    producer = Producer(config)
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    async def write(messages: list[Any]) -> None:
        for message in messages:
            producer.produce(
                dlq,
                key=message.key,
                value=message.value if message.value is not None else b"",
                headers=list(message.headers or ()),
                on_delivery=delivered,
            )
        left = await asyncio.get_running_loop().run_in_executor(None, producer.flush, 30.0)
        if left or failures:
            raise RuntimeError(f"librdkafka: {left} undelivered, failures {failures[:3]}")

    return write
