"""Finding a Java runtime recent enough for the Kafka broker (Kafka 4 brokers need Java 17+).

``JAVA_HOME/bin/java`` wins when ``JAVA_HOME`` is set, else ``java`` on ``PATH``. The version is
read from ``java -version``, whose format differs between vendors and eras (``1.8.0_392``,
``17.0.15``, ``21``, ``23-ea``): :func:`parse_java_major` copes with all of them.

:func:`find_java_at_least` serves programs needing a newer Java than the default one (the local
Apicurio Registry needs 21+): it also looks at the JDKs installed side by side in the usual places
(``/usr/lib/jvm/*``, ``/opt/java/*``, macOS's ``/Library/Java/JavaVirtualMachines/*``) and takes
the newest.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from connector.kafka.local_broker.errors import JavaNotFoundError

MIN_JAVA_MAJOR = 17

_INSTALL_HINT = (
    f"Install a Java {MIN_JAVA_MAJOR}+ runtime (Debian/Ubuntu: "
    f"`sudo apt-get install openjdk-{MIN_JAVA_MAJOR}-jre-headless`; macOS: "
    f"`brew install openjdk@{MIN_JAVA_MAJOR}`; or any build from https://adoptium.net) and put "
    "it on PATH or set JAVA_HOME. Or skip the local broker: set KAFKA_BOOTSTRAP_SERVERS to an "
    "existing Kafka cluster."
)

# Folders holding one JDK per sub-folder, on Linux distributions and macOS.
JDK_PARENT_DIRS = (
    Path("/usr/lib/jvm"),
    Path("/usr/java"),
    Path("/opt/java"),
    Path("/Library/Java/JavaVirtualMachines"),
)

_QUOTED_VERSION = re.compile(r'version "([^"]+)"')
_BARE_VERSION = re.compile(r"^\S+\s+(\d[\w.+-]*)", re.MULTILINE)  # `openjdk 21.0.2 2024-01-16`


@dataclass(frozen=True)
class JavaRuntime:
    """A usable ``java`` executable and its major version."""

    executable: Path
    major: int


def find_java(environ: Mapping[str, str] | None = None) -> Path | None:
    """``$JAVA_HOME/bin/java`` if it exists, else ``java`` from ``PATH``, else ``None``."""
    env = os.environ if environ is None else environ
    java_home = env.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("java", path=env.get("PATH"))
    return Path(found) if found else None


def parse_java_major(version_output: str) -> int | None:
    """The major version in ``java -version`` output: ``1.8.0_392`` is 8, ``17.0.15`` is 17."""
    match = _QUOTED_VERSION.search(version_output) or _BARE_VERSION.search(version_output)
    if match is None:
        return None
    digits = re.match(r"(\d+)(?:\.(\d+))?", match.group(1))
    if digits is None:
        return None
    major = int(digits.group(1))
    if major == 1 and digits.group(2) is not None:  # the pre-Java-9 scheme, 1.<major>.x
        major = int(digits.group(2))
    return major


def check_java(environ: Mapping[str, str] | None = None) -> JavaRuntime:
    """The Java runtime to launch Kafka with; :class:`JavaNotFoundError` says what to install."""
    executable = find_java(environ)
    if executable is None:
        raise JavaNotFoundError(
            f"the local Kafka broker needs Java, none was found. {_INSTALL_HINT}"
        )
    try:
        completed = subprocess.run(
            [str(executable), "-version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JavaNotFoundError(
            f"could not run {executable} -version ({exc}). {_INSTALL_HINT}"
        ) from exc
    output = completed.stderr + completed.stdout
    major = parse_java_major(output)
    if major is None:
        raise JavaNotFoundError(
            f"could not read the version of {executable} from {output.strip()!r}. {_INSTALL_HINT}"
        )
    if major < MIN_JAVA_MAJOR:
        raise JavaNotFoundError(
            f"the local Kafka broker needs Java {MIN_JAVA_MAJOR} or newer, {executable} is Java "
            f"{major}. {_INSTALL_HINT}"
        )
    return JavaRuntime(executable=executable, major=major)


def java_version(executable: Path) -> int | None:
    """The major version of ``executable`` (None when it cannot be run or read)."""
    try:
        completed = subprocess.run(
            [str(executable), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_java_major(completed.stderr + completed.stdout)


def _installed_javas(parents: tuple[Path, ...]) -> Iterator[Path]:
    for parent in parents:
        if not parent.is_dir():
            continue
        for home in sorted(parent.iterdir()):
            for candidate in (home / "bin" / "java", home / "Contents" / "Home" / "bin" / "java"):
                if candidate.is_file() and os.access(candidate, os.X_OK):
                    yield candidate


def find_java_at_least(
    minimum: int,
    purpose: str,
    environ: Mapping[str, str] | None = None,
    parents: tuple[Path, ...] = JDK_PARENT_DIRS,
) -> JavaRuntime:
    """A Java ``minimum``+ runtime: ``JAVA_HOME``, ``PATH``, else the newest installed JDK.

    Raises :class:`JavaNotFoundError` naming ``purpose`` and every Java looked at.
    """
    seen: dict[Path, int | None] = {}
    default = find_java(environ)
    candidates = [default] if default is not None else []
    candidates.extend(_installed_javas(parents))
    for candidate in candidates:
        real = candidate.resolve()
        if real not in seen:
            seen[real] = java_version(candidate)
    default_major = seen.get(default.resolve()) if default is not None else None
    if default is not None and default_major is not None and default_major >= minimum:
        return JavaRuntime(default, default_major)
    usable = [
        (major, path) for path, major in seen.items() if major is not None and major >= minimum
    ]
    if usable:
        major, path = max(usable)
        return JavaRuntime(path, major)
    found = ", ".join(f"{path} (Java {major})" for path, major in seen.items()) or "none"
    raise JavaNotFoundError(
        f"{purpose} needs Java {minimum} or newer; Java runtimes found: {found}. Install one "
        f"(e.g. from https://adoptium.net) and set JAVA_HOME to it, or install it under "
        f"{JDK_PARENT_DIRS[0]}."
    )
