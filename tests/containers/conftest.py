"""Fixtures of the container tests: the project's image run with ``docker run``, and its stack
with ``docker compose``.

The images come from ``tests/images/build.sh`` (``ZOOM_CONNECTOR_IMAGE``, default
``zoom-connector:local``). Without a Docker daemon or without the image the tests are skipped,
and fail under ``CI=true`` (the ``containers`` mark is guarded like ``kafka``: see
``tests/conftest.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests import kafka_helpers
from tests.conftest import docker_daemon_answers

CONNECTOR_IMAGE = os.environ.get("ZOOM_CONNECTOR_IMAGE", "zoom-connector:local")
KAFKA_IMAGE = os.environ.get("KAFKA_IMAGE", "zoom-connector-test/kafka:4.4.0")
SCHEMA_REGISTRY_IMAGE = os.environ.get(
    "SCHEMA_REGISTRY_IMAGE", "zoom-connector-test/apicurio-registry:3.3.3"
)
BUILD_HINT = "build the images first: bash tests/images/build.sh"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.containers)


def docker(*args: str, timeout: float = 120.0, check: bool = True) -> str:
    """``docker ARGS``: its standard output; a failure raises with the command's stderr."""
    completed = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and completed.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} exited {completed.returncode}: {completed.stderr.strip()}"
        )
    return completed.stdout


def unavailable(reason: str) -> None:
    """Skip the container tests (no engine, no image); under CI fail them instead."""
    if kafka_helpers.in_ci():
        pytest.fail(f"{reason} (CI=true: the container tests must run); {BUILD_HINT}")
    pytest.skip(f"{reason}; {BUILD_HINT}")


def require_images(*images: str) -> None:
    if not docker_daemon_answers():
        unavailable("no Docker daemon answers")
    for image in images:
        found = subprocess.run(
            ["docker", "image", "inspect", image], capture_output=True, timeout=30, check=False
        )
        if found.returncode != 0:
            unavailable(f"no image {image}")


@dataclass
class Container:
    """One container started by a test (``docker run -d``)."""

    name: str

    def inspect(self) -> dict[str, Any]:
        answer: list[dict[str, Any]] = json.loads(docker("container", "inspect", self.name))
        return answer[0]

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.inspect()["State"]
        return state

    def health(self) -> str | None:
        """``starting``, ``healthy`` or ``unhealthy`` (``None``: the image has no check)."""
        health = self.state().get("Health")
        return None if health is None else str(health["Status"])

    def logs(self) -> str:
        completed = subprocess.run(
            ["docker", "logs", "--tail", "200", self.name],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return completed.stdout + completed.stderr

    def check_running(self) -> None:
        state = self.state()
        if not state["Running"]:
            raise AssertionError(
                f"container {self.name} exited {state['ExitCode']}; log:\n{self.logs()}"
            )

    def wait_healthy(self, timeout: float = 120.0) -> float:
        """Poll the image's ``HEALTHCHECK`` status until ``healthy``: the seconds it took."""
        start = time.monotonic()
        while (status := self.health()) != "healthy":
            self.check_running()
            if time.monotonic() - start > timeout:
                raise AssertionError(
                    f"{self.name} is {status!r} after {timeout:g} s; log:\n{self.logs()}"
                )
            time.sleep(0.5)
        return time.monotonic() - start

    def stop(self, grace: int = 60) -> int:
        """``docker stop`` (SIGTERM, then SIGKILL after ``grace`` s): the exit code."""
        docker("stop", "--time", str(grace), self.name, timeout=grace + 30)
        return int(self.state()["ExitCode"])


@pytest.fixture
def run_container(
    unique_name: Callable[[str], str],
) -> Iterator[Callable[..., Container]]:
    """``run_container(role, env)``: the project's image running ``zoom-connector ROLE`` on the
    host's network (so it reaches the test broker at the address the tests use), removed at
    the end of the test."""
    require_images(CONNECTOR_IMAGE)
    started: list[Container] = []

    def run(role: str, env: dict[str, str], name: str | None = None) -> Container:
        container = Container(unique_name(name or role)[:60])
        options = [f"--env={key}={value}" for key, value in env.items()]
        docker("run", "--detach", "--name", container.name, "--network", "host", *options,
               CONNECTOR_IMAGE, role)  # fmt: skip
        started.append(container)
        return container

    yield run
    for container in started:
        docker("rm", "--force", container.name, check=False)
