"""aiokafka's coordinator error on a fresh broker is logged as what it is: expected, retried."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from aiokafka.errors import CoordinatorNotAvailableError, GroupAuthorizationFailedError

from connector.log_filters import (
    COORDINATOR_FAILED,
    COORDINATOR_LOGGER,
    FreshStartCoordinatorFilter,
    install_worker_log_filters,
)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    clock = Clock()
    logger = logging.getLogger(COORDINATOR_LOGGER)
    before = list(logger.filters)  # a worker command run earlier in this process installed one
    logger.filters[:] = [f for f in before if not isinstance(f, FreshStartCoordinatorFilter)]
    logger.addFilter(FreshStartCoordinatorFilter(fresh_for=60, clock=clock))
    yield clock
    logger.filters[:] = before


def _log_as_aiokafka_does(error: Exception, caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=COORDINATOR_LOGGER):
        logging.getLogger(COORDINATOR_LOGGER).error(COORDINATOR_FAILED, error)
    (record,) = caplog.records
    return record


def test_on_a_fresh_start_the_retried_failure_is_information(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    record = _log_as_aiokafka_does(CoordinatorNotAvailableError(), caplog)
    assert record.levelno == logging.INFO
    assert "CoordinatorNotAvailableError" in record.getMessage()
    assert "freshly started broker" in record.getMessage()


def test_later_it_is_an_error_again(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    clock.now = 61
    record = _log_as_aiokafka_does(CoordinatorNotAvailableError(), caplog)
    assert record.levelno == logging.ERROR
    assert "freshly" not in record.getMessage()


def test_a_failure_that_is_not_retried_stays_an_error(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    record = _log_as_aiokafka_does(GroupAuthorizationFailedError(), caplog)
    assert record.levelno == logging.ERROR


def test_installed_once() -> None:
    logger = logging.getLogger(COORDINATOR_LOGGER)
    before = list(logger.filters)
    # an earlier test in this process may have run the worker's command, which installs it
    logger.filters[:] = [f for f in before if not isinstance(f, FreshStartCoordinatorFilter)]
    try:
        install_worker_log_filters()
        install_worker_log_filters()
        installed = [f for f in logger.filters if isinstance(f, FreshStartCoordinatorFilter)]
        assert len(installed) == 1
    finally:
        logger.filters[:] = before
