"""The bench's arithmetic (bench/stats.py): percentiles, rates, ratios, crossing times."""

from __future__ import annotations

import math
import random

import pytest

from bench.stats import crossing_time, per_10k, percentile, rate, ratio, summary, window_rate


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 50, 5.0),
        ([5.0], 99, 5.0),
        ([1.0, 2.0], 50, 1.5),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([4.0, 1.0, 3.0, 2.0], 50, 2.5),  # unsorted input
        (list(map(float, range(1, 101))), 99, 99.01),
        (list(map(float, range(1, 101))), 50, 50.5),
        ([0.0, 10.0], 25, 2.5),
    ],
)
def test_percentile_interpolates_between_closest_ranks(
    values: list[float], q: float, expected: float
) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_agrees_with_numpys_default_definition() -> None:
    # numpy's "linear" method, written out: rank q/100*(n-1) in the sorted values.
    rng = random.Random(3)
    values = [rng.expovariate(1.0) for _ in range(1001)]
    ordered = sorted(values)
    for q in (1, 50, 90, 99, 99.9):
        rank = q / 100 * (len(ordered) - 1)
        low = int(rank)
        expected = ordered[low] + (ordered[min(low + 1, 1000)] - ordered[low]) * (rank - low)
        assert percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_nan_and_q_is_checked() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary() -> None:
    found = summary([3.0, 1.0, 2.0])
    assert found["count"] == 3
    assert found["mean"] == pytest.approx(2.0)
    assert found["p50"] == 2.0
    assert found["max"] == 3.0
    assert summary([])["count"] == 0
    assert math.isnan(summary([])["p99"])


def test_rate_ratio_per_10k() -> None:
    assert rate(1000, 2.0) == 500.0
    assert math.isnan(rate(1, 0))
    assert ratio(50.0, 200.0) == 0.25
    assert ratio(1.0, 0.0) is None
    assert ratio(None, 1.0) is None
    assert ratio(math.nan, 1.0) is None
    assert per_10k(3.0, 20_000) == pytest.approx(1.5)
    assert math.isnan(per_10k(1.0, 0))


def test_crossing_time_interpolates() -> None:
    series = [(0.0, 0.0), (1.0, 100.0), (2.0, 300.0)]
    assert crossing_time(series, 0) == 0.0
    assert crossing_time(series, 50) == pytest.approx(0.5)
    assert crossing_time(series, 200) == pytest.approx(1.5)
    assert crossing_time(series, 300) == pytest.approx(2.0)
    assert crossing_time(series, 301) is None


def test_crossing_time_on_a_flat_stretch_takes_the_first_sample_at_the_threshold() -> None:
    series = [(0.0, 10.0), (1.0, 10.0), (2.0, 20.0)]
    assert crossing_time(series, 10) == 0.0
    assert crossing_time(series, 15) == pytest.approx(1.5)


def test_window_rate() -> None:
    series = [(0.0, 0.0), (1.0, 0.0), (3.0, 1000.0), (4.0, 1000.0)]
    found = window_rate(series, 100, 1000)
    assert found is not None
    speed, start, end = found
    assert start == pytest.approx(1.2)
    assert end == pytest.approx(3.0)
    assert speed == pytest.approx(900 / 1.8)
    assert window_rate(series, 100, 2000) is None
