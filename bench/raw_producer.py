"""The ingest's Kafka ceiling: confluent-kafka's producer alone, writing the source's records.

    python -m bench.raw_producer --bootstrap B --topic T --requests FILE
        (--saturate SECONDS | --rate R --duration SECONDS) [--times FILE]

Each record is what the source writes for a request of the set: the body, its raw key, Zoom's
timestamp and signature headers and the receive time, with the source's own producer settings
(``connector.source.producer.producer_config``: idempotent, ``acks=all``, ``linger.ms``, the
deadline). ``--saturate``: as fast as librdkafka takes them for that long, then everything is
flushed; the rate counts acknowledged records up to the last acknowledgement. ``--rate``: one record
every ``1/R`` s, latency from ``produce()`` to its delivery report. Prints one JSON object;
``--times`` writes each record's send time (epoch seconds) by raw key, for end-to-end latency.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from bench import requests as request_set
from bench.kafka_util import settings_for
from bench.stats import summary
from connector.source.producer import producer_config
from connector.wire import RECEIVED_AT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--requests", required=True)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--saturate", type=float, default=None, help="seconds")
    mode.add_argument("--rate", type=float, default=None, help="records per second")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--times", default=None)
    args = parser.parse_args()

    signed = request_set.read(Path(args.requests))
    records = [
        (
            r.key,
            r.body,
            [(TIMESTAMP_HEADER, r.ts.encode()), (SIGNATURE_HEADER, r.sig.encode())],
        )
        for r in signed
    ]
    config = producer_config(settings_for(args.bootstrap, "bench"))
    producer = Producer(config)
    producer.list_topics(args.topic, timeout=10)
    # Not measured: connecting, the idempotent producer's id, the partitions' leaders.
    warmup = len(records) - 1
    producer.produce(args.topic, value=records[warmup][1], key=records[warmup][0])
    producer.flush(30)

    acked: list[float] = []
    latencies: list[float] = []
    failures: list[str] = []
    sent_at: dict[int, float] = {}

    def report(index: int) -> Any:
        def delivered(error: Any, message: Any) -> None:
            now = time.monotonic()
            if error is not None:
                failures.append(str(error))
                return
            acked.append(now)
            if index in sent_at:
                latencies.append((now - sent_at[index]) * 1000)

        return delivered

    def produce(index: int) -> None:
        key, body, headers = records[index % len(records)]
        wire = [*headers, (RECEIVED_AT_HEADER, str(int(time.time() * 1000)).encode())]
        while True:
            try:
                producer.produce(
                    args.topic, value=body, key=key, headers=wire, on_delivery=report(index)
                )
                return
            except BufferError:
                producer.poll(0.005)

    cpu0 = _cpu()
    wall0, t0 = time.time(), time.monotonic()
    count = 0
    if args.saturate is not None:
        deadline = t0 + args.saturate
        while time.monotonic() < deadline:
            for _ in range(100):
                produce(count)
                count += 1
            producer.poll(0)
    else:
        total = max(1, int(args.rate * args.duration))
        for count in range(total):
            due = t0 + count / args.rate
            while (wait := due - time.monotonic()) > 0:
                producer.poll(min(wait, 0.001))
            sent_at[count] = time.monotonic()
            produce(count)
        count = total
    producer.flush(30)
    cpu = _cpu() - cpu0
    elapsed = (max(acked) if acked else time.monotonic()) - t0
    result: dict[str, Any] = {
        "mode": "saturate" if args.saturate is not None else "rate",
        "records": count,
        "acked": len(acked),
        "failed": len(failures),
        "errors": failures[:3],
        "acked_rate": len(acked) / elapsed if elapsed > 0 else 0.0,
        "duration_s": elapsed,
        "cpu_s": cpu,
        "latency_ms": summary(latencies),
        "linger_ms": config.get("linger.ms"),
    }
    if args.times:
        by_key = {
            records[i % len(records)][0].decode(): wall0 + (sent - t0)
            for i, sent in sent_at.items()
        }
        Path(args.times).write_text(json.dumps(by_key))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
