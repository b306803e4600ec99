"""The cluster as Faust (aiokafka) wants it: broker URLs and credentials, from :class:`Settings`.

``KAFKA_SECURITY_PROTOCOL`` decides the credentials, as it does for librdkafka:

* ``PLAINTEXT``: none.
* ``SSL``: :class:`faust.SSLCredentials` with a context trusting ``KAFKA_SSL_CA_LOCATION`` (else
  the system's CAs) and, when both are set, the client certificate
  ``KAFKA_SSL_CERTIFICATE_LOCATION`` / ``KAFKA_SSL_KEY_LOCATION`` (the key decrypted with
  ``KAFKA_SSL_KEY_PASSWORD`` when set).
* ``SASL_PLAINTEXT`` / ``SASL_SSL``: :class:`faust.SASLCredentials` with ``KAFKA_SASL_MECHANISM``
  (``PLAIN`` unless set), username and password; over SSL with the context above.

Contradictory or incomplete settings are refused first, by the same check as librdkafka's
configuration (:meth:`Settings.check_kafka_security`), so every client agrees.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from connector.errors import ConfigurationError
from connector.settings import DEFAULT_SASL_MECHANISM, Settings


def broker_urls(settings: Settings) -> list[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` (comma-separated ``host:port``) as ``kafka://`` URLs."""
    servers = [s.strip() for s in settings.bootstrap_servers.split(",") if s.strip()]
    if not servers:
        raise ConfigurationError("KAFKA_BOOTSTRAP_SERVERS names no server")
    return [s if "://" in s else f"kafka://{s}" for s in servers]


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """A client TLS context from the ``KAFKA_SSL_*`` settings."""
    ca = settings.kafka_ssl_ca_location or None
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot load the CA certificates {ca}: {exc}") from exc
    cert, key = settings.kafka_ssl_certificate_location, settings.kafka_ssl_key_location
    if cert and key:
        password = settings.kafka_ssl_key_password
        try:
            context.load_cert_chain(
                cert, key, password.get_secret_value() if password is not None else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load the client certificate {cert} with key {key}: {exc}"
            ) from exc
    elif cert or key:
        raise ConfigurationError(
            "KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together"
        )
    return context


def broker_credentials(settings: Settings) -> Any:
    """Faust's ``broker_credentials`` for the configured security protocol (``None``: plaintext)."""
    settings.check_kafka_security()
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    if settings.kafka_sasl_username is None or settings.kafka_sasl_password is None:
        raise ConfigurationError(
            f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
        )
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        mechanism=settings.kafka_sasl_mechanism or DEFAULT_SASL_MECHANISM,
        ssl_context=ssl_context(settings) if protocol == "SASL_SSL" else None,
    )
