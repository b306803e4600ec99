"""Zoom webhook signatures: verify a request, answer the URL-validation challenge, sign like Zoom.

Zoom signs every webhook request it sends (the ``endpoint.url_validation`` challenge included) with
the app's Secret Token::

    x-zm-request-timestamp: 1700000000
    x-zm-signature: v0=<hex HMAC-SHA256(secret, "v0:{x-zm-request-timestamp}:{raw body}")>

The HMAC is computed here over the raw request bytes, never over re-serialised JSON, and compared in
constant time. Several secrets may be configured (``ZOOM_WEBHOOK_SECRET_TOKEN`` is a comma-separated
list: secret rotation, or several Zoom apps posting to one endpoint); a request is genuine when any
of them produced its signature, and :class:`VerifiedSignature` says which one did.

Timestamps: Zoom sends epoch *seconds*. A value of ``10**11`` or more cannot be seconds (that is the
year 5138) and is read as epoch *milliseconds*, so a sender using milliseconds also works. The
timestamp must lie within the replay window (``SOURCE_REPLAY_WINDOW_SECONDS``, default 300) of the
receiver's clock, in both directions. Whether Zoom re-signs its retries with a fresh timestamp is
not documented; :mod:`connector.source.server` says how to tell from the metrics and how to widen
the window.

The signature is checked *before* the timestamp window, so a failure counted as
``stale_timestamp`` or ``future_timestamp`` always comes from a request signed with one of our
secrets: a genuine Zoom request (typically a retry, if Zoom does not re-sign its retries) or a
replay. Anything unsigned or mis-signed is counted as ``signature_mismatch``.

The URL-validation answer is ``{"plainToken": t, "encryptedToken": hex HMAC-SHA256(secret, t)}``.
That HMAC is a signing oracle: answered for an unsigned request, it would let anyone obtain
``HMAC(secret, "v0:{ts}:{forged body}")``, which is a valid signature for a forged event. So the
source requires a valid signature on validation requests too (Zoom signs them), and answers with the
secret whose signature matched.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from connector.errors import ConnectorError
from connector.wire import SIGNATURE_HEADER, TIMESTAMP_HEADER

URL_VALIDATION_EVENT: Final = "endpoint.url_validation"

_VERSION: Final = "v0"
# At or above this a timestamp is read as milliseconds: 1e11 seconds is the year 5138, while
# 1e11 milliseconds is March 1973, long before any webhook was sent.
_MILLISECONDS_FROM: Final = 100_000_000_000
_MAX_TIMESTAMP_DIGITS: Final = 16


class SignatureError(ConnectorError):
    """A request whose signature cannot be trusted; :attr:`reason` is machine-readable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# The machine-readable reasons, also the label values of the signature-failure metric.
MISSING_SIGNATURE: Final = "missing_signature"
MISSING_TIMESTAMP: Final = "missing_timestamp"
SIGNATURE_MISMATCH: Final = "signature_mismatch"
BAD_TIMESTAMP: Final = "bad_timestamp"
STALE_TIMESTAMP: Final = "stale_timestamp"
FUTURE_TIMESTAMP: Final = "future_timestamp"

FAILURE_REASONS: Final = (
    MISSING_SIGNATURE,
    MISSING_TIMESTAMP,
    SIGNATURE_MISMATCH,
    BAD_TIMESTAMP,
    STALE_TIMESTAMP,
    FUTURE_TIMESTAMP,
)


@dataclass(frozen=True)
class VerifiedSignature:
    """What a successful verification established."""

    secret_index: int
    """Which of the configured secrets signed the request (0 is the first)."""
    timestamp: float
    """The request timestamp, in epoch seconds."""
    age_seconds: float
    """Receive time minus the request timestamp; negative when the sender's clock is ahead."""


def compute_signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``x-zm-signature`` value Zoom would send for this timestamp and raw body."""
    message = b"%s:%s:%s" % (_VERSION.encode(), timestamp.encode("utf-8", "surrogateescape"), body)
    return f"{_VERSION}={hmac.new(secret, message, hashlib.sha256).hexdigest()}"


def signed_headers(secret: bytes, body: bytes, now: float) -> dict[str, str]:
    """The two headers Zoom sends with ``body`` at time ``now`` (epoch seconds)."""
    timestamp = str(int(now))
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: compute_signature(secret, timestamp, body),
    }


def parse_timestamp(value: str) -> float:
    """``x-zm-request-timestamp`` as epoch seconds (milliseconds accepted, see the module doc)."""
    text = value.strip()
    if not text or not text.isascii() or not text.isdigit() or len(text) > _MAX_TIMESTAMP_DIGITS:
        raise SignatureError(BAD_TIMESTAMP, "request timestamp is not a whole number of seconds")
    number = int(text)
    return number / 1000 if number >= _MILLISECONDS_FROM else float(number)


def verify(
    *,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    secrets: Sequence[bytes],
    now: float,
    window_seconds: float,
) -> VerifiedSignature:
    """Check a request's signature against every secret, then its timestamp against ``now``.

    Raises :class:`SignatureError` with one of :data:`FAILURE_REASONS`.
    """
    if not signature:
        raise SignatureError(MISSING_SIGNATURE, f"{SIGNATURE_HEADER} header is missing")
    if timestamp is None or timestamp == "":
        raise SignatureError(MISSING_TIMESTAMP, f"{TIMESTAMP_HEADER} header is missing")

    presented = signature.encode("utf-8", "surrogateescape")
    matched: int | None = None
    # Every secret is tried, without stopping at the first match, so timing says nothing about
    # which secret (or whether any) matched.
    for index, secret in enumerate(secrets):
        expected = compute_signature(secret, timestamp, body).encode()
        if hmac.compare_digest(expected, presented) and matched is None:
            matched = index
    if matched is None:
        raise SignatureError(SIGNATURE_MISMATCH, "signature does not match")

    sent_at = parse_timestamp(timestamp)
    age = now - sent_at
    if age > window_seconds:
        raise SignatureError(STALE_TIMESTAMP, "request timestamp is older than the replay window")
    if -age > window_seconds:
        raise SignatureError(FUTURE_TIMESTAMP, "request timestamp is ahead of the replay window")
    return VerifiedSignature(secret_index=matched, timestamp=sent_at, age_seconds=age)


def url_validation_response(plain_token: str, secret: bytes) -> dict[str, str]:
    """The answer to Zoom's ``endpoint.url_validation`` challenge."""
    encrypted = hmac.new(secret, plain_token.encode("utf-8"), hashlib.sha256).hexdigest()
    return {"plainToken": plain_token, "encryptedToken": encrypted}
