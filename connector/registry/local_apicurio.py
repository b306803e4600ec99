"""A local Apicurio Registry (a real Confluent-compatible schema registry), for tests and trials.

Apicurio Registry (Apache 2.0) serves Confluent's schema-registry API at ``/apis/ccompat/v7``, so
the worker, confluent-kafka's ``SchemaRegistryClient`` and its ``AvroDeserializer`` talk to it as
they would to Confluent's registry. :class:`LocalApicurio` runs one in memory (its H2 database
lives and dies with the JVM):

1. :func:`resolve_registry_app` finds the app: ``APICURIO_REGISTRY_HOME`` (an unpacked
   ``apicurio-registry-app`` tarball), else the cache
   ``${XDG_CACHE_HOME:-~/.cache}/zoom-connector/apicurio-registry-<version>/``, else Maven:
   ``mvn dependency:copy`` of ``io.apicurio:apicurio-registry-app:<version>:tar.gz:all`` (a
   Quarkus fast-jar, ~160 MB, kept in ``~/.m2`` too), unpacked into the cache.
2. A Java 21+ runtime (:func:`~connector.kafka.local_broker.java.find_java_at_least`; Java 17 is
   too old for Apicurio 3).
3. ``java -jar quarkus-run.jar`` on free ports, with the global compatibility rule ``BACKWARD``
   by default (Apicurio's own default is no rule at all, which the ccompat API reports as
   ``NONE``), then polled until the management port says ready and the ccompat API answers.

Try it by hand: ``python -m connector.registry.local_apicurio`` prints ``SCHEMA_REGISTRY_URL`` and
runs until Ctrl-C; ``--fetch`` only fetches the app and checks for Java (CI runs it before the
tests, so a missing piece fails there, with its own timing).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Final

from connector.errors import ConnectorError
from connector.kafka.local_broker.config import free_ports
from connector.kafka.local_broker.distribution import cache_dir
from connector.kafka.local_broker.java import JavaRuntime, find_java_at_least
from connector.maven import locked, run_maven

logger = logging.getLogger(__name__)

APICURIO_VERSION: Final = "3.3.3"
MIN_JAVA_MAJOR: Final = 21
CCOMPAT_PATH: Final = "/apis/ccompat/v7"
ENV_HOME: Final = "APICURIO_REGISTRY_HOME"
START_TIMEOUT_SECONDS: Final = 120.0
MAVEN_TIMEOUT_SECONDS: Final = 900.0
_DEPENDENCY_PLUGIN: Final = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_RUNNER: Final = "quarkus-run.jar"
_POLL_SECONDS: Final = 0.25
_PORT_ATTEMPTS: Final = 3
_PORT_TAKEN: Final = re.compile(r"in use by another process|already in use")

# A small registry on a small, shared machine: little heap, the quick JIT only, one GC thread.
_JVM_TUNING: Final = (
    "-Xms64m",
    "-Xmx384m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)


class RegistryStartError(ConnectorError):
    """The local registry could not be fetched, or its JVM exited or did not answer in time."""


def maven_artifact(version: str = APICURIO_VERSION) -> str:
    """The Maven coordinates of Apicurio's Quarkus fast-jar tarball."""
    return f"io.apicurio:apicurio-registry-app:{version}:tar.gz:all"


def resolve_registry_app(
    version: str = APICURIO_VERSION, environ: Mapping[str, str] | None = None
) -> Path:
    """The folder holding ``quarkus-run.jar``: found, or fetched with Maven and unpacked."""
    env = os.environ if environ is None else environ
    home = env.get(ENV_HOME)
    if home:
        path = Path(home).expanduser()
        if not (path / _RUNNER).is_file():
            raise RegistryStartError(
                f"{ENV_HOME}={path} holds no {_RUNNER}: point it at an unpacked"
                f" apicurio-registry-app tarball, or unset it"
            )
        return path
    version_dir = cache_dir(env) / f"apicurio-registry-{version}"
    app = version_dir / "app"
    version_dir.mkdir(parents=True, exist_ok=True)
    with locked(version_dir / ".lock"):
        if (app / _RUNNER).is_file():
            return app
        mvn = shutil.which("mvn", path=env.get("PATH"))
        if mvn is None:
            raise RegistryStartError(
                f"Apicurio Registry {version} is not cached in {app} and `mvn` is not on PATH:"
                f" install Maven (it fetches {maven_artifact(version)} from Maven Central), or"
                f" unpack that tarball and set {ENV_HOME} to it"
            )
        _fetch_with_maven(Path(mvn), version, version_dir, env)
    return app


def _fetch_with_maven(mvn: Path, version: str, version_dir: Path, env: Mapping[str, str]) -> None:
    logger.info("fetching %s with Maven (first start only)", maven_artifact(version))
    with tempfile.TemporaryDirectory(dir=version_dir, prefix="fetch-") as staging:
        run_maven(
            mvn,
            [
                f"{_DEPENDENCY_PLUGIN}:copy",
                f"-Dartifact={maven_artifact(version)}",
                f"-DoutputDirectory={staging}",
            ],
            cwd=Path(staging),
            env=env,
            timeout=MAVEN_TIMEOUT_SECONDS,
            error=RegistryStartError,
        )
        tarballs = list(Path(staging).glob("*.tar.gz"))
        if len(tarballs) != 1:
            raise RegistryStartError(f"Maven left no single tarball in {staging}: {tarballs}")
        unpacked = Path(staging) / "app"
        with tarfile.open(tarballs[0], "r:gz") as archive:
            archive.extractall(unpacked, filter="data")
        if not (unpacked / _RUNNER).is_file():
            raise RegistryStartError(f"{tarballs[0].name} holds no {_RUNNER}")
        unpacked.rename(version_dir / "app")  # a rename: never a half-unpacked cache


class LocalApicurio:
    """One in-memory Apicurio Registry JVM on free ports; its log in ``work_dir/apicurio.log``.

    ``compatibility`` is the global compatibility rule (``None``: Apicurio's default, no rule).
    Use as a context manager, or :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        compatibility: str | None = "BACKWARD",
        version: str = APICURIO_VERSION,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.work_dir = work_dir
        self.compatibility = compatibility
        self.version = version
        self._environ = os.environ if environ is None else environ
        self.http_port, self.management_port = free_ports(2)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The Confluent-compatible API: what ``SCHEMA_REGISTRY_URL`` is set to."""
        return f"http://127.0.0.1:{self.http_port}{CCOMPAT_PATH}"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "apicurio.log"

    def command(self, java: JavaRuntime, app: Path) -> list[str]:
        rule = (
            [f"-Dapicurio.rules.global.compatibility={self.compatibility}"]
            if self.compatibility
            else []
        )
        return [
            str(java.executable),
            *_JVM_TUNING,
            f"-Dquarkus.http.port={self.http_port}",
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.management.port={self.management_port}",
            "-Dquarkus.management.host=127.0.0.1",
            *rule,
            "-jar",
            str(app / _RUNNER),
        ]

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> str:
        """Fetch if need be, launch, and return :attr:`url` once the registry answers."""
        java = find_java_at_least(MIN_JAVA_MAJOR, "Apicurio Registry", self._environ)
        app = resolve_registry_app(self.version, self._environ)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        for attempt in range(_PORT_ATTEMPTS):
            self._launch(java, app)
            try:
                self._wait_until_ready(began + timeout)
            except RegistryStartError:
                # The ports were free when chosen; something may have taken one since.
                if attempt + 1 == _PORT_ATTEMPTS or not _PORT_TAKEN.search(self.log_tail(400)):
                    raise
                self.http_port, self.management_port = free_ports(2)
                continue
            logger.info("Apicurio Registry ready in %.1f s", time.monotonic() - began)
            break
        return self.url

    def _launch(self, java: JavaRuntime, app: Path) -> None:
        logger.info(
            "starting Apicurio Registry %s at %s (Java %d)", self.version, self.url, java.major
        )
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self.command(java, app),
                cwd=self.work_dir,
                env=dict(self._environ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; a no-op when not running."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _wait_until_ready(self, deadline: float) -> None:
        ready = f"http://127.0.0.1:{self.management_port}/health/ready"
        subjects = f"{self.url}/subjects"
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise RegistryStartError(
                    f"Apicurio Registry exited with {code} during start-up:\n{self.log_tail()}"
                )
            if _answers(ready) and _answers(subjects):
                return
            if time.monotonic() >= deadline:
                self.stop()
                raise RegistryStartError(
                    f"Apicurio Registry did not answer at {self.url} in time:\n{self.log_tail()}"
                )
            time.sleep(_POLL_SECONDS)

    def __enter__(self) -> LocalApicurio:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _answers(url: str) -> bool:
    """Whether ``GET url`` answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str] | None = None) -> int:
    """Run a local registry until Ctrl-C, printing its URL (``--fetch``: only get it ready)."""
    parser = argparse.ArgumentParser(prog="python -m connector.registry.local_apicurio")
    parser.add_argument("--fetch", action="store_true", help="fetch the app, check Java, exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.fetch:
        try:
            java = find_java_at_least(MIN_JAVA_MAJOR, "Apicurio Registry")
            app = resolve_registry_app()
        except ConnectorError as exc:
            print(f"local_apicurio: {exc}")
            return 2
        print(f"Apicurio Registry {APICURIO_VERSION}: {app}; Java {java.major}: {java.executable}")
        return 0
    with tempfile.TemporaryDirectory(prefix="apicurio-") as work, LocalApicurio(Path(work)) as reg:
        print(f"SCHEMA_REGISTRY_URL={reg.url}", flush=True)
        try:
            while reg.is_running():
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
