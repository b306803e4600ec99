"""The project's image, run as users run it: ``docker run zoom-connector:local source|worker``
against the test broker.

Signed webhook -> 200 -> typed record; the image's ``HEALTHCHECK`` becomes healthy for both
roles; the processes run as the image's non-root user; ``docker stop`` ends each role with exit
code 0 and loses no event (a worker started afterwards finds nothing left to do twice or
forgotten: every event is on its typed topic and the raw topic is committed to its end); and
the CA bundle the build was given as a secret left nothing in the image.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from connector.avro.codec import EventCodec
from tests.containers.conftest import CONNECTOR_IMAGE, Container, docker
from tests.processes import (
    Deployment,
    consume,
    evaluation_body,
    free_port,
    uncommitted,
    wait_until,
    zoom_headers,
)

SECRET = "container-test-secret"
EVALUATION = "quality_management.evaluation_completed"
NON_ROOT_UID = 10001
DEBIAN_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def container_env(deployment: Deployment, **extra: str) -> dict[str, str]:
    """What a user sets for the image: the cluster, the deployment's prefix, its ports."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": deployment.bootstrap,
        "TOPIC_PREFIX": deployment.prefix,
        "TOPIC_PARTITIONS": str(deployment.partitions),
        "WORKER_ID": deployment.worker_id,
        "WORKER_BATCH_SECONDS": "0.05",
        "ZOOM_WEBHOOK_SECRET_TOKEN": SECRET,
        "LOG_LEVEL": "INFO",
        **extra,
    }


@pytest.fixture
def deployment(new_deployment: Callable[..., Deployment]) -> Deployment:
    return new_deployment("img")


def start_source(run: Callable[..., Container], deployment: Deployment) -> tuple[Container, str]:
    port = free_port()
    env = container_env(deployment, SOURCE_HOST="127.0.0.1", SOURCE_PORT=str(port))
    return run("source", env), f"http://127.0.0.1:{port}"


def start_worker(
    run: Callable[..., Container], deployment: Deployment, name: str = "worker"
) -> tuple[Container, str]:
    port = free_port()
    container = run("worker", container_env(deployment, WORKER_WEB_PORT=str(port)), name)
    return container, f"http://127.0.0.1:{port}"


def send(url: str, number: int, prefix: str) -> None:
    body = evaluation_body(number, prefix=prefix)
    response = httpx.post(f"{url}/zoom/webhooks", content=body, headers=zoom_headers(SECRET, body))
    assert response.status_code == 200, response.text


def evaluation_ids(deployment: Deployment, count: int, worker: Container) -> list[str]:
    """The evaluation ids of the typed records, once ``count`` are there."""
    codec = EventCodec()

    def enough(messages: list[object]) -> bool:
        worker.check_running()
        return len(messages) >= count

    messages = consume(deployment.bootstrap, [deployment.topics.typed(EVALUATION)], enough)
    ids = []
    for message in messages:
        event_type, datum = codec.decode(message.value() or b"")
        assert event_type == EVALUATION
        ids.append(datum["payload"]["object"]["evaluation_id"])
    return ids


def process_uid(container: Container) -> int:
    """The real uid of the container's main process, read from the host's /proc."""
    pid = container.state()["Pid"]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


def test_webhook_to_typed_record_healthy_and_non_root(
    deployment: Deployment, run_container: Callable[..., Container]
) -> None:
    worker, _ = start_worker(run_container, deployment)
    source, url = start_source(run_container, deployment)
    healthy_after = {c.name: c.wait_healthy() for c in (source, worker)}
    print(f"healthy after {healthy_after}")

    send(url, 1, "img")
    assert evaluation_ids(deployment, 1, worker) == ["img-00001"]

    for container in (source, worker):
        assert container.inspect()["Config"]["User"] == f"{NON_ROOT_UID}:{NON_ROOT_UID}"
        assert process_uid(container) == NON_ROOT_UID
        assert docker_exec_id(container) == str(NON_ROOT_UID)


def docker_exec_id(container: Container) -> str:
    return docker("exec", container.name, "id", "-u").strip()


def test_docker_stop_is_graceful_and_loses_nothing(
    deployment: Deployment, run_container: Callable[..., Container]
) -> None:
    worker, _ = start_worker(run_container, deployment)
    source, url = start_source(run_container, deployment)
    source.wait_healthy()
    worker.wait_healthy()

    total = 30
    for number in range(total // 2):
        send(url, number, "stop")
    # The worker is stopped as soon as its first record is out (others may be in hand).
    wait_until(
        lambda: len(evaluation_ids(deployment, 1, worker)) >= 1,
        timeout=60,
        what="the first typed record",
    )
    started = time.monotonic()
    assert worker.stop() == 0, worker.logs()
    print(f"worker stopped in {time.monotonic() - started:.1f} s")
    for number in range(total // 2, total):
        send(url, number, "stop")
    started = time.monotonic()
    assert source.stop() == 0, source.logs()
    print(f"source stopped in {time.monotonic() - started:.1f} s")

    again, _ = start_worker(run_container, deployment, "worker-again")
    ids = evaluation_ids(deployment, total, again)
    assert sorted(set(ids)) == [f"stop-{n:05d}" for n in range(total)]
    wait_until(
        lambda: (
            not any(
                uncommitted(
                    deployment.bootstrap, deployment.worker_id, deployment.topics.raw
                ).values()
            )
        ),
        timeout=60,
        what="the raw topic committed to its end",
        explain=again.logs,
    )
    assert again.stop() == 0, again.logs()


def _certificates(bundle: str) -> set[str]:
    """The PEM blocks of a CA bundle, whitespace-normalised."""
    blocks = bundle.split("-----BEGIN CERTIFICATE-----")[1:]
    return {"".join(block.split("-----END CERTIFICATE-----")[0].split()) for block in blocks}


def test_the_build_ca_bundle_is_not_in_the_image(run_container: Callable[..., Container]) -> None:
    """The host's CA bundle reaches the build as a secret only: no certificate of it that
    Debian's own bundle in the image lacks (a proxy's CA) is anywhere in the image's files."""
    host_bundle = Path(os.environ.get("HOST_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
    shipped = docker("run", "--rm", "--entrypoint", "cat", CONNECTOR_IMAGE, str(DEBIAN_BUNDLE))
    foreign = _certificates(host_bundle.read_text()) - _certificates(shipped)
    print(f"{len(foreign)} certificate(s) of the host's bundle are not Debian's")
    needles = [body[64:128].encode() for body in foreign]  # a stretch of each body's base64
    name = docker("create", CONNECTOR_IMAGE).strip()
    try:
        found: set[bytes] = set()
        with subprocess.Popen(["docker", "export", name], stdout=subprocess.PIPE) as export:
            assert export.stdout is not None
            tail = b""
            while chunk := export.stdout.read(1 << 20):
                window = tail + chunk
                found.update(needle for needle in needles if needle in window)
                tail = window[-256:]
        assert export.returncode == 0
    finally:
        docker("rm", "--force", name, check=False)
    assert not found, "a certificate of the build's CA bundle was stored in the image"
