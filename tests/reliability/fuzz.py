"""Hypothesis strategies for bad input: webhook requests for the source, raw records for the worker.

Bodies: real webhooks (catalog examples of every event type) and their mutations (a field
replaced by an arbitrary JSON value, removed, or an unknown one added), arbitrary JSON, arbitrary
bytes, invalid UTF-8 inside a JSON string, deep nesting, huge numbers (beyond 64 bits, beyond a
double), ``NaN``, duplicate keys, truncated and oversized bodies. Requests add a signing mode
(valid, wrong secret, missing or garbled signature or timestamp, a signature over other bytes,
stale or future timestamps), a content type (right, wrong, absent) and arbitrary extra headers.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from connector.source.signature import compute_signature
from connector.wire import SIGNATURE_HEADER, TIMESTAMP_HEADER, TRACKING_ID_HEADER
from tests.processes import CATALOG

SIGNING_MODES = (
    "valid",
    "valid",
    "valid",
    "wrong_secret",
    "no_signature",
    "no_timestamp",
    "garbled_signature",
    "garbled_timestamp",
    "other_body",
    "stale",
    "future",
)
CONTENT_TYPES = (
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=zzz",
    "application/octet-stream",
    "",
    "definitely not a content type",
)

# --- JSON ---------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (dict keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A catalog example of any event type, named right, with up to three mutations."""
    event_type = draw(st.sampled_from(CATALOG.event_types))
    event = copy.deepcopy(CATALOG.example(event_type))
    event["event"] = event_type
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(event)
        path = draw(st.sampled_from(paths))
        parent: Any = event
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
    return event


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def event_bodies(draw: st.DrawFn) -> bytes:
    """A valid webhook of any event type (a catalog example at another time)."""
    event_type = draw(st.sampled_from(CATALOG.event_types))
    event = copy.deepcopy(CATALOG.example(event_type))
    event["event"] = event_type
    event["event_ts"] = draw(st.integers(0, 2**41))
    return _dumps(event)


@st.composite
def bodies(draw: st.DrawFn, max_body: int) -> bytes:
    """Webhook bodies, good and bad (see the module docstring)."""
    kind = draw(
        st.sampled_from(
            [
                "event",
                "event",
                "mutated",
                "mutated",
                "json",
                "bytes",
                "invalid_utf8",
                "deep",
                "huge_number",
                "nan",
                "duplicate_keys",
                "truncated",
                "oversized",
                "url_validation",
            ]
        )
    )
    if kind == "event":
        return draw(event_bodies())
    if kind == "mutated":
        return _dumps(draw(mutated_events()))
    if kind == "json":
        return _dumps(draw(json_values))
    if kind == "bytes":
        return draw(st.binary(max_size=2048))
    if kind == "invalid_utf8":
        junk = draw(st.binary(min_size=1, max_size=8).filter(_not_utf8))
        return b'{"event": "quality_management.evaluation_completed", "x": "' + junk + b'"}'
    if kind == "deep":
        depth = draw(st.integers(100, 100_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        inner = opener * depth + b"1" + closer * depth
        return b'{"event": "x.y", "payload": ' + inner + b"}"
    if kind == "huge_number":
        number = draw(
            st.sampled_from([b"1" + b"0" * 400, b"-" + b"9" * 5000, b"1e400", b"-1e-400", b"2e308"])
        )
        field_name = draw(st.sampled_from([b"event_ts", b"evaluation_score", b"x"]))
        return (
            b'{"event": "quality_management.evaluation_completed", "'
            + field_name
            + b'": '
            + number
            + b', "payload": {"object": {"evaluation_score": '
            + number
            + b"}}}"
        )
    if kind == "nan":
        return b'{"event": "x", "v": ' + draw(st.sampled_from([b"NaN", b"Infinity"])) + b"}"
    if kind == "duplicate_keys":
        first = draw(st.sampled_from(CATALOG.event_types))
        return (
            b'{"event": "'
            + first.encode()
            + b'", "event": "'
            + draw(st.sampled_from([*CATALOG.event_types, "x", ""])).encode()
            + b'", "payload": {"object": {}}, "payload": {"object": {"a": 1}}}'
        )
    if kind == "truncated":
        whole = _dumps(draw(mutated_events()))
        return whole[: draw(st.integers(0, max(0, len(whole) - 1)))]
    if kind == "oversized":
        padding = b"x" * (max_body + draw(st.integers(1, 4096)))
        return b'{"event": "x", "pad": "' + padding + b'"}'
    token = draw(st.text(max_size=40))
    return _dumps({"event": "endpoint.url_validation", "payload": {"plainToken": token}})


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


_SEPARATORS = ':()<>@,;\\"/[]?={}'
header_names = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=_SEPARATORS),
    min_size=1,
    max_size=20,
).filter(lambda name: name.lower() not in {"content-length", "transfer-encoding", "host"})
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


@dataclass
class FuzzRequest:
    """One POST to the webhook path, and whether it is genuinely signed."""

    body: bytes
    headers: dict[str, str]
    mode: str
    signed_body: bytes
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def genuine(self) -> bool:
        """Signed with our secret over exactly these bytes, within the replay window."""
        return self.mode == "valid"


@st.composite
def requests(draw: st.DrawFn, secret: str, max_body: int) -> FuzzRequest:
    body = draw(bodies(max_body))
    mode = draw(st.sampled_from(SIGNING_MODES))
    now = int(time.time())
    timestamp = str(now)
    signed_body = body
    key = secret
    if mode == "wrong_secret":
        key = draw(st.text(min_size=1, max_size=20).filter(lambda s: s != secret))
    elif mode == "other_body":
        signed_body = body + draw(st.binary(min_size=1, max_size=8))
    elif mode == "stale":
        timestamp = str(now - 305 - draw(st.integers(0, 10**6)))  # 5 s clear of the window
    elif mode == "future":
        timestamp = str(now + 305 + draw(st.integers(0, 10**6)))
    headers: dict[str, str] = {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: compute_signature(key.encode(), timestamp, signed_body),
    }
    if mode == "no_signature":
        del headers[SIGNATURE_HEADER]
    elif mode == "no_timestamp":
        del headers[TIMESTAMP_HEADER]
    elif mode == "garbled_signature":
        headers[SIGNATURE_HEADER] = draw(header_values)
    elif mode == "garbled_timestamp":
        garbled = draw(st.sampled_from(["", "-1", "1e9", "abc", "9" * 40, " 17 ", "0x10"]))
        headers[TIMESTAMP_HEADER] = garbled
        headers[SIGNATURE_HEADER] = compute_signature(secret.encode(), garbled, body)
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type:
        headers["content-type"] = content_type
    headers[TRACKING_ID_HEADER] = draw(header_values)
    extra = draw(
        st.dictionaries(
            header_names.filter(lambda n: n.lower() not in {h.lower() for h in headers}),
            header_values,
            max_size=3,
        )
    )
    return FuzzRequest(body, {**headers, **extra}, mode, signed_body, extra)


# --- raw records for the worker -----------------------------------------------------------------


@dataclass
class FuzzRecord:
    """One record for the raw topic: any key, value and headers."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


@st.composite
def raw_records(draw: st.DrawFn) -> FuzzRecord:
    value = draw(
        st.one_of(event_bodies(), event_bodies(), bodies(max_body=4096), st.none(), st.just(b""))
    )
    key = draw(st.none() | st.binary(max_size=64))
    headers = draw(
        st.lists(
            st.tuples(
                st.text(max_size=20) | st.sampled_from(["zoom-event-id", "zoom-dlq-reason"]),
                st.none() | st.binary(max_size=40),
            ),
            max_size=4,
        )
    )
    return FuzzRecord(key, value, headers)
