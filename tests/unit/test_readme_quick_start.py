"""What a new user reads first: the quick start answers the questions it used to leave open."""

from __future__ import annotations

import re

from connector.paths import REPO_DIR

README = (REPO_DIR / "README.md").read_text(encoding="utf-8")


def _paragraph_after(marker: str) -> str:
    start = README.index(marker)
    return README[start : README.index("\n\n", README.index("\n\n", start) + 2)]


def test_the_quick_start_says_the_broker_keeps_running_and_how_to_stop_it() -> None:
    after_run = _paragraph_after("make run\n")
    assert "keeps running" in after_run
    assert "zoom-connector kafka stop" in after_run


def test_the_consumer_example_shows_where_it_reads_from() -> None:
    command = re.search(r"(?:.*\\\n)*.*examples/consume_typed\.py .*", README)
    assert command is not None
    assert "KAFKA_BOOTSTRAP_SERVERS=" in command.group(0)
