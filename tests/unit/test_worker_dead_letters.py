"""Dead-letter headers: the original headers kept, why and where from added."""

from __future__ import annotations

from connector.avro.errors import Reason
from connector.worker.dead_letters import (
    MAX_MESSAGE_CHARS,
    Origin,
    PipelineReason,
    Refusal,
    dead_letter_headers,
)

ORIGINAL = [
    ("x-zm-signature", b"v0=abc"),
    ("x-zm-request-timestamp", b"1700000000"),
    ("zoom-dlq-reason", b"stale reason from an earlier refusal"),
    ("zoom-connector-received-at", b"1700000000123"),
]


def test_headers_say_why_and_where_from() -> None:
    refusal = Refusal(
        Reason.MISSING_REQUIRED_FIELD,
        "$.payload.object.evaluation_id",
        "missing required field",
        "quality_management.evaluation_completed",
    )
    headers = dead_letter_headers(ORIGINAL, refusal, Origin("zoom.webhooks.raw", 3, 42), "e-1", 99)
    assert headers == [
        ("x-zm-signature", b"v0=abc"),
        ("x-zm-request-timestamp", b"1700000000"),
        ("zoom-connector-received-at", b"1700000000123"),
        ("zoom-dlq-reason", b"missing_required_field"),
        ("zoom-dlq-path", b"$.payload.object.evaluation_id"),
        ("zoom-dlq-message", b"missing required field"),
        ("zoom-dlq-event-type", b"quality_management.evaluation_completed"),
        ("zoom-dlq-source-topic", b"zoom.webhooks.raw"),
        ("zoom-dlq-source-partition", b"3"),
        ("zoom-dlq-source-offset", b"42"),
        ("zoom-dlq-failed-at", b"99"),
        ("zoom-event-id", b"e-1"),
    ]


def test_pipeline_reasons_and_no_event_type() -> None:
    headers = dict(
        dead_letter_headers(
            [], Refusal(PipelineReason.INTERNAL_ERROR, "$", "boom"), Origin("t", 0, 0), "e", 1
        )
    )
    assert headers["zoom-dlq-reason"] == b"internal_error"
    assert "zoom-dlq-event-type" not in headers


def test_long_messages_are_cut_and_odd_text_still_encodes() -> None:
    refusal = Refusal(Reason.WRONG_TYPE, "$.a\udc80", "x" * 5000 + "\ud800")
    headers = dict(dead_letter_headers([], refusal, Origin("t", 0, 0), "e", 1))
    message = headers["zoom-dlq-message"].decode()
    assert len(message) == MAX_MESSAGE_CHARS and message.endswith("…")
    assert headers["zoom-dlq-path"] == b"$.a\\udc80"
