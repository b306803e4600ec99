"""Unit tests never read the process environment by accident.

:class:`~connector.settings.Settings` reads the environment, and so does the local broker's
configuration (``ZOOM_CONNECTOR_KAFKA_*``). A developer who points the integration tests at a
broker (``KAFKA_BOOTSTRAP_SERVERS=localhost:9092 make test``), or has a cluster configured in their
shell, must get the same unit-test results as CI. So every variable the connector reads is removed
before each unit test: ``Settings()`` is then exactly the defaults, and a test that wants a value
passes it (``Settings(topic_prefix=...)``) or sets the variable itself (``monkeypatch.setenv``).
"""

from __future__ import annotations

import os
from typing import Final

import pytest

from connector.settings import Settings

_LOCAL_BROKER_PREFIX: Final = "ZOOM_CONNECTOR_"


def connector_variables(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """The names in ``environ`` the connector would read (case-insensitively, as Settings does)."""
    fields = {name.upper() for name in Settings.model_fields}
    return [
        name
        for name in environ
        if name.upper() in fields or name.upper().startswith(_LOCAL_BROKER_PREFIX)
    ]


@pytest.fixture(autouse=True)
def _no_ambient_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in connector_variables(os.environ):
        monkeypatch.delenv(name)
