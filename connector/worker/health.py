"""The worker's ``GET /healthz`` (liveness) and ``GET /readyz`` (readiness), like the source's.

``/healthz`` answers 200 while the worker's web server and event loop serve. ``/readyz`` answers
200 once the worker is a member of its consumer group with an assignment (possibly empty: more
workers than partitions), no rebalance is under way and its tables are recovered; else 503 with
what it waits for. A broker outage after that does not make the worker unready: it keeps its
partitions and catches up when Kafka is back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust


@dataclass
class Readiness:
    """What the worker waits for before it is ready."""

    assigned: bool = False
    """An assignment has arrived since the last revocation."""

    def waiting_for(self, app: Any) -> list[str]:
        """Empty when ready; else what is missing: ``assignment``, ``rebalance``, ``recovery``."""
        waiting = []
        if not self.assigned:
            waiting.append("assignment")
        if getattr(app, "rebalancing", False):
            waiting.append("rebalance")
        if getattr(app, "in_recovery", False):
            waiting.append("recovery")
        return waiting


def install_health_views(app: faust.App, readiness: Readiness | None = None) -> Readiness:
    """Add the two views; partitions assigned and revoked keep ``readiness`` up to date."""
    readiness = readiness or Readiness()

    def assigned(sender: Any, /, *args: Any, **kwargs: Any) -> None:
        readiness.assigned = True

    def revoked(sender: Any, /, *args: Any, **kwargs: Any) -> None:
        readiness.assigned = False

    app.on_partitions_assigned.connect(assigned)
    app.on_partitions_revoked.connect(revoked)

    @app.page("/healthz")
    async def healthz(self: Any, request: Any) -> Any:
        return self.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(self: Any, request: Any) -> Any:
        waiting = readiness.waiting_for(app)
        if waiting:
            return self.json({"status": "not ready", "waiting_for": waiting}, status=503)
        return self.json({"status": "ready"})

    return readiness
