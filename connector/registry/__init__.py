"""Registering the typed topics' Avro schemas with a Confluent-compatible schema registry.

With ``SCHEMA_REGISTRY_URL`` set, the worker registers each event type's schema (the committed
``schemas/avro/<event type>.avsc``) under the subject ``<typed topic>-value`` (Confluent's default
``TopicNameStrategy``) at start-up, and frames typed records in the Confluent wire format with the
ids the registry returned (:class:`~connector.avro.framing.ConfluentFraming`). A consumer with
confluent-kafka's ``AvroDeserializer`` (or any Confluent-compatible deserializer) then reads the
typed topics with no code of ours.

Registering a schema the registry already has returns its id, so restarts are idempotent. A schema
the subject's compatibility level refuses (HTTP 409) stops the worker at start-up with
:class:`IncompatibleSchemaError`, naming the subject: evolve the schema compatibly, or change the
subject's compatibility level deliberately.

Two checks of our own, for what registries leave to their configuration:

* a new schema version that drops an enum symbol of the subject's latest version is refused
  (:class:`RemovedEnumSymbolError`) before it is registered: Avro's schema resolution reads the
  old records' symbol as the enum's default, so ``BACKWARD`` registries (Apicurio, Confluent)
  accept it, but the records already written would silently read as ``UNKNOWN``;
* a subject whose compatibility level is ``NONE`` (Apicurio's default) is logged as a warning
  at start-up: such a registry accepts any change, including ones that break readers.

Basic auth: ``SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO`` (``user:password``). TLS:
``SCHEMA_REGISTRY_SSL_CA_LOCATION`` (CA file to verify an ``https://`` registry; the system's CAs
otherwise), ``SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION`` and ``SCHEMA_REGISTRY_SSL_KEY_LOCATION``
(a client certificate, for a registry requiring mutual TLS). ``SCHEMA_REGISTRY_TIMEOUT_SECONDS``
bounds each request; the client retries a request that timed out (3 times), then registration
fails with :class:`SchemaRegistrationError` instead of waiting forever.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Final

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from connector.avro.evolution import removed_enum_symbols
from connector.errors import ConfigurationError, ConnectorError
from connector.settings import Settings
from connector.topics import TopicNames

log = logging.getLogger(__name__)

AVRO: Final = "AVRO"
HTTP_CONFLICT: Final = 409
HTTP_NOT_FOUND: Final = 404
NO_COMPATIBILITY: Final = "NONE"


class SchemaRegistrationError(ConnectorError):
    """The registry could not be reached, or refused a schema."""


class IncompatibleSchemaError(SchemaRegistrationError):
    """The registry refused a schema as incompatible with the subject's registered versions."""

    def __init__(self, subject: str, detail: str) -> None:
        super().__init__(
            f"the schema registry refused the schema of subject {subject!r} as incompatible with"
            f" its registered versions ({detail}). Evolve the schema compatibly (e.g. add fields"
            " with defaults), or change the subject's compatibility level on purpose."
        )
        self.subject = subject


class RemovedEnumSymbolError(SchemaRegistrationError):
    """The schema drops enum symbols the subject's latest registered version has."""

    def __init__(self, subject: str, removed: Mapping[str, list[str]]) -> None:
        listed = "; ".join(f"{enum}: {', '.join(symbols)}" for enum, symbols in removed.items())
        super().__init__(
            f"the schema of subject {subject!r} removes enum symbols its latest registered"
            f" version has ({listed}). Records already written carry them and would read as the"
            " enum's default: never remove or rename a symbol (docs/registry.md)."
        )
        self.subject = subject
        self.removed = dict(removed)


def value_subject(topic: str) -> str:
    """The registry subject of a topic's values (``TopicNameStrategy``)."""
    return f"{topic}-value"


def registry_client(settings: Settings) -> SchemaRegistryClient:
    """A client for ``SCHEMA_REGISTRY_URL`` with the configured basic auth and TLS files."""
    return SchemaRegistryClient(registry_client_config(settings))


def registry_client_config(settings: Settings) -> dict[str, Any]:
    """The ``SchemaRegistryClient`` configuration: URL, request timeout, basic auth, TLS files."""
    if not settings.schema_registry_url:
        raise ConfigurationError("SCHEMA_REGISTRY_URL is not set")
    config: dict[str, Any] = {
        "url": settings.schema_registry_url,
        "timeout": settings.schema_registry_timeout_seconds,
    }
    if settings.schema_registry_basic_auth_user_info is not None:
        config["basic.auth.user.info"] = (
            settings.schema_registry_basic_auth_user_info.get_secret_value()
        )
    cert = settings.schema_registry_ssl_certificate_location
    key = settings.schema_registry_ssl_key_location
    if key and not cert:
        raise ConfigurationError(
            "SCHEMA_REGISTRY_SSL_KEY_LOCATION needs SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION"
        )
    files = {
        "ssl.ca.location": settings.schema_registry_ssl_ca_location,
        "ssl.certificate.location": cert,
        "ssl.key.location": key,
    }
    config.update({name: path for name, path in files.items() if path})
    return config


def register_schemas(
    settings: Settings,
    schemas: Mapping[str, Mapping[str, Any]],
    *,
    client: SchemaRegistryClient | None = None,
) -> dict[str, int]:
    """Register every event type's schema under its typed topic's subject; event type -> id."""
    own_client = client is None
    client = client or registry_client(settings)
    topics = TopicNames(settings.topic_prefix)
    ids: dict[str, int] = {}
    try:
        for event_type, schema in sorted(schemas.items()):
            subject = value_subject(topics.typed(event_type))
            ids[event_type] = register_subject(settings, client, subject, schema)
    finally:
        if own_client:
            client.close()  # type: ignore[attr-defined]  # missing from types-confluent-kafka
    return ids


def register_subject(
    settings: Settings,
    client: SchemaRegistryClient,
    subject: str,
    schema: Mapping[str, Any],
) -> int:
    """Register one Avro schema under ``subject``; its id.

    Refused: :class:`IncompatibleSchemaError` (the registry's HTTP 409), or
    :class:`RemovedEnumSymbolError` (our own check against the latest version). A subject whose
    compatibility level is ``NONE`` is logged as a warning.
    """
    try:
        latest = _latest_schema(client, subject)
        if latest is not None and _canonical(latest) != _canonical(schema):
            removed = removed_enum_symbols(latest, schema)
            if removed and not _is_registered(client, subject, schema):
                raise RemovedEnumSymbolError(subject, removed)
        schema_id: int = client.register_schema(subject, Schema(json.dumps(schema), AVRO))
        _warn_without_compatibility(client, subject)
    except SchemaRegistrationError:
        raise
    except SchemaRegistryError as exc:
        if exc.http_status_code == HTTP_CONFLICT:
            raise IncompatibleSchemaError(subject, str(exc)) from exc
        raise SchemaRegistrationError(
            f"the schema registry refused subject {subject!r}: {exc}"
        ) from exc
    except Exception as exc:  # connection errors of the HTTP client
        raise SchemaRegistrationError(
            f"cannot register {subject!r} at {settings.schema_registry_url}:"
            f" {type(exc).__name__}: {exc}"
        ) from exc
    return schema_id


def compatibility_level(client: SchemaRegistryClient, subject: str) -> str:
    """The level the registry applies to ``subject``: its own, else the global one.

    Confluent's registry answers 404 for a subject without a level of its own (the global level
    applies); Apicurio answers with the level in force.
    """
    try:
        return client.get_compatibility(subject)
    except SchemaRegistryError as exc:
        if exc.http_status_code != HTTP_NOT_FOUND:
            raise
    return client.get_compatibility()


def _warn_without_compatibility(client: SchemaRegistryClient, subject: str) -> None:
    try:
        level = compatibility_level(client, subject)
    except Exception as exc:  # a registry that hides its configuration: nothing to warn about
        log.info("cannot read the compatibility level of subject=%s: %s", subject, exc)
        return
    if level.upper() == NO_COMPATIBILITY:
        log.warning(
            "schema registry compatibility is NONE for subject=%s: the registry accepts any new"
            " schema, including one that breaks readers; set it to BACKWARD"
            ' (PUT <registry>/config/%s with {"compatibility": "BACKWARD"}, or the'
            " registry's global rule; docs/registry.md)",
            subject,
            subject,
        )


def _latest_schema(client: SchemaRegistryClient, subject: str) -> Any | None:
    """The subject's latest registered schema as JSON; None for a new subject."""
    try:
        registered = client.get_latest_version(subject)
    except SchemaRegistryError as exc:
        if exc.http_status_code == HTTP_NOT_FOUND:
            return None
        raise
    text = registered.schema.schema_str if registered.schema is not None else None
    return json.loads(text) if text else None


def _is_registered(client: SchemaRegistryClient, subject: str, schema: Mapping[str, Any]) -> bool:
    """Whether ``schema`` is one of the subject's versions (an older worker restarting)."""
    try:
        client.lookup_schema(subject, Schema(json.dumps(schema), AVRO))
    except SchemaRegistryError as exc:
        if exc.http_status_code == HTTP_NOT_FOUND:
            return False
        raise
    return True


def _canonical(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))
