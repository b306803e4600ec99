"""Schema registration: what a real registry cannot be made to do, and the enum-symbol rule.

Registration, the wire format, 409s and compatibility levels are tested against a real registry
(a local Apicurio Registry) in ``tests/integration/test_registry_apicurio.py``. Here
:class:`FakeSchemaRegistry`, a few endpoints of the Confluent API over real HTTP, stands in for
the faults Apicurio cannot produce without an identity server: basic auth sent, and refused
(401). Plus an unreachable registry, and one that accepts connections but never answers.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from pydantic import SecretStr

from connector.avro.codec import load_schemas
from connector.registry import SchemaRegistrationError, register_schemas
from connector.settings import Settings


def _canonical(schema_text: str) -> str:
    return json.dumps(json.loads(schema_text), sort_keys=True, separators=(",", ":"))


class FakeSchemaRegistry:
    """A Confluent-compatible registry's few endpoints, served on a local port in a thread."""

    def __init__(self, user_info: str | None = None) -> None:
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}
        self.requests: list[tuple[str, str]] = []
        self.authorizations: list[str | None] = []
        self._user_info = user_info
        self._lock = threading.Lock()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                registry._handle(self, "GET")

            def do_POST(self) -> None:
                registry._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeSchemaRegistry:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def register(self, subject: str, schema_text: str) -> tuple[int, dict[str, Any]]:
        """What ``POST /subjects/{subject}/versions`` answers: status and body."""
        with self._lock:
            canonical = _canonical(schema_text)
            versions = self.subjects.setdefault(subject, [])
            for schema_id in versions:
                if _canonical(self.schemas[schema_id]) == canonical:
                    return 200, {"id": schema_id}
            if versions:
                return 409, {
                    "error_code": 409,
                    "message": "Schema being registered is incompatible with an earlier schema",
                }
            schema_id = next(
                (i for i, s in self.schemas.items() if _canonical(s) == canonical),
                len(self.schemas) + 1,
            )
            self.schemas[schema_id] = schema_text
            versions.append(schema_id)
            return 200, {"id": schema_id}

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(request.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        self.requests.append((method, url.path))
        authorization = request.headers.get("Authorization")
        self.authorizations.append(authorization)
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length) or b"null")
        if self._user_info is not None:
            expected = "Basic " + base64.b64encode(self._user_info.encode()).decode()
            if authorization != expected:
                return _reply(request, 401, {"error_code": 401, "message": "Unauthorized"})
        if method == "POST" and len(parts) == 3 and parts[0] == "subjects":
            return _reply(request, *self.register(parts[1], body["schema"]))
        if method == "GET" and len(parts) == 3 and parts[:2] == ["schemas", "ids"]:
            schema = self.schemas.get(int(parts[2]))
            if schema is None:
                return _reply(request, 404, {"error_code": 40403, "message": "Schema not found"})
            return _reply(request, 200, {"schema": schema})
        if method == "POST" and parts[:2] == ["compatibility", "subjects"]:
            versions = self.subjects.get(parts[2], [])
            latest = self.schemas[versions[-1]] if versions else None
            same = latest is None or _canonical(latest) == _canonical(body["schema"])
            return _reply(request, 200, {"is_compatible": same})
        if method == "GET" and parts == ["subjects"]:
            return _reply(request, 200, sorted(self.subjects))
        query = parse_qs(url.query)
        _reply(request, 404, {"error_code": 404, "message": f"not served: {parts} {query}"})


def _reply(request: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    request.wfile.write(data)


@pytest.fixture
def registry() -> Iterator[FakeSchemaRegistry]:
    fake = FakeSchemaRegistry(user_info="zoom:s3cret").start()
    yield fake
    fake.stop()


def test_basic_auth_is_sent_with_every_request(registry: FakeSchemaRegistry) -> None:
    settings = Settings(
        schema_registry_url=registry.url,
        schema_registry_basic_auth_user_info=SecretStr("zoom:s3cret"),
        topic_prefix="acme",
    )
    schemas = load_schemas()
    ids = register_schemas(settings, schemas)
    assert sorted(registry.subjects) == sorted(f"acme.{t}-value" for t in schemas)
    assert len(set(ids.values())) == len(ids)
    expected = "Basic " + base64.b64encode(b"zoom:s3cret").decode()
    assert registry.authorizations and set(registry.authorizations) == {expected}


def test_wrong_credentials_and_unreachable_registry_are_clear_errors(
    registry: FakeSchemaRegistry,
) -> None:
    settings = Settings(
        schema_registry_url=registry.url,
        schema_registry_basic_auth_user_info=SecretStr("zoom:wrong"),
    )
    with pytest.raises(SchemaRegistrationError, match="401"):
        register_schemas(settings, load_schemas())
    unreachable = Settings(schema_registry_url="http://127.0.0.1:9")
    with (
        SchemaRegistryClient({"url": "http://127.0.0.1:9", "max.retries": 0}) as client,
        pytest.raises(SchemaRegistrationError, match="cannot register"),
    ):
        register_schemas(unreachable, load_schemas(), client=client)


class SilentRegistry:
    """A port that accepts connections and never answers: a registry that has stopped serving."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            self.connections.append(connection)

    def close(self) -> None:
        self._listener.close()
        for connection in self.connections:
            connection.close()


def test_a_registry_that_stops_answering_fails_registration_in_bounded_time() -> None:
    registry = SilentRegistry()
    settings = Settings(schema_registry_url=registry.url, schema_registry_timeout_seconds=0.2)
    started = time.monotonic()
    try:
        with pytest.raises(SchemaRegistrationError, match=r"cannot register.*Timeout"):
            register_schemas(settings, load_schemas())
    finally:
        registry.close()
    # each request timed out after 0.2 s and was retried on a new connection, with backoff
    assert len(registry.connections) >= 2
    assert time.monotonic() - started < 30
