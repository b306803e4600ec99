"""Where the Kafka jars come from: ``KAFKA_HOME``, else Maven Central, else the Apache archive.

:func:`resolve_distribution` tries, in order:

1. ``KAFKA_HOME``: an unpacked Kafka release; its ``libs/*.jar`` and its own logging config are
   used as they are, whatever its version.
2. The cache, ``${XDG_CACHE_HOME:-~/.cache}/zoom-connector/kafka-<version>/libs``, filled by
   step 3 or 4 on an earlier start.
3. Maven: ``mvn dependency:copy-dependencies`` on the small ``broker-pom.xml`` shipped in this
   package (the broker, its runtime dependencies and a log4j2 backend; Maven keeps its own
   download cache in ``~/.m2``).
4. The release tarball from the Apache archive (only its ``libs/`` is kept).

:data:`KAFKA_VERSION` is the one place the Kafka version is pinned; see the README for why this
one (the newest release that aiokafka, and so Faust, and confluent-kafka both work with).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from connector.kafka.local_broker.errors import KafkaDistributionError
from connector.maven import locked, run_maven

logger = logging.getLogger(__name__)

KAFKA_VERSION = "4.4.0"
SCALA_VERSION = "2.13"
ARCHIVE_URL = "https://archive.apache.org/dist/kafka/{version}/kafka_{scala}-{version}.tgz"
MAVEN_TIMEOUT_SECONDS = 600.0
DOWNLOAD_TIMEOUT_SECONDS = 20.0

_CORE_JAR = re.compile(r"^kafka_\d+\.\d+-(\d+(?:\.\d+)+)\.jar$")


@dataclass(frozen=True)
class KafkaDistribution:
    """A folder of Kafka jars the broker can run from.

    ``log_config`` is the distribution's own logging configuration (a ``KAFKA_HOME`` has one);
    ``None`` means "use the one the launcher renders".
    """

    libs_dir: Path
    version: str
    source: str
    log_config: Path | None = None

    @property
    def classpath(self) -> str:
        """A ``java -cp`` value: every jar in the folder (Java expands the ``*``)."""
        return str(self.libs_dir / "*")

    def logging_jvm_args(self, rendered_log4j2: Path) -> list[str]:
        """The system properties pointing the JVM at a logging configuration."""
        config = self.log_config
        if config is not None and config.suffix == ".properties" and config.stem == "log4j":
            return [f"-Dlog4j.configuration=file:{config}"]  # Kafka 3.x ships log4j 1 (reload4j)
        return [f"-Dlog4j2.configurationFile={config or rendered_log4j2}"]


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/zoom-connector``: jars live here, outside any checkout."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "zoom-connector"


def libs_version(libs_dir: Path) -> str | None:
    """The Kafka version of a ``libs`` folder, read from its ``kafka_<scala>-<version>.jar``."""
    if not libs_dir.is_dir():
        return None
    for jar in sorted(libs_dir.iterdir()):
        match = _CORE_JAR.match(jar.name)
        if match:
            return match.group(1)
    return None


def resolve_distribution(
    version: str = KAFKA_VERSION,
    environ: Mapping[str, str] | None = None,
) -> KafkaDistribution:
    """The jars to run, found or fetched in the order of the module docstring."""
    env = os.environ if environ is None else environ
    kafka_home = env.get("KAFKA_HOME")
    if kafka_home:
        return _from_kafka_home(Path(kafka_home).expanduser(), version)

    version_dir = cache_dir(env) / f"kafka-{version}"
    version_dir.mkdir(parents=True, exist_ok=True)
    libs = version_dir / "libs"
    with locked(version_dir / ".lock"):
        if libs_version(libs) == version:
            return KafkaDistribution(libs, version, f"cache {libs}")
        failures: list[str] = []
        mvn = shutil.which("mvn", path=env.get("PATH"))
        if mvn is None:
            failures.append("Maven: `mvn` is not on PATH")
        else:
            try:
                _fetch_with_maven(Path(mvn), version, version_dir, env)
                return KafkaDistribution(libs, version, f"Maven Central, cached in {libs}")
            except KafkaDistributionError as exc:
                failures.append(f"Maven: {exc}")
        try:
            _fetch_tarball(version, version_dir)
            return KafkaDistribution(libs, version, f"Apache archive, cached in {libs}")
        except KafkaDistributionError as exc:
            failures.append(f"Apache archive: {exc}")
    raise KafkaDistributionError(
        f"no Apache Kafka {version} jars: KAFKA_HOME is not set, nothing is cached in {libs}, "
        "and fetching failed.\n  - "
        + "\n  - ".join(failures)
        + "\nInstall Maven (it fetches the jars from Maven Central), or unpack a Kafka release "
        "(https://kafka.apache.org/downloads) and set KAFKA_HOME to it."
    )


def _from_kafka_home(home: Path, wanted: str) -> KafkaDistribution:
    libs = home / "libs"
    found = libs_version(libs)
    if found is None:
        raise KafkaDistributionError(
            f"KAFKA_HOME={home} is not a Kafka installation: no libs/kafka_<scala>-<version>.jar. "
            "Point KAFKA_HOME at an unpacked Kafka release, or unset it."
        )
    if found != wanted:
        logger.info("KAFKA_HOME has Kafka %s (this connector is tested with %s)", found, wanted)
    log_config = next(
        (
            path
            for path in (home / "config" / "log4j2.yaml", home / "config" / "log4j.properties")
            if path.is_file()
        ),
        None,
    )
    return KafkaDistribution(libs, found, f"KAFKA_HOME={home}", log_config)


def _install(staging_libs: Path, version: str, version_dir: Path) -> None:
    """Move a complete ``libs`` folder into place (a rename: never a half-filled cache)."""
    if libs_version(staging_libs) != version:
        raise KafkaDistributionError(f"no kafka_{SCALA_VERSION}-{version}.jar in {staging_libs}")
    target = version_dir / "libs"
    if target.exists():
        shutil.rmtree(target)
    staging_libs.rename(target)


def _fetch_with_maven(mvn: Path, version: str, version_dir: Path, env: Mapping[str, str]) -> None:
    pom = version_dir / "pom.xml"
    template = resources.files("connector.kafka.local_broker").joinpath("broker-pom.xml")
    pom.write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
    logger.info("fetching the Apache Kafka %s jars from Maven Central (first start only)", version)
    with tempfile.TemporaryDirectory(dir=version_dir, prefix="libs-") as staging:
        staging_libs = Path(staging) / "libs"
        run_maven(
            mvn,
            [
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-Dkafka.version={version}",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging_libs}",
            ],
            cwd=version_dir,
            env=env,
            timeout=MAVEN_TIMEOUT_SECONDS,
            error=KafkaDistributionError,
        )
        _install(staging_libs, version, version_dir)


def _fetch_tarball(version: str, version_dir: Path) -> None:
    url = ARCHIVE_URL.format(version=version, scala=SCALA_VERSION)
    top = f"kafka_{SCALA_VERSION}-{version}"
    logger.info("downloading %s", url)
    with tempfile.TemporaryDirectory(dir=version_dir, prefix="tgz-") as staging:
        tgz = Path(staging) / f"{top}.tgz"
        try:
            _download(url, tgz)
            expected = _read_sha512(_fetch_text(url + ".sha512"))
        except OSError as exc:  # urllib's URLError and socket timeouts are OSErrors
            raise KafkaDistributionError(f"could not download {url}: {exc}") from exc
        actual = hashlib.sha512(tgz.read_bytes()).hexdigest()
        if actual != expected:
            raise KafkaDistributionError(f"{url} does not match its published SHA-512")
        with tarfile.open(tgz, "r:gz") as archive:
            members = [m for m in archive.getmembers() if m.name.startswith(f"{top}/libs/")]
            archive.extractall(staging, members=members, filter="data")
        _install(Path(staging) / top / "libs", version, version_dir)


def _download(url: str, target: Path) -> None:
    with (
        urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response,
        target.open("wb") as out,
    ):
        shutil.copyfileobj(response, out)


def _fetch_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
        return str(response.read().decode("ascii", "replace"))


def _read_sha512(published: str) -> str:
    """The digest in an Apache ``.sha512`` file, in either ``sha512sum`` or ``gpg`` layout."""
    text = published.strip()
    if ":" in text:  # `name.tgz: 1A2B 3C4D ...`, wrapped over lines (gpg --print-md)
        return "".join(text.split(":", 1)[1].split()).lower()
    return text.split()[0].lower()  # `1a2b3c4d...  name.tgz` (sha512sum)
