"""Repeated log lines: the first written, the repeats counted once per window."""

from __future__ import annotations

import logging

import pytest

from connector.kafka.coalescing_log import CoalescingLog, message_key

FAIL = "localhost:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def coalescing(clock: Clock) -> CoalescingLog:
    logger = logging.getLogger("tests.coalescing")
    logger.setLevel(logging.DEBUG)
    return CoalescingLog(logger, window=30.0, clock=clock)


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tests.coalescing"]


def test_a_repeated_message_is_written_once_then_counted_per_window(
    coalescing: CoalescingLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    for attempt in range(120):  # four a second for 30 s, as librdkafka reconnects
        clock.now = 100.0 + attempt * 0.25
        coalescing.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#producer-1", FAIL)
    assert _lines(caplog) == [f"FAIL [rdkafka#producer-1] {FAIL}"]
    clock.now = 130.0
    coalescing.error(f"FAIL [rdkafka#producer-1] {FAIL}")
    assert _lines(caplog)[1:] == [f"FAIL [rdkafka#producer-1] {FAIL} (120 more in 30 s)"]
    assert caplog.records[-1].levelno == logging.ERROR


def test_flush_writes_the_pending_count(
    coalescing: CoalescingLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(5):
        coalescing.warning(FAIL)
        clock.now += 1.4
    coalescing.flush()
    coalescing.flush()  # nothing left to say
    assert _lines(caplog) == [FAIL, f"{FAIL} (4 more in 7 s)"]


def test_a_message_that_stopped_is_counted_when_another_comes_after_its_window(
    coalescing: CoalescingLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    coalescing.warning("first")
    coalescing.warning("first")
    clock.now += 31
    coalescing.warning("second")
    assert _lines(caplog) == ["first", "first (1 more in 31 s)", "second"]


def test_a_message_that_does_not_repeat_is_written_each_time(
    coalescing: CoalescingLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        coalescing.warning("rare")
        clock.now += 60
    assert _lines(caplog) == ["rare", "rare", "rare"]


def test_different_messages_are_counted_apart(
    coalescing: CoalescingLog, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        coalescing.warning("one")
        coalescing.warning("two")
    coalescing.flush()
    assert sorted(_lines(caplog)) == ["one", "one (2 more in 1 s)", "two", "two (2 more in 1 s)"]


def test_levels_the_logger_ignores_cost_nothing(
    coalescing: CoalescingLog, caplog: pytest.LogCaptureFixture
) -> None:
    coalescing.logger.setLevel(logging.WARNING)
    coalescing.log(logging.DEBUG, "%s", "quiet")
    coalescing.flush()
    assert _lines(caplog) == []


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (f"{FAIL} (after 0ms in state CONNECT)", f"{FAIL} (after 12ms in state CONNECT)"),
        (f"{FAIL} (after 3ms in state CONNECT, 4 identical error(s) suppressed)", None),
        ("broker down (2 identical error(s) suppressed)", "broker down"),
    ],
)
def test_durations_and_suppression_counts_do_not_make_a_new_message(a: str, b: str | None) -> None:
    if b is not None:
        assert message_key(a) == message_key(b)
    assert "ms" not in message_key(a).replace("CONNECT", "")


def test_distinct_brokers_stay_distinct() -> None:
    assert message_key("b1:9092/1: Connect failed") != message_key("b2:9092/2: Connect failed")
