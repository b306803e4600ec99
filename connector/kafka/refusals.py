"""Telling a cluster's refusal from a cluster that is down, and saying which setting to check.

librdkafka retries every connection error for ever; a refusal (wrong SASL credentials, a broker
certificate the client does not trust, a client certificate the broker does not accept) never
heals, so the admin client and the source's producer look at each error librdkafka reports
(:func:`refusal`) and the commands stop at once with :func:`refusal_message`, naming the
settings that matter for that failure only.

Under TLS 1.3 the broker checks the client certificate after the handshake has completed on the
client's side, so its alert (``ssl/tls alert bad certificate``, ``certificate required``) arrives
as a *transport* error (``_TRANSPORT``, "Receive failed: ... SSL alert number 42"), not as
``_SSL``: both count.

:func:`client_creation_error` turns librdkafka's refusal to build a client (an encrypted key it
cannot decrypt: "ssl.key.location failed: ... PEM lib") into a message naming
``KAFKA_SSL_KEY_PASSWORD``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException

from connector.errors import ConfigurationError

ClientConfig = Mapping[str, Any]
"""A librdkafka configuration, as :meth:`Settings.kafka_client_config` makes it."""

REFUSAL_CODES: Final = frozenset(
    {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError._SSL}
)
_TLS_ALERT: Final = re.compile(r"ssl/tls alert|SSL alert number", re.IGNORECASE)
_SASL: Final = re.compile(r"SASL", re.IGNORECASE)
_UNTRUSTED_BROKER: Final = re.compile(r"certificate verify failed", re.IGNORECASE)


def refusal(error: KafkaError) -> str | None:
    """librdkafka's text when ``error`` is the cluster refusing this client, else ``None``."""
    code = error.code()
    text = error.str()
    if code in REFUSAL_CODES:
        return text
    if code == KafkaError._TRANSPORT and _TLS_ALERT.search(text):
        return text
    return None


def refusal_in_log(record: logging.LogRecord) -> str | None:
    """librdkafka's text when one of its log lines reports a refusal, else ``None``.

    The same causes as :func:`refusal`, for librdkafka builds whose ``error_cb`` text leaves the
    TLS alert out (it then shows only in the connection's ``FAIL`` log line).
    """
    if record.levelno < logging.ERROR:
        return None
    text = record.getMessage()
    if _TLS_ALERT.search(text) or _UNTRUSTED_BROKER.search(text):
        return text
    if "SASL authentication error" in text:
        return text
    return None


def settings_to_check(config: ClientConfig, reason: str) -> str:
    """What to check for a refusal with librdkafka's ``reason``, in the user's variable names."""
    certificate = config.get("ssl.certificate.location")
    protocol = str(config.get("security.protocol", "plaintext")).upper()
    if _UNTRUSTED_BROKER.search(reason):
        return (
            "the broker's certificate is not signed by a CA the client trusts: check"
            " KAFKA_SSL_CA_LOCATION (the CA that signed the brokers' certificates)"
        )
    if _TLS_ALERT.search(reason):
        if not certificate:
            return (
                "the broker requires a client certificate (mutual TLS): set"
                " KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION"
            )
        return (
            "the broker refused the client certificate"
            f" KAFKA_SSL_CERTIFICATE_LOCATION={certificate}:"
            " it must be signed by a CA the broker trusts, and be valid now"
        )
    if _SASL.search(reason) and protocol.startswith("SASL"):
        return "check KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
    return "check the KAFKA_SSL_* files"


def refusal_message(config: ClientConfig, reason: str) -> str:
    """One line for the user: who refused, librdkafka's reason, and what to check."""
    hint = settings_to_check(config, reason)
    protocol = str(config.get("security.protocol", "plaintext")).upper()
    return (
        f"Kafka at {config.get('bootstrap.servers')} refused the connection"
        f" (KAFKA_SECURITY_PROTOCOL={protocol}): {reason}. {hint[0].upper()}{hint[1:]}"
    )


def client_creation_error(config: ClientConfig, exc: KafkaException) -> ConfigurationError:
    """A clear error for librdkafka refusing to create a client with ``config``."""
    error = exc.args[0] if exc.args else None
    text = error.str() if isinstance(error, KafkaError) else str(exc)
    if "ssl.key" in text:
        return ConfigurationError(
            f"cannot read the private key KAFKA_SSL_KEY_LOCATION={config.get('ssl.key.location')}"
            " (an encrypted key needs its password in KAFKA_SSL_KEY_PASSWORD: is it the right"
            f" one?): {text}"
        )
    if "ssl.certificate" in text:
        return ConfigurationError(
            "cannot read the client certificate"
            f" KAFKA_SSL_CERTIFICATE_LOCATION={config.get('ssl.certificate.location')}: {text}"
        )
    if "ssl.ca" in text:
        return ConfigurationError(
            f"cannot read KAFKA_SSL_CA_LOCATION={config.get('ssl.ca.location')}: {text}"
        )
    return ConfigurationError(f"cannot create a Kafka client with these settings: {text}")
