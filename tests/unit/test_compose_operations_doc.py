"""docs/operations.md names only what exists: settings, subcommands, metrics, topics.

The guide's commands were run by hand when it was written; this keeps its names in step with the
code afterwards (a renamed setting or metric fails here, not in an operator's alert rules).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from connector.cli import build_parser
from connector.settings import Settings
from connector.source.metrics import SourceMetrics
from connector.worker.aggregates.install import AggregateMetrics
from connector.worker.metrics import WorkerMetrics

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
TEXT = GUIDE.read_text()
SETTING_LIKE = re.compile(
    r"\b(?:KAFKA|SOURCE|WORKER|TOPIC|SCHEMA_REGISTRY|ZOOM_WEBHOOK|RAW|TYPED|DLQ)_[A-Z0-9_]*[A-Z0-9]\b"
)
METRIC = re.compile(r"\bzoom_(?:source|worker)_[a-z0-9_]+")
SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def _families(*registries: CollectorRegistry) -> set[str]:
    return {family.name for registry in registries for family in registry.collect()}


def _base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_every_variable_named_is_a_setting() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    named = set(SETTING_LIKE.findall(TEXT))
    assert named, "the guide names the settings it relies on"
    assert named - fields == set()
    # the security and registry variables are all explained
    security = {f for f in fields if f.startswith(("KAFKA_S", "SCHEMA_REGISTRY_"))}
    assert security <= named


def test_every_command_named_exists() -> None:
    subcommands = next(
        action.choices
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    commands = set(re.findall(r"zoom-connector ([a-z]+)", TEXT))
    assert {"topics", "source", "worker", "send", "healthcheck", "validate"} <= commands
    assert commands <= set(subcommands)


def test_every_metric_named_exists_and_the_pipeline_ones_are_all_explained() -> None:
    source = SourceMetrics().registry
    worker = WorkerMetrics(["a.b"])
    worker.watch_lag(dict)
    aggregates = CollectorRegistry()
    AggregateMetrics(aggregates)
    existing = _families(source, worker.registry, aggregates)
    named = {_base(name) for name in METRIC.findall(TEXT)}
    assert named - existing == set()
    assert _families(source, worker.registry) <= named


def test_topics_and_internal_topics_are_the_codes() -> None:
    from connector.topics import TopicNames
    from connector.worker.aggregates.install import TABLE
    from connector.worker.aggregates.rekeying import events_topic_name
    from connector.worker.app import DEDUP_TABLE

    names = TopicNames()
    for topic in (names.raw, names.dlq, names.agent_scores):
        assert f"`{topic}`" in TEXT
    for internal in (
        f"{DEDUP_TABLE}-changelog",
        f"{TABLE}-changelog",
        events_topic_name("").removeprefix("-"),
    ):
        assert f"`<WORKER_ID>-{internal}`" in TEXT, internal
