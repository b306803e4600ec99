"""Event time, days and the rolling windows of the aggregates.

Time is Zoom's ``event_ts`` (epoch milliseconds), never the time a record arrived. A *day* is a
UTC calendar day, numbered from the epoch (``event_ts // 86_400_000``).

The rolling windows are hopping windows one day apart: the window of ``N`` days *as of* day ``D``
holds the events of days ``D - N + 1`` to ``D``, both included. ``last_7_days`` and
``last_30_days`` are the windows of 7 and 30 days; ``lifetime`` holds everything. Which day is
``D``:

* in a record of the ``agent_scores`` topic, the day of the agent's latest event (a compacted
  record cannot move with the clock);
* in the query API, today (UTC) by default, or the day of the agent's latest event with
  ``as_of=latest``.

An agent's state keeps per-day figures for :data:`KEPT_DAYS` days up to its latest event day, so
every window as of that day or later is complete. Lateness needs no special rule: an event of a
day still kept updates that day whenever it arrives; an event older than every kept day can be in
no window any more and counts in ``lifetime`` only.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Final

DAY_MS: Final = 86_400_000


@dataclass(frozen=True)
class Window:
    """A rolling window of ``days`` days (``None``: lifetime)."""

    name: str
    days: int | None

    def span(self, as_of_day: int) -> tuple[int, int] | None:
        """The first and last day of the window as of ``as_of_day``; ``None`` for lifetime."""
        if self.days is None:
            return None
        return as_of_day - self.days + 1, as_of_day


LIFETIME: Final = Window("lifetime", None)
LAST_7_DAYS: Final = Window("last_7_days", 7)
LAST_30_DAYS: Final = Window("last_30_days", 30)
WINDOWS: Final = (LIFETIME, LAST_7_DAYS, LAST_30_DAYS)
WINDOWS_BY_NAME: Final = {w.name: w for w in WINDOWS}

KEPT_DAYS: Final = max(w.days for w in WINDOWS if w.days is not None) + 1
"""Per-day figures kept, counting back from the latest event day: the longest window plus one hop,
so the windows as of the day before the latest are complete too (a query ``as_of`` now on a worker
whose clock is a little behind Zoom's, just after midnight UTC)."""


def day_of(event_ts: int) -> int:
    """The UTC day number of an epoch-millisecond time."""
    return event_ts // DAY_MS


@functools.lru_cache(maxsize=1024)
def iso_day(day: int) -> str:
    """A day number as ``YYYY-MM-DD`` (cached: every figures document names its windows' days)."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def oldest_kept_day(latest_day: int) -> int:
    """The oldest day whose per-day figures are kept when the latest event is of ``latest_day``."""
    return latest_day - KEPT_DAYS + 1
