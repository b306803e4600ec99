"""What a local broker instance is: its ports, its data directory, and the files rendered there.

A :class:`BrokerConfig` is plain data. :meth:`BrokerConfig.from_env` gives the default instance
(``localhost:9092``, data under ``${XDG_DATA_HOME:-~/.local/share}/zoom-connector/kafka``), and
:meth:`BrokerConfig.ephemeral` a second one on free ports, for tests. The ``render_*`` functions
turn a config into the text of ``server.properties`` and of the log4j2 configuration; they are
pure, so unit tests check them without a JVM.

Layout of a data directory::

    server.properties   generated at every start (edits are overwritten)
    log4j2.properties   generated at every start
    kraft/              the broker's log.dirs, KRaft metadata included (formatted once)
    logs/server.log     the broker's own log (log4j2, rolled at 10 MiB)
    logs/jvm.out        the JVM's stdout and stderr (crashes, GC warnings)
    broker.pid          the pid of the JVM we launched
    broker.json         what was launched: version, bootstrap, jars
    tls/                CA, broker and client certificates and the PKCS12 stores (made once,
                        when a TLS listener is configured; see :mod:`.certs`)
"""

from __future__ import annotations

import base64
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from connector.errors import ConfigurationError

ENV_PORT = "ZOOM_CONNECTOR_KAFKA_PORT"
ENV_CONTROLLER_PORT = "ZOOM_CONNECTOR_KAFKA_CONTROLLER_PORT"
ENV_DATA_DIR = "ZOOM_CONNECTOR_KAFKA_DATA_DIR"

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 9092
DEFAULT_CONTROLLER_PORT = 9093
NODE_ID = 1

ScramMechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512"]
SCRAM_MECHANISMS: tuple[ScramMechanism, ...] = ("SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class ScramUser:
    """A user of the optional SASL listeners, with a password for each mechanism."""

    username: str
    password: str = field(repr=False)
    mechanisms: tuple[ScramMechanism, ...] = SCRAM_MECHANISMS


@dataclass(frozen=True)
class BrokerConfig:
    """One local single-node KRaft broker: where it listens and where it keeps its files.

    ``sasl_port`` adds a SASL_PLAINTEXT listener accepting SCRAM-SHA-256 and SCRAM-SHA-512 for
    ``scram_users`` (the PLAINTEXT listener stays, for admin work and inter-broker traffic).
    The TLS listeners, each optional: ``ssl_port`` (server-only TLS), ``mtls_port`` (TLS requiring
    a client certificate signed by the broker's CA) and ``sasl_ssl_port`` (SCRAM over TLS).
    """

    data_dir: Path
    port: int = DEFAULT_PORT
    controller_port: int = DEFAULT_CONTROLLER_PORT
    host: str = DEFAULT_HOST
    sasl_port: int | None = None
    scram_users: tuple[ScramUser, ...] = ()
    heap_mb: int = 512
    ssl_port: int | None = None
    mtls_port: int | None = None
    sasl_ssl_port: int | None = None

    def __post_init__(self) -> None:
        ports = [self.port, *self.extra_ports]
        for port in ports:
            if not 0 < port < 65536:
                raise ConfigurationError(f"not a TCP port: {port}")
        if len(set(ports)) != len(ports):
            raise ConfigurationError(f"the broker's ports must differ, got {ports}")
        if self.scram_users and not any(self._sasl_ports()):
            raise ConfigurationError("SCRAM users need a SASL port (sasl_port, sasl_ssl_port)")

    def _sasl_ports(self) -> tuple[int | None, ...]:
        return (self.sasl_port, self.sasl_ssl_port)

    def _tls_ports(self) -> tuple[int | None, ...]:
        return (self.ssl_port, self.mtls_port, self.sasl_ssl_port)

    @property
    def tls(self) -> bool:
        """Whether any TLS listener is configured (the broker then needs its ``tls/`` files)."""
        return any(p is not None for p in self._tls_ports())

    @property
    def sasl(self) -> bool:
        return any(p is not None for p in self._sasl_ports())

    @property
    def extra_ports(self) -> list[int]:
        """Every port besides the PLAINTEXT one."""
        found = (self.controller_port, self.sasl_port, *self._tls_ports())
        return [p for p in found if p is not None]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BrokerConfig:
        """The default instance, with the ``ZOOM_CONNECTOR_KAFKA_*`` overrides applied."""
        env = os.environ if environ is None else environ
        data_dir = env.get(ENV_DATA_DIR) or str(default_data_dir(env))
        return cls(
            data_dir=Path(data_dir).expanduser().absolute(),
            port=_port_from_env(env, ENV_PORT, DEFAULT_PORT),
            controller_port=_port_from_env(env, ENV_CONTROLLER_PORT, DEFAULT_CONTROLLER_PORT),
        )

    @classmethod
    def ephemeral(
        cls,
        data_dir: Path,
        *,
        sasl: bool = False,
        scram_users: tuple[ScramUser, ...] = (),
        tls: bool = False,
    ) -> BrokerConfig:
        """An extra instance in ``data_dir`` on ports that are free right now.

        ``sasl`` (or ``scram_users``) adds the SASL_PLAINTEXT listener; ``tls`` the three TLS
        listeners (SSL, mutual TLS, SASL_SSL).
        """
        with_sasl = sasl or bool(scram_users)
        ports = free_ports(2 + int(with_sasl) + 3 * int(tls))
        extra = iter(ports[2:])
        return cls(
            data_dir=data_dir,
            port=ports[0],
            controller_port=ports[1],
            sasl_port=next(extra) if with_sasl else None,
            scram_users=scram_users,
            ssl_port=next(extra) if tls else None,
            mtls_port=next(extra) if tls else None,
            sasl_ssl_port=next(extra) if tls else None,
        )

    @property
    def bootstrap(self) -> str:
        """The PLAINTEXT bootstrap address clients use."""
        return f"{self.host}:{self.port}"

    @property
    def sasl_bootstrap(self) -> str | None:
        """The SASL_PLAINTEXT bootstrap address, when that listener is enabled."""
        return None if self.sasl_port is None else f"{self.host}:{self.sasl_port}"

    @property
    def ssl_bootstrap(self) -> str | None:
        """The server-only TLS listener's address (``KAFKA_SECURITY_PROTOCOL=SSL``)."""
        return None if self.ssl_port is None else f"{self.host}:{self.ssl_port}"

    @property
    def mtls_bootstrap(self) -> str | None:
        """The mutual-TLS listener's address (``SSL`` with a client certificate)."""
        return None if self.mtls_port is None else f"{self.host}:{self.mtls_port}"

    @property
    def sasl_ssl_bootstrap(self) -> str | None:
        """The SCRAM-over-TLS listener's address (``SASL_SSL``)."""
        return None if self.sasl_ssl_port is None else f"{self.host}:{self.sasl_ssl_port}"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    # Files in the data directory (see the module docstring).
    @property
    def server_properties(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log4j2_properties(self) -> Path:
        return self.data_dir / "log4j2.properties"

    @property
    def kraft_dir(self) -> Path:
        return self.data_dir / "kraft"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def server_log(self) -> Path:
        return self.logs_dir / "server.log"

    @property
    def jvm_out(self) -> Path:
        return self.logs_dir / "jvm.out"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "broker.json"

    @property
    def lock_file(self) -> Path:
        return self.data_dir / "broker.lock"


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``${XDG_DATA_HOME:-~/.local/share}/zoom-connector/kafka``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "zoom-connector" / "kafka"


def _port_from_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a port number, got {raw!r}") from None


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on localhost at the time of the call."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as Kafka's Uuid)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):  # Kafka avoids these: they read like a CLI flag.
            return text


def render_server_properties(config: BrokerConfig, store_password: str | None = None) -> str:
    """The broker's ``server.properties``: combined broker+controller, small and single-node.

    ``store_password`` opens the PKCS12 stores in ``tls/`` (needed when a TLS listener is on).
    """
    if config.tls and store_password is None:
        raise ConfigurationError("the TLS listeners need the password of the broker's stores")
    listeners = [f"PLAINTEXT://{config.host}:{config.port}"]
    protocol_map = ["CONTROLLER:PLAINTEXT", "PLAINTEXT:PLAINTEXT"]
    optional = (
        ("SASL_PLAINTEXT", "SASL_PLAINTEXT", config.sasl_port),
        ("SSL", "SSL", config.ssl_port),
        ("MTLS", "SSL", config.mtls_port),
        ("SASL_SSL", "SASL_SSL", config.sasl_ssl_port),
    )
    for name, protocol, port in optional:
        if port is not None:
            listeners.append(f"{name}://{config.host}:{port}")
            protocol_map.append(f"{name}:{protocol}")
    advertised = list(listeners)
    listeners.append(f"CONTROLLER://{config.host}:{config.controller_port}")

    props: list[tuple[str, str | int]] = [
        # KRaft, one node that is both broker and controller, with a static quorum of itself
        # (a static quorum keeps working if the controller port is changed later).
        ("process.roles", "broker,controller"),
        ("node.id", NODE_ID),
        ("controller.quorum.voters", f"{NODE_ID}@{config.host}:{config.controller_port}"),
        ("controller.listener.names", "CONTROLLER"),
        ("listeners", ",".join(listeners)),
        ("advertised.listeners", ",".join(advertised)),
        ("inter.broker.listener.name", "PLAINTEXT"),
        ("listener.security.protocol.map", ",".join(protocol_map)),
        ("log.dirs", str(config.kraft_dir)),
        # Single node: every internal topic has one replica.
        ("offsets.topic.replication.factor", 1),
        ("offsets.topic.num.partitions", 10),
        ("transaction.state.log.replication.factor", 1),
        ("transaction.state.log.min.isr", 1),
        ("transaction.state.log.num.partitions", 10),
        ("share.coordinator.state.topic.replication.factor", 1),
        ("share.coordinator.state.topic.min.isr", 1),
        ("default.replication.factor", 1),
        ("min.insync.replicas", 1),
        # Developer conveniences.
        ("group.initial.rebalance.delay.ms", 0),
        ("auto.create.topics.enable", "true"),
        ("delete.topic.enable", "true"),
        ("num.partitions", 1),
        ("log.segment.bytes", 16 * 1024 * 1024),
        ("log.retention.hours", 72),
        ("log.retention.check.interval.ms", 60_000),
        # Few threads and small buffers: a laptop or a 2-core CI runner, shared with tests.
        ("num.network.threads", 2),
        ("num.io.threads", 2),
        ("background.threads", 2),
        ("num.recovery.threads.per.data.dir", 1),
        ("num.replica.fetchers", 1),
        ("log.cleaner.threads", 1),
        ("log.cleaner.dedupe.buffer.size", 16 * 1024 * 1024),
        ("group.coordinator.threads", 1),
        ("share.coordinator.threads", 1),
    ]
    if config.sasl:
        jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        props.append(("sasl.enabled.mechanisms", ",".join(SCRAM_MECHANISMS)))
        for listener, port in (
            ("sasl_plaintext", config.sasl_port),
            ("sasl_ssl", config.sasl_ssl_port),
        ):
            if port is not None:
                props.extend(
                    (f"listener.name.{listener}.{mechanism.lower()}.sasl.jaas.config", jaas)
                    for mechanism in SCRAM_MECHANISMS
                )
    if config.tls:
        tls = config.tls_dir
        props.extend(
            [
                ("ssl.keystore.type", "PKCS12"),
                ("ssl.keystore.location", str(tls / "broker.p12")),
                ("ssl.keystore.password", str(store_password)),
                ("ssl.truststore.type", "PKCS12"),
                ("ssl.truststore.location", str(tls / "truststore.p12")),
                ("ssl.truststore.password", str(store_password)),
            ]
        )
        if config.mtls_port is not None:
            props.append(("listener.name.mtls.ssl.client.auth", "required"))

    lines = ["# Generated by zoom-connector at every start: edits here are overwritten."]
    lines.extend(f"{key}={value}" for key, value in props)
    return "\n".join(lines) + "\n"


def render_log4j2_properties(config: BrokerConfig) -> str:
    """log4j2 settings: INFO into ``logs/server.log``, rolled at 10 MiB, five files kept."""
    log = config.server_log
    return f"""\
# Generated by zoom-connector at every start: edits here are overwritten.
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.filePattern = {log}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 10MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 5
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""
