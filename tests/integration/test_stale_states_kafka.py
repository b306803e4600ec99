"""A frozen worker's late, stale agent state in the changelog is skipped, against the real broker
(:mod:`connector.worker.aggregates.stamps`).

A worker aggregates evaluations of two agents. Then records like those a worker frozen past its
session sends after it thaws are written after them: each agent's state with no evaluation, to the
table's changelog and to ``agent_scores``. Agent A's stale state carries a stamp from an older
generation and not beyond the held state's offset (what the frozen worker's stamp would say);
agent B's carries none (the control: a plain Faust table's last-write-wins). A second worker of the
same group restores the table from the changelog (memory store), stale records last. It must
answer A's full figures, and write A's held state again (counted, logged) to the
changelog and ``agent_scores`` (each its key's last record once more); B's stale state is taken,
which shows what the stamps prevent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from confluent_kafka import Message, Producer

from connector.worker.aggregates.figures import agent_scores
from connector.worker.aggregates.record import codec_for
from connector.worker.aggregates.stamps import Stamp, stamp_of, stamped
from connector.worker.aggregates.state import AgentState
from tests.processes import (
    WORKER_START_SECONDS,
    Deployment,
    RawProducer,
    WorkerProcess,
    evaluation_body,
    metric_total,
    read_everything,
    wait_until,
)

pytestmark = pytest.mark.kafka

EVALUATIONS = 12
AGENTS = ("stale-agent-a", "stale-agent-b")


@pytest.fixture
def deployment(new_deployment: Callable[..., Deployment]) -> Deployment:
    return new_deployment("stale")


def _body(agent: str, number: int) -> bytes:
    event = json.loads(evaluation_body(number, prefix=agent, score=number))
    obj = event["payload"]["object"]
    obj["agent_user_id"] = f"qm-{agent}"
    obj["agent_info"] = {"agent_user_id": agent, "display_name": agent.upper()}
    return json.dumps(event).encode()


def _evaluations(worker: WorkerProcess, agent: str) -> int | None:
    """The agent's lifetime evaluation count as ``worker`` answers it (``None``: no answer yet)."""
    response = worker.get(f"/agents/{quote(agent, safe='')}/scores", as_of="latest")
    if response is None or response.status_code != 200:
        return None
    evaluations = response.json()["evaluations"]
    return 0 if evaluations is None else int(evaluations["lifetime"]["count"])


def _last_by_key(messages: list[Message]) -> dict[bytes, Message]:
    last: dict[bytes, Message] = {}
    for message in messages:
        key = message.key()
        if key is not None:
            last[key] = message
    return last


def _produce(bootstrap: str, topic: str, key: bytes, value: bytes, partition: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(topic, key=key, value=value, partition=partition)
    assert producer.flush(30) == 0


def test_a_late_stale_state_is_skipped_and_the_held_state_written_again(
    deployment: Deployment, workers: list[WorkerProcess]
) -> None:
    bootstrap = deployment.bootstrap
    changelog = f"{deployment.worker_id}-agent-scores-changelog"
    output = deployment.topics.agent_scores
    first = WorkerProcess(deployment, "first")
    workers.append(first)
    raw = RawProducer(bootstrap, deployment.topics.raw)
    for number in range(EVALUATIONS):
        for agent in AGENTS:
            raw.send(_body(agent, number))
    raw.flush()
    for agent in AGENTS:
        wait_until(
            lambda a=agent: _evaluations(first, a) == EVALUATIONS,
            WORKER_START_SECONDS,
            f"{agent}'s {EVALUATIONS} evaluations to be aggregated",
            explain=first.diagnosis,
        )
    first.stop()

    held = _last_by_key(read_everything(bootstrap, [changelog]))
    published = _last_by_key(read_everything(bootstrap, [output]))
    codec = codec_for(deployment.settings())
    stale_state = {agent: AgentState(agent) for agent in AGENTS}
    held_stamp: dict[str, Stamp] = {}
    for agent in AGENTS:
        record = held[agent.encode()]
        stamp = stamp_of(record.value())
        assert stamp is not None and stamp.generation >= 1 and stamp.offset >= 0, stamp
        held_stamp[agent] = stamp
        partition = record.partition()
        assert partition is not None
        value = stale_state[agent].to_bytes()
        if agent == AGENTS[0]:  # as the frozen worker would have stamped it
            value = stamped(Stamp(stamp.generation - 1, stamp.offset), value)
        _produce(bootstrap, changelog, agent.encode(), value, partition)
        stale_document = codec.encode(agent_scores(stale_state[agent]))
        output_partition = published[agent.encode()].partition()
        assert output_partition is not None
        _produce(bootstrap, output, agent.encode(), stale_document, output_partition)

    second = WorkerProcess(deployment, "second")
    workers.append(second)
    a, b = AGENTS
    wait_until(
        lambda: _evaluations(second, a) is not None and _evaluations(second, b) is not None,
        WORKER_START_SECONDS,
        "the restarted worker to answer for both agents",
        explain=second.diagnosis,
    )
    assert _evaluations(second, a) == EVALUATIONS  # the stale record was skipped
    assert _evaluations(second, b) == 0  # the control: unstamped, the last record wins

    def repaired() -> dict[str, Any] | None:
        changelog_last = _last_by_key(read_everything(bootstrap, [changelog]))[a.encode()]
        output_last = _last_by_key(read_everything(bootstrap, [output]))[a.encode()]
        if stamp_of(changelog_last.value()) != held_stamp[a]:
            return None
        document = codec.decode(output_last.value())
        return document if document["evaluations"] is not None else None

    document = wait_until(
        repaired,
        30,
        f"{a}'s held state to be written again to the changelog and agent_scores",
        explain=second.diagnosis,
    )
    assert document["evaluations"]["lifetime"]["count"] == EVALUATIONS
    # at least once: every restore of the partition (each rebalance) meets the record again
    assert metric_total(second.metrics(), "zoom_worker_agent_score_states_repaired_total") >= 1
    assert "last changelog record was stale" in second.log()
