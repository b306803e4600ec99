"""Faust's ``confluent://`` transport is still unusable (docs/known-issues.md).

Runs the reproduction (tests/repro/confluent_transport.py) on the test broker. When this fails,
the installed faust-streaming fixed the driver: run the reproduction by hand, then the worker's
integration and reliability tests on ``confluent://``, and update the known issue.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPRO = Path(__file__).resolve().parent.parent / "repro" / "confluent_transport.py"


def test_confluent_transport_still_processes_nothing(kafka_bootstrap: str) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    done = subprocess.run(
        [sys.executable, str(REPRO), "--records", "3", "--seconds", "20"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    output = done.stdout
    kafka, _, confluent = output.partition("== confluent://")
    assert "PROBLEM" not in kafka, output  # the broker and the app are fine on aiokafka
    assert "PROBLEM: the agent received 0 of 3 records" in confluent, output
    assert "PROBLEM: the producer wrote headers [] (sent one)" in confluent, output
    assert done.returncode == 1, output
