"""Minimal equivalent webhook receivers on each candidate HTTP stack, for ``run.py``.

Each reads the body of ``POST /zoom/webhooks``, verifies Zoom's signature with the connector's own
:func:`connector.source.signature.verify`, and answers 200 with a small JSON body; no Kafka.
``GET /healthz`` answers 200 so the runner knows the server is up.

    python bench/http_stack/servers.py STACK --port PORT

STACK is one of:

* ``aiohttp``: aiohttp's server on the default asyncio loop.
* ``aiohttp-uvloop``: the same on uvloop.
* ``uvicorn``: a bare ASGI callable on uvicorn (httptools parser, uvloop).
* ``granian``: the same ASGI callable on granian (Rust HTTP server, one worker).
* ``source-app``: the connector's real app (``create_app``) with an in-memory producer: the
  stack's cost plus the source's own work (body limit, parsing, key, metrics).
* ``source-kafka``: the real app writing to Kafka (``KAFKA_BOOTSTRAP_SERVERS``, default
  ``localhost:9092``; topic prefix ``BENCH_TOPIC_PREFIX``); not in the default set.

The secret is the bench's own (``BENCH_SECRET``), never a real one.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from connector.source.signature import SignatureError, verify
from connector.wire import SIGNATURE_HEADER, TIMESTAMP_HEADER

BENCH_SECRET = "bench-secret-not-a-real-one"
PATH = "/zoom/webhooks"
OK = b'{"status":"ok"}'
WINDOW_SECONDS = 3600.0

_SECRETS = [BENCH_SECRET.encode()]


def _check(signature: str | None, timestamp: str | None, body: bytes) -> bool:
    try:
        verify(
            signature=signature,
            timestamp=timestamp,
            body=body,
            secrets=_SECRETS,
            now=time.time(),
            window_seconds=WINDOW_SECONDS,
        )
    except SignatureError:
        return False
    return True


# --- aiohttp ----------------------------------------------------------------------------------


def run_aiohttp(port: int, *, use_uvloop: bool) -> None:
    from aiohttp import web

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        ok = _check(
            request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER), body
        )
        if not ok:
            return web.Response(status=401)
        return web.Response(body=OK, content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(PATH, webhook)
    app.router.add_get("/healthz", healthz)
    loop = None
    if use_uvloop:
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=loop)


def run_source_app(port: int, *, kafka: bool = False) -> None:
    from aiohttp import web

    from connector.settings import Settings
    from connector.source.app import create_app
    from connector.source.producer import DurableProducer, MemoryProducer

    class DiscardingProducer(MemoryProducer):
        """Keeps no records, so memory stays flat however long the run."""

        async def send(self, topic: str, key: bytes, value: bytes, headers: Any) -> Any:
            report = await super().send(topic, key, value, headers)
            self.records.clear()
            return report

    settings = Settings.model_validate(
        {
            "zoom_webhook_secret_token": BENCH_SECRET,
            "source_replay_window_seconds": int(WINDOW_SECONDS),
            "source_max_in_flight": 100_000,
            "kafka_bootstrap_servers": os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
            "topic_prefix": os.environ.get("BENCH_TOPIC_PREFIX", "bench"),
        }
    )
    producer: DurableProducer | None = None if kafka else DiscardingProducer()
    app = create_app(settings, producer=producer)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- ASGI (uvicorn, granian) ------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_JSON_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(OK))]


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The same receiver as a bare ASGI callable."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["method"] == "GET" and scope["path"] == "/healthz":
        await _answer(send, 200, b"ok", [(b"content-type", b"text/plain")])
        return
    if scope["method"] != "POST" or scope["path"] != PATH:
        await _answer(send, 404, b"", [])
        return
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    ok = _check(headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER), b"".join(chunks))
    if ok:
        await _answer(send, 200, OK, _JSON_HEADERS)
    else:
        await _answer(send, 401, b"", [])


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def run_uvicorn(port: int) -> None:
    import uvicorn

    uvicorn.run(
        asgi_app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


def run_granian(port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    Granian(
        "servers:asgi_app",
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        log_level=LogLevels.warning,
        working_dir=Path(__file__).resolve().parent,
    ).serve()


STACKS: dict[str, Callable[[int], None]] = {
    "aiohttp": lambda port: run_aiohttp(port, use_uvloop=False),
    "aiohttp-uvloop": lambda port: run_aiohttp(port, use_uvloop=True),
    "uvicorn": run_uvicorn,
    "granian": run_granian,
    "source-app": run_source_app,
    "source-kafka": lambda port: run_source_app(port, kafka=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", choices=sorted(STACKS))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    STACKS[args.stack](args.port)


if __name__ == "__main__":
    main()
