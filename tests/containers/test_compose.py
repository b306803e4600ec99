"""``docker compose up`` of the project's docker-compose.yml, as a user runs it.

Kafka and the registry are the local stand-ins of ``tests/images/build.sh``, swapped in by
``compose.override.yml`` (the host ports become ephemeral ones; nothing else changes). A signed
webhook goes into the stack's source and comes out of its worker as a typed record, which
confluent-kafka's own ``AvroDeserializer`` reads back through the registry's Confluent API; then
``--scale worker=2`` and both workers own part of the raw topic's partitions.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from connector.registry import registry_client
from connector.settings import Settings
from tests.containers.conftest import (
    CONNECTOR_IMAGE,
    KAFKA_IMAGE,
    SCHEMA_REGISTRY_IMAGE,
    require_images,
)
from tests.processes import evaluation_body, wait_until, zoom_headers

REPO = Path(__file__).resolve().parents[2]
OVERRIDE = Path(__file__).with_name("compose.override.yml")
SECRET = "compose-stack-secret"
TYPED_TOPIC = "zoom.quality_management.evaluation_completed"
RAW_TOPIC = "zoom.webhooks.raw"
RAW_PARTITIONS = 6  # TOPIC_PARTITIONS in docker-compose.yml
UP_SECONDS = 300
# pytest's per-test limit (300 s) counts the module's `compose up` towards the first test: on a
# loaded machine the stack alone can take most of it.
pytestmark = pytest.mark.timeout(UP_SECONDS + 300)

# Runs in a container of the stack (the image's Python and confluent-kafka, the stack's network):
# the first record of the typed topic, its value printed as hex.
READ_ONE = textwrap.dedent(
    """
    import os, sys, time
    from confluent_kafka import Consumer
    consumer = Consumer({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
                         "group.id": "compose-test-reader", "auto.offset.reset": "earliest"})
    consumer.subscribe([sys.argv[1]])
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                print(message.value().hex())
                sys.exit(0)
        sys.exit("no record within 90 s")
    finally:
        consumer.close()
    """
)


class Stack:
    """One compose project of the repository's docker-compose.yml plus the override."""

    def __init__(self) -> None:
        self.project = f"zc-test-{secrets.token_hex(4)}"
        self.env = {
            **os.environ,
            "ZOOM_WEBHOOK_SECRET_TOKEN": SECRET,
            "KAFKA_IMAGE": KAFKA_IMAGE,
            "SCHEMA_REGISTRY_IMAGE": SCHEMA_REGISTRY_IMAGE,
            "ZOOM_CONNECTOR_IMAGE": CONNECTOR_IMAGE,
        }

    def compose(self, *args: str, timeout: float = 120.0, check: bool = True) -> str:
        files = ["--file", str(REPO / "docker-compose.yml"), "--file", str(OVERRIDE)]
        command = ["docker", "compose", "--project-name", self.project, *files, *args]
        completed = subprocess.run(
            command, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and completed.returncode != 0:
            raise AssertionError(
                f"{' '.join(command[2:])} exited {completed.returncode}:\n"
                f"{completed.stderr.strip()}\n{self.logs()}"
            )
        return completed.stdout

    def up(self, *args: str) -> None:
        self.compose("up", "--detach", "--wait", "--wait-timeout", str(UP_SECONDS), "--no-build",
                     *args, timeout=UP_SECONDS + 60)  # fmt: skip

    def logs(self) -> str:
        completed = subprocess.run(
            ["docker", "compose", "--project-name", self.project, "logs", "--tail", "40"],
            cwd=REPO, env=self.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        return completed.stdout[-20000:]

    def url(self, service: str, port: int, index: int = 1) -> str:
        """``http://127.0.0.1:<host port>`` of a service's container port."""
        address = self.compose("port", "--index", str(index), service, str(port)).strip()
        return f"http://{address}"

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "30", check=False)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    require_images(CONNECTOR_IMAGE, KAFKA_IMAGE, SCHEMA_REGISTRY_IMAGE)
    stack = Stack()
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def test_webhook_through_the_stack_to_a_typed_record(stack: Stack) -> None:
    body = evaluation_body(1, prefix="compose")
    response = httpx.post(
        f"{stack.url('source', 8080)}/zoom/webhooks",
        content=body,
        headers=zoom_headers(SECRET, body),
        timeout=30,
    )
    assert response.status_code == 200, response.text

    value_hex = stack.compose("run", "--rm", "--no-deps", "-T", "--entrypoint", "python",
                              "topics", "-c", READ_ONE, TYPED_TOPIC, timeout=180)  # fmt: skip
    value = bytes.fromhex(value_hex.strip().splitlines()[-1])
    assert value[0] == 0, "Confluent wire format: magic byte 0, then the schema id"
    registry = f"{stack.url('schema-registry', 8080)}/apis/ccompat/v7"
    with registry_client(Settings(schema_registry_url=registry)) as client:
        deserializer = AvroDeserializer(client)
        record = deserializer(value, SerializationContext(TYPED_TOPIC, MessageField.VALUE))
        subjects = client.get_subjects()
    assert isinstance(record, dict)
    assert record["payload"]["object"]["evaluation_id"] == "compose-00001"
    assert f"{TYPED_TOPIC}-value" in subjects


def test_two_workers_share_the_raw_partitions(stack: Stack) -> None:
    stack.up("--scale", "worker=2")
    urls = [stack.url("worker", 6066, index) for index in (1, 2)]

    def owned() -> list[set[int]] | None:
        found = []
        for url in urls:
            try:
                answer: dict[str, Any] = httpx.get(f"{url}/partitions", timeout=5).json()
            except (httpx.HTTPError, ValueError):
                return None
            views = answer.get("partitions") or []
            found.append({v["partition"] for v in views if v["topic"] == RAW_TOPIC})
        both = all(found) and not (found[0] & found[1])
        return found if both and found[0] | found[1] == set(range(RAW_PARTITIONS)) else None

    shares = wait_until(
        owned, timeout=120, what="two workers sharing the raw partitions", explain=stack.logs
    )
    print(f"raw partitions by worker: {shares}")
