"""Starting, watching and stopping one local Kafka broker process: :class:`LocalBroker`.

``start`` renders the configuration into the data directory (with TLS listeners: after making
the certificates and stores, :mod:`.certs`), formats the KRaft storage on the first start (with
the SCRAM users' credentials, ``--add-scram``), launches the JVM detached (its own session,
output to ``logs/jvm.out``, pid in ``broker.pid``) and waits until the broker answers a metadata
request. It is idempotent: a broker we launched that is still up, or any Kafka broker already
answering on the port, is reused.

The JVM is not tied to the Python process that launched it: it keeps running after ``zoom-connector
kafka start`` or a test session exits, until ``stop`` (SIGTERM, then SIGKILL after a deadline).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from connector.kafka.local_broker.certs import ensure_broker_tls
from connector.kafka.local_broker.config import (
    BrokerConfig,
    new_cluster_id,
    render_log4j2_properties,
    render_server_properties,
)
from connector.kafka.local_broker.distribution import (
    KAFKA_VERSION,
    KafkaDistribution,
    resolve_distribution,
)
from connector.kafka.local_broker.errors import BrokerStartError, LocalBrokerError, PortInUseError
from connector.kafka.local_broker.java import JavaRuntime, check_java

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 60.0
_POLL_SECONDS = 0.5
_BROKER_MAIN = "kafka.Kafka"
_STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"

# Small heap, few GC and JIT threads: the broker shares a small machine with Python workers.
_JVM_TUNING = [
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:ParallelGCThreads=1",
    "-XX:ConcGCThreads=1",
    "-XX:CICompilerCount=2",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]

StartOutcome = Literal["started", "already-running", "foreign"]


@dataclass(frozen=True)
class StartResult:
    """What :meth:`LocalBroker.start` did: ``started`` a JVM, found ours ``already-running``, or
    found a ``foreign`` broker (not launched by us) answering on the port."""

    outcome: StartOutcome
    bootstrap: str
    pid: int | None
    seconds: float


@dataclass(frozen=True)
class BrokerStatus:
    """A snapshot for ``zoom-connector kafka status``.

    ``running`` is true when a broker we launched is alive; ``answers`` when some Kafka broker
    answers a metadata request at ``bootstrap`` (ours, or a foreign one).
    """

    running: bool
    answers: bool
    pid: int | None
    bootstrap: str
    version: str
    data_dir: Path
    server_log: Path


class LocalBroker:
    """One single-node KRaft broker, described by a :class:`BrokerConfig`.

    ``LocalBroker()`` is the default instance (``localhost:9092``, ``ZOOM_CONNECTOR_KAFKA_*``
    overrides); ``LocalBroker(BrokerConfig.ephemeral(tmp_dir))`` is a second, independent one.
    """

    def __init__(
        self,
        config: BrokerConfig | None = None,
        *,
        version: str = KAFKA_VERSION,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self.config = config or BrokerConfig.from_env(self._environ)
        self.version = version

    @property
    def bootstrap(self) -> str:
        return self.config.bootstrap

    # --- public API ------------------------------------------------------------------------

    def ensure_started(self, timeout: float = START_TIMEOUT_SECONDS) -> str:
        """Start the broker unless one already answers; return the bootstrap address."""
        return self.start(timeout).bootstrap

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> StartResult:
        """Like :meth:`ensure_started`, saying what happened."""
        began = time.monotonic()
        deadline = began + timeout
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            pid = self._our_pid()
            if pid is not None:
                self._wait_until_answering(pid, deadline)
                self._ensure_scram_users()
                return StartResult("already-running", self.bootstrap, pid, time.monotonic() - began)
            if _port_open(self.config.host, self.config.port):
                if broker_answers(self.bootstrap, timeout=5.0):
                    return StartResult("foreign", self.bootstrap, None, time.monotonic() - began)
                raise PortInUseError(
                    f"port {self.config.port} is taken by something that is not a Kafka broker; "
                    f"stop it or choose another port (ZOOM_CONNECTOR_KAFKA_PORT)"
                )
            self._check_ports_free()
            java = check_java(self._environ)
            dist = resolve_distribution(self.version, self._environ)
            self._write_configs(java)
            self._format_storage(java, dist)
            pid = self._launch(java, dist)
            self._wait_until_answering(pid, deadline)
            self._ensure_scram_users()
            return StartResult("started", self.bootstrap, pid, time.monotonic() - began)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
        """Stop the broker we launched: SIGTERM, then SIGKILL after ``timeout``.

        Returns whether there was one to stop. A foreign broker on the port is never touched.
        """
        if not self.config.data_dir.is_dir():
            return False
        with self._lock():
            pid = self._our_pid()
            if pid is None:
                return False
            logger.info("stopping the Kafka broker (pid %d)", pid)
            _signal(pid, signal.SIGTERM)
            if not _wait_for_exit(pid, time.monotonic() + timeout):
                logger.warning("the broker did not stop within %.0f s: killing it", timeout)
                _signal(pid, signal.SIGKILL)
                _wait_for_exit(pid, time.monotonic() + 10.0)
            self.config.pid_file.unlink(missing_ok=True)
            return True

    def is_running(self) -> bool:
        """Whether a broker we launched from this data directory is alive."""
        return self._our_pid() is not None

    def status(self) -> BrokerStatus:
        pid = self._our_pid()
        answers = _port_open(self.config.host, self.config.port) and broker_answers(
            self.bootstrap, timeout=5.0
        )
        state = self._read_state()
        version = str(state.get("version", self.version)) if pid is not None else self.version
        return BrokerStatus(
            running=pid is not None,
            answers=answers,
            pid=pid,
            bootstrap=self.bootstrap,
            version=version,
            data_dir=self.config.data_dir,
            server_log=self.config.server_log,
        )

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the broker's log and of the JVM's output, for error messages."""
        parts = []
        for path in (self.config.server_log, self.config.jvm_out):
            tail = _tail(path, lines)
            if tail:
                parts.append(f"--- {path} (last {lines} lines) ---\n{tail}")
        return "\n".join(parts) or "(the broker wrote no log)"

    # --- launching ---------------------------------------------------------------------------

    def _write_configs(self, java: JavaRuntime) -> None:
        self.config.kraft_dir.mkdir(parents=True, exist_ok=True)
        self.config.logs_dir.mkdir(parents=True, exist_ok=True)
        password = None
        if self.config.tls:
            keytool = java.executable.parent / "keytool"
            tls = ensure_broker_tls(self.config.tls_dir, keytool, self.config.host)
            password = tls.store_password()
        self.config.server_properties.write_text(render_server_properties(self.config, password))
        self.config.log4j2_properties.write_text(render_log4j2_properties(self.config))

    def _java_command(self, java: JavaRuntime, dist: KafkaDistribution, main: str) -> list[str]:
        heap = self.config.heap_mb
        return [
            str(java.executable),
            f"-Xms{min(256, heap)}m",
            f"-Xmx{heap}m",
            *_JVM_TUNING,
            f"-Dkafka.logs.dir={self.config.logs_dir}",
            *dist.logging_jvm_args(self.config.log4j2_properties),
            "-cp",
            dist.classpath,
            main,
        ]

    def _format_storage(self, java: JavaRuntime, dist: KafkaDistribution) -> None:
        """``kafka-storage format`` once per data directory (KRaft refuses unformatted dirs)."""
        if (self.config.kraft_dir / "meta.properties").exists():
            return
        command = [
            *self._java_command(java, dist, _STORAGE_TOOL_MAIN),
            "format",
            "--cluster-id",
            new_cluster_id(),
            "--config",
            str(self.config.server_properties),
            "--ignore-formatted",
        ]
        for user in self.config.scram_users:
            for mechanism in user.mechanisms:
                # Kafka's own syntax; a password with "]" or "," cannot be given this way.
                command += [
                    "--add-scram",
                    f"{mechanism}=[name={user.username},password={user.password}]",
                ]
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=120, check=False
        )
        if completed.returncode != 0:
            raise BrokerStartError(
                f"formatting {self.config.kraft_dir} failed ({completed.returncode}):\n"
                + (completed.stdout + completed.stderr).strip()
            )

    def _launch(self, java: JavaRuntime, dist: KafkaDistribution) -> int:
        command = [
            *self._java_command(java, dist, _BROKER_MAIN),
            str(self.config.server_properties),
        ]
        logger.info(
            "starting Apache Kafka %s at %s (jars: %s, data: %s)",
            dist.version,
            self.bootstrap,
            dist.source,
            self.config.data_dir,
        )
        out = os.open(self.config.jvm_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            # posix_spawn rather than subprocess.Popen: the JVM must outlive us, and a Popen
            # object for a still-running child warns (ResourceWarning) when collected.
            pid = os.posix_spawn(
                command[0],
                command,
                dict(self._environ),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, out, 1),
                    (os.POSIX_SPAWN_DUP2, out, 2),
                ],
                setsid=True,
            )
        except OSError as exc:
            raise BrokerStartError(f"could not launch {command[0]}: {exc}") from exc
        finally:
            os.close(out)
        self.config.pid_file.write_text(f"{pid}\n")
        state = {
            "pid": pid,
            "version": dist.version,
            "jars": dist.source,
            "bootstrap": self.bootstrap,
            "sasl_bootstrap": self.config.sasl_bootstrap,
            "ssl_bootstrap": self.config.ssl_bootstrap,
            "mtls_bootstrap": self.config.mtls_bootstrap,
            "sasl_ssl_bootstrap": self.config.sasl_ssl_bootstrap,
            "started_at": time.time(),
        }
        self.config.state_file.write_text(json.dumps(state, indent=2) + "\n")
        return pid

    def _wait_until_answering(self, pid: int, deadline: float) -> None:
        """Poll until the broker answers a metadata request; fail fast if the JVM exits."""
        while True:
            if not _alive(pid):
                self.config.pid_file.unlink(missing_ok=True)
                raise BrokerStartError(
                    f"the Kafka broker (pid {pid}) exited during start-up.\n{self.log_tail()}"
                )
            if _port_open(self.config.host, self.config.port) and broker_answers(
                self.bootstrap, timeout=2.0
            ):
                return
            if time.monotonic() >= deadline:
                raise BrokerStartError(
                    f"the Kafka broker (pid {pid}) did not answer at {self.bootstrap} in time; "
                    f"it is still running (`zoom-connector kafka stop` ends it).\n{self.log_tail()}"
                )
            time.sleep(_POLL_SECONDS)

    def _check_ports_free(self) -> None:
        for port in self.config.extra_ports:
            if _port_open(self.config.host, port):
                raise PortInUseError(
                    f"port {port} (needed by the local broker) is taken; free it or choose "
                    "other ports (ZOOM_CONNECTOR_KAFKA_PORT, ZOOM_CONNECTOR_KAFKA_CONTROLLER_PORT)"
                )

    def _ensure_scram_users(self) -> None:
        """Create or update the SCRAM credentials of ``config.scram_users`` (over PLAINTEXT)."""
        if not self.config.scram_users:
            return
        from confluent_kafka.admin import (
            AdminClient,
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialAlteration,
            UserScramCredentialUpsertion,
        )

        mechanisms = {
            "SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256,
            "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512,
        }
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        # One request per mechanism: a request may alter each user only once.
        for name, mechanism in mechanisms.items():
            upserts: list[UserScramCredentialAlteration] = [
                UserScramCredentialUpsertion(
                    user.username, ScramCredentialInfo(mechanism, 4096), user.password.encode()
                )
                for user in self.config.scram_users
                if name in user.mechanisms
            ]
            if not upserts:
                continue
            for user, future in admin.alter_user_scram_credentials(upserts).items():
                try:
                    future.result(timeout=30)
                except Exception as exc:
                    raise LocalBrokerError(
                        f"could not set the {name} credentials of {user}: {exc}"
                    ) from exc

    # --- bookkeeping -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One start or stop at a time per data directory, across processes."""
        with self.config.lock_file.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _our_pid(self) -> int | None:
        """The pid in ``broker.pid`` if that process is alive and is our broker, else None."""
        try:
            pid = int(self.config.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        command_line = _command_line(pid)
        if (
            _alive(pid)
            and command_line is not None
            and _BROKER_MAIN in command_line
            and str(self.config.server_properties) in command_line
        ):
            return pid
        self.config.pid_file.unlink(missing_ok=True)  # stale: the pid is gone or was reused
        return None

    def _read_state(self) -> dict[str, object]:
        try:
            state = json.loads(self.config.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}


def broker_answers(bootstrap: str, timeout: float) -> bool:
    """Whether a Kafka broker at ``bootstrap`` answers a metadata request within ``timeout``."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "log_level": 0,  # a refused connection while probing is expected, not news
            "error_cb": lambda _error: None,
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(metadata.brokers)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count; our own exited child is reaped)."""
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _command_line(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        pass
    if sys.platform == "linux":
        return None
    try:  # macOS and other systems without /proc
        completed = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() or None


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _wait_for_exit(pid: int, deadline: float) -> bool:
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
