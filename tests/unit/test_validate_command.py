"""``zoom-connector validate``: the topic and exit 0, or the path and reason and exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.cli import main
from connector.spec import load_catalog

CATALOG = load_catalog()


@pytest.mark.parametrize("event_type", CATALOG.event_types)
def test_every_seed_example_is_accepted(
    event_type: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "event.json"
    file.write_bytes(CATALOG.example_bytes(event_type))
    assert main(["validate", str(file)]) == 0
    assert capsys.readouterr().out.strip() == f"zoom.{event_type}"


def test_topic_prefix_is_honoured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOPIC_PREFIX", "acme")
    file = tmp_path / "event.json"
    file.write_bytes(CATALOG.example_bytes("revenue_accelerator.playlist_create"))
    assert main(["validate", str(file)]) == 0
    assert capsys.readouterr().out.strip() == "acme.revenue_accelerator.playlist_create"


def test_bad_input_prints_path_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = CATALOG.example("quality_management.evaluation_completed")
    event["payload"]["object"]["evaluation_type"] = "SEMI"
    file = tmp_path / "bad.json"
    file.write_text(json.dumps(event))
    assert main(["validate", str(file)]) == 1
    out = capsys.readouterr().out
    assert "$.payload.object.evaluation_type" in out and "unknown_enum_symbol" in out


def test_stdin_and_event_override(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    published = CATALOG.event("quality_management.evaluation_completed").published_example
    assert published is not None

    class Stdin:
        buffer = __import__("io").BytesIO(published.encode())

    monkeypatch.setattr("sys.stdin", Stdin)
    assert main(["validate", "-", "--event", "quality_management.evaluation_completed"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "zoom.quality_management.evaluation_completed"
    assert "warning" in captured.err


def test_unknown_event_type_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "e.json"
    file.write_text('{"event": "meeting.started", "payload": {}}')
    assert main(["validate", str(file)]) == 1
    assert "unknown_event_type" in capsys.readouterr().out
