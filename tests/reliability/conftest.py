"""Fixtures of the reliability suite, and the figures it reports.

Every test records its figures (events sent, lost, duplicated, ...) with the ``figures`` fixture;
they are printed at the end of the run in a "reliability figures" section (whatever the outcome),
and appended as JSON lines to ``$RELIABILITY_FIGURES`` when that is set.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.processes import Deployment, ProcessGroup
from tests.reliability.workload import SECRET, Figures

_FIGURES = pytest.StashKey[list[tuple[str, dict[str, Any]]]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_FIGURES] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """``figures(**values)`` records this test's figures (later calls add to them)."""
    collected: dict[str, Any] = {}
    request.config.stash[_FIGURES].append((request.node.nodeid, collected))

    def record(**values: Any) -> None:
        collected.update(values)
        print(f"\n{request.node.name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        path = os.environ.get("RELIABILITY_FIGURES")
        if path:
            with open(path, "a", encoding="utf-8") as out:
                line = {"test": request.node.nodeid, "at": time.time(), **values}
                out.write(json.dumps(line, default=str) + "\n")

    return record


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    collected = [(nodeid, values) for nodeid, values in config.stash[_FIGURES] if values]
    if not collected:
        return
    terminalreporter.section("reliability figures", sep="=")
    for nodeid, values in collected:
        terminalreporter.line(nodeid)
        for name, value in values.items():
            terminalreporter.line(f"    {name}: {value}")


@pytest.fixture
def deployment(new_deployment: Callable[..., Deployment]) -> Deployment:
    """A fresh deployment (topic prefix, worker id) on the shared broker, topics created."""
    return new_deployment("rel")


@pytest.fixture
def processes(deployment: Deployment) -> Iterator[ProcessGroup]:
    """Starts workers and sources of ``deployment``; stops whatever is left at the end."""
    started = ProcessGroup(deployment, SECRET)
    yield started
    started.stop_all()
