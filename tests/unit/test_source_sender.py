"""``zoom-connector send``: signs like Zoom, so the source accepts what it sends."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp.test_utils import TestServer

from connector.cli import build_parser
from connector.errors import ConfigurationError
from connector.settings import Settings
from connector.source import WEBHOOK_PATH
from connector.source.app import create_app
from connector.source.producer import MemoryProducer
from connector.source.sender import SendError, send_command, webhook_url
from connector.spec import UnknownEventTypeError, load_catalog
from connector.wire import SIGNATURE_HEADER, TIMESTAMP_HEADER

SECRET = "secretValueTest"


def _settings(secret: str = f"{SECRET},second") -> Settings:
    return Settings.model_validate({"zoom_webhook_secret_token": secret, "source_port": 18080})


@pytest.fixture
async def source() -> AsyncIterator[tuple[TestServer, MemoryProducer]]:
    producer = MemoryProducer()
    # The source only knows the first secret: send must sign with it.
    server = TestServer(create_app(_settings(SECRET), producer=producer))
    await server.start_server()
    yield server, producer
    await server.close()


async def _send(settings: Settings, **kwargs: Any) -> int:
    # send_command blocks (httpx); run it beside the loop that serves the source.
    return await asyncio.to_thread(send_command, settings, **kwargs)


async def test_send_file_is_stored_byte_for_byte(
    source: tuple[TestServer, MemoryProducer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, producer = source
    body = b'{"event": "meeting.started",\n "payload": {}}\n'
    path = tmp_path / "event.json"
    path.write_bytes(body)
    code = await _send(_settings(), file=str(path), example=None, url=str(server.make_url("/")))
    assert code == 0
    assert producer.records[0].value == body
    out = capsys.readouterr().out
    assert out.startswith("200 OK\n")
    assert '"status":"stored"' in out


async def test_send_example_uses_the_spec_example(
    source: tuple[TestServer, MemoryProducer],
) -> None:
    server, producer = source
    event_type = "quality_management.evaluation_completed"
    url = str(server.make_url(WEBHOOK_PATH))
    assert await _send(_settings(), file=None, example=event_type, url=url) == 0
    value = producer.records[0].value
    assert value == load_catalog().example_bytes(event_type)
    assert orjson.loads(value)["event"] == event_type


async def test_send_stdin(
    source: tuple[TestServer, MemoryProducer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, producer = source
    body = b'{"event":"from.stdin"}'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body)))
    assert await _send(_settings(), file="-", example=None, url=str(server.make_url(""))) == 0
    assert producer.records[0].value == body


async def test_send_exits_1_when_the_source_refuses(
    source: tuple[TestServer, MemoryProducer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, producer = source
    path = tmp_path / "array.json"
    path.write_bytes(b"[]")
    url = str(server.make_url("/"))
    assert await _send(_settings(), file=str(path), example=None, url=url) == 1
    assert capsys.readouterr().out.startswith("400 Bad Request\n")
    # Signed with a secret the source does not know: 401.
    assert await _send(_settings("other"), file=str(path), example=None, url=url) == 1
    assert capsys.readouterr().out.startswith("401 Unauthorized\n")
    assert producer.records == []


def test_send_without_a_secret_says_so() -> None:
    with pytest.raises(ConfigurationError, match="ZOOM_WEBHOOK_SECRET_TOKEN"):
        send_command(_settings(""), file=None, example="x", url=None)


def test_send_unknown_example_names_the_known_ones() -> None:
    with pytest.raises(UnknownEventTypeError, match=r"quality_management\.evaluation_completed"):
        send_command(_settings(), file=None, example="no.such_event", url=None)


def test_send_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SendError, match="cannot read"):
        send_command(_settings(), file=str(tmp_path / "missing.json"), example=None, url=None)


def test_send_unreachable_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "e.json"
    path.write_bytes(b"{}")
    seen: dict[str, Any] = {}

    def refuse(url: str, **kwargs: Any) -> httpx.Response:
        seen.update(kwargs, url=url)
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(httpx, "post", refuse)
    with pytest.raises(SendError, match="cannot POST to http://localhost:18080/zoom/webhooks"):
        send_command(_settings(), file=str(path), example=None, url=None)
    assert seen["content"] == b"{}"
    assert seen["headers"][TIMESTAMP_HEADER].isdigit()
    assert seen["headers"][SIGNATURE_HEADER].startswith("v0=")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (None, "http://localhost:18080/zoom/webhooks"),
        ("http://source:9000", "http://source:9000/zoom/webhooks"),
        ("http://source:9000/", "http://source:9000/zoom/webhooks"),
        ("https://example.com/hooks/zoom", "https://example.com/hooks/zoom"),
    ],
)
def test_webhook_url(url: str | None, expected: str) -> None:
    assert webhook_url(_settings(), url) == expected


async def test_send_prints_the_answer_without_httpx_logging_the_request(
    source: tuple[TestServer, MemoryProducer],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, _ = source
    caplog.set_level(logging.INFO)
    url = str(server.make_url("/"))
    event = "quality_management.evaluation_completed"
    assert await _send(_settings(), file=None, example=event, url=url) == 0
    assert capsys.readouterr().out.startswith("200 OK\n")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("httpx")] == []


def test_send_help_lists_the_example_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["send", "--help"])
    assert exit_.value.code == 0
    shown = capsys.readouterr().out.split("examples (--example EVENT)", 1)[1].split()
    assert shown[-len(load_catalog().event_types) :] == load_catalog().event_types
