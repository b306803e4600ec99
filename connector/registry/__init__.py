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
subject's compatibility level deliberately. Basic auth: ``SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO``
(``user:password``). TLS: ``SCHEMA_REGISTRY_SSL_CA_LOCATION`` (CA file to verify an ``https://``
registry; the system's CAs otherwise), ``SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION`` and
``SCHEMA_REGISTRY_SSL_KEY_LOCATION`` (a client certificate, for a registry requiring mutual TLS).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from connector.errors import ConfigurationError, ConnectorError
from connector.settings import Settings
from connector.topics import TopicNames

AVRO: Final = "AVRO"
HTTP_CONFLICT: Final = 409


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


def value_subject(topic: str) -> str:
    """The registry subject of a topic's values (``TopicNameStrategy``)."""
    return f"{topic}-value"


def registry_client(settings: Settings) -> SchemaRegistryClient:
    """A client for ``SCHEMA_REGISTRY_URL`` with the configured basic auth and TLS files."""
    return SchemaRegistryClient(registry_client_config(settings))


def registry_client_config(settings: Settings) -> dict[str, Any]:
    """The ``SchemaRegistryClient`` configuration: URL, basic auth and TLS files."""
    if not settings.schema_registry_url:
        raise ConfigurationError("SCHEMA_REGISTRY_URL is not set")
    config: dict[str, Any] = {"url": settings.schema_registry_url}
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
    client = client or registry_client(settings)
    topics = TopicNames(settings.topic_prefix)
    ids: dict[str, int] = {}
    for event_type, schema in sorted(schemas.items()):
        subject = value_subject(topics.typed(event_type))
        ids[event_type] = register_subject(settings, client, subject, schema)
    return ids


def register_subject(
    settings: Settings,
    client: SchemaRegistryClient,
    subject: str,
    schema: Mapping[str, Any],
) -> int:
    """Register one Avro schema under ``subject``; its id (HTTP 409: IncompatibleSchemaError)."""
    try:
        schema_id: int = client.register_schema(subject, Schema(json.dumps(schema), AVRO))
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
