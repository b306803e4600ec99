"""The filters of ``replay`` and ``dlq show``, the copies' headers, and the progress bar."""

from __future__ import annotations

import io

import pytest

from connector.replay.progress import Progress
from connector.replay.records import RecordView, replay_headers
from connector.replay.selection import Selection, SelectionError, parse_time, split_values
from connector.wire import REPLAYED_FROM_HEADER

DAY_MS = 1_764_547_200_000  # 2025-12-01T00:00:00Z


@pytest.mark.parametrize(
    ("text", "epoch_ms"),
    [
        ("1764547200000", DAY_MS),
        ("2025-12-01", DAY_MS),
        ("2025-12-01T00:00:00Z", DAY_MS),
        ("2025-12-01T01:00:00+01:00", DAY_MS),
        ("2025-12-01T00:00:00.250", DAY_MS + 250),
    ],
)
def test_parse_time_takes_iso_8601_or_epoch_ms(text: str, epoch_ms: int) -> None:
    assert parse_time(text) == epoch_ms


@pytest.mark.parametrize("text", ["yesterday", "2025-13-01", "-5", "12:00"])
def test_parse_time_refuses_other_text(text: str) -> None:
    with pytest.raises(SelectionError, match="is not a time"):
        parse_time(text)


def test_split_values_takes_repeats_and_commas() -> None:
    assert split_values(["a,b", " c ", ""]) == {"a", "b", "c"}
    assert split_values(None) == frozenset()


def _view(reason: str | None, event: str | None, at: int) -> RecordView:
    return RecordView("t", 0, 0, at, None, b"{}", [], True, reason=reason, event_type=event)


@pytest.mark.parametrize(
    ("selection", "selected"),
    [
        (Selection(), True),
        (Selection(reasons=frozenset({"invalid_json"})), True),
        (Selection(reasons=frozenset({"wrong_type"})), False),
        (Selection(events=frozenset({"e.one"})), True),
        (Selection(events=frozenset({"e.two"})), False),
        (Selection(since_ms=DAY_MS), True),
        (Selection(since_ms=DAY_MS + 1), False),
        (Selection(until_ms=DAY_MS + 1), True),
        (Selection(until_ms=DAY_MS), False),  # --until is exclusive
    ],
)
def test_selection_matches_every_filter_given(selection: Selection, selected: bool) -> None:
    assert selection.matches(_view("invalid_json", "e.one", DAY_MS)) is selected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"reasons": frozenset({"nope"})}, "unknown reason nope"),
        ({"since_ms": 2, "until_ms": 1}, "--since must be before --until"),
        ({"since_ms": 1, "until_ms": 1}, "--since must be before --until"),
        ({"partitions": frozenset({-1})}, "numbered from 0"),
    ],
)
def test_selection_refuses_filters_it_cannot_use(options: dict[str, object], message: str) -> None:
    with pytest.raises(SelectionError, match=message):
        Selection(**options)  # type: ignore[arg-type]


def test_fingerprint_tells_filters_apart() -> None:
    assert Selection().fingerprint() == Selection().fingerprint()
    assert Selection().fingerprint() != Selection(since_ms=1).fingerprint()


def test_replay_headers_drop_dead_letter_headers_and_name_the_origin() -> None:
    original = [
        ("x-zm-signature", b"v0=abc"),
        ("zoom-dlq-reason", b"invalid_json"),
        ("zoom-event-id", b"raw/sha256=00"),
        (REPLAYED_FROM_HEADER, b"older/0/1"),
        ("zoom-connector-received-at", b"123"),
    ]
    assert replay_headers(original, "zoom.webhooks.dlq/2/17") == [
        ("x-zm-signature", b"v0=abc"),
        ("zoom-connector-received-at", b"123"),
        (REPLAYED_FROM_HEADER, b"zoom.webhooks.dlq/2/17"),
    ]


def test_progress_draws_done_of_total_only_when_enabled() -> None:
    shown, hidden = io.StringIO(), io.StringIO()
    Progress(200, shown, enabled=True).finish(50)
    Progress(200, hidden, enabled=False).finish(50)
    assert "50/200" in shown.getvalue() and "25%" in shown.getvalue()
    assert hidden.getvalue() == ""
