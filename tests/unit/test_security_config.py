"""SASL and SSL settings reach every client the connector creates.

The clients: the source's producer and the topic admin (librdkafka, through
:meth:`Settings.kafka_client_config`), the worker's Faust consumers and producers (aiokafka, through
:func:`~connector.worker.credentials.broker_credentials`), the schema registry client, and the
``run`` command's children (the environment, passed on). Each mapping is checked, and handed to the
real client library, which refuses settings it does not know or support. Certificates are made
here, in memory, for ``localhost``; the registry case talks TLS for real to a local HTTPS server.
``tests/integration/test_sasl_end_to_end.py`` runs the whole pipeline over SCRAM against a broker.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiokafka
import faust
import pytest
from confluent_kafka import Producer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr

from connector import runner
from connector.avro.codec import load_schemas
from connector.errors import ConfigurationError
from connector.kafka import admin
from connector.kafka.coalescing_log import CoalescingLog
from connector.registry import (
    SchemaRegistrationError,
    register_schemas,
    registry_client_config,
)
from connector.settings import Settings
from connector.source.producer import producer_config
from connector.worker.app import create_app
from connector.worker.credentials import broker_credentials, ssl_context
from tests.unit.test_registry import FakeSchemaRegistry

SECURITY_VARIABLES = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_LOCATION",
    "KAFKA_SSL_CERTIFICATE_LOCATION",
    "KAFKA_SSL_KEY_LOCATION",
    "KAFKA_SSL_KEY_PASSWORD",
    "SCHEMA_REGISTRY_URL",
    "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
    "SCHEMA_REGISTRY_SSL_CA_LOCATION",
    "SCHEMA_REGISTRY_SSL_CERTIFICATE_LOCATION",
    "SCHEMA_REGISTRY_SSL_KEY_LOCATION",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the environment: a developer's own cluster settings must not leak in."""
    for name in SECURITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# --- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A CA, a server certificate for localhost / 127.0.0.1, a client certificate (mTLS)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    encrypted_client_key: Path
    key_password: str = "key-secret"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, password: str | None = None) -> Path:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return path


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca_cert = _certificate("zoom-connector test CA", ca_key, None, ca=True)
    issuer = ("zoom-connector test CA", ca_key)
    server_cert = _certificate("localhost", server_key, issuer, server=True)
    client_cert = _certificate("zoom-connector", client_key, issuer)
    pki = Pki(
        ca=_write_cert(folder / "ca.pem", ca_cert),
        server_cert=_write_cert(folder / "server.pem", server_cert),
        server_key=_write_key(folder / "server.key", server_key),
        client_cert=_write_cert(folder / "client.pem", client_cert),
        client_key=_write_key(folder / "client.key", client_key),
        encrypted_client_key=folder / "client-encrypted.key",
    )
    _write_key(pki.encrypted_client_key, client_key, pki.key_password)
    return pki


# --- the settings, as librdkafka and Faust see them --------------------------------------------


def _scram(mechanism: str = "SCRAM-SHA-512", protocol: str = "SASL_PLAINTEXT") -> Settings:
    return Settings.model_validate(
        {
            "kafka_bootstrap_servers": "broker-1:9096,broker-2:9096",
            "kafka_security_protocol": protocol,
            "kafka_sasl_mechanism": mechanism,
            "kafka_sasl_username": "zoom-connector",
            "kafka_sasl_password": "pw-1",
        }
    )


def _mtls(pki: Pki, *, encrypted: bool = False, protocol: str = "SSL") -> Settings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": "broker-1:9094",
        "kafka_security_protocol": protocol,
        "kafka_ssl_ca_location": str(pki.ca),
        "kafka_ssl_certificate_location": str(pki.client_cert),
        "kafka_ssl_key_location": str(pki.encrypted_client_key if encrypted else pki.client_key),
    }
    if encrypted:
        values["kafka_ssl_key_password"] = pki.key_password
    if protocol == "SASL_SSL":
        values |= {"kafka_sasl_username": "zoom-connector", "kafka_sasl_password": "pw-1"}
    return Settings.model_validate(values)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_maps_to_librdkafka(mechanism: str) -> None:
    assert _scram(mechanism).kafka_client_config() == {
        "bootstrap.servers": "broker-1:9096,broker-2:9096",
        "security.protocol": "sasl_plaintext",
        "sasl.mechanism": mechanism,
        "sasl.username": "zoom-connector",
        "sasl.password": "pw-1",
    }


def test_sasl_without_a_mechanism_is_plain_for_every_client() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="u",
        kafka_sasl_password=SecretStr("p"),
    )
    # librdkafka's own default would be GSSAPI; Faust's is PLAIN: both get PLAIN.
    assert settings.kafka_client_config()["sasl.mechanism"] == "PLAIN"
    credentials = broker_credentials(settings)
    assert credentials_to_aiokafka_auth(credentials)["sasl_mechanism"] == "PLAIN"


def test_protocol_and_mechanism_are_case_insensitive() -> None:
    settings = Settings.model_validate(
        {
            "kafka_security_protocol": "sasl_ssl",
            "kafka_sasl_mechanism": "scram-sha-256",
            "kafka_sasl_username": "u",
            "kafka_sasl_password": "p",
        }
    )
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-256"


def test_mutual_tls_maps_to_librdkafka(pki: Pki) -> None:
    config = _mtls(pki, encrypted=True).kafka_client_config()
    assert config == {
        "bootstrap.servers": "broker-1:9094",
        "security.protocol": "ssl",
        "ssl.ca.location": str(pki.ca),
        "ssl.certificate.location": str(pki.client_cert),
        "ssl.key.location": str(pki.encrypted_client_key),
        "ssl.key.password": pki.key_password,
    }


def test_sasl_ssl_maps_both(pki: Pki) -> None:
    config = _mtls(pki, protocol="SASL_SSL").kafka_client_config()
    assert config["security.protocol"] == "sasl_ssl"
    assert config["sasl.mechanism"] == "PLAIN"
    assert config["sasl.username"] == "zoom-connector"
    assert config["ssl.ca.location"] == str(pki.ca)
    assert config["ssl.key.location"] == str(pki.client_key)


def test_secrets_stay_out_of_the_settings_repr(pki: Pki) -> None:
    text = repr(_mtls(pki, encrypted=True, protocol="SASL_SSL"))
    assert "pw-1" not in text
    assert pki.key_password not in text


@dataclass(frozen=True)
class Bad:
    values: dict[str, Any]
    message: str


BAD_SETTINGS = [
    Bad(
        {"kafka_security_protocol": "SASL_SSL"}, "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
    ),
    Bad(
        {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "u"},
        "needs KAFKA_SASL_PASSWORD",
    ),
    Bad(
        {"kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": "u"},
        "KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
    ),
    Bad(
        {"kafka_ssl_ca_location": "/etc/hosts"},
        "KAFKA_SSL_CA_LOCATION set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT would ignore it",
    ),
    Bad(
        {
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_username": "u",
            "kafka_sasl_password": "p",
            "kafka_ssl_ca_location": "/etc/hosts",
        },
        "set KAFKA_SECURITY_PROTOCOL to SSL or SASL_SSL",
    ),
    Bad(
        {"kafka_security_protocol": "SSL", "kafka_ssl_certificate_location": "/etc/hosts"},
        "go together",
    ),
    Bad(
        {"kafka_security_protocol": "SSL", "kafka_ssl_key_password": "p"},
        "KAFKA_SSL_KEY_PASSWORD needs KAFKA_SSL_KEY_LOCATION",
    ),
    Bad(
        {"kafka_security_protocol": "SSL", "kafka_ssl_ca_location": "/nonexistent/ca.pem"},
        "KAFKA_SSL_CA_LOCATION=/nonexistent/ca.pem: no such file",
    ),
]


@pytest.mark.parametrize("bad", BAD_SETTINGS, ids=lambda bad: bad.message[:40])
def test_contradictory_settings_are_refused_by_every_client(bad: Bad) -> None:
    settings = Settings.model_validate(bad.values)
    with pytest.raises(ConfigurationError, match=re.escape(bad.message)):
        settings.kafka_client_config()
    with pytest.raises(ConfigurationError, match=re.escape(bad.message)):
        broker_credentials(settings)


# --- each client -------------------------------------------------------------------------------


def test_the_source_producer_carries_the_credentials_and_librdkafka_accepts_them(
    pki: Pki,
) -> None:
    for settings in (_scram("SCRAM-SHA-256"), _mtls(pki, encrypted=True, protocol="SASL_SSL")):
        config = producer_config(settings)
        assert settings.kafka_client_config().items() <= config.items()
        assert config["enable.idempotence"] is True
        # librdkafka checks every property at construction: unknown names, mechanisms this
        # build lacks, a CA or key it cannot load, a wrong key password all raise here.
        Producer({**config, "bootstrap.servers": "127.0.0.1:9"}).flush(0)


def test_librdkafka_refuses_a_wrong_key_password(pki: Pki) -> None:
    config = _mtls(pki, encrypted=True).kafka_client_config()
    config["ssl.key.password"] = "not-the-password"
    with pytest.raises(Exception, match=r"(?i)ssl|key"):
        Producer(config)


def test_the_admin_client_carries_the_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(admin, "AdminClient", lambda config: seen.append(config) or object())
    settings = _scram()
    admin.admin_client(settings)
    (config,) = seen
    assert isinstance(config.pop("logger"), CoalescingLog)
    assert config == {**settings.kafka_client_config(), "client.id": "zoom-connector-admin"}


def _aiokafka_auth(app: faust.App) -> dict[str, Any]:
    """What Faust passes to every aiokafka consumer and producer it makes for ``app``."""
    return dict(credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context))


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_faust_clients_get_sasl(mechanism: str, tmp_path: Path) -> None:
    settings = _scram(mechanism).model_copy(update={"worker_data_dir": str(tmp_path)})
    app = create_app(settings, installers=[])
    auth = _aiokafka_auth(app)
    assert auth == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "zoom-connector",
        "sasl_plain_password": "pw-1",
        "ssl_context": None,
    }
    assert dict(app.producer._settings_auth()) == auth
    # aiokafka validates protocol and mechanism in its constructors.
    producer = aiokafka.AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", **auth)
    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", **auth)
    await producer.stop()
    await consumer.stop()


async def test_faust_clients_get_mutual_tls(pki: Pki, tmp_path: Path) -> None:
    settings = _mtls(pki, encrypted=True, protocol="SASL_SSL").model_copy(
        update={"worker_data_dir": str(tmp_path), "kafka_sasl_mechanism": "SCRAM-SHA-512"}
    )
    app = create_app(settings, installers=[])
    auth = _aiokafka_auth(app)
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    context = auth["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    # the context trusts our CA (and only what was asked for: no system CAs were loaded)
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "zoom-connector test CA"),),)
    ]
    producer = aiokafka.AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", **auth)
    await producer.stop()


async def test_the_faust_tls_context_presents_the_client_certificate(pki: Pki) -> None:
    """A TLS server requiring a client certificate accepts the worker's context."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    server_context.load_cert_chain(pki.server_cert, pki.server_key)
    server_context.verify_mode = ssl.CERT_REQUIRED
    peers: list[Any] = []

    async def on_client(reader: Any, writer: Any) -> None:
        peers.append(writer.get_extra_info("peercert"))
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        client = ssl_context(_mtls(pki, encrypted=True))
        reader, writer = await asyncio.open_connection(
            "localhost", port, ssl=client, server_hostname="localhost"
        )
        await reader.read()
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert peers and dict(x[0] for x in peers[0]["subject"])["commonName"] == "zoom-connector"


def test_faust_reports_an_unloadable_key_clearly(pki: Pki) -> None:
    settings = _mtls(pki, encrypted=True).model_copy(
        update={"kafka_ssl_key_password": SecretStr("wrong")}
    )
    with pytest.raises(ConfigurationError, match="cannot load the client certificate"):
        broker_credentials(settings)


def test_the_runner_hands_the_security_settings_to_its_children(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    variables = {
        "KAFKA_BOOTSTRAP_SERVERS": "broker-1:9096",
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "KAFKA_SASL_USERNAME": "zoom-connector",
        "KAFKA_SASL_PASSWORD": "pw-1",
        "ZOOM_WEBHOOK_SECRET_TOKEN": "s3cret",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    topics_settings: list[Settings] = []
    children: list[tuple[dict[str, list[str]], dict[str, str]]] = []
    monkeypatch.setattr(
        admin, "create_topics_command", lambda settings: topics_settings.append(settings) or 0
    )
    monkeypatch.setattr(
        runner,
        "supervise",
        lambda commands, env: children.append((dict(commands), dict(env))) or 0,
    )
    assert runner.run_all(Settings()) == 0
    assert topics_settings[0].kafka_client_config()["sasl.mechanism"] == "SCRAM-SHA-256"
    (commands, env), *_ = children
    assert sorted(commands) == ["source", "worker"]
    assert variables.items() <= env.items()


# --- the schema registry client ----------------------------------------------------------------


def test_registry_client_config(pki: Pki) -> None:
    settings = Settings(
        schema_registry_url="https://registry:8081",
        schema_registry_basic_auth_user_info=SecretStr("zoom:s3cret"),
        schema_registry_ssl_ca_location=str(pki.ca),
        schema_registry_ssl_certificate_location=str(pki.client_cert),
        schema_registry_ssl_key_location=str(pki.client_key),
        schema_registry_timeout_seconds=2.5,
    )
    assert registry_client_config(settings) == {
        "url": "https://registry:8081",
        "timeout": 2.5,
        "basic.auth.user.info": "zoom:s3cret",
        "ssl.ca.location": str(pki.ca),
        "ssl.certificate.location": str(pki.client_cert),
        "ssl.key.location": str(pki.client_key),
    }
    # the registry's TLS is its own: the Kafka files are not borrowed
    kafka_only = Settings(
        schema_registry_url="https://registry:8081",
        kafka_security_protocol="SSL",
        kafka_ssl_ca_location=str(pki.ca),
    )
    assert registry_client_config(kafka_only) == {"url": "https://registry:8081", "timeout": 10.0}


@pytest.fixture
def https_registry(pki: Pki) -> Iterator[FakeSchemaRegistry]:
    registry = FakeSchemaRegistry(user_info="zoom:s3cret")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS
    server = registry._server
    server.socket = context.wrap_socket(server.socket, server_side=True)
    registry.start()
    yield registry
    registry.stop()


def test_registration_over_mutual_tls(https_registry: FakeSchemaRegistry, pki: Pki) -> None:
    url = https_registry.url.replace("http://127.0.0.1", "https://localhost")
    schemas = load_schemas()
    settings = Settings(
        schema_registry_url=url,
        schema_registry_basic_auth_user_info=SecretStr("zoom:s3cret"),
        schema_registry_ssl_ca_location=str(pki.ca),
        schema_registry_ssl_certificate_location=str(pki.client_cert),
        schema_registry_ssl_key_location=str(pki.client_key),
    )
    ids = register_schemas(settings, schemas)
    assert set(ids) == set(schemas)
    assert sorted(https_registry.subjects) == sorted(f"zoom.{t}-value" for t in schemas)

    without_ca = settings.model_copy(update={"schema_registry_ssl_ca_location": None})
    with pytest.raises(SchemaRegistrationError, match=r"(?i)certificate|ssl"):
        register_schemas(without_ca, schemas)
