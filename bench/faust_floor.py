"""Faust alone: what the framework costs before the connector does any work.

``python -m bench.worker_main --floor`` runs the worker's own Faust app (same settings: broker,
consumer group, producer ``acks=all``, batching ``WORKER_BATCH_SIZE``/``WORKER_BATCH_SECONDS``)
with one agent instead of the connector's: it reads the raw topic in the same no-ack batches
(:func:`connector.streams.batches.take_available`), writes every raw record unchanged to the
dead-letter topic through Faust's producer, waits until Kafka acknowledged the batch's writes and
then acknowledges its records, exactly the raw agent's sequence, with no parsing, validation,
deduplication, metrics or aggregates. Its rate is the most a worker built on Faust's stream could
reach on this machine: the pipeline's figure read against it separates what Faust costs from what
the connector's own work costs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from connector.streams.app import WorkerContext
from connector.streams.batches import take_available


def install_faust_floor(app: faust.App, context: WorkerContext) -> None:
    settings, topics = context.settings, context.topics
    raw = app.topic(topics.raw, key_serializer="raw", value_serializer="raw")
    out = app.topic(topics.dlq, key_serializer="raw", value_serializer="raw")

    @app.agent(raw, name="bench-faust-floor")
    async def forward(stream: Any) -> None:
        size, within = settings.worker_batch_size, settings.worker_batch_seconds
        async for events in take_available(stream, size, within):
            deliveries = [
                await out.send(
                    key=event.message.key,
                    value=event.message.value if event.message.value is not None else b"",
                    headers=list(event.message.headers or ()),
                )
                for event in events
            ]
            await asyncio.gather(*deliveries)
            for event in events:
                await stream.ack(event)
