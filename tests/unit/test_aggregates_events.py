"""Score events from typed records: which agent, which numbers; the internal wire format."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from connector.avro.codec import EventCodec
from connector.spec import load_catalog
from connector.worker.aggregates.events import (
    EVALUATION_COMPLETED,
    INTERACTION_ANALYSIS_COMPLETED,
    Attribution,
    Evaluation,
    InteractionAnalysis,
    ScoreEventError,
    decode,
    encode,
    from_typed,
)

CATALOG = load_catalog()
CODEC = EventCodec()


def typed(event_type: str, change: Any = None) -> dict[str, Any]:
    """The seed example of ``event_type`` through the codec, as the aggregates read it."""
    event = copy.deepcopy(CATALOG.example(event_type))
    event["event"] = event_type
    if change is not None:
        change(event["payload"]["object"])
    decoded_type, datum = CODEC.decode(CODEC.encode(json.dumps(event).encode())[1])
    assert decoded_type == event_type
    return datum


def test_the_seed_evaluation() -> None:
    event, attribution = from_typed(EVALUATION_COMPLETED, typed(EVALUATION_COMPLETED))
    assert attribution is Attribution.PRIMARY
    assert event == Evaluation(
        agent="httgPnTgTxq0d65-alfYVw",  # agent_info.agent_user_id, not agent_user_id
        evaluation_id="0e73a69f8f104d24a589fa0c615abca8",
        event_ts=1626230691572,
        score=10.0,
        ratio=0.2,
        evaluation_type="AUTOMATED",
        scorecard="Customer Care",
        display_name="Ashlee York",
    )


def _no_agent_info(obj: dict[str, Any]) -> None:
    del obj["agent_info"]


def _empty_agent_info_id(obj: dict[str, Any]) -> None:
    obj["agent_info"]["agent_user_id"] = ""


def _no_ids(obj: dict[str, Any]) -> None:
    del obj["agent_info"]
    del obj["agent_user_id"]


@pytest.mark.parametrize(
    ("change", "agent", "attribution"),
    [
        (_no_agent_info, "ZWR1C1FB695C654A829FE56553A709E8EBB", Attribution.FALLBACK),
        (_empty_agent_info_id, "ZWR1C1FB695C654A829FE56553A709E8EBB", Attribution.FALLBACK),
        (_no_ids, None, Attribution.UNATTRIBUTED),
    ],
)
def test_evaluation_agent_fallbacks(change: Any, agent: str | None, attribution: Any) -> None:
    event, found = from_typed(EVALUATION_COMPLETED, typed(EVALUATION_COMPLETED, change))
    assert found is attribution
    assert (event.agent if event is not None else None) == agent


def test_the_seed_interaction_analysis() -> None:
    event, attribution = from_typed(
        INTERACTION_ANALYSIS_COMPLETED, typed(INTERACTION_ANALYSIS_COMPLETED)
    )
    assert attribution is Attribution.PRIMARY
    assert event == InteractionAnalysis(
        agent="name:Admin3",
        interaction_id="X51n17BZQTqKtxwF4mmTIw",
        event_ts=1626230691572,
        sentiment=58.63,
        engagement=58.63,
        score=58.63,
        silence_events=2,
        crosstalk_events=2,
        hold_events=3,
        duration_seconds=5,
        channel="AUDIO",
        queue_id="Je4zLPZ-SBiLCiebE35ALQ",
        queue_name="Demo",
    )


def _sparse_interaction(obj: dict[str, Any]) -> None:
    for name in ("summary", "silence_event_count", "duration", "queue_id", "queue_name"):
        del obj[name]
    del obj["interaction_info"]["channel_type"]


def test_an_interaction_without_optional_fields() -> None:
    event, _ = from_typed(
        INTERACTION_ANALYSIS_COMPLETED, typed(INTERACTION_ANALYSIS_COMPLETED, _sparse_interaction)
    )
    assert isinstance(event, InteractionAnalysis)
    assert (event.sentiment, event.engagement, event.score) == (None, None, None)
    assert (event.silence_events, event.duration_seconds) == (0, 0)
    assert (event.channel, event.queue_id, event.queue_name) == (None, None, None)


def test_an_interaction_without_agent_name_is_unattributed() -> None:
    def change(obj: dict[str, Any]) -> None:
        del obj["interaction_info"]["agent_name"]

    datum = typed(INTERACTION_ANALYSIS_COMPLETED, change)
    assert from_typed(INTERACTION_ANALYSIS_COMPLETED, datum) == (None, Attribution.UNATTRIBUTED)


def test_other_event_types_are_refused() -> None:
    with pytest.raises(ScoreEventError):
        from_typed(
            "revenue_accelerator.playlist_create", {"event_ts": 1, "payload": {"object": {}}}
        )


@pytest.mark.parametrize(
    "event",
    [
        Evaluation("a", "e", 1, 1.5, None, None, None, None),
        Evaluation("a", "e", 2**62, 0.0, 1.0, "MANUAL", "Care ✓", "Zoë"),
        InteractionAnalysis("name:x", "i", 5, None, 2.0, 3.0, 1, 2, 3, 4, "SMS", "q", None),
    ],
)
def test_the_wire_format_round_trips(event: Evaluation | InteractionAnalysis) -> None:
    assert decode(encode(event)) == event


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{}",
        b'[2, "e"]',
        b'[1, "x", "a", "e", 1]',
        b'[1, "e", "a", "e", 1, 2]',
        b'[1, "e", "a", "e", "ts", 1, 1, null, null, null]',
        b'[1, "e", 5, "e", 1, 1, 1, null, null, null]',
        b'[1, "e", "a", "e", 1, "ten", 1, null, null, null]',
    ],
)
def test_unreadable_wire_records_are_errors(data: bytes) -> None:
    with pytest.raises(ScoreEventError):
        decode(data)
