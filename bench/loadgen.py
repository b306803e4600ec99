"""A constant-rate (open-loop) HTTP load generator for pre-signed webhooks, in its own process.

    python -m bench.loadgen --port P --requests FILE --rate R --duration D
        [--warmup S] [--connections 256] [--drain 10] [--times FILE]

Request ``i`` is due at ``t0 + i / R`` whatever the server does (wrk2's model; wrk2 is not packaged
for Debian, wrk is closed-loop). Its latency is measured from when it was *due*, so time it spent
waiting for a free connection counts (no coordinated omission), and also from when it was written
(``service``). Requests are built from the request set (``bench.requests``) before the clock
starts: bytes ready to write, signatures included. Up to ``--connections`` keep-alive connections
to 127.0.0.1 are opened as needed.

Prints one JSON object: counts (200, other statuses, connection errors, unanswered after
``--drain`` seconds), achieved rates, latency summaries in ms, how late requests left (send lag),
and the generator's own CPU use. A send lag near zero and a CPU share well below 1 show that the
figures are the server's, not the generator's. ``--times FILE`` also writes each request's send
time (epoch seconds) and status, for end-to-end latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import time
from collections import deque
from pathlib import Path
from typing import Any

from bench import requests as request_set
from bench.stats import summary

_HEADER_END = b"\r\n\r\n"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Connection(asyncio.Protocol):
    def __init__(self, generator: _Generator) -> None:
        self.generator = generator
        self.transport: Any = None
        self.buffer = bytearray()
        self.current: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.generator.ready(self)

    def send(self, index: int) -> None:
        assert self.transport is not None
        self.current = index
        self.generator.sent[index] = time.monotonic()
        self.transport.write(self.generator.wire[index % len(self.generator.wire)])

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(_HEADER_END)
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            status = int(head[9:12])
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            del self.buffer[:total]
            index, self.current = self.current, None
            if index is not None:
                self.generator.answered(self, index, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.generator.lost(self)


class _Generator:
    def __init__(self, wire: list[bytes], port: int, max_connections: int) -> None:
        self.wire = wire
        self.port = port
        self.max_connections = max_connections
        self.idle: deque[_Connection] = deque()
        self.waiting: deque[int] = deque()
        self.opening = 0
        self.open = 0
        self.due: dict[int, float] = {}
        self.sent: dict[int, float] = {}
        self.done: dict[int, float] = {}
        self.status: dict[int, int] = {}
        self.errors = 0
        self.connections_opened = 0
        self.finished = asyncio.Event()
        self.expected = 0

    def _connect(self) -> None:
        self.opening += 1
        self.connections_opened += 1
        loop = asyncio.get_running_loop()
        task = loop.create_task(
            loop.create_connection(lambda: _Connection(self), "127.0.0.1", self.port)
        )
        task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[Any]) -> None:
        self.opening -= 1
        if task.exception() is not None:
            self.errors += 1
            if self.waiting and self.open + self.opening < self.max_connections:
                self._connect()

    def ready(self, connection: _Connection) -> None:
        self.open += 1
        self._next(connection)

    def _next(self, connection: _Connection) -> None:
        if self.waiting:
            connection.send(self.waiting.popleft())
        else:
            self.idle.append(connection)

    def dispatch(self, index: int, due: float) -> None:
        self.due[index] = due
        if self.idle:
            self.idle.pop().send(index)
            return
        self.waiting.append(index)
        if self.open + self.opening < self.max_connections:
            self._connect()

    def answered(self, connection: _Connection, index: int, status: int) -> None:
        self.done[index] = time.monotonic()
        self.status[index] = status
        if len(self.done) >= self.expected:
            self.finished.set()
        self._next(connection)

    def lost(self, connection: _Connection) -> None:
        self.open -= 1
        if connection in self.idle:
            self.idle.remove(connection)
        if connection.current is not None:
            self.errors += 1
            self.status[connection.current] = 0
        if self.waiting and self.open + self.opening < self.max_connections:
            self._connect()

    def reset(self) -> None:
        self.due.clear()
        self.sent.clear()
        self.done.clear()
        self.status.clear()
        self.errors = 0
        self.finished = asyncio.Event()


async def _phase(gen: _Generator, first: int, count: int, rate: float, drain: float) -> float:
    """Dispatch ``count`` requests at ``rate``/s; returns ``t0``."""
    gen.expected = count
    t0 = time.monotonic()
    for n in range(count):
        due = t0 + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        gen.dispatch(first + n, due)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(gen.finished.wait(), drain)
    return t0


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    signed = request_set.read(Path(args.requests))
    wire = [r.http() for r in signed]
    gen = _Generator(wire, args.port, args.connections)
    for _ in range(min(16, args.connections)):
        gen._connect()
    await asyncio.sleep(0.2)

    if args.warmup > 0:
        count = max(1, int(args.warmup * args.rate))
        # Indices far above the measured ones: a late warm-up answer cannot pass for one of those.
        await _phase(gen, 10**9, count, args.rate, args.drain)
        gen.reset()

    count = max(1, int(args.duration * args.rate))
    wall0, mono0 = time.time(), time.monotonic()
    cpu0 = _cpu()
    t0 = await _phase(gen, 0, count, args.rate, args.drain)
    cpu = _cpu() - cpu0
    last_due = t0 + (count - 1) / args.rate

    ok = [i for i, s in gen.status.items() if s == 200]
    latency = [(gen.done[i] - gen.due[i]) * 1000 for i in ok]
    service = [(gen.done[i] - gen.sent[i]) * 1000 for i in ok]
    lag = [(gen.sent[i] - gen.due[i]) * 1000 for i in gen.sent]
    finished = max(gen.done.values(), default=last_due)
    result: dict[str, Any] = {
        "offered_rate": args.rate,
        "requests": count,
        "ok": len(ok),
        "non_200": sum(1 for s in gen.status.values() if s not in (0, 200)),
        "errors": gen.errors,
        "unanswered": count - len(gen.done),
        "send_rate": count / max(1e-9, last_due - t0) if count > 1 else float(count),
        "answered_rate": len(ok) / max(1e-9, finished - t0),
        "duration_s": finished - t0,
        "latency_ms": summary(latency),
        "service_ms": summary(service),
        "send_lag_ms": summary(lag),
        "generator_cpu_share": cpu / max(1e-9, max(finished, last_due) - t0),
        "connections_opened": gen.connections_opened,
    }
    if args.times:
        send_wall = [wall0 + (gen.sent[i] - mono0) if i in gen.sent else None for i in range(count)]
        status = [gen.status.get(i, 0) for i in range(count)]
        Path(args.times).write_text(json.dumps({"send_wall": send_wall, "status": status}))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", required=True, help="a request set (bench.requests)")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds, not measured")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--drain", type=float, default=10.0, help="seconds to wait for answers")
    parser.add_argument("--times", default=None, help="write send times and statuses here")
    args = parser.parse_args()
    if not 0 < args.rate <= 50_000 or not 0 < args.duration <= 600:
        parser.error("rate must be within (0, 50000] and duration within (0, 600]")
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    print(json.dumps(runner(_run(args))))


if __name__ == "__main__":
    main()
