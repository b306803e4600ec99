"""Do the worker and the Quix peer write the same records? Both sets of outputs, compared.

Each output record (typed topics and the DLQ) is reduced to what the pipeline promises: the topic
without its prefix, key, value, ``zoom-event-id`` header and, for a dead letter, its
``zoom-dlq-reason``; the time a record failed, its partition and offset may differ. The two
multisets must be equal: a record written by one and not the other (or twice by one) is a
difference, and the first few are named.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from connector.wire import EVENT_ID_HEADER
from connector.worker.dead_letters import REASON_HEADER

Output = tuple[str, bytes | None, bytes | None, bytes | None, bytes | None]


def read_outputs(bootstrap: str, topics: Iterable[str], prefix: str) -> Counter[Output]:
    """Every record of ``topics`` up to their current ends, reduced as the module says."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"peer-check-{uuid.uuid4()}",
                         "enable.auto.commit": False})  # fmt: skip
    found: Counter[Output] = Counter()
    try:
        ends: dict[tuple[str, int], int] = {}
        for topic in topics:
            metadata = consumer.list_topics(topic, timeout=10).topics[topic]
            for partition in metadata.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
                if high > low:
                    ends[(topic, partition)] = high
        consumer.assign([TopicPartition(t, p, 0) for t, p in ends])
        deadline = time.monotonic() + 120
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(5000, timeout=0.5):
                if message.error():
                    continue
                topic, partition = message.topic(), message.partition()
                headers = dict(message.headers() or ())
                found[(topic.removeprefix(prefix), message.key(), message.value(),
                       headers.get(EVENT_ID_HEADER), headers.get(REASON_HEADER))] += 1  # fmt: skip
                if message.offset() + 1 >= ends.get((topic, partition), 0):
                    ends.pop((topic, partition), None)
        if ends:
            raise TimeoutError(f"outputs not read to their end within 120 s: {sorted(ends)[:3]}")
    finally:
        consumer.close()
    return found


def compare(worker: Counter[Output], peer: Counter[Output]) -> tuple[bool, str]:
    """Whether both wrote the same records, and a line saying so (or what differs)."""
    total = sum(worker.values())
    if worker == peer:
        dead = sum(n for o, n in worker.items() if o[4] is not None)
        return True, (
            f"the Quix peer's outputs equal the worker's: {total:,} records ({dead:,} dead "
            "letters) by topic, key, value, zoom-event-id and DLQ reason"
        )
    only_worker, only_peer = worker - peer, peer - worker
    return False, (
        f"the Quix peer's outputs DIFFER from the worker's ({total:,} worker records): "
        f"{sum(only_worker.values()):,} only the worker wrote, e.g. {_show(only_worker)}; "
        f"{sum(only_peer.values()):,} only the peer wrote, e.g. {_show(only_peer)}"
    )


def _show(outputs: Counter[Output]) -> list[Any]:
    return [(topic, key, (value or b"")[:16], event_id, reason)
            for topic, key, value, event_id, reason in list(outputs)[:2]]  # fmt: skip
