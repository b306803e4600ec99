"""A small closed-loop HTTP load generator (aiohttp client), used by ``run.py`` when wrk is absent.

It POSTs one pre-signed body over ``--connections`` keep-alive connections until ``--duration``
seconds pass or ``--max-requests`` answers arrived, and prints one JSON line: requests, non-200
answers, errors, req/s, p50/p99 latency in milliseconds. Only 127.0.0.1 URLs are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from urllib.parse import urlsplit

import aiohttp


async def _run(
    url: str, body: bytes, headers: dict[str, str], connections: int, duration: float, limit: int
) -> dict[str, float]:
    latencies: list[float] = []
    counts = {"non_200": 0, "errors": 0}
    deadline = time.monotonic() + duration
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while time.monotonic() < deadline and len(latencies) < limit:
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        if response.status != 200:
                            counts["non_200"] += 1
                except aiohttp.ClientError:
                    counts["errors"] += 1
                    continue
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies) or [0.0]
    cuts = statistics.quantiles(ordered, n=100) if len(ordered) > 1 else ordered * 99
    return {
        "requests": len(latencies),
        "non_200": counts["non_200"],
        "errors": counts["errors"],
        "rps": len(latencies) / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--headers-json", required=True)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    args = parser.parse_args()
    if urlsplit(args.url).hostname != "127.0.0.1":
        parser.error("the load generator only targets 127.0.0.1")
    with open(args.body_file, "rb") as file:
        body = file.read()
    result = asyncio.run(
        _run(
            args.url,
            body,
            json.loads(args.headers_json),
            args.connections,
            args.duration,
            args.max_requests,
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
