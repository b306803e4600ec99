"""docker-compose.yml and the Dockerfile, checked against the code (no Docker engine needed).

Both are also built and run by tests/containers (a Docker engine and local images); these tests
keep them in step with what the connector reads and serves, anywhere and in a second.
``zoom-connector healthcheck``, the image's health check, is tested here too, against local HTTP
servers.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.cli import build_parser, main
from connector.healthcheck import healthcheck_command, role_of_main_process
from connector.settings import Settings
from connector.topics import TopicNames

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
CONNECTOR_SERVICES = ("topics", "source", "worker")
SETTINGS_FIELDS = {name.upper() for name in Settings.model_fields}
# Variables of the third-party images, as their documentation names them.
IMAGE_VARIABLE = {
    "kafka": re.compile(r"^(KAFKA_[A-Z0-9_]+|CLUSTER_ID)$"),
    "schema-registry": re.compile(r"^(APICURIO|QUARKUS)_[A-Z0-9_]+$"),
}
SECRET = "compose-test-secret"


# --- docker-compose.yml ------------------------------------------------------------------------


def _interpolate(value: Any) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` with a test environment."""
    environment = {"ZOOM_WEBHOOK_SECRET_TOKEN": SECRET}

    def substitute(match: re.Match[str]) -> str:
        name, operator, word = match.group(1), match.group(2) or "", match.group(3) or ""
        if name in environment:
            return environment[name]
        if operator == ":-":
            return word
        raise AssertionError(f"{name} is required by docker-compose.yml: {word}")

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", substitute, str(value))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "NAME=value" form
        env = dict(item.split("=", 1) for item in env)
    return {name: _interpolate(value) for name, value in env.items()}


def _ports(service: dict[str, Any]) -> list[tuple[str, int]]:
    """``(host part, container port)`` of each published port."""
    published = []
    for entry in service.get("ports", []):
        host, _, container = str(entry).rpartition(":")
        published.append((host, int(container.split("/")[0])))
    return published


def test_the_services(services: dict[str, Any]) -> None:
    assert set(services) == {"kafka", "schema-registry", *CONNECTOR_SERVICES}
    for name in CONNECTOR_SERVICES:
        assert services[name]["build"] == ".", name
    assert services["topics"]["command"] == ["topics", "create"]
    assert services["topics"]["restart"] == "no"
    assert services["source"]["command"] == ["source"]
    assert services["worker"]["command"] == ["worker"]
    for name, command in (("source", "source"), ("worker", "worker"), ("topics", "topics")):
        assert build_parser().parse_args(services[name]["command"]).command == command


def test_every_connector_variable_is_a_setting(services: dict[str, Any]) -> None:
    for name in CONNECTOR_SERVICES:
        unknown = set(_environment(services[name])) - SETTINGS_FIELDS
        assert not unknown, f"{name} sets variables the connector does not read: {unknown}"


def test_third_party_variables_are_their_images_own(services: dict[str, Any]) -> None:
    for name, pattern in IMAGE_VARIABLE.items():
        for variable in _environment(services[name]):
            assert pattern.match(variable), f"{name}: {variable}"


@pytest.mark.parametrize("name", CONNECTOR_SERVICES)
def test_the_environment_makes_valid_settings(
    name: str, services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in SETTINGS_FIELDS:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in _environment(services[name]).items():
        monkeypatch.setenv(variable, value)
    settings = Settings()
    assert settings.kafka_client_config()["bootstrap.servers"] == "kafka:9092"
    assert settings.secret_tokens() == [SECRET.encode()]
    assert settings.topic_prefix == "zoom"


def test_the_secret_token_is_required(services: dict[str, Any]) -> None:
    raw = services["source"]["environment"]["ZOOM_WEBHOOK_SECRET_TOKEN"]
    assert raw.startswith("${ZOOM_WEBHOOK_SECRET_TOKEN:?"), (
        "compose must refuse to start without it"
    )


def test_ports_match_the_settings(services: dict[str, Any]) -> None:
    source = Settings.model_validate(
        {k.lower(): v for k, v in _environment(services["source"]).items()}
    )
    assert (str(source.source_port), source.source_port) in _ports(services["source"])
    assert source.source_host == "0.0.0.0"
    worker = Settings.model_validate(
        {k.lower(): v for k, v in _environment(services["worker"]).items()}
    )
    worker_ports = _ports(services["worker"])
    assert [container for _, container in worker_ports] == [worker.worker_web_port]
    host = worker_ports[0][0]
    assert host.split("-")[0] == str(worker.worker_web_port), "a range of host ports, for --scale"


def _advertised(services: dict[str, Any]) -> dict[str, str]:
    """Listener name -> advertised host:port of the kafka service."""
    text = _environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    return dict(item.split("://", 1) for item in text.split(","))


def test_the_connector_reaches_kafka_and_the_registry(services: dict[str, Any]) -> None:
    kafka = _environment(services["kafka"])
    advertised = _advertised(services)
    protocols = dict(
        item.split(":") for item in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    for name in CONNECTOR_SERVICES:
        env = _environment(services[name])
        bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
        listener = next(n for n, address in advertised.items() if address == bootstrap)
        assert protocols[listener] == env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
        assert bootstrap.split(":")[0] == "kafka"
        # Apicurio serves HTTP on 8080, Confluent's API under /apis/ccompat/v7
        assert env["SCHEMA_REGISTRY_URL"] == "http://schema-registry:8080/apis/ccompat/v7"
    # the host's clients get a listener of their own, published on the same port
    host_listener = advertised["HOST"]
    assert host_listener.startswith("localhost:")
    assert ("", int(host_listener.split(":")[1])) in [
        ("" if h == str(c) else h, c) for h, c in _ports(services["kafka"])
    ]
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    registry_store = _environment(services["schema-registry"])
    assert registry_store["APICURIO_STORAGE_KIND"] == "kafkasql"
    assert registry_store["APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert registry_store["APICURIO_RULES_GLOBAL_COMPATIBILITY"] == "BACKWARD"


def test_start_order(services: dict[str, Any]) -> None:
    def depends(name: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in services[name]["depends_on"].items()}

    assert depends("topics") == {"kafka": "service_healthy"}
    assert depends("schema-registry") == {"kafka": "service_healthy"}
    assert depends("source") == {"topics": "service_completed_successfully"}
    assert depends("worker") == {
        "topics": "service_completed_successfully",
        "schema-registry": "service_healthy",
    }
    for name in ("kafka", "schema-registry"):
        assert services[name]["healthcheck"]["test"][0] == "CMD-SHELL"


def test_topic_settings_are_the_code_defaults_or_deliberate(services: dict[str, Any]) -> None:
    env = _environment(services["worker"])
    assert int(env["TOPIC_REPLICATION_FACTOR"]) == 1  # one broker
    assert TopicNames(env["TOPIC_PREFIX"]).raw == "zoom.webhooks.raw"


# --- the Dockerfile ----------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    start = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[start:]


def test_the_image_runs_zoom_connector_as_a_non_root_user() -> None:
    final = dict(_final_stage())
    user, _, group = final["USER"].partition(":")
    assert user not in ("root", "0") and group not in ("root", "0")
    runs = " ".join(args for name, args in _final_stage() if name == "RUN")
    assert f"useradd --uid {user}" in runs  # numeric, so runAsNonRoot can verify it
    assert final["ENTRYPOINT"] == '["zoom-connector"]'
    assert final["CMD"] == '["source"]'
    exposed = {int(port) for port in final["EXPOSE"].split()}
    defaults = Settings.model_construct()
    assert exposed == {defaults.source_port, defaults.worker_web_port}


def test_the_health_check_is_the_healthcheck_command() -> None:
    healthcheck = dict(_final_stage())["HEALTHCHECK"]
    options, _, command = healthcheck.partition("CMD ")
    assert command.strip() == '["zoom-connector", "healthcheck"]'
    assert "--interval=" in options and "--timeout=" in options
    assert build_parser().parse_args(["healthcheck"]).role is None


def test_every_copied_file_exists_and_the_wheel_gets_its_data() -> None:
    copied = []
    for name, args in _instructions():
        if name != "COPY" or args.startswith("--from="):
            continue
        *sources, _destination = shlex.split(args)
        copied.extend(sources)
    for source in copied:
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
    pyproject = (REPO / "pyproject.toml").read_text()
    force_included = re.findall(r'^"([^"]+)" = "connector/_data/', pyproject, re.MULTILINE)
    assert force_included, "pyproject.toml packages specs/ and schemas/avro/ into the wheel"
    for path in force_included:
        assert any(path == c or path.startswith(c.rstrip("/") + "/") for c in copied), path
    assert "README.md" in copied  # the package metadata's readme


def test_the_build_context_keeps_what_the_image_copies_and_leaves_out_the_rest() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        source
        for name, args in _instructions()
        if name == "COPY" and not args.startswith("--from=")
        for source in shlex.split(args)[:-1]
    ]
    for source in copied:
        for pattern in patterns:
            assert not fnmatch.fnmatch(source, pattern.rstrip("/")), f"{pattern} excludes {source}"
    for heavy in (".git", ".venv", "tests", "bench/results"):
        assert heavy in patterns, f"{heavy} would be sent to the Docker daemon"


# --- zoom-connector healthcheck ----------------------------------------------------------------


class _Endpoint:
    """A local HTTP server answering ``path`` with ``status`` (404 elsewhere)."""

    def __init__(self, path: str, status: int = 200) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(status if self.path == path else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoints() -> Iterator[list[_Endpoint]]:
    started: list[_Endpoint] = []
    yield started
    for endpoint in started:
        endpoint.close()


def _closed_port() -> int:
    endpoint = _Endpoint("/")
    endpoint.close()
    return endpoint.port


def _cmdline(tmp_path: Path, *args: str) -> Path:
    path = tmp_path / "cmdline"
    path.write_bytes(b"\0".join(a.encode() for a in args) + b"\0")
    return path


def test_the_role_is_the_main_process_subcommand(tmp_path: Path) -> None:
    python, script = "/usr/local/bin/python3.11", "/usr/local/bin/zoom-connector"
    assert role_of_main_process(_cmdline(tmp_path, python, script, "worker")) == "worker"
    assert role_of_main_process(_cmdline(tmp_path, python, script, "source")) == "source"
    assert role_of_main_process(_cmdline(tmp_path, python, script, "topics", "create")) is None
    assert role_of_main_process(tmp_path / "missing") is None


def test_health_by_role(tmp_path: Path, endpoints: list[_Endpoint]) -> None:
    source = _Endpoint("/healthz")
    worker = _Endpoint("/healthz")
    endpoints.extend([source, worker])
    closed = _closed_port()
    settings = Settings(source_port=source.port, worker_web_port=worker.port)
    nothing = tmp_path / "no-cmdline"
    for role in ("source", "worker", "run", None):
        assert healthcheck_command(settings, role, cmdline=nothing) == 0, role
    only_source = Settings(source_port=source.port, worker_web_port=closed)
    assert healthcheck_command(only_source, "source", cmdline=nothing) == 0
    assert healthcheck_command(only_source, "worker", cmdline=nothing) == 1
    assert healthcheck_command(only_source, "run", cmdline=nothing) == 1
    assert healthcheck_command(only_source, None, cmdline=nothing) == 0  # either is enough
    # a worker container: the role comes from its main process
    worker_container = _cmdline(tmp_path, "python", "zoom-connector", "worker")
    assert healthcheck_command(only_source, cmdline=worker_container) == 1
    none = Settings(source_port=closed, worker_web_port=closed)
    assert healthcheck_command(none, None, cmdline=nothing) == 1


def test_an_error_status_is_unhealthy(
    endpoints: list[_Endpoint], capsys: pytest.CaptureFixture[str]
) -> None:
    failing = _Endpoint("/healthz", status=500)
    endpoints.append(failing)
    settings = Settings(source_port=failing.port)
    assert healthcheck_command(settings, "source") == 1
    assert f"http://127.0.0.1:{failing.port}/healthz: HTTP 500" in capsys.readouterr().out


def test_the_cli_runs_it(endpoints: list[_Endpoint], monkeypatch: pytest.MonkeyPatch) -> None:
    worker = _Endpoint("/healthz")
    endpoints.append(worker)
    monkeypatch.setenv("WORKER_WEB_PORT", str(worker.port))
    assert main(["healthcheck", "worker"]) == 0
