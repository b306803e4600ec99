"""The unit tests give the same results whatever the developer's shell has configured."""

from __future__ import annotations

import os
import subprocess
import sys

from connector.paths import REPO_DIR
from connector.settings import Settings
from tests.unit.conftest import connector_variables

# A shell pointed at another cluster, with a secured connection and other names.
AMBIENT = {
    "KAFKA_BOOTSTRAP_SERVERS": "localhost:29092",
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "TOPIC_PREFIX": "elsewhere",
    "ZOOM_WEBHOOK_SECRET_TOKEN": "from-the-shell",
    "SCHEMA_REGISTRY_URL": "http://localhost:1",
    "worker_web_port": "7777",
    "ZOOM_CONNECTOR_KAFKA_PORT": "1234",
}


def test_settings_are_the_defaults_here() -> None:
    assert connector_variables(os.environ) == []
    assert Settings() == Settings.model_construct()


def test_every_connector_variable_is_recognised() -> None:
    environ = {**AMBIENT, "PATH": "/bin", "HOME": "/root"}
    assert sorted(connector_variables(environ)) == sorted(AMBIENT)


def test_tests_that_once_read_the_shell_pass_with_a_configured_shell() -> None:
    tests = [
        "tests/unit/test_worker_app.py::test_plaintext_has_no_credentials",
        "tests/unit/test_worker_app.py::test_app_is_configured_from_settings",
        "tests/unit/test_aggregates_record.py::test_without_a_registry_the_framing_is_single_object",
        "tests/unit/test_validate_command.py::test_stdin_and_event_override",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=REPO_DIR,
        env={**os.environ, **AMBIENT},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"{len(tests)} passed" in result.stdout
