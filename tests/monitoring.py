"""The monitoring files in deploy/ and the metric names they use, for the tests that check them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

import yaml

DEPLOY: Final = Path(__file__).resolve().parents[1] / "deploy"
ALERT_RULES: Final = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS: Final = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARD: Final = DEPLOY / "grafana" / "zoom-connector.json"

_METRIC: Final = re.compile(r"\bzoom_[a-z0-9_]+")


def load_rules() -> dict[str, Any]:
    rules: dict[str, Any] = yaml.safe_load(ALERT_RULES.read_text())
    return rules


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def rule_expressions(rules: dict[str, Any]) -> list[str]:
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def metric_names(expressions: list[str]) -> set[str]:
    """The connector's metric names (``zoom_...``) the expressions use."""
    return {name for expr in expressions for name in _METRIC.findall(expr)}


def exported_names(exposition: str) -> set[str]:
    """The sample names a Prometheus text exposition can carry, from its ``# TYPE`` lines (a
    family is listed even before it has samples): counters as ``_total``, histograms as
    ``_bucket``/``_count``/``_sum``."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if not line.startswith("# TYPE "):
            continue
        _, _, name, kind = line.split(maxsplit=3)
        if kind == "counter":
            base = name.removesuffix("_total")
            names |= {f"{base}_total", f"{base}_created"}
        elif kind == "histogram":
            names |= {name, f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        elif kind == "summary":
            names |= {name, f"{name}_count", f"{name}_sum"}
        else:
            names.add(name)
    return names
