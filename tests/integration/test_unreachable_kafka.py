"""A wrong broker address: commands fail fast and readably, the source keeps serving quietly.

No broker needed: the address is a local port nothing listens on, so every connection attempt is
refused at once, the way a typo in ``KAFKA_BOOTSTRAP_SERVERS`` usually fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import httpx

from tests.processes import CONNECTOR_COMMAND, free_port

FAIL_FAST_SECONDS = 10.0


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "SCHEMA_REG"))}
    return {**env, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}", **extra}


def _fails_fast(command: str, *args: str) -> list[str]:
    env = _env()
    started = time.monotonic()
    result = subprocess.run(
        [*CONNECTOR_COMMAND, command, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    lines = result.stderr.strip().splitlines()
    print(f"{command}: exit {result.returncode} after {elapsed:.1f} s, {len(lines)} lines")
    print(result.stderr)
    assert result.returncode == 2
    assert elapsed < FAIL_FAST_SECONDS
    assert len(lines) <= 5, "librdkafka's repeated errors are not coalesced"
    assert "more in" in result.stderr  # the repeats are counted
    last = lines[-1]
    address = env["KAFKA_BOOTSTRAP_SERVERS"]
    assert last.startswith(f"zoom-connector: cannot reach Kafka at {address} within 6 s")
    assert f"Check KAFKA_BOOTSTRAP_SERVERS={address}" in last
    return lines


def test_the_worker_gives_up_within_seconds_saying_what_to_check() -> None:
    _fails_fast("worker")


def test_topics_create_gives_up_within_seconds_saying_what_to_check() -> None:
    _fails_fast("topics", "create")


def test_the_source_answers_503_and_summarises_instead_of_repeating() -> None:
    port = free_port()
    env = _env(SOURCE_PORT=str(port), ZOOM_WEBHOOK_SECRET_TOKEN="s3cret", LOG_LEVEL="INFO")
    source = subprocess.Popen(
        [*CONNECTOR_COMMAND, "source"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    statuses: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(statuses) < 12 and time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):  # not listening yet
                statuses.append(httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code)
            time.sleep(0.5)
    finally:
        source.send_signal(signal.SIGINT)
        _, stderr = source.communicate(timeout=30)
    print(stderr)
    assert statuses and set(statuses) == {503}
    lines = stderr.strip().splitlines()
    # ~6 s of refused connections (before: 40-50 lines); each kind of message once, and its
    # count when the source stops.
    assert len(lines) <= 9
    warnings = [line for line in lines if "webhooks are answered 503" in line]
    assert warnings and "check KAFKA_BOOTSTRAP_SERVERS" in warnings[0]
    assert any("more in" in line for line in lines)
