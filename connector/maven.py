"""Fetching from Maven Central with the machine's ``mvn``, into a cache folder one start at a time.

The local Kafka broker's jars (:mod:`connector.kafka.local_broker.distribution`) and the local
Apicurio Registry (:mod:`connector.registry.local_apicurio`) are both fetched this way on their
first start.
"""

from __future__ import annotations

import fcntl
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from connector.errors import ConnectorError

_OUTPUT_TAIL_LINES: Final = 15


@contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path``: two starts never fetch into one folder."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_maven(
    mvn: Path,
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    error: type[ConnectorError],
) -> None:
    """Run ``mvn -q -B <args>``; ``error`` with the end of Maven's output when it fails."""
    try:
        completed = subprocess.run(
            [str(mvn), "-q", "-B", *args],
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise error(f"could not run {mvn}: {exc}") from exc
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip().splitlines()
        tail = "\n".join(output[-_OUTPUT_TAIL_LINES:])
        raise error(f"`mvn` exited with {completed.returncode}:\n{tail}")
