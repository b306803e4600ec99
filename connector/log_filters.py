"""Log filters for third-party messages that alarm without cause.

:class:`FreshStartCoordinatorFilter`: on a broker that has just started (``make run`` on a fresh
machine, a new test broker), the worker's first consumer-group request finds no group coordinator
yet: Kafka creates its ``__consumer_offsets`` topic on that first request. aiokafka logs
``[ERROR] Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError`` and
retries, and a moment later the worker runs normally. For the first :data:`FRESH_START_SECONDS`
after the filter is installed such retriable failures are logged at INFO, saying so; after that
they stay errors, since a coordinator missing for longer is a real problem.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

COORDINATOR_LOGGER: Final = "aiokafka.consumer.group_coordinator"
COORDINATOR_FAILED: Final = "Group Coordinator Request failed: %s"
FRESH_START_SECONDS: Final = 60.0
EXPLANATION: Final = (
    " (expected once on a freshly started broker, which creates its __consumer_offsets topic"
    " on the first group request; retrying)"
)


class FreshStartCoordinatorFilter(logging.Filter):
    """Logs aiokafka's retriable coordinator failures at INFO while the worker is starting."""

    def __init__(
        self,
        fresh_for: float = FRESH_START_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._clock = clock
        self._until = clock() + fresh_for

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.msg == COORDINATOR_FAILED
            and record.levelno == logging.ERROR
            and isinstance(record.args, tuple)
            and record.args
            and getattr(record.args[0], "retriable", False)
            and self._clock() < self._until
        ):
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.msg = COORDINATOR_FAILED + EXPLANATION
        return True


def install_worker_log_filters() -> None:
    """Install the worker's filters on the loggers they watch (once per process)."""
    logger = logging.getLogger(COORDINATOR_LOGGER)
    if not any(isinstance(f, FreshStartCoordinatorFilter) for f in logger.filters):
        logger.addFilter(FreshStartCoordinatorFilter())
