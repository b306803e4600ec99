"""Schema registration and the Confluent wire format, against confluent-kafka's own client.

No Confluent-compatible registry can run here (no Docker; Confluent's registry is not on Maven
Central, Karapace is not on PyPI, Apicurio on Maven Central is a Quarkus app without a runnable
jar, Debian packages none), so :class:`FakeSchemaRegistry` serves the few endpoints used, over real
HTTP: ``POST /subjects/{subject}/versions``, ``GET /schemas/ids/{id}``,
``POST /compatibility/subjects/{subject}/versions/latest`` and ``GET /subjects``. Like a real
registry it gives one id per distinct schema and answers 409 to an incompatible one; unlike a real
one it calls every change to a subject incompatible (a real registry applies the subject's
compatibility level; the worker only needs to report the 409). Records are then read with
confluent-kafka's ``AvroDeserializer``, i.e. as a downstream consumer would.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import fastavro
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from pydantic import SecretStr

from connector.avro.codec import EventCodec, load_schemas
from connector.avro.framing import ConfluentFraming
from connector.registry import IncompatibleSchemaError, SchemaRegistrationError, register_schemas
from connector.settings import Settings
from connector.spec import load_catalog

CATALOG = load_catalog()
EVALUATION = "quality_management.evaluation_completed"


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


def _settings(registry: FakeSchemaRegistry, **values: Any) -> Settings:
    return Settings(
        schema_registry_url=registry.url,
        schema_registry_basic_auth_user_info=SecretStr("zoom:s3cret"),
        **values,
    )


def test_every_schema_is_registered_under_its_topic_value_subject(
    registry: FakeSchemaRegistry,
) -> None:
    schemas = load_schemas()
    ids = register_schemas(_settings(registry), schemas)
    assert set(ids) == set(schemas) == set(CATALOG.event_types)
    assert len(set(ids.values())) == len(ids)
    assert sorted(registry.subjects) == sorted(f"zoom.{t}-value" for t in schemas)
    assert json.loads(registry.schemas[ids[EVALUATION]]) == schemas[EVALUATION]
    expected = "Basic " + base64.b64encode(b"zoom:s3cret").decode()
    assert registry.authorizations and set(registry.authorizations) == {expected}
    # start-up again: the same ids, nothing new registered
    assert register_schemas(_settings(registry), schemas) == ids
    assert len(registry.schemas) == len(schemas)


def test_prefix_names_the_subjects(registry: FakeSchemaRegistry) -> None:
    register_schemas(
        _settings(registry, topic_prefix="acme"), {EVALUATION: load_schemas()[EVALUATION]}
    )
    assert list(registry.subjects) == [f"acme.{EVALUATION}-value"]


def test_an_incompatible_schema_fails_fast_naming_the_subject(
    registry: FakeSchemaRegistry,
) -> None:
    schemas = load_schemas()
    changed = json.loads(json.dumps(schemas[EVALUATION]))
    changed["fields"] = changed["fields"][:-1]
    registry.register(f"zoom.{EVALUATION}-value", json.dumps(changed))
    with pytest.raises(IncompatibleSchemaError) as info:
        register_schemas(_settings(registry), schemas)
    assert info.value.subject == f"zoom.{EVALUATION}-value"
    assert "incompatible" in str(info.value) and "HTTP status code 409" in str(info.value)


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
    client = SchemaRegistryClient({"url": unreachable.schema_registry_url, "max.retries": 0})
    with pytest.raises(SchemaRegistrationError, match="cannot register"):
        register_schemas(unreachable, load_schemas(), client=client)


@pytest.mark.parametrize("event_type", CATALOG.event_types)
def test_confluent_avro_deserializer_reads_our_records(
    registry: FakeSchemaRegistry, event_type: str
) -> None:
    schemas = load_schemas()
    ids = register_schemas(_settings(registry), schemas)
    codec = EventCodec(schemas, framing=ConfluentFraming(ids))
    _, data = codec.encode(CATALOG.example_bytes(event_type))

    client = SchemaRegistryClient({"url": registry.url, "basic.auth.user.info": "zoom:s3cret"})
    deserializer = AvroDeserializer(client)
    topic = f"zoom.{event_type}"
    datum = deserializer(data, SerializationContext(topic, MessageField.VALUE))
    assert isinstance(datum, dict)
    assert datum["event"] == event_type
    # the same values as the committed .avsc read with fastavro (timestamps as datetimes)
    expected = fastavro.schemaless_reader(
        __import__("io").BytesIO(data[5:]), fastavro.parse_schema(schemas[event_type]), None
    )
    assert datum == expected


def test_the_worker_refuses_to_start_on_an_incompatible_schema(
    registry: FakeSchemaRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from connector.cli import main

    changed = json.loads(json.dumps(load_schemas()[EVALUATION]))
    changed["fields"] = changed["fields"][:-1]
    registry.register(f"zoom.{EVALUATION}-value", json.dumps(changed))
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", registry.url)
    monkeypatch.setenv("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "zoom:s3cret")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # never reached
    assert main(["worker"]) == 2
    error = capsys.readouterr().err
    assert f"zoom.{EVALUATION}-value" in error and "incompatible" in error
