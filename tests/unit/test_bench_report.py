"""Rendering the bench's results (bench/report.py) and the harness's pure helpers."""

from __future__ import annotations

import json
import math

import pytest

from bench.context import window
from bench.report import (
    HIGHER,
    LOWER,
    Report,
    Row,
    Target,
    format_number,
    format_ratio,
    render_markdown,
)
from bench.wrk import parse_wrk

WRK_OUTPUT = """Running 3s test @ http://127.0.0.1:40000/zoom/webhooks
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.61ms    8.94ms  97.46ms   91.53%
    Req/Sec     4.82k   450.12     5.31k    80.00%
  Latency Distribution
     50%    8.28ms
     75%   10.11ms
     90%   13.44ms
     99%    1.20s
  14433 requests in 3.00s, 3.15MB read
  Non-2xx or 3xx responses: 33
Requests/sec:   4811.00
Transfer/sec:      1.05MB
"""


def _report() -> Report:
    return Report(
        title="bench",
        command="python -m bench --quick",
        started_at="2026-01-01 00:00:00 UTC",
        duration_s=90.0,
        machine={
            "cores": 2,
            "cpu_model": "Xeon",
            "memory_gib": 23.5,
            "os": "Linux",
            "load_before": "1.00",
            "load_after": "2.00",
        },
        versions={"Python": "3.11.7", "Kafka": "4.4.0"},
        settings={"partitions": 6},
        rows=[
            Row("ingest.saturation", "Ingest", "acked/s", "events/s", 3100.0, 4800.0, "no Kafka"),
            Row("e2e.p99_at_500", "End to end", "p99 | at 500/s", "ms", 120.5, 40.0, "loop", LOWER),
            Row("cost.rss", "Cost", "peak RSS", "MiB", 120.2, None, "n/a", LOWER),
        ],
        targets=[
            Target("ingest.saturation", ">= 70 %", at_least_ratio=0.7),
            Target("e2e.p99_at_500", "<= 100 ms", at_most_figure=100.0),
            Target("pipeline.rate", ">= 50 %", at_least_ratio=0.5),
        ],
        checks=["the generator kept its rate"],
        notes=["noisy"],
        details={"x": {"nan": math.nan}},
    )


def test_markdown_has_one_row_per_figure_grouped_with_ratios() -> None:
    text = render_markdown(_report())
    assert "| **Ingest** | | | | |" in text
    assert "| acked/s | 3,100 events/s | 4,800 events/s | no Kafka | 65 % |" in text
    # A pipe inside a cell is escaped; latency ratios are multiples.
    assert "| p99 \\| at 500/s | 120 ms | 40 ms | loop | 3.01x |" in text
    assert "| peak RSS | 120 MiB | - | n/a | - |" in text
    assert "| >= 70 % | 65 % | not met |" in text
    assert "| <= 100 ms | 120 ms | not met |" in text
    assert "| >= 50 % | - | not measured |" in text
    assert "- the generator kept its rate" in text
    assert "2 cores (Xeon)" in text


def test_json_is_strict_json_without_nan() -> None:
    body = json.loads(_report().to_json())
    assert body["rows"][0]["ratio"] == pytest.approx(3100 / 4800)
    assert body["rows"][2]["ratio"] is None
    assert body["details"]["x"]["nan"] is None
    assert [t["verdict"] for t in body["targets"]] == ["not met", "not met", "not measured"]


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (1234.4, "events/s", "1,234 events/s"),
        (0.8612, "ms", "0.861 ms"),
        (12.34, "ms", "12.3 ms"),
        (1056.2, "ms", "1056 ms"),
        (7.111, "CPU s", "7.11 CPU s"),
        (123.6, "MiB", "124 MiB"),
        (None, "ms", "-"),
        (math.nan, "ms", "-"),
    ],
)
def test_format_number(value: float | None, unit: str, text: str) -> None:
    assert format_number(value, unit) == text


def test_format_ratio() -> None:
    assert format_ratio(0.654, HIGHER) == "65 %"
    assert format_ratio(2.5, LOWER) == "2.50x"
    assert format_ratio(None, HIGHER) == "-"


def test_parse_wrk_reads_counts_rate_and_percentiles() -> None:
    found = parse_wrk(WRK_OUTPUT)
    assert found["requests"] == 14433
    assert found["non_2xx"] == 33
    assert found["socket_errors"] == 0
    assert found["rps"] == 4811.0
    assert found["ok_rps"] == pytest.approx(4811.0 * (14433 - 33) / 14433)
    assert found["p50_ms"] == pytest.approx(8.28)
    assert found["p90_ms"] == pytest.approx(13.44)
    assert found["p99_ms"] == pytest.approx(1200.0)


def test_parse_wrk_refuses_what_it_cannot_read() -> None:
    with pytest.raises(ValueError):
        parse_wrk("wrk: connection refused")


def test_drain_window_starts_at_one_percent_and_counts_cpu_inside_it() -> None:
    # (time, records, CPU seconds): 100 base records, then 1000 measured at a steady pace.
    series = [(0.0, 100, 0.0), (1.0, 100, 0.1), (2.0, 600, 1.1), (3.0, 1100, 2.1)]
    found = window(series, 100, 1000)
    assert found is not None
    seconds, share, cpu = found
    assert share == 0.99
    assert seconds == pytest.approx(3.0 - 1.02)
    assert cpu == pytest.approx(2.1 - 0.12)
    assert window(series, 100, 2000) is None
