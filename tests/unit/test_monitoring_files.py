"""The alert rules (deploy/prometheus) pass ``promtool check rules`` and their unit tests, and the
Grafana dashboard (deploy/grafana) is well formed.

``promtool`` comes from Debian's ``prometheus`` package; ``.ci/run`` installs it, so under
``CI=true`` a missing ``promtool`` fails these tests instead of skipping them.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter

import pytest

from tests import kafka_helpers
from tests.monitoring import (
    ALERT_RULES,
    ALERT_TESTS,
    dashboard_expressions,
    load_dashboard,
    load_rules,
    metric_names,
    rule_expressions,
)


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool not found (Debian/Ubuntu: apt-get install prometheus)"
        if kafka_helpers.in_ci():
            pytest.fail(message + "; .ci/run should have installed it")
        pytest.skip(message)
    return found


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", str(ALERT_RULES)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", ALERT_TESTS.name],
        cwd=ALERT_TESTS.parent,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_main_alerts_have_unit_tests() -> None:
    tested = ALERT_TESTS.read_text()
    for alert in (
        "ZoomConnectorConsumerLag",
        "ZoomConnectorRawPartitionsUnowned",
        "ZoomConnectorDeadLetters",
        "ZoomConnectorDeadLettersLost",
        "ZoomConnectorProduceErrors",
        "ZoomConnectorHigh503Ratio",
        "ZoomConnectorSlowAnswers",
        "ZoomConnectorCommitsStandStill",
    ):
        assert f"alertname: {alert}" in tested, alert


def test_every_rule_has_a_severity_and_a_summary() -> None:
    rules = [rule for group in load_rules()["groups"] for rule in group["rules"]]
    names = Counter(rule["alert"] for rule in rules)
    assert max(names.values()) == 1, names
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_the_dashboard_is_well_formed() -> None:
    dashboard = load_dashboard()
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
    used = metric_names(dashboard_expressions(dashboard))
    for wanted in (
        "zoom_source_requests_total",
        "zoom_source_request_duration_seconds_bucket",
        "zoom_worker_events_total",
        "zoom_worker_consumer_lag",
        "zoom_source_spool_bytes",
        "zoom_worker_agent_score_updates_total",
    ):
        assert wanted in used, wanted
    assert metric_names(rule_expressions(load_rules()))
