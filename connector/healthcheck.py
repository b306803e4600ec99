"""``zoom-connector healthcheck [source|worker|run]``: exit 0 when this machine's connector answers.

For container health checks (the image's ``HEALTHCHECK``). Each role has its HTTP probe on
localhost:

* ``source``: ``GET /healthz`` on ``SOURCE_PORT``;
* ``worker``: ``GET /healthz`` on ``WORKER_WEB_PORT``;
* ``run``: both.

Without a role, the role is the subcommand of the container's main process (``/proc/1/cmdline``:
``zoom-connector source`` → ``source``), so one ``HEALTHCHECK`` line serves every container of
the image; when that says nothing (not in a container, or another main process), the check passes
when either probe answers. Liveness only: whether Kafka is reachable is ``/readyz``'s business,
and a broker outage must not get healthy containers restarted.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Final, TextIO

from connector.settings import Settings

ROLES: Final = ("source", "worker", "run")
PROBE_TIMEOUT_SECONDS: Final = 2.0
MAIN_PROCESS_CMDLINE: Final = Path("/proc/1/cmdline")


def probes(settings: Settings, role: str | None) -> list[str]:
    """The URLs to check for ``role`` (``None``: every component's)."""
    source = f"http://127.0.0.1:{settings.source_port}/healthz"
    worker = f"http://127.0.0.1:{settings.worker_web_port}/healthz"
    return {"source": [source], "worker": [worker]}.get(role or "", [source, worker])


def role_of_main_process(cmdline: Path = MAIN_PROCESS_CMDLINE) -> str | None:
    """The connector subcommand the container's main process runs, if it runs one."""
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return None
    for arg in args:
        if arg.decode(errors="replace") in ROLES:
            return arg.decode()
    return None


def probe(url: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> str | None:
    """``None`` when ``url`` answers 200, else what went wrong."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return f"{url}: {exc}"
    return None if status == 200 else f"{url}: HTTP {status}"


def healthcheck_command(
    settings: Settings,
    role: str | None = None,
    *,
    cmdline: Path = MAIN_PROCESS_CMDLINE,
    out: TextIO | None = None,
) -> int:
    """Exit code 0 when healthy, 1 when not; one line saying what was checked."""
    out = out or sys.stdout
    detected = role or role_of_main_process(cmdline)
    urls = probes(settings, detected)
    failures = [problem for url in urls if (problem := probe(url)) is not None]
    healthy = _healthy(detected, urls, failures)
    checked = ", ".join(urls)
    if healthy:
        print(f"healthy ({detected or 'any role'}): {checked}", file=out)
        return 0
    print(f"unhealthy ({detected or 'any role'}): {'; '.join(failures)}", file=out)
    return 1


def _healthy(role: str | None, urls: Sequence[str], failures: Sequence[str]) -> bool:
    if role is None:  # unknown role: one component answering is enough
        return len(failures) < len(urls)
    return not failures
