"""The local Apicurio Registry launcher itself: a taken port, a JVM that exits, a bad home."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest

from connector.errors import ConnectorError
from connector.kafka.local_broker.java import find_java_at_least
from connector.registry.local_apicurio import (
    MIN_JAVA_MAJOR,
    LocalApicurio,
    RegistryStartError,
    resolve_registry_app,
)
from tests import kafka_helpers

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def ready() -> None:
    """Java 21+ and the app, or skip (fail under CI)."""
    try:
        find_java_at_least(MIN_JAVA_MAJOR, "Apicurio Registry")
        resolve_registry_app()
    except ConnectorError as exc:
        if kafka_helpers.in_ci():
            pytest.fail(f"Apicurio Registry cannot run: {exc}", pytrace=False)
        pytest.skip(f"Apicurio Registry cannot run: {exc}")


def test_a_port_taken_after_it_was_chosen_gets_new_ports(ready: None, tmp_path: Path) -> None:
    registry = LocalApicurio(tmp_path, compatibility=None)
    taken = registry.http_port
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", taken))
        blocker.listen()
        with registry:
            assert registry.http_port != taken
            with urllib.request.urlopen(f"{registry.url}/config", timeout=10) as answer:
                # no global rule: Apicurio's own default, which the Confluent API calls NONE
                assert json.load(answer) == {"compatibilityLevel": "NONE"}
    assert not registry.is_running()


def test_a_jvm_that_exits_at_start_is_an_error_with_its_log(ready: None, tmp_path: Path) -> None:
    home = tmp_path / "app"
    home.mkdir()
    (home / "quarkus-run.jar").write_bytes(b"not a jar")
    registry = LocalApicurio(tmp_path / "work", environ={"APICURIO_REGISTRY_HOME": str(home)})
    with pytest.raises(RegistryStartError, match="exited with 1 during start-up") as caught:
        registry.start(timeout=60)
    assert "quarkus-run.jar" in str(caught.value)  # the JVM's own complaint, from the log
    assert not registry.is_running()


def test_a_home_without_the_app_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(RegistryStartError, match=r"holds no quarkus-run\.jar"):
        resolve_registry_app(environ={"APICURIO_REGISTRY_HOME": str(tmp_path)})
