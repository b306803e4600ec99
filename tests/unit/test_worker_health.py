"""The worker's /healthz and /readyz, served by a real Faust app's web server (no broker): ready
only once partitions are assigned and neither a rebalance nor a table recovery is under way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import faust
import pytest
from aiohttp.test_utils import TestClient, TestServer

from connector.worker.health import Readiness, install_health_views


class _App(faust.App):
    """Faust's app, with the two flags the readiness reads set by the test."""

    testing_rebalance = False
    testing_recovery = False

    @property
    def rebalancing(self) -> bool:  # type: ignore[override]
        return self.testing_rebalance

    @rebalancing.setter
    def rebalancing(self, value: bool) -> None:
        self.testing_rebalance = value

    @property
    def in_recovery(self) -> bool:  # type: ignore[override]
        return self.testing_recovery


@pytest.fixture
async def worker() -> AsyncIterator[tuple[TestClient[Any, Any], _App, Readiness]]:
    app = _App("health-test", web_enabled=True, autodiscover=False)
    readiness = install_health_views(app)
    client = TestClient(TestServer(app.web.web_app))  # type: ignore[attr-defined]
    await client.start_server()
    yield client, app, readiness
    await client.close()


async def _readyz(client: TestClient[Any, Any]) -> tuple[int, Any]:
    response = await client.get("/readyz")
    return response.status, await response.json()


async def test_healthz_answers_while_the_worker_serves(worker: Any) -> None:
    client, *_ = worker
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_ready_once_assigned_and_settled(worker: Any) -> None:
    client, app, readiness = worker
    assert await _readyz(client) == (503, {"status": "not ready", "waiting_for": ["assignment"]})
    await app.on_partitions_assigned.send(set())  # an empty assignment counts: more workers
    assert await _readyz(client) == (200, {"status": "ready"})
    app.testing_rebalance, app.testing_recovery = True, True
    status, body = await _readyz(client)
    assert status == 503 and body["waiting_for"] == ["rebalance", "recovery"]
    app.testing_rebalance = app.testing_recovery = False
    await app.on_partitions_revoked.send(set())
    assert (await _readyz(client))[0] == 503
    await app.on_partitions_assigned.send(set())
    assert (await _readyz(client))[0] == 200
    assert readiness.assigned
