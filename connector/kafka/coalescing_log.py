"""Repeated log lines written once, then counted: librdkafka's retry loops without the flood.

A librdkafka client that cannot reach its cluster logs the same ``FAIL`` line on every reconnect
attempt (several a second), and our own callbacks repeat themselves as often. A
:class:`CoalescingLog` writes a message the first time, then stays quiet about it for ``window``
seconds; the next time it comes up after that, one line says how often it came meanwhile::

    ERROR ... FAIL [...] localhost:1/bootstrap: Connect to ... failed: Connection refused
    ERROR ... FAIL [...] localhost:1/bootstrap: Connect to ... failed: ... (47 more in 30 s)

A long outage thus costs one line per message and window. :meth:`flush` writes the counts still
pending (call it before reporting a failure, and at shutdown). Messages are told apart by their
text with the parts that change on every attempt removed (durations such as ``after 12ms``,
librdkafka's own ``(3 identical error(s) suppressed)``).

It can be given to confluent-kafka as the client's ``logger``: librdkafka's lines then arrive
through :meth:`log` when the client is polled, with Python's logging levels.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

DEFAULT_WINDOW_SECONDS: Final = 30.0

_VOLATILE: Final = (
    re.compile(r"\s*\(\d+ identical error\(s\) suppressed\)"),
    re.compile(r"\d+(?:\.\d+)?\s?ms\b"),
)


def message_key(text: str) -> str:
    """``text`` without the parts that differ between repeats of one message."""
    for pattern in _VOLATILE:
        text = pattern.sub("", text)
    return text


@dataclass
class _Seen:
    level: int
    text: str
    since: float
    repeats: int = 0


class CoalescingLog:
    """A logger front that writes each repeated message once per ``window`` seconds, with a count.

    Thread-safe: librdkafka's callbacks run on the threads that poll its clients.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        window: float = DEFAULT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, _Seen] = {}

    def log(self, level: int, msg: str, *args: object) -> None:
        """Like :meth:`logging.Logger.log`: written now, or counted until the window ends."""
        if not self.logger.isEnabledFor(level):
            return
        text = msg % args if args else msg
        key = message_key(text)
        now = self._clock()
        with self._lock:
            self._write_expired(now, keep=key)
            seen = self._seen.get(key)
            if seen is None:
                self._seen[key] = _Seen(level, text, now)
                self.logger.log(level, "%s", text)
            elif now - seen.since < self._window:
                seen.repeats += 1
            elif seen.repeats:
                self._seen[key] = _Seen(level, text, now)
                self.logger.log(level, "%s (%s)", text, _count(seen.repeats + 1, now - seen.since))
            else:
                self._seen[key] = _Seen(level, text, now)
                self.logger.log(level, "%s", text)

    def error(self, msg: str, *args: object) -> None:
        self.log(logging.ERROR, msg, *args)

    def warning(self, msg: str, *args: object) -> None:
        self.log(logging.WARNING, msg, *args)

    def flush(self) -> None:
        """Write the counts of the repeats not reported yet."""
        with self._lock:
            self._write_expired(None, keep=None)

    def _write_expired(self, now: float | None, keep: str | None) -> None:
        # Windows that ended (all of them when ``now`` is None) report their repeats, so a
        # message that stopped coming is not left uncounted; ``keep`` is reported by its caller.
        for key, seen in list(self._seen.items()):
            if key == keep:
                continue
            elapsed = (self._clock() if now is None else now) - seen.since
            if now is not None and elapsed < self._window:
                continue
            del self._seen[key]
            if seen.repeats:
                self.logger.log(seen.level, "%s (%s)", seen.text, _count(seen.repeats, elapsed))


def _count(repeats: int, seconds: float) -> str:
    return f"{repeats} more in {max(1, round(seconds))} s"
