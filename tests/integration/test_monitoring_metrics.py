"""Every metric the alert rules and the Grafana dashboard use is one the connector exports.

A real source and a real worker run against the test broker; their ``GET /metrics`` is scraped
and every ``zoom_...`` name in deploy/prometheus/alerts.yml and deploy/grafana/zoom-connector.json
must be among the names the expositions declare (a family is declared before it has samples).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.monitoring import (
    dashboard_expressions,
    exported_names,
    load_dashboard,
    load_rules,
    metric_names,
    rule_expressions,
)
from tests.processes import WORKER_START_SECONDS, Deployment, ProcessGroup, wait_until

pytestmark = pytest.mark.kafka


def scrape(url: str) -> str:
    try:
        response = httpx.get(f"{url}/metrics", timeout=2)
    except httpx.HTTPError:
        return ""
    return response.text if response.status_code == 200 else ""


def test_rules_and_dashboard_use_only_exported_metrics(
    new_deployment: Callable[..., Deployment],
) -> None:
    deployment = new_deployment("mon")
    processes = ProcessGroup(deployment, "monitoring-secret")
    try:
        source = processes.source()
        worker = processes.worker()
        worker_text = wait_until(
            lambda: "zoom_worker_consumer_lag" in (text := scrape(worker.url)) and text,
            WORKER_START_SECONDS,
            "the worker's /metrics",
            explain=worker.diagnosis,
        )
        exported = exported_names(scrape(source.url)) | exported_names(worker_text)
    finally:
        processes.stop_all()

    assert "zoom_source_requests_total" in exported
    assert "zoom_worker_agent_score_updates_total" in exported
    used = metric_names(rule_expressions(load_rules()) + dashboard_expressions(load_dashboard()))
    assert "zoom_source_spool_bytes" in exported
    unknown = sorted(used - exported)
    assert not unknown, f"used by the rules or the dashboard, exported by neither: {unknown}"
