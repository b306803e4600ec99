"""``zoom-connector run`` checks the whole configuration before it starts or creates anything."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from pydantic import SecretStr

from connector import runner
from connector.errors import ConfigurationError
from connector.preflight import check_configuration, configuration_problems
from connector.settings import Settings


def _refuse_side_effects(monkeypatch: pytest.MonkeyPatch) -> None:
    def start_broker() -> str:
        raise AssertionError("the local broker was started before the configuration was checked")

    monkeypatch.setattr(runner, "_start_local_broker", start_broker)


def test_run_without_a_secret_token_starts_no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    _refuse_side_effects(monkeypatch)
    with pytest.raises(ConfigurationError, match="ZOOM_WEBHOOK_SECRET_TOKEN is not set"):
        runner.run_all(Settings())


def test_every_problem_is_named_at_once() -> None:
    settings = Settings(
        kafka_sasl_username="user",
        worker_store="redis://",
        schema_registry_url="https://registry",
        schema_registry_ssl_key_location="/key.pem",
    )
    problems = configuration_problems(settings, ["source", "worker"])
    assert [p.split(" ", 1)[0] for p in problems] == [
        "KAFKA_SASL_USERNAME",
        "ZOOM_WEBHOOK_SECRET_TOKEN",
        "SCHEMA_REGISTRY_SSL_KEY_LOCATION",
        "WORKER_STORE=redis://:",
    ]
    with pytest.raises(ConfigurationError, match=r"^4 configuration problems:\n  KAFKA_SASL"):
        check_configuration(settings)


@pytest.mark.parametrize(
    ("values", "components"),
    [
        ({"zoom_webhook_secret_token": [SecretStr("s")]}, ["source", "worker"]),
        ({}, ["worker"]),
        ({"kafka_bootstrap_servers": "broker:9092"}, []),
    ],
)
def test_a_sound_configuration_passes(values: dict[str, object], components: list[str]) -> None:
    assert configuration_problems(Settings(**values), components) == []  # type: ignore[arg-type]


def test_the_bootstrap_servers_must_name_a_server() -> None:
    problems = configuration_problems(Settings(kafka_bootstrap_servers=" , "), [])
    assert problems == ["KAFKA_BOOTSTRAP_SERVERS names no server"]


def test_the_command_refuses_at_once_and_says_why() -> None:
    # An unreachable cluster: before the check, `run` spent 30 s failing to create topics there.
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "localhost:1"}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "connector", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 10
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "zoom-connector: ZOOM_WEBHOOK_SECRET_TOKEN is not set: the source cannot verify Zoom's"
        " signatures (set it to your Zoom app's Secret Token)"
    ]
