"""Comparing the worker's outputs with the Quix peer's (bench/peer_check.py), without a broker."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.peer_check import Output, compare

TYPED: Output = (
    ".quality_management.evaluation_completed",
    b"ev-1",
    b"\xc3\x01avro",
    b"id-1",
    None,
)
DEAD: Output = (".webhooks.dlq", b"k", b"{}", b"id-2", b"missing_required_field")


def test_equal_outputs_are_said_equal_with_their_counts() -> None:
    same, line = compare(Counter([TYPED, DEAD]), Counter([DEAD, TYPED]))
    assert same
    assert "2 records (1 dead letters)" in line


@pytest.mark.parametrize(
    ("worker", "peer"),
    [
        ([TYPED, DEAD], [TYPED]),  # a record the peer did not write
        ([TYPED], [TYPED, TYPED]),  # a record the peer wrote twice
        ([DEAD], [(*DEAD[:4], b"wrong_type")]),  # another reason
        ([TYPED], [(*TYPED[:3], b"id-other", None)]),  # another event id
    ],
)
def test_any_difference_is_reported(worker: list[Output], peer: list[Output]) -> None:
    same, line = compare(Counter(worker), Counter(peer))
    assert not same
    assert "DIFFER" in line
