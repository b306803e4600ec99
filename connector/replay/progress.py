"""A one-line progress bar on stderr: records done of the total, percentage, rate.

Shown when stderr is a terminal, or when asked for (``--progress``); ``--no-progress`` hides it.
Redrawn at most every 0.2 s, so it costs nothing per record.
"""

from __future__ import annotations

import time
from typing import Final, TextIO

_REDRAW_SECONDS: Final = 0.2
_WIDTH: Final = 30


class Progress:
    """Draws ``done/total`` and the rate since :meth:`start` (no-op when not ``enabled``)."""

    def __init__(self, total: int, stream: TextIO, *, enabled: bool, done: int = 0) -> None:
        self.total = total
        self.enabled = enabled
        self._stream = stream
        self._first = done
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._drawn_width = 0

    def update(self, done: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._drawn_at < _REDRAW_SECONDS):
            return
        self._drawn_at = now
        share = done / self.total if self.total else 1.0
        filled = round(share * _WIDTH)
        rate = (done - self._first) / max(now - self._started, 1e-9)
        line = (
            f"[{'#' * filled}{'.' * (_WIDTH - filled)}] {done:,}/{self.total:,}"
            f" {share:4.0%} {rate:,.0f}/s"
        )
        self._stream.write("\r" + line.ljust(self._drawn_width))  # blank a longer earlier line
        self._drawn_width = len(line)
        self._stream.flush()

    def finish(self, done: int) -> None:
        if self.enabled:
            self.update(done, force=True)
            self._stream.write("\n")
            self._stream.flush()
