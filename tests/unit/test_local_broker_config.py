"""The local broker's pieces that need no JVM: configuration, Java detection, jar resolution."""

from __future__ import annotations

import base64
import os
import stat
from importlib import resources
from pathlib import Path

import pytest

from connector.errors import ConfigurationError
from connector.kafka.local_broker import command, distribution
from connector.kafka.local_broker.config import (
    BrokerConfig,
    ScramUser,
    default_data_dir,
    new_cluster_id,
    render_log4j2_properties,
    render_server_properties,
)
from connector.kafka.local_broker.distribution import (
    KAFKA_VERSION,
    KafkaDistribution,
    resolve_distribution,
)
from connector.kafka.local_broker.errors import JavaNotFoundError, KafkaDistributionError
from connector.kafka.local_broker.java import check_java, find_java_at_least, parse_java_major


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


# --- BrokerConfig and server.properties ------------------------------------------------------


def test_defaults_come_from_xdg_data_home(tmp_path: Path) -> None:
    config = BrokerConfig.from_env({"XDG_DATA_HOME": str(tmp_path)})
    assert config.data_dir == tmp_path / "zoom-connector" / "kafka"
    assert (config.port, config.controller_port) == (9092, 9093)
    assert config.bootstrap == "localhost:9092"
    assert config.sasl_bootstrap is None


def test_default_data_dir_without_xdg_is_under_home() -> None:
    assert default_data_dir({}) == Path.home() / ".local" / "share" / "zoom-connector" / "kafka"


def test_env_overrides_ports_and_data_dir(tmp_path: Path) -> None:
    config = BrokerConfig.from_env(
        {
            "ZOOM_CONNECTOR_KAFKA_PORT": "19092",
            "ZOOM_CONNECTOR_KAFKA_CONTROLLER_PORT": "19093",
            "ZOOM_CONNECTOR_KAFKA_DATA_DIR": str(tmp_path / "k"),
        }
    )
    assert (config.port, config.controller_port) == (19092, 19093)
    assert config.data_dir == tmp_path / "k"
    assert config.bootstrap == "localhost:19092"


def test_a_relative_data_dir_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = BrokerConfig.from_env({"ZOOM_CONNECTOR_KAFKA_DATA_DIR": "kafka-data"})
    assert config.data_dir == tmp_path / "kafka-data"
    assert str(tmp_path / "kafka-data" / "kraft") in render_server_properties(config)


@pytest.mark.parametrize(
    "env",
    [
        {"ZOOM_CONNECTOR_KAFKA_PORT": "nine"},
        {"ZOOM_CONNECTOR_KAFKA_PORT": "70000"},
        {"ZOOM_CONNECTOR_KAFKA_PORT": "9093"},  # the controller's default port
    ],
)
def test_bad_ports_are_refused(env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        BrokerConfig.from_env({"ZOOM_CONNECTOR_KAFKA_DATA_DIR": str(tmp_path), **env})


def test_scram_users_need_a_sasl_port(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="SASL port"):
        BrokerConfig(data_dir=tmp_path, scram_users=(ScramUser("alice", "secret"),))


def test_server_properties_single_node_kraft(tmp_path: Path) -> None:
    config = BrokerConfig(data_dir=tmp_path, port=19092, controller_port=19093)
    props = properties(render_server_properties(config))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@localhost:19093"
    assert props["listeners"] == "PLAINTEXT://localhost:19092,CONTROLLER://localhost:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://localhost:19092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "kraft")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "min.insync.replicas",
        "num.partitions",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "true"
    assert int(props["log.segment.bytes"]) <= 64 * 1024 * 1024
    assert "sasl.enabled.mechanisms" not in props


def test_server_properties_with_a_scram_listener(tmp_path: Path) -> None:
    config = BrokerConfig(
        data_dir=tmp_path,
        sasl_port=19094,
        scram_users=(ScramUser("alice", "secret"),),
    )
    text = render_server_properties(config)
    props = properties(text)
    assert "SASL_PLAINTEXT://localhost:19094" in props["listeners"].split(",")
    assert "SASL_PLAINTEXT://localhost:19094" in props["advertised.listeners"].split(",")
    assert "CONTROLLER" not in props["advertised.listeners"]
    assert "SASL_PLAINTEXT:SASL_PLAINTEXT" in props["listener.security.protocol.map"]
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-256,SCRAM-SHA-512"
    for mechanism in ("scram-sha-256", "scram-sha-512"):
        jaas = props[f"listener.name.sasl_plaintext.{mechanism}.sasl.jaas.config"]
        assert jaas.startswith("org.apache.kafka.common.security.scram.ScramLoginModule")
    assert "secret" not in text  # passwords go to the broker's metadata, not to files
    assert "secret" not in repr(config)
    assert config.sasl_bootstrap == "localhost:19094"


def test_server_properties_with_the_tls_listeners(tmp_path: Path) -> None:
    config = BrokerConfig(
        data_dir=tmp_path,
        ssl_port=19095,
        mtls_port=19096,
        sasl_ssl_port=19097,
        scram_users=(ScramUser("alice", "secret"),),
    )
    with pytest.raises(ConfigurationError, match="password"):
        render_server_properties(config)
    props = properties(render_server_properties(config, "store-pw"))
    listeners = props["advertised.listeners"].split(",")
    for listener in (
        "SSL://localhost:19095",
        "MTLS://localhost:19096",
        "SASL_SSL://localhost:19097",
    ):
        assert listener in listeners
    assert set(props["listener.security.protocol.map"].split(",")) >= {
        "SSL:SSL",
        "MTLS:SSL",
        "SASL_SSL:SASL_SSL",
    }
    assert props["listener.name.mtls.ssl.client.auth"] == "required"
    assert "listener.name.ssl.ssl.client.auth" not in props
    assert props["ssl.keystore.location"] == str(tmp_path / "tls" / "broker.p12")
    assert props["ssl.truststore.type"] == "PKCS12"
    assert props["ssl.keystore.password"] == props["ssl.truststore.password"] == "store-pw"
    jaas = props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert jaas.startswith("org.apache.kafka.common.security.scram.ScramLoginModule")
    assert "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config" not in props
    assert config.tls and config.mtls_bootstrap == "localhost:19096"


def test_ephemeral_tls_instances_get_five_distinct_ports(tmp_path: Path) -> None:
    config = BrokerConfig.ephemeral(tmp_path, scram_users=(ScramUser("a", "b"),), tls=True)
    ports = [config.port, *config.extra_ports]
    assert len(set(ports)) == len(ports) == 6
    assert None not in (config.ssl_port, config.mtls_port, config.sasl_ssl_port, config.sasl_port)


def test_ephemeral_instances_get_distinct_free_ports(tmp_path: Path) -> None:
    config = BrokerConfig.ephemeral(tmp_path, sasl=True)
    ports = {config.port, config.controller_port, config.sasl_port}
    assert len(ports) == 3
    assert 9092 not in ports


def test_log4j2_writes_into_the_data_dir(tmp_path: Path) -> None:
    text = render_log4j2_properties(BrokerConfig(data_dir=tmp_path))
    assert f"appender.file.fileName = {tmp_path / 'logs' / 'server.log'}" in text
    assert "rootLogger.level = INFO" in text


def test_cluster_ids_are_kafka_uuids() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cluster_id in ids:
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


# --- Java --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('java version "1.8.0_392"\nJava(TM) SE Runtime Environment', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "23-ea" 2024-09-17', 23),
        ('openjdk version "11.0.22" 2024-01-16 LTS', 11),
        ("openjdk 21.0.2 2024-01-16\nOpenJDK Runtime Environment", 21),
        ("no version here", None),
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def fake_java_home(root: Path, version_line: str) -> Path:
    """A JAVA_HOME whose bin/java prints ``version_line`` to stderr, as ``java -version`` does."""
    java = root / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return root


def test_java_17_from_java_home_is_accepted(tmp_path: Path) -> None:
    home = fake_java_home(tmp_path, 'openjdk version "17.0.2" 2022-01-18')
    runtime = check_java({"JAVA_HOME": str(home), "PATH": ""})
    assert runtime.major == 17
    assert runtime.executable == home / "bin" / "java"


def test_java_11_is_refused_with_install_advice(tmp_path: Path) -> None:
    home = fake_java_home(tmp_path, 'openjdk version "11.0.22" 2024-01-16')
    with pytest.raises(JavaNotFoundError, match=r"Java 17 or newer.*Java 11") as caught:
        check_java({"JAVA_HOME": str(home), "PATH": ""})
    assert "openjdk-17-jre-headless" in str(caught.value)


def test_a_newer_installed_jdk_is_found_when_the_default_java_is_too_old(tmp_path: Path) -> None:
    default = fake_java_home(tmp_path / "default", 'openjdk version "17.0.2" 2022-01-18')
    jvm = tmp_path / "jvm"
    fake_java_home(jvm / "temurin-21", 'openjdk version "21.0.4" 2024-07-16')
    fake_java_home(jvm / "temurin-25", 'openjdk version "25.0.1" 2025-10-21')
    env = {"JAVA_HOME": str(default), "PATH": ""}
    runtime = find_java_at_least(21, "Apicurio", env, parents=(jvm,))
    assert runtime.major == 25
    assert runtime.executable == (jvm / "temurin-25" / "bin" / "java").resolve()
    assert (
        find_java_at_least(17, "Kafka", env, parents=(jvm,)).executable == default / "bin" / "java"
    )
    with pytest.raises(JavaNotFoundError, match=r"Apicurio needs Java 26 or newer.*Java 25"):
        find_java_at_least(26, "Apicurio", env, parents=(jvm,))


def test_no_java_at_all_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(JavaNotFoundError, match="none was found") as caught:
        check_java({"PATH": str(tmp_path)})
    assert "JAVA_HOME" in str(caught.value)
    assert "KAFKA_BOOTSTRAP_SERVERS" in str(caught.value)


# --- where the jars come from --------------------------------------------------------------


def fake_kafka_home(root: Path, version: str, log_config: str | None = None) -> Path:
    (root / "libs").mkdir(parents=True)
    (root / "libs" / f"kafka_2.13-{version}.jar").touch()
    (root / "libs" / f"kafka-clients-{version}.jar").touch()
    if log_config:
        (root / "config").mkdir()
        (root / "config" / log_config).touch()
    return root


def fake_cache(cache_home: Path, version: str = KAFKA_VERSION) -> Path:
    libs = cache_home / "zoom-connector" / f"kafka-{version}" / "libs"
    libs.mkdir(parents=True)
    (libs / f"kafka_2.13-{version}.jar").touch()
    return libs


def test_kafka_home_wins_over_the_cache(tmp_path: Path) -> None:
    home = fake_kafka_home(tmp_path / "kafka", "3.9.1", "log4j.properties")
    fake_cache(tmp_path / "cache")
    dist = resolve_distribution(
        environ={"KAFKA_HOME": str(home), "XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": ""}
    )
    assert dist.libs_dir == home / "libs"
    assert dist.version == "3.9.1"
    assert dist.source == f"KAFKA_HOME={home}"
    assert dist.classpath == f"{home / 'libs'}/*"
    # Kafka 3.x ships log4j 1 (reload4j): its own config is passed the log4j 1 way.
    assert dist.logging_jvm_args(tmp_path / "ours.properties") == [
        f"-Dlog4j.configuration=file:{home / 'config' / 'log4j.properties'}"
    ]


def test_kafka_home_4_uses_its_log4j2_config(tmp_path: Path) -> None:
    home = fake_kafka_home(tmp_path / "kafka", "4.1.0", "log4j2.yaml")
    dist = resolve_distribution(environ={"KAFKA_HOME": str(home), "PATH": ""})
    assert dist.logging_jvm_args(tmp_path / "ours.properties") == [
        f"-Dlog4j2.configurationFile={home / 'config' / 'log4j2.yaml'}"
    ]


def test_a_kafka_home_without_kafka_jars_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "libs").mkdir()
    (tmp_path / "libs" / "something-else-1.0.jar").touch()
    with pytest.raises(KafkaDistributionError, match="not a Kafka installation"):
        resolve_distribution(environ={"KAFKA_HOME": str(tmp_path), "PATH": ""})


def test_the_cache_is_reused_without_maven(tmp_path: Path) -> None:
    libs = fake_cache(tmp_path)
    dist = resolve_distribution(environ={"XDG_CACHE_HOME": str(tmp_path), "PATH": ""})
    assert dist.libs_dir == libs
    assert dist.version == KAFKA_VERSION
    assert dist.logging_jvm_args(tmp_path / "ours.properties") == [
        f"-Dlog4j2.configurationFile={tmp_path / 'ours.properties'}"
    ]


def test_a_cache_of_another_version_is_not_used(tmp_path: Path) -> None:
    fake_cache(tmp_path, "3.0.0")
    with pytest.raises(KafkaDistributionError):
        resolve_distribution(environ={"XDG_CACHE_HOME": str(tmp_path), "PATH": ""})


def test_nothing_to_run_explains_every_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(url: str, target: Path) -> None:
        raise OSError("archive unreachable")

    monkeypatch.setattr(distribution, "_download", unreachable)
    with pytest.raises(KafkaDistributionError) as caught:
        resolve_distribution(environ={"XDG_CACHE_HOME": str(tmp_path), "PATH": ""})
    message = str(caught.value)
    assert "KAFKA_HOME is not set" in message
    assert "`mvn` is not on PATH" in message
    assert "archive unreachable" in message
    assert not (tmp_path / "zoom-connector" / f"kafka-{KAFKA_VERSION}" / "libs").exists()


@pytest.mark.parametrize(
    ("published", "digest"),
    [
        ("abcdef0123456789  kafka_2.13-4.4.0.tgz\n", "abcdef0123456789"),  # sha512sum
        ("kafka_2.13-4.4.0.tgz: ABCD EF01 2345\n  6789 0A0B\n", "abcdef0123456789" + "0a0b"),
    ],
)
def test_both_apache_checksum_layouts_are_read(published: str, digest: str) -> None:
    assert distribution._read_sha512(published) == digest


def test_the_pom_is_package_data_and_takes_the_version_from_the_command_line() -> None:
    pom = resources.files("connector.kafka.local_broker").joinpath("broker-pom.xml")
    text = pom.read_text(encoding="utf-8")
    assert "<artifactId>kafka_2.13</artifactId>" in text
    assert "<version>${kafka.version}</version>" in text
    assert "log4j-core" in text


def test_distribution_logging_defaults_to_the_rendered_config(tmp_path: Path) -> None:
    dist = KafkaDistribution(tmp_path, "4.4.0", "test")
    assert dist.logging_jvm_args(tmp_path / "l.properties") == [
        f"-Dlog4j2.configurationFile={tmp_path / 'l.properties'}"
    ]


# --- the command, when nothing runs --------------------------------------------------------


def test_status_and_stop_of_a_broker_never_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    free = BrokerConfig.ephemeral(tmp_path)
    port, controller_port = free.port, free.controller_port
    monkeypatch.setenv("ZOOM_CONNECTOR_KAFKA_DATA_DIR", str(tmp_path / "kafka"))
    monkeypatch.setenv("ZOOM_CONNECTOR_KAFKA_PORT", str(port))
    monkeypatch.setenv("ZOOM_CONNECTOR_KAFKA_CONTROLLER_PORT", str(controller_port))
    assert command.main("status") == 1
    out = capsys.readouterr().out
    assert "not running" in out
    assert f"localhost:{port}" in out
    assert KAFKA_VERSION in out
    assert command.main("stop") == 0
    assert "not running" in capsys.readouterr().out
    assert not os.path.exists(tmp_path / "kafka" / "broker.pid")
