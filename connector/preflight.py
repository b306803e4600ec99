"""The whole configuration checked before anything is started, created or written.

``zoom-connector run`` starts a broker and creates topics before it starts the source and the
worker; a mistake only those would notice (no ``ZOOM_WEBHOOK_SECRET_TOKEN``, a SASL setting
without its protocol) must stop it before the first side effect. :func:`check_configuration`
collects every problem of the settings the given components need and raises one
:class:`~connector.errors.ConfigurationError` listing them all, so a user fixes them in one go.
It reads no network and no broker: reachability is checked by each command when it connects.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from typing import Final

from connector.errors import ConfigurationError
from connector.settings import Settings

COMPONENTS: Final = ("source", "worker")
_STORES: Final = ("memory://", "rocksdb://")


def _secret_token(settings: Settings) -> None:
    if not settings.secret_tokens():
        raise ConfigurationError(
            "ZOOM_WEBHOOK_SECRET_TOKEN is not set: the source cannot verify Zoom's signatures"
            " (set it to your Zoom app's Secret Token)"
        )


def _bootstrap(settings: Settings) -> None:
    value = settings.kafka_bootstrap_servers
    if value is not None and not [s for s in value.split(",") if s.strip()]:
        raise ConfigurationError("KAFKA_BOOTSTRAP_SERVERS names no server")


def _registry(settings: Settings) -> None:
    if settings.schema_registry_url:
        from connector.registry import registry_client_config

        registry_client_config(settings)


def _store(settings: Settings) -> None:
    store = settings.worker_store
    if not store.startswith(_STORES):
        raise ConfigurationError(f"WORKER_STORE={store}: use one of {', '.join(_STORES)}")
    if store.startswith("rocksdb://") and importlib.util.find_spec("rocksdict") is None:
        raise ConfigurationError(
            "WORKER_STORE=rocksdb:// needs the rocksdict package (pip install rocksdict)"
        )


Check = Callable[[Settings], None]
_CHECKS: Final[dict[str, tuple[Check, ...]]] = {
    "kafka": (_bootstrap, Settings.check_kafka_security),
    "source": (_secret_token,),
    "worker": (_registry, _store),
}


def configuration_problems(settings: Settings, components: Iterable[str]) -> list[str]:
    """Every problem of ``settings`` for running ``components`` (``source``, ``worker``)."""
    problems: list[str] = []
    for group in ("kafka", *components):
        for check in _CHECKS[group]:
            try:
                check(settings)
            except ConfigurationError as exc:
                problems.append(str(exc))
    return problems


def check_configuration(settings: Settings, components: Iterable[str] = COMPONENTS) -> None:
    """Raise one :class:`ConfigurationError` naming every problem, or return."""
    problems = configuration_problems(settings, components)
    if len(problems) == 1:
        raise ConfigurationError(problems[0])
    if problems:
        raise ConfigurationError(
            f"{len(problems)} configuration problems:\n  " + "\n  ".join(problems)
        )
