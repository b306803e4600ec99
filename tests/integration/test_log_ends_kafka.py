"""Where partitions end, asked of the real broker (connector.worker.patches.log_ends)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from confluent_kafka import Producer

from connector.worker.patches.log_ends import LogEnds, furthest
from tests.processes import wait_until


def test_log_ends_follow_what_is_written(
    kafka_bootstrap: str, create_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    topic = create_topic("log-ends", partitions=2)
    ends = LogEnds({"bootstrap.servers": kafka_bootstrap}, unique_name("log-ends"))
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    try:
        # a topic just created: the broker may not know its partitions' leaders for a moment, and
        # a question it cannot answer yet is left out (asked again later, as the worker does)
        def both() -> dict[tuple[str, int], int] | None:
            answer = asyncio.run(ends.refresh([(topic, 0), (topic, 1)]))
            return answer if len(answer) == 2 else None

        first = wait_until(both, 30, "the log ends of a new topic")
        assert first == {(topic, 0): 0, (topic, 1): 0}
        for i in range(5):
            producer.produce(topic, value=b"%d" % i, partition=0)
        producer.produce(topic, value=b"x", partition=1)
        assert producer.flush(30) == 0
        # asked again, not cached: the figures follow the log
        assert asyncio.run(ends.refresh([(topic, 0), (topic, 1), (topic, 0)])) == {
            (topic, 0): 5,
            (topic, 1): 1,
        }
        assert ends.latest == {(topic, 0): 5, (topic, 1): 1}
        # a partition that does not exist is left out, and the others keep their figures
        assert asyncio.run(ends.refresh([(topic, 7)])) == {}
        assert ends.latest[(topic, 0)] == 5
    finally:
        ends.close()


def test_furthest_ignores_unknown_offsets() -> None:
    assert furthest(3, None, 7) == 7
    assert furthest(None, "x") is None
    assert furthest() is None
