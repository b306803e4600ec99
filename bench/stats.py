"""The bench's arithmetic, pure and unit-tested: percentiles, rates, ratios, crossing times."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, linear between closest ranks.

    The same definition as numpy's default (``method="linear"``): rank ``q/100 * (n - 1)`` in the
    sorted values, interpolated. ``nan`` for no values. ``values`` need not be sorted.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0..100")
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def summary(values: Iterable[float]) -> dict[str, float]:
    """Count, mean, p50, p90, p99, p99.9 and max of ``values`` (milliseconds, by convention)."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "mean": math.nan, "p50": math.nan, "p90": math.nan,
                "p99": math.nan, "p999": math.nan, "max": math.nan}  # fmt: skip
    return {
        "count": len(ordered),
        "mean": sum(ordered) / len(ordered),
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "p999": percentile(ordered, 99.9),
        "max": ordered[-1],
    }


def rate(count: float, seconds: float) -> float:
    """Events per second; ``nan`` when no time passed."""
    return count / seconds if seconds > 0 else math.nan


def ratio(figure: float | None, ceiling: float | None) -> float | None:
    """``figure / ceiling``, or ``None`` when either is missing, ``nan`` or the ceiling is 0."""
    if figure is None or ceiling is None or math.isnan(figure) or math.isnan(ceiling):
        return None
    if ceiling == 0:
        return None
    return figure / ceiling


def per_10k(amount: float, events: float) -> float:
    """``amount`` (CPU seconds, bytes...) per 10,000 events."""
    return amount / events * 10_000 if events > 0 else math.nan


def crossing_time(series: Sequence[tuple[float, float]], threshold: float) -> float | None:
    """When a non-decreasing count first reached ``threshold``, interpolated between samples.

    ``series`` is ``(time, count)`` in time order. ``None`` when the count never got there. A
    threshold at or below the first sample gives the first sample's time.
    """
    previous: tuple[float, float] | None = None
    for when, count in series:
        if count >= threshold:
            if previous is None or count == previous[1]:
                return when
            before, before_count = previous
            share = (threshold - before_count) / (count - before_count)
            return before + (when - before) * max(0.0, min(1.0, share))
        previous = (when, count)
    return None


def window_rate(
    series: Sequence[tuple[float, float]], start_count: float, end_count: float
) -> tuple[float, float, float] | None:
    """Records per second between the crossings of ``start_count`` and ``end_count``.

    Returns ``(rate, start_time, end_time)``, or ``None`` when either crossing is missing.
    """
    start = crossing_time(series, start_count)
    end = crossing_time(series, end_count)
    if start is None or end is None or end <= start:
        return None
    return (end_count - start_count) / (end - start), start, end
