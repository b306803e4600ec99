"""The whole connector over TLS, against a private broker with three TLS listeners.

The local launcher starts a throw-away broker (``BrokerConfig.ephemeral(..., tls=True)``) whose
certificates it makes at start: server-only TLS (``SSL``), mutual TLS (``SSL`` with a client
certificate signed by the broker's CA) and ``SASL_SSL`` with SCRAM-SHA-512 (user ``alice``).
Over each listener, configured only by the interface's variables: ``zoom-connector topics
create`` -> a source receiving a webhook sent by ``zoom-connector send`` -> a worker writing the
typed record and the agent's scores (Faust's consumers, producers, internal topic and changelog,
all over TLS) -> a consumer reading them. The mutual-TLS run uses an encrypted PKCS#8 key.

Then the mistakes users make: a CA that did not sign the broker's certificate, no client
certificate, one the broker does not trust, a wrong SCRAM password, an encrypted key with a
wrong or no password. Each gives a clear error within 10 s: ``topics create`` and ``worker`` exit
2 naming the cause (no traceback), and the source either answers 503 and logs the refusal (the
broker refused it: Zoom retries later) or, for a key it cannot read, exits 2 naming the setting.
"""

from __future__ import annotations

import io
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import fastavro
import httpx
import pytest

from connector.kafka.local_broker import (
    LocalBroker,
    ScramUser,
)
from connector.kafka.local_broker.certs import (
    BrokerTls,
    CertificateFiles,
    encrypt_key,
    issue,
    make_ca,
)
from connector.paths import avro_schemas_dir
from connector.spec import load_catalog
from connector.worker.aggregates.record import AgentScoresCodec
from tests.processes import (
    CONNECTOR_COMMAND,
    Deployment,
    SourceProcess,
    WorkerProcess,
    consume,
    private_broker,
)

pytestmark = pytest.mark.kafka

ALICE = ScramUser("alice", "alice-pw", mechanisms=("SCRAM-SHA-512",))
EVALUATION = "quality_management.evaluation_completed"
CATALOG = load_catalog()
SECRET = "tls-test-secret"
KEY_PASSWORD = "key-pw"
START_SECONDS = 90.0
CLEAR_ERROR_SECONDS = 10.0


@dataclass(frozen=True)
class Material:
    """The broker's TLS files and a client's other files, made by the test."""

    broker: BrokerTls
    other_ca: CertificateFiles
    stranger: CertificateFiles  # signed by the other CA: the broker does not trust it
    pkcs8_key: Path  # the broker-trusted client key, encrypted (PKCS#8)
    traditional_key: Path  # the same, encrypted in OpenSSL's traditional format


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A private broker with the SSL, mutual-TLS and SASL_SSL listeners (and PLAINTEXT)."""
    data_dir = tmp_path_factory.mktemp("tls-broker")
    with private_broker(data_dir, scram_users=(ALICE,), tls=True) as broker:
        yield broker


@pytest.fixture(scope="module")
def material(tls_broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Material:
    folder = tmp_path_factory.mktemp("client-tls")
    broker = BrokerTls(tls_broker.config.tls_dir)
    other_ca = make_ca(folder, "other-ca", "a CA the broker does not know")
    return Material(
        broker=broker,
        other_ca=other_ca,
        stranger=issue(other_ca, folder, "stranger", "stranger"),
        pkcs8_key=encrypt_key(broker.client.key, folder / "client-pkcs8.key", KEY_PASSWORD),
        traditional_key=encrypt_key(
            broker.client.key, folder / "client-rsa.key", KEY_PASSWORD, traditional=True
        ),
    )


def listener_env(broker: LocalBroker, material: Material, listener: str) -> dict[str, str]:
    """The interface's variables for ``listener``: ``ssl``, ``mtls`` or ``sasl_ssl``."""
    config = broker.config
    ca = str(material.broker.ca.cert)
    if listener == "ssl":
        assert config.ssl_bootstrap
        return {
            "KAFKA_BOOTSTRAP_SERVERS": config.ssl_bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CA_LOCATION": ca,
        }
    if listener == "mtls":
        assert config.mtls_bootstrap
        return {
            "KAFKA_BOOTSTRAP_SERVERS": config.mtls_bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CA_LOCATION": ca,
            "KAFKA_SSL_CERTIFICATE_LOCATION": str(material.broker.client.cert),
            "KAFKA_SSL_KEY_LOCATION": str(material.pkcs8_key),
            "KAFKA_SSL_KEY_PASSWORD": KEY_PASSWORD,
        }
    assert listener == "sasl_ssl" and config.sasl_ssl_bootstrap
    return {
        "KAFKA_BOOTSTRAP_SERVERS": config.sasl_ssl_bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SSL_CA_LOCATION": ca,
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": ALICE.username,
        "KAFKA_SASL_PASSWORD": ALICE.password,
    }


def librdkafka_security(env: dict[str, str]) -> dict[str, str]:
    """The same settings as a test consumer's librdkafka configuration."""
    names = {
        "KAFKA_SECURITY_PROTOCOL": "security.protocol",
        "KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
        "KAFKA_SSL_CERTIFICATE_LOCATION": "ssl.certificate.location",
        "KAFKA_SSL_KEY_LOCATION": "ssl.key.location",
        "KAFKA_SSL_KEY_PASSWORD": "ssl.key.password",
        "KAFKA_SASL_MECHANISM": "sasl.mechanism",
        "KAFKA_SASL_USERNAME": "sasl.username",
        "KAFKA_SASL_PASSWORD": "sasl.password",
    }
    return {names[k]: v for k, v in env.items() if k in names}


def run(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CONNECTOR_COMMAND, *args],
        env={**deployment.env(0), "ZOOM_WEBHOOK_SECRET_TOKEN": SECRET},
        capture_output=True,
        text=True,
        timeout=120,
    )


def http_status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def wait_until(check: Callable[[], bool], what: str, timeout: float, *processes: object) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for process in processes:
            assert isinstance(process, (SourceProcess, WorkerProcess))
            process.check_alive()
        assert time.monotonic() < deadline, f"not {what} within {timeout:.0f} s"
        time.sleep(0.2)


@pytest.mark.parametrize("listener", ["ssl", "mtls", "sasl_ssl"])
def test_webhook_to_typed_record_over_tls(
    tls_broker: LocalBroker,
    material: Material,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    listener: str,
) -> None:
    env = listener_env(tls_broker, material, listener)
    deployment = Deployment(
        env["KAFKA_BOOTSTRAP_SERVERS"], unique_name(listener), tmp_path, extra_env=env
    )
    topics = deployment.topics
    created = run(deployment, "topics", "create")
    assert created.returncode == 0, created.stdout + created.stderr
    assert f"created {topics.raw}" in created.stdout

    source = SourceProcess(deployment, SECRET)
    worker = WorkerProcess(deployment)
    try:
        # /readyz is 200 only once a metadata request over TLS succeeded
        wait_until(
            lambda: http_status(f"{source.url}/readyz") == 200, "ready", START_SECONDS, source
        )
        wait_until(lambda: bool(worker.lag()), "assigned", START_SECONDS, worker)
        sent = run(deployment, "send", "--example", EVALUATION, "--url", source.url)
        assert sent.returncode == 0, sent.stdout + sent.stderr

        security = librdkafka_security(env)
        body = CATALOG.example_bytes(EVALUATION)
        (raw,) = consume(deployment.bootstrap, [topics.raw], bool, security=security)
        assert raw.value() == body
        (typed,) = consume(
            deployment.bootstrap, [topics.typed(EVALUATION)], bool, worker=worker, security=security
        )
        value = typed.value() or b""
        schema = fastavro.schema.load_schema(str(avro_schemas_dir() / f"{EVALUATION}.avsc"))
        record = fastavro.schemaless_reader(io.BytesIO(value[10:]), schema, None)
        assert isinstance(record, dict)
        example = json.loads(body)
        evaluation_id = example["payload"]["object"]["evaluation_id"]
        assert record["payload"]["object"]["evaluation_id"] == evaluation_id
        # the aggregates: Faust's internal topic and changelog, and agent_scores, over TLS too
        (scores,) = consume(
            deployment.bootstrap, [topics.agent_scores], bool, worker=worker, security=security
        )
        figures = AgentScoresCodec().decode(scores.value() or b"")
        assert figures["evaluations"]["lifetime"]["count"] == 1
        assert "Traceback" not in worker.log() + source.log()
    finally:
        source.stop()
        worker.stop()


# (name, listener, changes to its variables, what the error says)
MISTAKES = [
    (
        "wrong-ca",
        "ssl",
        {"KAFKA_SSL_CA_LOCATION": "other_ca"},
        ["certificate verify failed", "KAFKA_SSL_CA_LOCATION"],
    ),
    (
        "no-client-certificate",
        "mtls",
        {
            "KAFKA_SSL_CERTIFICATE_LOCATION": "",
            "KAFKA_SSL_KEY_LOCATION": "",
            "KAFKA_SSL_KEY_PASSWORD": "",
        },
        ["requires a client certificate", "KAFKA_SSL_CERTIFICATE_LOCATION"],
    ),
    (
        "unknown-client-certificate",
        "mtls",
        {
            "KAFKA_SSL_CERTIFICATE_LOCATION": "stranger.cert",
            "KAFKA_SSL_KEY_LOCATION": "stranger.key",
            "KAFKA_SSL_KEY_PASSWORD": "",
        },
        ["refused the client certificate", "bad certificate"],
    ),
    (
        "wrong-scram-password",
        "sasl_ssl",
        {"KAFKA_SASL_PASSWORD": "not-alice-pw"},
        ["SASL authentication error", "KAFKA_SASL_PASSWORD"],
    ),
]
KEY_MISTAKES = [
    (
        "wrong-key-password",
        {"KAFKA_SSL_KEY_PASSWORD": "not-the-key-pw"},
        ["KAFKA_SSL_KEY_PASSWORD", "cannot read the private key"],
    ),
    (
        "missing-key-password",
        {"KAFKA_SSL_KEY_LOCATION": "traditional_key", "KAFKA_SSL_KEY_PASSWORD": ""},
        ["is encrypted: set KAFKA_SSL_KEY_PASSWORD"],
    ),
]


def _apply(env: dict[str, str], changes: dict[str, str], material: Material) -> dict[str, str]:
    files = {
        "other_ca": str(material.other_ca.cert),
        "stranger.cert": str(material.stranger.cert),
        "stranger.key": str(material.stranger.key),
        "traditional_key": str(material.traditional_key),
    }
    changed = {**env, **{k: files.get(v, v) for k, v in changes.items()}}
    return {k: v for k, v in changed.items() if v != ""}


def _commands_fail_clearly(deployment: Deployment, says: list[str]) -> None:
    for command in (["topics", "create"], ["worker"]):
        began = time.monotonic()
        failed = run(deployment, *command)
        took = time.monotonic() - began
        output = failed.stdout + failed.stderr
        assert failed.returncode == 2, output
        for words in says:
            assert words in failed.stderr, f"{command}: {words!r} not in {failed.stderr}"
        assert "Traceback" not in output, output
        assert took < CLEAR_ERROR_SECONDS, f"{command}: {took:.1f} s to fail"
        for secret in ("not-alice-pw", "not-the-key-pw", KEY_PASSWORD):
            assert secret not in output


@pytest.mark.parametrize(
    ("listener", "changes", "says"),
    [pytest.param(listener, changes, says, id=name) for name, listener, changes, says in MISTAKES],
)
def test_a_refused_connection_is_a_clear_error_at_once(
    tls_broker: LocalBroker,
    material: Material,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    listener: str,
    changes: dict[str, str],
    says: list[str],
) -> None:
    env = _apply(listener_env(tls_broker, material, listener), changes, material)
    deployment = Deployment(env["KAFKA_BOOTSTRAP_SERVERS"], unique_name("bad"), tmp_path, {})
    deployment.extra_env.update(env)
    _commands_fail_clearly(deployment, says)
    if listener == "ssl":  # the message names no SASL setting when the protocol is SSL
        assert "SASL" not in run(deployment, "topics", "create").stderr

    # The source starts, is not ready, answers Zoom 503 (Zoom retries) and logs why.
    source = SourceProcess(deployment, SECRET)
    try:
        source.wait_healthy()
        began = time.monotonic()
        sent = run(deployment, "send", "--example", EVALUATION, "--url", source.url)
        assert sent.returncode != 0 and "503" in sent.stdout + sent.stderr
        assert time.monotonic() - began < CLEAR_ERROR_SECONDS
        assert http_status(f"{source.url}/readyz") == 503
        wait_until(
            lambda: "kafka refused the connection" in source.log() and says[0] in source.log(),
            "logged the refusal",
            CLEAR_ERROR_SECONDS,
            source,
        )
        assert "Traceback" not in source.log()
    finally:
        source.stop()


@pytest.mark.parametrize(
    ("changes", "says"),
    [pytest.param(changes, says, id=name) for name, changes, says in KEY_MISTAKES],
)
def test_a_key_that_cannot_be_read_stops_every_command(
    tls_broker: LocalBroker,
    material: Material,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    changes: dict[str, str],
    says: list[str],
) -> None:
    env = _apply(listener_env(tls_broker, material, "mtls"), changes, material)
    deployment = Deployment(env["KAFKA_BOOTSTRAP_SERVERS"], unique_name("key"), tmp_path, {})
    deployment.extra_env.update(env)
    _commands_fail_clearly(deployment, says)
    source = SourceProcess(deployment, SECRET)
    try:
        source.process.wait(CLEAR_ERROR_SECONDS)
    finally:
        source.stop()
    log = source.log()
    assert source.process.returncode == 2, log
    assert all(words in log for words in says), log
    assert "Traceback" not in log, log


def test_the_traditional_encrypted_key_works_with_its_password(
    tls_broker: LocalBroker, material: Material, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    env = listener_env(tls_broker, material, "mtls")
    env["KAFKA_SSL_KEY_LOCATION"] = str(material.traditional_key)
    deployment = Deployment(env["KAFKA_BOOTSTRAP_SERVERS"], unique_name("rsa"), tmp_path, env)
    created = run(deployment, "topics", "create")
    assert created.returncode == 0, created.stdout + created.stderr
