"""Broker outage under load: the (private) broker is stopped and started again mid-stream.

Fault: ``zoom-connector source`` takes a steady stream of signed webhooks (50/s) on a private
single-node broker; after a while the broker is stopped, stays down for a while, and is started
again; the stream goes on throughout, then Zoom re-sends whatever was refused.

Pass: every request answered 200 is on the raw topic exactly as sent (bytes, key, Zoom's headers,
at the partition and offset the answer named); every request not stored was answered 503 (never a
200, never another status, never a dropped connection); the source, never restarted, stores again
once the broker is back; after Zoom's re-sends every event is on the raw topic (nothing lost).
A 503 whose record the broker stored after all (librdkafka had sent it before the deadline) is
counted: the worker's dedup makes the two deliveries one typed record.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Message

from connector.kafka.local_broker import LocalBroker
from connector.wire import SIGNATURE_HEADER, TIMESTAMP_HEADER, raw_record_key
from tests.processes import (
    Deployment,
    ProcessGroup,
    headers_of,
    private_broker,
    read_everything,
    wait_until,
)
from tests.reliability.workload import (
    SECRET,
    Delivery,
    EventFactory,
    Figures,
    WebhookDriver,
    http_status_counts,
    percentile,
    post_until_stored,
)

pytestmark = pytest.mark.kafka

RATE = 50.0
UP_SECONDS = 5.0  # stored before the outage
DOWN_SECONDS = 10.0  # at least this long without a broker
AFTER_SECONDS = 5.0  # stored again after recovery
DEADLINE_SECONDS = 2.5  # SOURCE_PRODUCE_TIMEOUT_SECONDS
ANSWER_WITHIN_SECONDS = DEADLINE_SECONDS + 2.0  # librdkafka checks timeouts about once a second


@pytest.fixture
def broker_deployment(
    tmp_path: Path, unique_name: Callable[[str], str]
) -> Iterator[tuple[Deployment, LocalBroker]]:
    """A deployment on a private broker of its own, which the test stops and starts."""
    with private_broker(tmp_path / "broker") as broker:
        deployment = Deployment(broker.bootstrap, unique_name("outage"), tmp_path)
        deployment.create_topics()
        yield deployment, broker


def _stored_in_window(deliveries: list[Delivery], start: float, end: float) -> int:
    return sum(d.status == 200 for d in deliveries if start <= d.sent_at < end)


@pytest.mark.timeout(600)
def test_broker_stopped_and_restarted_under_load(
    broker_deployment: tuple[Deployment, LocalBroker], figures: Figures
) -> None:
    deployment, broker = broker_deployment
    processes = ProcessGroup(deployment, SECRET)
    factory = EventFactory(deployment.prefix, seed=31)
    try:
        source = processes.source(SOURCE_PRODUCE_TIMEOUT_SECONDS=str(DEADLINE_SECONDS))
        source_pid = source.pid
        driver = WebhookDriver(source.url, SECRET, lambda n: factory.evaluation(), RATE).start()
        try:
            wait_until(
                lambda: driver.answered(200) >= UP_SECONDS * RATE, 60, "the stream to be stored"
            )
            stopped_at = time.time()
            broker.stop()
            wait_until(
                lambda: (
                    time.time() - stopped_at >= DOWN_SECONDS
                    and driver.answered(503) >= DOWN_SECONDS * RATE / 2
                ),
                120,
                "a long enough outage, answered 503",
            )
            restarted_at = time.time()
            broker.start()
            back_at = time.time()

            def stored_again() -> bool:
                return _stored_in_window(driver.deliveries[:], back_at, time.time()) >= (
                    AFTER_SECONDS * RATE
                )

            wait_until(stored_again, 120, "the source to store again")
            after = [d for d in driver.deliveries[:] if d.sent_at >= back_at]
            recovered_at = min((d.sent_at for d in after if d.status == 200), default=math.nan)
        finally:
            deliveries = driver.stop()
        source.check_alive()
        assert source.pid == source_pid

        # Zoom re-sends what was refused, until it is stored.
        refused = [d.event for d in deliveries if d.status != 200]
        resent = post_until_stored(source.url, SECRET, refused)
    finally:
        processes.stop_all()

    stored = read_everything(deployment.bootstrap, [deployment.topics.raw])
    by_place: dict[tuple[int, int], Message] = {(m.partition(), m.offset()): m for m in stored}
    copies = Counter(m.value() for m in stored)
    statuses = http_status_counts(deliveries)
    late = 0
    for delivery in deliveries:
        body = delivery.event.body
        if delivery.status == 200:
            answer = delivery.answer
            message = by_place.get((answer["partition"], answer["offset"]))
            assert message is not None, f"a 200 not on the raw topic: {answer}"
            assert message.value() == body
            assert message.key() == raw_record_key(json.loads(body), body)
            headers = headers_of(message)
            assert headers[TIMESTAMP_HEADER] == delivery.timestamp.encode()
            assert headers[SIGNATURE_HEADER] == delivery.signature.encode()
        else:
            assert delivery.status == 503, (delivery.status, delivery.error, delivery.answer)
            assert delivery.latency < ANSWER_WITHIN_SECONDS, delivery.latency
            late += copies[body] > 1  # stored late, and stored again when re-sent
    lost = [d.event.event_id for d in deliveries if copies[d.event.body] == 0]
    raw_duplicates = sum(count - 1 for count in copies.values())
    figures(
        events_sent=len(deliveries),
        http=statuses,
        outage_seconds=round(restarted_at - stopped_at, 1),
        broker_start_seconds=round(back_at - restarted_at, 1),
        first_200_after_restart_seconds=round(recovered_at - back_at, 1),
        refused_then_resent=len(refused),
        resend_attempts=len(resent),
        raw_records=len(stored),
        lost=len(lost),
        duplicated_503_stored_late=late,
        raw_duplicates=raw_duplicates,
        p99_answer_seconds=round(percentile([d.latency for d in deliveries], 0.99), 2),
    )
    assert not lost, lost[:10]
    assert statuses.get("503", 0) > 0 and statuses.get("200", 0) > 0
    assert len(copies) == len(deliveries)  # nothing but what was sent
