"""Which librdkafka errors are refusals, and what the user is told to check for each."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from pydantic import SecretStr

from connector.errors import ConfigurationError
from connector.kafka.refusals import (
    client_creation_error,
    refusal,
    refusal_in_log,
    refusal_message,
)
from connector.settings import Settings

UNTRUSTED = (
    "ssl://localhost:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::"
    "certificate verify failed: broker certificate could not be verified"
)
ALERT = (
    "ssl://localhost:9094/bootstrap: Receive failed: error:0A000412:SSL routines::"
    "ssl/tls alert bad certificate: SSL alert number 42 (after 1ms in state APIVERSION_QUERY)"
)
SASL = "sasl_ssl://localhost:9095/bootstrap: SASL authentication error: Authentication failed"


@pytest.mark.parametrize(
    ("code", "text", "refused"),
    [
        (KafkaError._SSL, UNTRUSTED, True),
        (KafkaError._TRANSPORT, ALERT, True),  # TLS 1.3: the broker's alert after the handshake
        (KafkaError._AUTHENTICATION, SASL, True),
        (KafkaError._TRANSPORT, "Connection refused (after 0ms in state CONNECT)", False),
        (KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down", False),
    ],
)
def test_refusals(code: int, text: str, refused: bool) -> None:
    assert (refusal(KafkaError(code, text)) is not None) == refused


@pytest.mark.parametrize(
    ("level", "text", "refused"),
    [
        (logging.ERROR, f"FAIL [rdkafka#producer-1] [thrd:x]: {ALERT}", True),
        (logging.ERROR, f"FAIL [rdkafka#producer-1] [thrd:x]: {UNTRUSTED}", True),
        (logging.ERROR, f"FAIL [rdkafka#producer-1] [thrd:x]: {SASL}", True),
        (logging.ERROR, "FAIL [rdkafka#producer-1] [thrd:x]: Connection refused", False),
        (logging.DEBUG, f"SSL [rdkafka#producer-1] [thrd:x]: {ALERT}", False),
    ],
)
def test_refusals_in_librdkafka_log_lines(level: int, text: str, refused: bool) -> None:
    record = logging.LogRecord("librdkafka", level, __file__, 1, "%s", (text,), None)
    assert (refusal_in_log(record) is not None) == refused


@pytest.mark.parametrize(
    ("config", "reason", "names", "not_named"),
    [
        pytest.param(
            {"security.protocol": "ssl"},
            UNTRUSTED,
            ["KAFKA_SSL_CA_LOCATION"],
            ["SASL", "CERTIFICATE_LOCATION"],
            id="untrusted-broker-over-ssl",
        ),
        pytest.param(
            {"security.protocol": "sasl_ssl"},
            UNTRUSTED,
            ["KAFKA_SSL_CA_LOCATION"],
            ["KAFKA_SASL"],
            id="untrusted-broker-over-sasl-ssl",
        ),
        pytest.param(
            {"security.protocol": "ssl"},
            ALERT,
            ["requires a client certificate", "KAFKA_SSL_CERTIFICATE_LOCATION"],
            ["SASL"],
            id="no-client-certificate",
        ),
        pytest.param(
            {"security.protocol": "ssl", "ssl.certificate.location": "/etc/me.pem"},
            ALERT,
            ["refused the client certificate", "/etc/me.pem"],
            ["SASL"],
            id="refused-client-certificate",
        ),
        pytest.param(
            {"security.protocol": "sasl_ssl"},
            SASL,
            ["KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"],
            ["KAFKA_SSL"],
            id="sasl",
        ),
    ],
)
def test_the_message_names_what_to_check(
    config: dict[str, str], reason: str, names: list[str], not_named: list[str]
) -> None:
    message = refusal_message({"bootstrap.servers": "b:9093", **config}, reason)
    assert message.startswith("Kafka at b:9093 refused the connection")
    assert reason in message
    advice = message.split(reason, 1)[1]
    for name in names:
        assert name in advice
    for name in not_named:
        assert name not in advice


def test_a_key_librdkafka_cannot_read_names_the_password() -> None:
    exc = KafkaException(
        KafkaError(
            KafkaError._INVALID_ARG,
            "Failed to create admin client: ssl.key.location failed: error:0A080009:SSL"
            " routines::PEM lib",
        )
    )
    error = client_creation_error({"ssl.key.location": "/k.pem", "ssl.key.password": "s3"}, exc)
    assert isinstance(error, ConfigurationError)
    assert "KAFKA_SSL_KEY_LOCATION=/k.pem" in str(error) and "KAFKA_SSL_KEY_PASSWORD" in str(error)
    assert "s3" not in str(error)


@pytest.mark.parametrize(
    "header",
    [
        "-----BEGIN ENCRYPTED PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED",
    ],
)
def test_an_encrypted_key_without_its_password_is_refused(tmp_path: Path, header: str) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    key.write_text(f"{header}\nabc\n")
    settings = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_certificate_location=str(cert),
        kafka_ssl_key_location=str(key),
    )
    with pytest.raises(ConfigurationError, match="is encrypted: set KAFKA_SSL_KEY_PASSWORD"):
        settings.kafka_client_config()
    with_password = settings.model_copy(update={"kafka_ssl_key_password": SecretStr("pw")})
    assert with_password.kafka_client_config()["ssl.key.password"] == "pw"
