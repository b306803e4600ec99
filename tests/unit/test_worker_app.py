"""The Faust app factory: settings mapped to Faust, the pipeline installed, /metrics served."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from aiohttp.test_utils import TestClient, TestServer
from faust.types.auth import AuthProtocol, SASLMechanism
from pydantic import SecretStr

from connector.errors import ConfigurationError
from connector.settings import Settings
from connector.worker.app import DEDUP_TABLE, PIPELINE_AGENT, create_app
from connector.worker.credentials import broker_credentials, broker_urls

SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(worker_data_dir=str(tmp_path), **values)  # type: ignore[arg-type]


def test_app_is_configured_from_settings(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        kafka_bootstrap_servers="k1:9092, k2:9093",
        worker_id="zc-test",
        worker_web_port=16066,
        topic_replication_factor=3,
    )
    app = create_app(settings, raw_partitions=4)
    assert [str(u) for u in app.conf.broker] == ["kafka://k1:9092", "kafka://k2:9093"]
    assert app.conf.id == "zc-test"
    assert app.conf.web_port == 16066
    assert app.conf.topic_partitions == 4
    assert app.conf.topic_replication_factor == 3
    assert str(app.conf.store) == "memory:"
    assert str(app.conf.processing_guarantee.value) == "at_least_once"
    assert Path(app.conf.datadir).is_relative_to(tmp_path)
    assert PIPELINE_AGENT in app.agents
    table = app.tables[DEDUP_TABLE]
    assert table.partitions == 4
    assert table.changelog_topic.get_topic_name() == "zc-test-dedup-changelog"


def test_rocksdb_store_is_an_option(tmp_path: Path) -> None:
    pytest.importorskip("rocksdict")
    app = create_app(_settings(tmp_path, worker_store="rocksdb://"))
    assert str(app.conf.store) == "rocksdb:"
    assert type(app.tables[DEDUP_TABLE].data).__module__ == "faust.stores.rocksdb"


def test_more_installers_can_be_added(tmp_path: Path) -> None:
    seen = []
    app = create_app(_settings(tmp_path), installers=[lambda app, ctx: seen.append(ctx)])
    assert len(seen) == 1 and seen[0].topics.raw == "zoom.webhooks.raw"
    assert PIPELINE_AGENT not in app.agents


async def test_metrics_view_serves_prometheus_text(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))
    async with TestClient(TestServer(app.web.web_app)) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    assert "# TYPE zoom_worker_events_total counter" in text
    assert "zoom_worker_batch_duration_seconds_count 0.0" in text


def test_plaintext_has_no_credentials(tmp_path: Path) -> None:
    assert broker_credentials(_settings(tmp_path)) is None
    assert broker_urls(_settings(tmp_path)) == ["kafka://localhost:9092"]


def test_sasl_ssl_credentials(tmp_path: Path) -> None:
    credentials = broker_credentials(
        _settings(
            tmp_path,
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="zoom",
            kafka_sasl_password=SecretStr("secret"),
            kafka_ssl_ca_location=SYSTEM_CAS,
        )
    )
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_SSL
    assert credentials.mechanism is SASLMechanism.SCRAM_SHA_512
    assert (credentials.username, credentials.password) == ("zoom", "secret")
    assert isinstance(credentials.ssl_context, ssl.SSLContext)


def test_sasl_plaintext_defaults_to_plain(tmp_path: Path) -> None:
    credentials = broker_credentials(
        _settings(
            tmp_path,
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_username="zoom",
            kafka_sasl_password=SecretStr("secret"),
        )
    )
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_PLAINTEXT
    assert credentials.mechanism is SASLMechanism.PLAIN
    assert credentials.ssl_context is None


def test_ssl_credentials(tmp_path: Path) -> None:
    credentials = broker_credentials(
        _settings(tmp_path, kafka_security_protocol="SSL", kafka_ssl_ca_location=SYSTEM_CAS)
    )
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.protocol is AuthProtocol.SSL


@pytest.mark.parametrize(
    "values",
    [
        {"kafka_security_protocol": "SASL_PLAINTEXT"},
        {"kafka_security_protocol": "SSL", "kafka_ssl_certificate_location": SYSTEM_CAS},
        {"kafka_bootstrap_servers": " , "},
    ],
)
def test_incomplete_security_settings_are_refused(
    tmp_path: Path, values: dict[str, object]
) -> None:
    with pytest.raises(ConfigurationError):
        create_app(_settings(tmp_path, **values))
