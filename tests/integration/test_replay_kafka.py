"""``zoom-connector replay`` and ``dlq show`` against a real broker, run as the user runs them.

A fixed dead-letter topic (three reasons, known times) is written with the worker's own header
code; the commands run as ``python -m connector ...`` child processes in the deployment's
environment, and what they wrote is read back with plain consumers.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from connector.avro.errors import Reason
from connector.replay.reading import open_consumer, read_range, take_plan
from connector.replay.show import iso_time
from connector.settings import Settings
from connector.wire import REPLAYED_FROM_HEADER, raw_record_key
from connector.worker.dead_letters import (
    DEAD_LETTER_HEADERS,
    Origin,
    Refusal,
    dead_letter_headers,
)
from connector.worker.identity import event_identity
from tests.processes import (
    CONNECTOR_COMMAND,
    Deployment,
    RawProducer,
    WorkerProcess,
    evaluation_body,
    headers_of,
    read_everything,
    record_count,
    wait_until,
)

pytestmark = pytest.mark.kafka

EVALUATION = "quality_management.evaluation_completed"
# The failed-at times of the fixed dead letters start 3 hours ago: within the topics' retention
# (older records may be deleted mid-test) and not ahead of the broker's clock.
T0 = (int(time.time()) // 60 - 180) * 60_000
ZOOM_HEADERS = ("x-zm-signature", "x-zm-request-timestamp", "x-zm-trackingid")


@dataclass(frozen=True)
class DeadLetter:
    body: bytes
    reason: Reason
    failed_at_ms: int
    raw_offset: int

    @property
    def event(self) -> dict[str, Any] | None:
        try:
            event = json.loads(self.body)
        except ValueError:
            return None
        return event if isinstance(event, dict) else None

    @property
    def key(self) -> bytes:
        return raw_record_key(self.event or {}, self.body)


def fixed_dead_letters(count_by_reason: dict[Reason, int]) -> list[DeadLetter]:
    """Dead letters of the given reasons, one minute apart from ``T0``, in order."""
    letters: list[DeadLetter] = []
    for reason, count in count_by_reason.items():
        for _ in range(count):
            n = len(letters)
            body = (
                b'{"event": "quality_management.evaluation_completed", oops'
                if (reason == Reason.INVALID_JSON)
                else evaluation_body(n, prefix=f"dl-{reason}")
            )
            letters.append(DeadLetter(body, reason, T0 + n * 60_000, raw_offset=1000 + n))
    return letters


def write_dead_letters(deployment: Deployment, letters: list[DeadLetter]) -> None:
    """Write ``letters`` to the deployment's DLQ as the worker would (its header code)."""
    producer = Producer({"bootstrap.servers": deployment.bootstrap, "acks": "all"})
    for letter in letters:
        original = [
            ("x-zm-signature", b"v0=" + str(letter.raw_offset).encode()),
            ("x-zm-request-timestamp", b"1790000000"),
            ("x-zm-trackingid", f"track-{letter.raw_offset}".encode()),
            ("zoom-connector-received-at", str(letter.failed_at_ms - 5).encode()),
        ]
        refusal = Refusal(
            letter.reason,
            "$" if letter.reason == Reason.INVALID_JSON else "$.payload.object.evaluation_result",
            f"refused for {letter.reason}",
            None if letter.reason == Reason.INVALID_JSON else EVALUATION,
        )
        headers = dead_letter_headers(
            original,
            refusal,
            Origin(deployment.topics.raw, 0, letter.raw_offset),
            event_identity(letter.event, letter.body),
            letter.failed_at_ms,
        )
        producer.produce(
            deployment.topics.dlq,
            value=letter.body,
            key=letter.key,
            headers=list(headers),
            timestamp=letter.failed_at_ms + 10,
        )
    assert producer.flush(30) == 0


def connector(
    deployment: Deployment, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m connector ARGS`` in the deployment's environment, to its end."""
    return subprocess.run(
        [*CONNECTOR_COMMAND, *args],
        env=deployment.env(0),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def copies(deployment: Deployment, topic: str) -> list[Message]:
    return read_everything(deployment.bootstrap, [topic])


def replayed_from(message: Message) -> str:
    return headers_of(message)[REPLAYED_FROM_HEADER].decode()


LETTERS = fixed_dead_letters(
    {Reason.UNKNOWN_ENUM_SYMBOL: 4, Reason.INVALID_JSON: 2, Reason.MISSING_REQUIRED_FIELD: 3}
)


@pytest.fixture
def fixed_dlq(new_deployment: Callable[..., Deployment]) -> Deployment:
    deployment = new_deployment("rp", partitions=1)
    write_dead_letters(deployment, LETTERS)
    return deployment


def test_replay_each_reason_copies_exactly_those_dead_letters(
    fixed_dlq: Deployment, create_topic: Callable[..., str]
) -> None:
    by_offset = {n: letter for n, letter in enumerate(LETTERS)}
    for reason, expected in Counter(letter.reason for letter in LETTERS).items():
        target = create_topic("target")
        done = connector(fixed_dlq, "replay", "dlq", "--reason", str(reason), "--to", target)
        assert done.returncode == 0, done.stderr
        skipped = len(LETTERS) - expected
        assert (
            f"replay {fixed_dlq.topics.dlq} -> {target}: {expected} copied,"
            f" {skipped} skipped by filter, 0 failed ({len(LETTERS)} dead letters read)"
        ) in done.stdout
        written = copies(fixed_dlq, target)
        assert len(written) == expected
        for message in written:
            source_offset = int(replayed_from(message).rsplit("/", 1)[1])
            letter = by_offset[source_offset]
            assert replayed_from(message) == f"{fixed_dlq.topics.dlq}/0/{source_offset}"
            assert letter.reason == reason
            assert message.value() == letter.body
            assert message.key() == letter.key
            headers = headers_of(message)
            assert not DEAD_LETTER_HEADERS & headers.keys()
            assert headers["x-zm-trackingid"] == f"track-{letter.raw_offset}".encode()
            assert all(name in headers for name in ZOOM_HEADERS)
            assert "zoom-connector-received-at" in headers


def test_replay_filters_by_event_and_time_and_dry_run_counts(
    fixed_dlq: Deployment, create_topic: Callable[..., str]
) -> None:
    target = create_topic("target")
    # --since inclusive, --until exclusive: letters 1, 2, 3 (ISO and epoch ms mixed).
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((T0 + 60_000) / 1000))
    done = connector(
        fixed_dlq, "replay", "dlq", "--since", since, "--until", str(T0 + 4 * 60_000),
        "--to", target,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(replayed_from(m) for m in copies(fixed_dlq, target)) == [
        f"{fixed_dlq.topics.dlq}/0/{n}" for n in (1, 2, 3)
    ]

    dry = connector(fixed_dlq, "replay", "dlq", "--event", EVALUATION, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"dry run: 7 of 9 dead letters in {fixed_dlq.topics.dlq} match" in dry.stdout
    rows = {tuple(line.split()) for line in dry.stdout.splitlines()[1:]}
    assert ("unknown_enum_symbol", EVALUATION, "4") in rows
    assert ("missing_required_field", EVALUATION, "3") in rows
    assert record_count(fixed_dlq.bootstrap, [fixed_dlq.topics.raw]) == 0  # nothing written


def test_dlq_show_prints_each_dead_letter_and_counts_by_reason(fixed_dlq: Deployment) -> None:
    shown = connector(fixed_dlq, "dlq", "show", "--reason", "invalid_json", "--body")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("Z  invalid_json  -  from ") == 2
    assert f"from {fixed_dlq.topics.raw}[0]@1004" in shown.stdout
    assert "$: refused for invalid_json" in shown.stdout
    assert "body: " + LETTERS[4].body.decode() in shown.stdout
    assert f"2 dead letters shown (9 read from {fixed_dlq.topics.dlq})" in shown.stdout

    as_json = connector(fixed_dlq, "dlq", "show", "--json", "--limit", "5")
    assert as_json.returncode == 0, as_json.stderr
    objects = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [o["dlq"]["offset"] for o in objects] == [0, 1, 2, 3, 4]
    first = objects[0]
    assert first["reason"] == "unknown_enum_symbol"
    assert first["path"] == "$.payload.object.evaluation_result"
    assert first["event_type"] == EVALUATION
    assert first["failed_at_ms"] == T0
    assert first["failed_at"] == iso_time(T0)
    assert first["source"] == {"topic": fixed_dlq.topics.raw, "partition": 0, "offset": 1000}
    assert "body" not in first
    assert "5 dead letters shown" in as_json.stderr
    counts = dict(line.split() for line in as_json.stderr.splitlines()[2:])
    assert counts == {"unknown_enum_symbol": "4", "invalid_json": "1"}


def test_dlq_show_follow_prints_new_dead_letters(fixed_dlq: Deployment) -> None:
    follow = subprocess.Popen(
        [*CONNECTOR_COMMAND, "dlq", "show", "--follow", "--json"],
        env=fixed_dlq.env(0),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert follow.stdout is not None
    stdout = follow.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        existing = [json.loads(lines.get(timeout=60)) for _ in LETTERS]
        assert [o["dlq"]["offset"] for o in existing] == list(range(len(LETTERS)))
        write_dead_letters(fixed_dlq, fixed_dead_letters({Reason.WRONG_TYPE: 1}))
        assert json.loads(lines.get(timeout=60))["reason"] == "wrong_type"
    finally:
        follow.send_signal(signal.SIGINT)
        follow.wait(timeout=30)
        assert follow.stderr is not None
        err = follow.stderr.read()
        follow.stderr.close()
        stdout.close()
    assert follow.returncode == 0, err
    assert f"{len(LETTERS) + 1} dead letters shown" in err


def _letters_in_target(deployment: Deployment, target: str) -> Counter[str]:
    return Counter(replayed_from(m) for m in copies(deployment, target))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_interrupted_replay_resumes_where_it_stopped(
    new_deployment: Callable[..., Deployment],
    create_topic: Callable[..., str],
    stop: signal.Signals,
) -> None:
    deployment = new_deployment("rs", partitions=2)
    letters = fixed_dead_letters({Reason.UNKNOWN_ENUM_SYMBOL: 120})
    write_dead_letters(deployment, letters)
    target = create_topic("target")
    command = [*CONNECTOR_COMMAND, "replay", "dlq", "--to", target, "--rate", "40"]
    first = subprocess.Popen(
        command, env=deployment.env(0), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(
            lambda: record_count(deployment.bootstrap, [target]) >= 30,
            60,
            "the first run to copy 30 dead letters",
        )
    finally:
        first.send_signal(stop)
        out, err = first.communicate(timeout=60)
    if stop == signal.SIGINT:
        assert first.returncode == 130, err
        assert "interrupted after" in out and "run the same command again to resume" in out
    else:
        assert first.returncode == -signal.SIGKILL
    copied_first = record_count(deployment.bootstrap, [target])
    assert copied_first < len(letters)

    second = subprocess.run(
        command[:-2], env=deployment.env(0), capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stderr
    assert "resuming the replay interrupted earlier" in second.stdout
    seen = _letters_in_target(deployment, target)
    assert len(seen) == len(letters)  # every dead letter copied (at least once)
    if stop == signal.SIGINT:  # flushed and checkpointed on the way out: no copy twice
        assert max(seen.values()) == 1
        assert sum(seen.values()) == len(letters)

    again = connector(deployment, "replay", "dlq", "--to", target)
    assert again.returncode == 0, again.stderr
    assert "resuming" not in again.stdout  # the finished run's checkpoint is done
    assert f"{len(letters)} copied" in again.stdout


def test_repeated_replay_writes_no_new_typed_records(
    new_deployment: Callable[..., Deployment],
) -> None:
    deployment = new_deployment("rw")
    letters = fixed_dead_letters({Reason.UNKNOWN_ENUM_SYMBOL: 5})  # valid bodies: "now fixed"
    write_dead_letters(deployment, letters)
    typed = deployment.topics.typed(EVALUATION)
    worker = WorkerProcess(deployment)
    try:
        first = connector(deployment, "replay", "dlq")
        assert first.returncode == 0, first.stderr
        assert "5 copied" in first.stdout
        assert worker.wait_counted(5) == {"typed": 5}
        second = connector(deployment, "replay", "dlq")
        assert second.returncode == 0, second.stderr
        assert "5 copied" in second.stdout
        assert worker.wait_counted(10) == {"typed": 5, "duplicate": 5}
        assert record_count(deployment.bootstrap, [typed]) == 5
        assert record_count(deployment.bootstrap, [deployment.topics.raw]) == 10
    finally:
        worker.stop()


BAD_ARGUMENTS = [
    (["replay", "dlq", "--since", "yesterday"], "'yesterday' is not a time"),
    (["replay", "dlq", "--rate", "0"], "0 must be greater than 0"),
    (["replay", "dlq", "--partition", "-1"], "is not a partition number"),
    (["replay", "raw", "--reason", "invalid_json"], "--reason applies to dead letters only"),
    (["replay", "dlq", "--reason", "no_such_reason"], "unknown reason no_such_reason"),
    (["replay", "dlq", "--since", "2026-12-02", "--until", "2026-12-01"], "--since must be"),
    (["replay", "everything"], "invalid choice: 'everything'"),
    (["dlq", "show", "--limit", "none"], "'none' is not a number"),
    (["dlq", "show", "--limit", "0"], "0 must be greater than 0"),
    # these need the broker's answer
    (["replay", "dlq", "--partition", "7"], "has partitions 0-0, not 7"),
    (["replay", "dlq", "--to", "no.such.topic"], "topic no.such.topic does not exist"),
    (["dlq", "show", "--from-topic", "no.such.topic"], "topic no.such.topic does not exist"),
]


def test_bad_arguments_exit_2_with_a_message(fixed_dlq: Deployment) -> None:
    for args, message in BAD_ARGUMENTS:
        done = connector(fixed_dlq, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
    assert record_count(fixed_dlq.bootstrap, [fixed_dlq.topics.raw]) == 0


def test_replay_raw_copies_records_stored_in_a_time_window_at_the_rate_asked(
    new_deployment: Callable[..., Deployment], create_topic: Callable[..., str]
) -> None:
    deployment = new_deployment("rr", partitions=2)
    raw = RawProducer(deployment.bootstrap, deployment.topics.raw)
    interaction = b'{"event": "quality_management.interaction_analysis_completed", "payload": {}}'
    for n in range(30):  # stored one second apart from T0; every third one another event type
        raw.send(interaction if n % 3 == 0 else evaluation_body(n), timestamp_ms=T0 + n * 1000)
    raw.flush()
    target = create_topic("target")
    started = time.monotonic()
    done = connector(
        deployment, "replay", "raw", "--since", str(T0 + 10_000), "--until", str(T0 + 30_000),
        "--event", EVALUATION, "--rate", "4", "--to", target,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    wanted = [p for p in raw.produced if p.body != interaction]
    wanted = [p for p in wanted if int(json.loads(p.body)["event_ts"]) - 1_700_000_000_000 >= 10]
    assert len(wanted) == 14  # 10..29 without 12, 15, 18, 21, 24, 27
    assert f"{len(wanted)} copied" in done.stdout
    assert "raw records read" in done.stdout
    written = copies(deployment, target)
    assert sorted(m.value() or b"" for m in written) == sorted(p.body for p in wanted)
    for message in written:
        assert replayed_from(message).startswith(f"{deployment.topics.raw}/")
        assert headers_of(message)["x-zm-signature"] == b"v0=first"
    assert elapsed >= (len(wanted) - 1) / 4  # --rate 4: at least 3.25 s for 14 copies


def test_reading_ends_when_the_planned_records_were_deleted_meanwhile(
    kafka_bootstrap: str, create_topic: Callable[..., str]
) -> None:
    """Records deleted between taking the plan and reading them (retention, delete-records): the
    consumer skips to the log's end, and the read still ends instead of waiting for offsets that
    will never come."""
    topic = create_topic("deleted", partitions=2)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for n in range(20):
        producer.produce(topic, value=b"x", partition=n % 2)
    assert producer.flush(30) == 0
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    consumer = open_consumer(settings, f"reader-{topic}")
    try:
        plan = take_plan(consumer, topic)
        assert {p: r.size for p, r in plan.items()} == {0: 10, 1: 10}
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        gone = admin.delete_records([TopicPartition(topic, 0, 10)])  # all of partition 0
        for future in gone.values():
            future.result(timeout=30)
        deadline = time.monotonic() + 30
        read = list(read_range(consumer, topic, plan, stop=lambda: time.monotonic() > deadline))
        assert time.monotonic() < deadline, "the read did not end by itself"
        assert sorted({m.partition() for m in read}) == [1]
        assert len(read) == 10
    finally:
        consumer.close()
