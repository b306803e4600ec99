"""Pre-signed requests, written once by the bench and read by each load generator.

A request set is a JSON-lines file, one webhook per line: ``body`` (the exact bytes), ``ts`` and
``sig`` (Zoom's ``x-zm-request-timestamp`` and ``x-zm-signature`` computed with the bench's secret
when the set was written), ``key`` (the raw topic's key) and ``typed_key`` (the key of its typed
record, empty when it has none). The load generators build their HTTP requests or Kafka
records from it before their clock starts, so signing costs them nothing while they measure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.http_stack.servers import BENCH_SECRET, PATH
from bench.workload import Event
from connector.source.signature import signed_headers
from connector.wire import SIGNATURE_HEADER, TIMESTAMP_HEADER


@dataclass(frozen=True)
class SignedRequest:
    body: bytes
    ts: str
    sig: str
    key: bytes
    typed_key: bytes

    def http(self) -> bytes:
        """The whole HTTP/1.1 request (keep-alive)."""
        head = (
            f"POST {PATH} HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(self.body)}\r\n"
            f"{TIMESTAMP_HEADER}: {self.ts}\r\n"
            f"{SIGNATURE_HEADER}: {self.sig}\r\n"
            "\r\n"
        )
        return head.encode("ascii") + self.body


def sign(events: Iterable[Event], now: float) -> list[SignedRequest]:
    secret = BENCH_SECRET.encode()
    signed = []
    for event in events:
        headers = signed_headers(secret, event.body, now)
        signed.append(
            SignedRequest(
                event.body,
                headers[TIMESTAMP_HEADER],
                headers[SIGNATURE_HEADER],
                event.raw_key,
                event.typed_key or b"",
            )
        )
    return signed


def write(path: Path, requests: Iterable[SignedRequest]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as file:
        for r in requests:
            line = {
                "body": r.body.decode("utf-8"),
                "ts": r.ts,
                "sig": r.sig,
                "key": r.key.decode("utf-8"),
                "typed_key": r.typed_key.decode("utf-8"),
            }
            file.write(json.dumps(line, separators=(",", ":")) + "\n")
            count += 1
    return count


def read(path: Path) -> list[SignedRequest]:
    requests = []
    with path.open(encoding="utf-8") as file:
        for line in file:
            item = json.loads(line)
            requests.append(
                SignedRequest(
                    item["body"].encode("utf-8"),
                    item["ts"],
                    item["sig"],
                    item["key"].encode("utf-8"),
                    item["typed_key"].encode("utf-8"),
                )
            )
    return requests


def write_wrk_lines(path: Path, requests: Iterable[SignedRequest]) -> None:
    """The same requests for wrk's Lua script: ``ts<TAB>sig<TAB>body`` per line."""
    with path.open("w", encoding="utf-8") as file:
        for r in requests:
            file.write(f"{r.ts}\t{r.sig}\t{r.body.decode('utf-8')}\n")
