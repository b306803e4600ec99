"""Zoom's signature scheme and URL-validation handshake, against known vectors."""

from __future__ import annotations

from typing import Any

import pytest

from connector.source.signature import (
    BAD_TIMESTAMP,
    FUTURE_TIMESTAMP,
    MISSING_SIGNATURE,
    MISSING_TIMESTAMP,
    SIGNATURE_MISMATCH,
    STALE_TIMESTAMP,
    SignatureError,
    VerifiedSignature,
    compute_signature,
    parse_timestamp,
    signed_headers,
    url_validation_response,
    verify,
)
from connector.wire import SIGNATURE_HEADER, TIMESTAMP_HEADER

SECRET = b"secretValueTest"
OTHER = b"anotherSecret"
BODY = b'{"event":"meeting.started"}'
TS = "1700000000"
# Computed independently: printf 'v0:1700000000:{"event":"meeting.started"}' |
#   openssl dgst -sha256 -hmac secretValueTest
SIGNATURE = "v0=e28a9e2541856eff4d32bdec75f18de7ddae7c5209e58d16cf419775d3489085"
NOW = 1_700_000_010.0


def test_url_validation_matches_zoom_vector() -> None:
    answer = url_validation_response("qgg8vlvZRS6UYooatFL8Aw", SECRET)
    assert answer == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": "70c1f2e2e6ca2d39297490d1f9142c7d701415ea8e6151f6562a08fa657a40ff",
    }


def test_compute_signature_matches_independent_vector() -> None:
    assert compute_signature(SECRET, TS, BODY) == SIGNATURE


def test_signed_headers_use_whole_seconds() -> None:
    headers = signed_headers(SECRET, BODY, 1_700_000_000.9)
    assert headers == {TIMESTAMP_HEADER: TS, SIGNATURE_HEADER: SIGNATURE}


def _verify(
    signature: str | None = SIGNATURE,
    timestamp: str | None = TS,
    body: bytes = BODY,
    secrets: tuple[bytes, ...] = (SECRET,),
    now: float = NOW,
    window: float = 300,
) -> VerifiedSignature:
    return verify(
        signature=signature,
        timestamp=timestamp,
        body=body,
        secrets=secrets,
        now=now,
        window_seconds=window,
    )


def test_verify_accepts_a_good_signature_and_reports_its_age() -> None:
    result = verify(
        signature=SIGNATURE, timestamp=TS, body=BODY, secrets=[SECRET], now=NOW, window_seconds=300
    )
    assert result.secret_index == 0
    assert result.timestamp == 1_700_000_000
    assert result.age_seconds == pytest.approx(10.0)


def test_verify_names_the_second_secret_when_it_matches() -> None:
    result = verify(
        signature=SIGNATURE,
        timestamp=TS,
        body=BODY,
        secrets=[OTHER, SECRET],
        now=NOW,
        window_seconds=300,
    )
    assert result.secret_index == 1


def _signed_at(timestamp: str, secret: bytes = SECRET, body: bytes = BODY) -> str:
    return compute_signature(secret, timestamp, body)


@pytest.mark.parametrize(
    ("case", "kwargs", "reason"),
    [
        ("tampered body", {"body": BODY.replace(b"started", b"ended")}, SIGNATURE_MISMATCH),
        ("body with extra space", {"body": BODY + b" "}, SIGNATURE_MISMATCH),
        ("wrong secret", {"secrets": (OTHER,)}, SIGNATURE_MISMATCH),
        ("no secrets", {"secrets": ()}, SIGNATURE_MISMATCH),
        ("timestamp changed", {"timestamp": "1700000001"}, SIGNATURE_MISMATCH),
        ("upper-case hex", {"signature": "v0=" + SIGNATURE[3:].upper()}, SIGNATURE_MISMATCH),
        ("other version", {"signature": "v1=" + SIGNATURE[3:]}, SIGNATURE_MISMATCH),
        ("bare hex", {"signature": SIGNATURE[3:]}, SIGNATURE_MISMATCH),
        ("non-ascii signature", {"signature": "v0=é"}, SIGNATURE_MISMATCH),
        ("missing signature", {"signature": None}, MISSING_SIGNATURE),
        ("empty signature", {"signature": ""}, MISSING_SIGNATURE),
        ("missing timestamp", {"timestamp": None}, MISSING_TIMESTAMP),
        ("empty timestamp", {"timestamp": ""}, MISSING_TIMESTAMP),
        ("stale", {"now": 1_700_000_301.0}, STALE_TIMESTAMP),
        ("future", {"now": 1_699_999_699.0}, FUTURE_TIMESTAMP),
        ("narrow window", {"window": 5.0}, STALE_TIMESTAMP),
    ],
)
def test_verify_refuses(case: str, kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(SignatureError) as caught:
        _verify(**kwargs)
    assert caught.value.reason == reason, case


@pytest.mark.parametrize(
    "timestamp", ["abc", "17e8", "-1700000000", "1.7e9", "1700000000.5", "١٢٣"]
)
def test_verify_refuses_non_numeric_timestamps_even_when_signed(timestamp: str) -> None:
    with pytest.raises(SignatureError) as caught:
        _verify(signature=_signed_at(timestamp), timestamp=timestamp)
    assert caught.value.reason == BAD_TIMESTAMP


def test_signature_is_checked_before_the_timestamp() -> None:
    # A stale request that is not ours is a mismatch, not a stale timestamp: the stale counter
    # only counts genuinely signed requests.
    with pytest.raises(SignatureError) as caught:
        _verify(secrets=(OTHER,), now=NOW + 10_000)
    assert caught.value.reason == SIGNATURE_MISMATCH


@pytest.mark.parametrize("now", [1_700_000_300.0, 1_699_999_700.0])
def test_window_edges_are_inclusive(now: float) -> None:
    _verify(now=now)


def test_millisecond_timestamps_are_accepted() -> None:
    ms = "1700000000500"
    result = verify(
        signature=_signed_at(ms),
        timestamp=ms,
        body=BODY,
        secrets=[SECRET],
        now=NOW,
        window_seconds=300,
    )
    assert result.timestamp == pytest.approx(1_700_000_000.5)
    assert result.age_seconds == pytest.approx(9.5)


def test_millisecond_timestamps_are_checked_against_the_window() -> None:
    ms = "1700000000000"
    with pytest.raises(SignatureError) as caught:
        _verify(signature=_signed_at(ms), timestamp=ms, now=NOW + 1000)
    assert caught.value.reason == STALE_TIMESTAMP


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("1700000000", 1_700_000_000.0), ("99999999999", 99_999_999_999.0)],
)
def test_parse_timestamp_seconds(text: str, seconds: float) -> None:
    assert parse_timestamp(text) == seconds


def test_parse_timestamp_reads_large_values_as_milliseconds() -> None:
    assert parse_timestamp("100000000000") == 100_000_000.0


def test_error_messages_never_contain_the_secret() -> None:
    cases: list[dict[str, Any]] = [
        {"secrets": (OTHER,)},
        {"now": NOW + 10_000},
        {"timestamp": None},
    ]
    for kwargs in cases:
        with pytest.raises(SignatureError) as caught:
            _verify(**kwargs)
        assert SECRET.decode() not in str(caught.value)
